"""The checkout log: an append-only, replayable record of every change to every checkout."""


def includeme(config):
    config.add_route("checkout_events", "/checkout-events", factory="booknexus.security.LoansOf")
    config.add_route(
        "checkout_history", "/checkouts/{id}/events", factory="booknexus.security.CheckoutResource"
    )
