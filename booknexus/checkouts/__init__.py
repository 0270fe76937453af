"""Checkouts: loans of one copy of a book to one user."""


def includeme(config):
    config.add_route("checkouts", "/checkouts", factory="booknexus.security.LoansOf")
    config.add_route("checkout", "/checkouts/{id}", factory="booknexus.security.CheckoutResource")
    config.add_route(
        "checkout_return", "/checkouts/{id}/return", factory="booknexus.security.CheckoutResource"
    )
    config.add_route("checkout_renew", "/checkouts/{id}/renew", factory="booknexus.security.CheckoutResource")
