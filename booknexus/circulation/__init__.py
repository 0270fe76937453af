"""Circulation: loans, holds, the queue, the loan rules and the logs, which change together
under a book's row lock (the lock order: ``booknexus.circulation.locks``)."""


def includeme(config):
    config.include(".rules")  # the loan rules, read from the settings once
    config.include(".stock")  # the catalogue's IStock: copies on loan and set aside, the copies rule
    config.include(".privacy")  # the retention policy, read from the settings once
    loans, hold_list = "booknexus.circulation.resources.LoansOf", "booknexus.circulation.resources.HoldsOf"
    checkout, hold = (
        "booknexus.circulation.resources.CheckoutResource",
        "booknexus.circulation.resources.HoldResource",
    )
    config.add_route("checkouts", "/checkouts", factory=loans)
    config.add_route("checkout", "/checkouts/{id}", factory=checkout)
    config.add_route("checkout_return", "/checkouts/{id}/return", factory=checkout)
    config.add_route("checkout_renew", "/checkouts/{id}/renew", factory=checkout)
    config.add_route("checkout_lost", "/checkouts/{id}/lost", factory=checkout)
    config.add_route("checkout_claimed_returned", "/checkouts/{id}/claimed-returned", factory=checkout)
    config.add_route("checkout_history", "/checkouts/{id}/events", factory=checkout)
    config.add_route("checkout_events", "/checkout-events", factory=loans)
    config.add_route("holds", "/holds", factory=hold_list)
    config.add_route("hold", "/holds/{id}", factory=hold)
    config.add_route("hold_history", "/holds/{id}/events", factory=hold)
    config.add_route("hold_capture", "/holds/{id}/capture", factory=hold)
    config.add_route("hold_events", "/hold-events", factory=hold_list)
    config.add_route("item_events", "/item-events")
    config.add_route("item_history", "/items/{id}/events")
    # the items, and the desk that scans them
    config.add_route("items", "/items")
    config.add_route("item", "/items/{id}")
    config.add_route("book_items", "/books/{id}/items")
    config.add_route("desk_check_out", "/circulation/check-out")
    config.add_route("desk_check_in", "/circulation/check-in")
    config.add_route("desk_renew", "/circulation/renew")
    config.add_route("branch_pull_list", "/branches/{id}/pull-list")
    config.add_route("branch_hold_shelf", "/branches/{id}/hold-shelf")
    config.add_route("branch_transits", "/branches/{id}/transits")
    # a reader's own data: their history, its export, its erasure
    reader = "booknexus.accounts.resources.UserResource"
    config.add_route("user_history", "/users/{id}/history", factory=reader)
    config.add_route("user_export", "/users/{id}/export", factory=reader)
    config.add_route("user_erasure", "/users/{id}/erasure", factory=reader)
