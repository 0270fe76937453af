"""Holds: reservations of a book, queued first come, first served."""


def includeme(config):
    config.add_route("holds", "/holds", factory="booknexus.security.HoldsOf")
    config.add_route("hold", "/holds/{id}", factory="booknexus.security.HoldResource")
