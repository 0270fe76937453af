"""The checkout log: what each change appends, what survives deletion, append-only, replay."""

import pytest
import sqlalchemy as sa
from helpers import checkout, make_book, make_user
from legacy import bypass_capture

from booknexus.circulation.eventlog.projection import compare


def events(testapp, **params) -> list[dict]:
    return testapp.get("/checkout-events", {"limit": 500, **params}).json["items"]


def test_every_change_appends_its_event(testapp):
    user, book = make_user(testapp), make_book(testapp)
    loan = checkout(testapp, user, book)
    renewed = testapp.post(f"/checkouts/{loan['id']}/renew").json
    returned = testapp.post(f"/checkouts/{loan['id']}/return").json
    testapp.delete(f"/checkouts/{loan['id']}", status=204)
    history = testapp.get(f"/checkouts/{loan['id']}/events").json
    assert history["next"] is None
    assert [e["type"] for e in history["items"]] == ["checked_out", "renewed", "returned", "deleted"]
    assert all(
        (e["checkoutId"], e["userId"], e["bookId"]) == (loan["id"], user["id"], book["id"])
        for e in history["items"]
    )
    positions = [e["position"] for e in history["items"]]
    assert positions == sorted(positions)
    first, second, third, fourth = (e["data"] for e in history["items"])
    assert first == {
        "checkedOutAt": loan["checkedOutAt"],
        "dueAt": loan["dueAt"],
        "returnedAt": None,
        "renewals": 0,
        "itemId": loan["itemId"],  # since items: the loan log links the item to its reader
        "branchId": 1,
        "outcome": None,
        "actor": testapp.user_id,
    }
    assert (second["dueAt"], second["renewals"]) == (renewed["dueAt"], 1)
    assert third["returnedAt"] == returned["returnedAt"]
    assert fourth["reason"] == "checkout_deleted" and fourth["returnedAt"] == returned["returnedAt"]


@pytest.mark.parametrize("deleted", ["user", "book"])
def test_deleting_user_or_book_logs_each_checkout_and_history_survives(testapp, deleted):
    user, book = make_user(testapp), make_book(testapp, copies=3)
    other_user, other_book = make_user(testapp), make_book(testapp)
    loans = [checkout(testapp, user, book) for _ in range(3)]
    testapp.post(f"/checkouts/{loans[1]['id']}/return")
    bystander = checkout(testapp, other_user, other_book)
    target = user if deleted == "user" else book
    testapp.delete(f"/{deleted}s/{target['id']}", status=204)

    gone = events(testapp, type="deleted", **{f"{deleted}Id": target["id"]})
    assert sorted(e["checkoutId"] for e in gone) == [loan["id"] for loan in loans]
    assert {e["data"]["reason"] for e in gone} == {f"{deleted}_deleted"}
    assert [e["data"]["returnedAt"] is not None for e in sorted(gone, key=lambda e: e["checkoutId"])] == [
        False,
        True,
        False,
    ]
    # the whole history of the deleted user/book is still readable
    everything = events(testapp, **{f"{deleted}Id": target["id"]})
    assert [e["type"] for e in everything].count("checked_out") == 3
    assert testapp.get(f"/checkouts/{loans[0]['id']}/events").json["items"][-1]["type"] == "deleted"
    assert events(testapp, checkoutId=bystander["id"])[0]["type"] == "checked_out"
    assert len(events(testapp, checkoutId=bystander["id"])) == 1


def test_failed_request_leaves_neither_change_nor_event(testapp):
    book = make_book(testapp, copies=1)
    checkout(testapp, make_user(testapp), book)
    before = events(testapp, bookId=book["id"])
    checkout(testapp, make_user(testapp), book, status=409)
    assert events(testapp, bookId=book["id"]) == before


def test_log_filters_and_cursor(testapp):
    user, book = make_user(testapp), make_book(testapp, copies=5)
    loans = [checkout(testapp, user, book) for _ in range(4)]
    testapp.post(f"/checkouts/{loans[0]['id']}/return")
    start = events(testapp, checkoutId=loans[0]["id"])[0]["position"] - 1
    page = testapp.get("/checkout-events", {"after": start, "limit": 2}).json
    assert [e["checkoutId"] for e in page["items"]] == [loans[0]["id"], loans[1]["id"]]
    assert page["next"] == page["items"][-1]["position"]
    rest = testapp.get("/checkout-events", {"after": page["next"], "limit": 500}).json
    assert [e["type"] for e in rest["items"]] == ["checked_out", "checked_out", "returned"]
    assert rest["next"] is None
    assert [e["checkoutId"] for e in events(testapp, type="returned", bookId=book["id"])] == [loans[0]["id"]]


def test_history_of_unknown_checkout_is_404(testapp):
    response = testapp.get("/checkouts/99999/events", status=404)
    assert response.json["error"]["code"] == "checkout_not_found"


@pytest.mark.parametrize(
    "statement",
    ["UPDATE \"CheckoutEvents\" SET type = 'returned'", 'DELETE FROM "CheckoutEvents"'],
)
def test_log_is_append_only_in_the_database(testapp, dbconnection, statement):
    checkout(testapp, make_user(testapp), make_book(testapp))
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        dbconnection.exec_driver_sql(statement)


def test_replay_reproduces_table(testapp, dbconnection):
    user, book = make_user(testapp), make_book(testapp, copies=4)
    loans = [checkout(testapp, user, book) for _ in range(3)]
    testapp.post(f"/checkouts/{loans[0]['id']}/renew")
    testapp.post(f"/checkouts/{loans[1]['id']}/return")
    testapp.delete(f"/checkouts/{loans[2]['id']}")
    with sa.orm.Session(bind=dbconnection, join_transaction_mode="create_savepoint") as session:
        assert not compare(session), compare(session).report()


def test_replay_detects_drift(testapp, dbconnection):
    user, book = make_user(testapp), make_book(testapp, copies=4)
    changed, deleted, _ = (checkout(testapp, user, book) for _ in range(3))
    bypass_capture(dbconnection)
    dbconnection.exec_driver_sql(f'UPDATE "Checkouts" SET renewals = 7 WHERE id = {changed["id"]}')
    dbconnection.exec_driver_sql(f'DELETE FROM "Checkouts" WHERE id = {deleted["id"]}')
    with sa.orm.Session(bind=dbconnection, join_transaction_mode="create_savepoint") as session:
        drift = compare(session)
    assert drift.missing == [deleted["id"]]
    assert drift.extra == []
    assert drift.differing == [(changed["id"], "renewals", 0, 7)]
