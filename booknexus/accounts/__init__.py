"""Accounts: passwords, bearer tokens, and the routes that issue and revoke them."""


def includeme(config):
    config.include(".throttle")  # failed logins limited per account and per address
    config.add_route("tokens", "/auth/tokens")
    config.add_route("current_token", "/auth/tokens/current")
