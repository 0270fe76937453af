"""The logs: append-only, replayable records of every change to every checkout and hold."""


def includeme(config):
    config.add_route("checkout_events", "/checkout-events", factory="booknexus.security.LoansOf")
    config.add_route(
        "checkout_history", "/checkouts/{id}/events", factory="booknexus.security.CheckoutResource"
    )
    config.add_route("hold_events", "/hold-events", factory="booknexus.security.HoldsOf")
    config.add_route("hold_history", "/holds/{id}/events", factory="booknexus.security.HoldResource")
