"""Branches: the library's service points, where items live and readers collect their holds."""

from booknexus.branches.queries import configured_default


def includeme(config):
    configured_default(config.registry.settings)  # a bad default branch setting fails at startup
    config.add_route("branches", "/branches")
    config.add_route("branch", "/branches/{id}")
