"""Accounts: readers and librarians, their passwords and bearer tokens."""


def includeme(config):
    config.include(".throttle")  # failed logins limited per account and per address
    # who the bearer of a request's token is, for the security policy
    config.include(".identity")
    config.add_route("tokens", "/auth/tokens")
    config.add_route("current_token", "/auth/tokens/current")
    config.add_route("users", "/users")
    config.add_route("user", "/users/{id}", factory="booknexus.accounts.resources.UserResource")
