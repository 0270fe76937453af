"""Checkouts: loans of one copy of a book to one user."""


def includeme(config):
    config.add_route("checkouts", "/checkouts")
    config.add_route("checkout", "/checkouts/{id}")
    config.add_route("checkout_return", "/checkouts/{id}/return")
    config.add_route("checkout_renew", "/checkouts/{id}/renew")
