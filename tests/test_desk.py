"""A desk's day through the HTTP API, on both databases: check-out by card and barcode, check-in
with each routing outcome, transits sent and received, a hold pulled, captured, picked up and
one expiring, lost, claimed returned, found, withdrawn, a reader deleted with an item on loan."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from helpers import error_code, hold, items_of, make_book, make_user

from booknexus.circulation.eventlog.projection import compare_all
from booknexus.circulation.models import Hold

MAIN = 1  # the default branch the upgrade creates


def assert_replay_clean(dbconnection):
    with sa.orm.Session(bind=dbconnection, join_transaction_mode="create_savepoint") as session:
        drifts = compare_all(session)
    assert len(drifts) == 3  # loans, holds, items
    assert not any(drifts), "\n".join(drift.report() for drift in drifts)


def branch(testapp, code: str) -> int:
    return testapp.post_json("/branches", {"code": code, "name": f"{code} branch"}, status=201).json["id"]


def reader(testapp, card: str) -> dict:
    user = make_user(testapp)
    testapp.patch_json(f"/users/{user['id']}", {"cardNumber": card})
    return user


def lend(testapp, barcode: str, card: str | None, status=201, **fields) -> dict:
    body = {"itemBarcode": barcode, **({"cardNumber": card} if card else {}), **fields}
    return testapp.post_json("/circulation/check-out", body, status=status).json


def check_in(testapp, barcode: str, status=200, **fields) -> dict:
    return testapp.post_json("/circulation/check-in", {"itemBarcode": barcode, **fields}, status=status).json


def item_events(testapp, item_id: int) -> list[dict]:
    return testapp.get(f"/items/{item_id}/events", {"limit": 500}).json["items"]


def test_check_out_by_card_and_barcode_in_any_case(testapp, dbconnection):
    book = make_book(testapp, copies=2)
    first, _ = items_of(testapp, book)
    ada, bob = reader(testapp, "C-ADA"), reader(testapp, "C-BOB")
    loan = lend(testapp, first["barcode"].lower(), "c-ada")
    assert (loan["userId"], loan["bookId"], loan["itemId"], loan["branchId"]) == (
        ada["id"],
        book["id"],
        first["id"],
        MAIN,
    )
    assert loan["item"]["status"] == "checked_out" and loan["item"]["barcode"] == first["barcode"]
    assert datetime.fromisoformat(loan["dueAt"]) - datetime.fromisoformat(loan["checkedOutAt"]) == timedelta(
        days=14
    )
    shown = testapp.get(f"/books/{book['id']}").json
    assert (shown["copies"], shown["available"], shown["branches"]) == (
        2,
        1,
        [{"branchId": MAIN, "available": 1, "items": 2}],
    )
    # the same item scanned again, for another reader: refused with what the desk shows
    refused = lend(testapp, first["barcode"], "C-BOB", status=409)["error"]
    assert refused["code"] == "item_on_loan"
    assert refused["details"] == {
        "itemId": first["id"],
        "barcode": first["barcode"],
        "status": "checked_out",
        "checkoutId": loan["id"],
        "dueAt": loan["dueAt"],
    }
    # by user id too; exactly one of card and id
    second = items_of(testapp, book)[1]
    assert lend(testapp, second["barcode"], None, userId=bob["id"])["userId"] == bob["id"]
    body = {"itemBarcode": second["barcode"], "cardNumber": "C-BOB", "userId": bob["id"]}
    assert error_code(testapp.post_json("/circulation/check-out", body, status=400)) == "invalid_value"
    unknown = lend(testapp, "NO-SUCH-ITEM", "C-ADA", status=404)["error"]
    assert (unknown["code"], unknown["details"]) == ("item_not_found", {"barcode": "NO-SUCH-ITEM"})
    nocard = lend(testapp, second["barcode"], "C-NOBODY", status=404)["error"]
    assert (nocard["code"], nocard["details"]) == ("card_not_found", {"cardNumber": "C-NOBODY"})
    bad = lend(testapp, "not a barcode!", "C-ADA", status=400)["error"]
    assert (bad["code"], bad["details"]["field"]) == ("invalid_barcode", "itemBarcode")
    assert_replay_clean(dbconnection)


def test_check_in_reshelves_or_sends_home_and_receives(testapp, dbconnection):
    east = branch(testapp, "EAST")
    book = make_book(testapp, copies=1)
    (item,) = items_of(testapp, book)
    reader(testapp, "C-1")
    loan = lend(testapp, item["barcode"], "C-1")
    back = check_in(testapp, item["barcode"])
    assert (back["action"], back["destinationBranchId"], back["hold"], back["found"]) == (
        "reshelve",
        None,
        None,
        None,
    )
    assert (back["checkout"]["id"], back["checkout"]["outcome"]) == (loan["id"], "returned")
    assert back["item"]["status"] == "available"
    # lent at home, returned at another branch: it travels home
    lend(testapp, item["barcode"], "C-1")
    away = check_in(testapp, item["barcode"], branchId=east)
    assert (away["action"], away["destinationBranchId"]) == ("transit", MAIN)
    assert (away["item"]["status"], away["item"]["currentBranchId"]) == ("in_transit", east)
    incoming = testapp.get(f"/branches/{MAIN}/transits").json
    assert [(t["itemId"], t["fromBranchId"], t["toBranchId"]) for t in incoming["incoming"]] == [
        (item["id"], east, MAIN)
    ]
    assert [t["itemId"] for t in testapp.get(f"/branches/{east}/transits").json["outgoing"]] == [item["id"]]
    assert testapp.get(f"/books/{book['id']}").json["available"] == 0  # not on a shelf while travelling
    # scanned at a third branch on the way: still bound for home, nothing changes
    west = branch(testapp, "WEST")
    passing = check_in(testapp, item["barcode"], branchId=west)
    assert (passing["action"], passing["destinationBranchId"], passing["checkout"]) == ("transit", MAIN, None)
    home = check_in(testapp, item["barcode"])
    assert (home["action"], home["item"]["status"], home["item"]["currentBranchId"]) == (
        "reshelve",
        "available",
        MAIN,
    )
    assert testapp.get(f"/branches/{MAIN}/transits").json["incoming"] == []
    types = [event["type"] for event in item_events(testapp, item["id"])]
    assert types == [
        "created",
        "status_changed",  # lent
        "status_changed",  # reshelved
        "status_changed",  # lent again
        "transit_sent",
        "transit_received",
    ]
    assert_replay_clean(dbconnection)


def test_a_return_fills_the_first_hold_here_or_in_transit_to_its_pickup(testapp, dbconnection):
    east = branch(testapp, "EAST")
    book = make_book(testapp, copies=1)
    (item,) = items_of(testapp, book)
    reader(testapp, "C-ADA")
    bob, cy = reader(testapp, "C-BOB"), reader(testapp, "C-CY")
    loan = lend(testapp, item["barcode"], "C-ADA")
    for_bob = testapp.post_json(
        "/holds", {"userId": bob["id"], "bookId": book["id"], "pickupBranchId": east}
    ).json
    for_cy = hold(testapp, cy, book)  # picks up at the default branch
    assert (for_bob["pickupBranchId"], for_cy["pickupBranchId"]) == (east, MAIN)
    # Bob is first in the queue and picks up at EAST: returned at MAIN, the item travels
    sent = check_in(testapp, item["barcode"])
    assert (sent["action"], sent["destinationBranchId"], sent["hold"]["id"]) == (
        "transit",
        east,
        for_bob["id"],
    )
    assert sent["checkout"]["id"] == loan["id"]
    travelling = testapp.get(f"/holds/{for_bob['id']}").json
    assert (travelling["status"], travelling["itemId"], travelling["expiresAt"]) == (
        "in_transit",
        item["id"],
        None,
    )
    assert [t["holdId"] for t in testapp.get(f"/branches/{east}/transits").json["incoming"]] == [
        for_bob["id"]
    ]
    # received at EAST: on the hold shelf for Bob, with what the slip shows
    arrived = check_in(testapp, item["barcode"], branchId=east)
    assert arrived["action"] == "hold_shelf"
    assert {
        key: arrived["hold"][key] for key in ("id", "status", "name", "cardNumber", "pickupBranchId")
    } == {
        "id": for_bob["id"],
        "status": "ready",
        "name": bob["name"],
        "cardNumber": "C-BOB",
        "pickupBranchId": east,
    }
    deadline = datetime.fromisoformat(arrived["hold"]["expiresAt"])
    assert timedelta(days=6, hours=23) < deadline - datetime.now(UTC) <= timedelta(days=7)
    shelf = testapp.get(f"/branches/{east}/hold-shelf").json["items"]
    assert [(entry["holdId"], entry["barcode"], entry["expired"]) for entry in shelf] == [
        (for_bob["id"], item["barcode"], False)
    ]
    # scanned again at the desk: it stays on the shelf for Bob
    assert check_in(testapp, item["barcode"], branchId=east)["action"] == "hold_shelf"
    # Cy cannot take it; Bob can, at EAST, and his hold is fulfilled
    refused = lend(testapp, item["barcode"], "C-CY", status=409, branchId=east)["error"]
    assert (refused["code"], refused["details"]["holdId"]) == ("item_on_hold", for_bob["id"])
    picked = lend(testapp, item["barcode"], "C-BOB", branchId=east)
    assert picked["branchId"] == east
    assert testapp.get(f"/holds/{for_bob['id']}").json["status"] == "fulfilled"
    # Bob returns it at EAST: Cy is next and picks up at MAIN, so it travels again
    again = check_in(testapp, item["barcode"], branchId=east)
    assert (again["action"], again["destinationBranchId"], again["hold"]["id"]) == (
        "transit",
        MAIN,
        for_cy["id"],
    )
    assert check_in(testapp, item["barcode"])["action"] == "hold_shelf"
    assert testapp.get(f"/holds/{for_cy['id']}").json["status"] == "ready"
    hold_types = [e["type"] for e in testapp.get(f"/holds/{for_bob['id']}/events").json["items"]]
    assert hold_types == ["placed", "in_transit", "ready", "fulfilled"]
    assert_replay_clean(dbconnection)


def test_a_hold_pulled_captured_picked_up_and_one_expiring(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    (item,) = items_of(testapp, book)
    ada, bob = reader(testapp, "C-ADA"), reader(testapp, "C-BOB")
    first, second = hold(testapp, ada, book), hold(testapp, bob, book)
    assert (first["status"], first["position"], second["position"]) == ("waiting", 1, 2)
    (pull,) = testapp.get(f"/branches/{MAIN}/pull-list").json["items"]
    assert (pull["bookId"], pull["waiting"], [i["barcode"] for i in pull["items"]]) == (
        book["id"],
        2,
        [item["barcode"]],
    )
    # the librarian takes it off the shelf and scans it: the first hold gets it
    pulled = check_in(testapp, item["barcode"])
    assert (pulled["action"], pulled["hold"]["id"], pulled["checkout"]) == ("hold_shelf", first["id"], None)
    assert testapp.get(f"/branches/{MAIN}/pull-list").json["items"] == []
    # Ada does not come: her pickup date passes
    dbconnection.execute(
        sa.update(Hold)
        .where(Hold.id == first["id"])
        .values(expires_at=datetime.now(UTC) - timedelta(hours=1))
    )
    (lapsed,) = testapp.get(f"/branches/{MAIN}/hold-shelf").json["items"]
    assert (lapsed["holdId"], lapsed["expired"]) == (first["id"], True)
    # the next change to the book expires it; the item stays on the shelf, now for Bob
    walk_in = make_user(testapp)
    refused = testapp.post_json("/checkouts", {"userId": walk_in["id"], "bookId": book["id"]}, status=409)
    assert error_code(refused) == "no_copy_available"
    assert testapp.get(f"/holds/{first['id']}").json["status"] == "expired"
    now_bob = testapp.get(f"/holds/{second['id']}").json
    assert (now_bob["status"], now_bob["itemId"]) == ("ready", item["id"])
    # Bob picks it up through the old API: his shelved item is the one lent
    loan = testapp.post_json("/checkouts", {"userId": bob["id"], "bookId": book["id"]}, status=201).json
    assert loan["itemId"] == item["id"]
    assert testapp.get(f"/holds/{second['id']}").json["status"] == "fulfilled"
    assert_replay_clean(dbconnection)


def test_capture_refusals(testapp):
    book, other = make_book(testapp, copies=1), make_book(testapp, copies=1)
    (item,), (foreign,) = items_of(testapp, book), items_of(testapp, other)
    placed = hold(testapp, make_user(testapp), book)
    wrong = testapp.post_json(
        f"/holds/{placed['id']}/capture", {"itemBarcode": foreign["barcode"]}, status=409
    )
    assert error_code(wrong) == "item_of_another_book"
    testapp.post_json(f"/holds/{placed['id']}/capture", {"itemBarcode": item["barcode"]}, status=200)
    twice = testapp.post_json(f"/holds/{placed['id']}/capture", {"itemBarcode": item["barcode"]}, status=409)
    assert error_code(twice) == "hold_not_waiting"
    closed = testapp.post_json(
        "/branches", {"code": "DEPOT", "name": "Depot", "isPickupLocation": False}
    ).json
    refused = testapp.post_json(
        "/holds",
        {"userId": make_user(testapp)["id"], "bookId": book["id"], "pickupBranchId": closed["id"]},
        status=409,
    )
    assert refused.json["error"]["details"] == {"branchId": closed["id"], "code": "DEPOT"}
    nowhere = testapp.post_json(
        "/holds",
        {"userId": make_user(testapp)["id"], "bookId": book["id"], "pickupBranchId": 9999},
        status=404,
    )
    assert error_code(nowhere) == "branch_not_found"


def test_a_book_drop_return_is_backdated_within_the_loan(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    (item,) = items_of(testapp, book)
    reader(testapp, "C-1")
    loan = lend(testapp, item["barcode"], "C-1")
    lent_at = datetime.fromisoformat(loan["checkedOutAt"])
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        error_code(
            testapp.post_json(
                "/circulation/check-in", {"itemBarcode": item["barcode"], "returnedAt": future}, status=400
            )
        )
        == "returned_in_future"
    )
    before = (lent_at - timedelta(minutes=1)).isoformat()
    early = testapp.post_json(
        "/circulation/check-in", {"itemBarcode": item["barcode"], "returnedAt": before}, status=400
    )
    assert error_code(early) == "returned_before_loan"
    for nonsense in ("yesterday", "2026-02-30T10:00:00Z", "2026-12-01T10:00:00"):
        refused = testapp.post_json(
            "/circulation/check-in", {"itemBarcode": item["barcode"], "returnedAt": nonsense}, status=400
        )
        assert error_code(refused) in ("invalid_request", "invalid_value")
    # nothing happened on the way: the loan is still open
    assert testapp.get(f"/checkouts/{loan['id']}").json["returnedAt"] is None
    dropped = lent_at + timedelta(microseconds=1)
    back = check_in(testapp, item["barcode"], returnedAt=dropped.isoformat().replace("+00:00", "Z"))
    assert datetime.fromisoformat(back["checkout"]["returnedAt"]) == dropped
    assert_replay_clean(dbconnection)


@pytest.mark.parametrize("outcome", ["lost", "claimed-returned"])
def test_lost_or_claimed_returned_closes_the_loan_until_a_check_in_finds_it(testapp, dbconnection, outcome):
    status = outcome.replace("-", "_")
    book = make_book(testapp, copies=2)
    item = items_of(testapp, book)[0]
    reader(testapp, "C-1")
    loan = lend(testapp, item["barcode"], "C-1")
    closed = testapp.post(f"/checkouts/{loan['id']}/{outcome}").json
    assert (closed["outcome"], closed["returnedAt"] is not None) == (status, True)
    assert testapp.get(f"/items/{item['id']}").json["status"] == status
    shown = testapp.get(f"/books/{book['id']}").json
    assert (shown["copies"], shown["available"]) == (2, 1)  # still the library's, not on a shelf
    assert error_code(testapp.post(f"/checkouts/{loan['id']}/{outcome}", status=409)) == "already_returned"
    assert lend(testapp, item["barcode"], "C-1", status=409)["error"]["code"] == "item_not_available"
    found = check_in(testapp, item["barcode"])
    assert (found["found"], found["action"], found["checkout"], found["item"]["status"]) == (
        status,
        "reshelve",
        None,
        "available",
    )
    assert [e["type"] for e in item_events(testapp, item["id"])][-2:] == ["status_changed", "found"]
    loan_events = [e["type"] for e in testapp.get(f"/checkouts/{loan['id']}/events").json["items"]]
    assert loan_events == ["checked_out", status]
    assert_replay_clean(dbconnection)


def test_missing_found_and_withdrawn_by_hand(testapp, dbconnection):
    book = make_book(testapp, copies=2)
    first, second = items_of(testapp, book)
    reader(testapp, "C-1")
    assert testapp.patch_json(f"/items/{first['id']}", {"status": "missing"}).json["status"] == "missing"
    assert lend(testapp, first["barcode"], "C-1", status=409)["error"]["code"] == "item_not_available"
    assert check_in(testapp, first["barcode"])["found"] == "missing"
    withdrawn = testapp.patch_json(f"/items/{second['id']}", {"status": "withdrawn"}).json
    assert withdrawn["status"] == "withdrawn"
    assert testapp.get(f"/books/{book['id']}").json["copies"] == 1
    scanned = check_in(testapp, second["barcode"])
    assert (scanned["action"], scanned["item"]["status"]) == ("withdrawn", "withdrawn")  # set it aside
    last = testapp.patch_json(f"/items/{first['id']}", {"status": "withdrawn"}, status=409).json["error"]
    assert (last["code"], last["details"]) == ("last_copy", {"itemId": first["id"], "bookId": book["id"]})
    lent = lend(testapp, first["barcode"], "C-1")
    refused = testapp.patch_json(f"/items/{first['id']}", {"status": "missing"}, status=409).json["error"]
    assert (refused["code"], refused["details"]["status"]) == ("item_status_change", "checked_out")
    assert testapp.get(f"/checkouts/{lent['id']}").json["returnedAt"] is None
    assert_replay_clean(dbconnection)


def test_a_reader_deleted_with_an_item_on_loan_leaves_it_missing(testapp, dbconnection):
    book = make_book(testapp, copies=2)
    lent_item, held_item = items_of(testapp, book)
    ada = reader(testapp, "C-ADA")
    bob = reader(testapp, "C-BOB")
    lend(testapp, lent_item["barcode"], "C-ADA")
    other_book = make_book(testapp, copies=1)
    (shelf_item,) = items_of(testapp, other_book)
    ada_hold = hold(testapp, ada, other_book)
    check_in(testapp, shelf_item["barcode"])  # pulled for Ada: on the hold shelf
    bob_hold = hold(testapp, bob, other_book)
    testapp.delete(f"/users/{ada['id']}", status=204)
    gone = testapp.get(f"/items/{lent_item['id']}").json
    assert gone["status"] == "missing"
    last = item_events(testapp, lent_item["id"])[-1]
    assert (last["type"], last["data"]["reason"], "userId" in last) == (
        "status_changed",
        "reader_deleted",
        False,
    )
    assert testapp.get(f"/books/{book['id']}").json["available"] == 1  # never back on the shelf by itself
    assert lend(testapp, lent_item["barcode"], "C-BOB", status=409)["error"]["code"] == "item_not_available"
    # the item on the hold shelf for Ada goes to the next hold picked up there: Bob's
    testapp.get(f"/holds/{ada_hold['id']}", status=404)
    now_bob = testapp.get(f"/holds/{bob_hold['id']}").json
    assert (now_bob["status"], now_bob["itemId"]) == ("ready", shelf_item["id"])
    assert testapp.get(f"/items/{held_item['id']}").json["status"] == "available"  # untouched
    assert_replay_clean(dbconnection)


def test_renew_by_barcode(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    (item,) = items_of(testapp, book)
    reader(testapp, "C-1")
    loan = lend(testapp, item["barcode"], "C-1")
    renewed = testapp.post_json("/circulation/renew", {"itemBarcode": item["barcode"].lower()}).json
    assert (renewed["id"], renewed["renewals"]) == (loan["id"], 1)
    check_in(testapp, item["barcode"])
    refused = testapp.post_json("/circulation/renew", {"itemBarcode": item["barcode"]}, status=409).json[
        "error"
    ]
    assert (refused["code"], refused["details"]) == ("item_not_on_loan", {"itemId": item["id"]})
    assert_replay_clean(dbconnection)


def test_deleting_a_book_deletes_its_items_logged(testapp, dbconnection):
    book = make_book(testapp, copies=2)
    items = items_of(testapp, book)
    testapp.delete(f"/books/{book['id']}", status=204)
    for item in items:
        testapp.get(f"/items/{item['id']}", status=404)
        last = item_events(testapp, item["id"])[-1]
        assert (last["type"], last["data"]["reason"]) == ("deleted", "book_deleted")
    testapp.get(f"/books/{book['id']}/items", status=404)
    assert_replay_clean(dbconnection)


def test_a_reader_borrowing_another_copy_lets_their_shelved_one_go_to_the_next_hold(testapp, dbconnection):
    book = make_book(testapp, copies=2)
    shelved, other = items_of(testapp, book)
    ada, bob = reader(testapp, "C-ADA"), reader(testapp, "C-BOB")
    mine, next_in_line = hold(testapp, ada, book), hold(testapp, bob, book)
    assert check_in(testapp, shelved["barcode"])["hold"]["id"] == mine["id"]  # pulled for Ada
    # Ada takes the other copy from the shelf instead: her hold is fulfilled by it
    loan = lend(testapp, other["barcode"], "C-ADA")
    assert loan["itemId"] == other["id"]
    assert testapp.get(f"/holds/{mine['id']}").json["status"] == "fulfilled"
    # and the copy set aside for her stays on the shelf for Bob, a new pickup window
    now_bob = testapp.get(f"/holds/{next_in_line['id']}").json
    assert (now_bob["status"], now_bob["itemId"]) == ("ready", shelved["id"])
    assert testapp.get(f"/items/{shelved['id']}").json["status"] == "on_hold_shelf"
    assert_replay_clean(dbconnection)
