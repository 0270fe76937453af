"""Items through the HTTP API, on both databases: adding them, finding them by barcode in any
case, a book's items, changes by hand, and a book's copies kept as items."""

import sqlalchemy as sa
from helpers import error_code, items_of, make_book

from booknexus.circulation.eventlog.projection import compare_all

MAIN = 1


def assert_replay_clean(dbconnection):
    with sa.orm.Session(bind=dbconnection, join_transaction_mode="create_savepoint") as session:
        assert not any(compare_all(session))


def test_a_new_books_copies_are_items_with_generated_barcodes(testapp, dbconnection):
    book = make_book(testapp, copies=3)
    items = items_of(testapp, book)
    assert [item["barcode"] for item in items] == [f"BN{book['id']}-{n}" for n in (1, 2, 3)]
    assert {
        (item["homeBranchId"], item["currentBranchId"], item["status"], item["itemType"]) for item in items
    } == {(MAIN, MAIN, "available", "book")}
    assert book["branches"] == [{"branchId": MAIN, "available": 3, "items": 3}]
    # more copies: new items, numbered on; fewer: the newest on the shelf are withdrawn
    more = testapp.patch_json(f"/books/{book['id']}", {"copies": 5}).json
    assert (more["copies"], more["available"]) == (5, 5)
    assert [item["barcode"] for item in items_of(testapp, book)][-2:] == [
        f"BN{book['id']}-4",
        f"BN{book['id']}-5",
    ]
    fewer = testapp.patch_json(f"/books/{book['id']}", {"copies": 2}).json
    assert (fewer["copies"], fewer["available"]) == (2, 2)
    statuses = [item["status"] for item in items_of(testapp, book)]
    assert statuses == ["available", "available", "withdrawn", "withdrawn", "withdrawn"]
    assert_replay_clean(dbconnection)


def test_add_an_item_with_its_own_label(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    east = testapp.post_json("/branches", {"code": "EAST", "name": "East"}).json["id"]
    body = {
        "bookId": book["id"],
        "barcode": " lib-0042 ",
        "homeBranchId": east,
        "callNumber": "823.7 AUS",
        "itemType": "DVD",
    }
    item = testapp.post_json("/items", body, status=201).json
    assert (
        item["barcode"],
        item["homeBranchId"],
        item["currentBranchId"],
        item["itemType"],
        item["callNumber"],
    ) == (
        "LIB-0042",
        east,
        east,
        "dvd",
        "823.7 AUS",
    )
    shown = testapp.get(f"/books/{book['id']}").json
    assert (shown["copies"], shown["available"]) == (2, 2)
    assert shown["branches"] == [
        {"branchId": MAIN, "available": 1, "items": 1},
        {"branchId": east, "available": 1, "items": 1},
    ]
    # the desk's lookup, in any case
    assert testapp.get("/items", {"barcode": "Lib-0042"}).json["items"] == [item]
    assert testapp.get("/items", {"barcode": "NOPE"}).json["items"] == []
    assert testapp.get(f"/items/{item['id']}").json == item
    taken = testapp.post_json("/items", {**body, "barcode": "LIB-0042"}, status=409).json["error"]
    assert (taken["code"], taken["details"]) == (
        "barcode_taken",
        {"barcode": "LIB-0042", "itemId": item["id"]},
    )
    for bad in ("", "has space", "x" * 33, "ünï"):
        refused = testapp.post_json("/items", {**body, "barcode": bad}, status=400)
        assert error_code(refused) in ("invalid_barcode", "invalid_request")
    assert error_code(
        testapp.post_json("/items", {**body, "barcode": "A-1", "itemType": "no way!"}, status=400)
    ) == ("invalid_value")
    assert error_code(
        testapp.post_json("/items", {**body, "barcode": "A-2", "bookId": 999999}, status=404)
    ) == ("book_not_found")
    assert error_code(
        testapp.post_json("/items", {**body, "barcode": "A-3", "homeBranchId": 9999}, status=404)
    ) == ("branch_not_found")
    assert testapp.get(f"/books/{book['id']}").json["copies"] == 2  # nothing half-written
    assert_replay_clean(dbconnection)


def test_change_an_item_by_hand_each_change_logged(testapp, dbconnection):
    book = make_book(testapp, copies=2)
    item = items_of(testapp, book)[0]
    east = testapp.post_json("/branches", {"code": "EAST", "name": "East"}).json["id"]
    changed = testapp.patch_json(
        f"/items/{item['id']}", {"barcode": "new-1", "callNumber": "FIC AUS", "homeBranchId": east}
    ).json
    assert (changed["barcode"], changed["callNumber"], changed["homeBranchId"]) == ("NEW-1", "FIC AUS", east)
    other = items_of(testapp, book)[1]
    taken = testapp.patch_json(f"/items/{other['id']}", {"barcode": "New-1"}, status=409)
    assert error_code(taken) == "barcode_taken"
    assert (
        error_code(testapp.patch_json(f"/items/{item['id']}", {"status": "lost"}, status=400))
        == "invalid_request"
    )
    missing = testapp.patch_json(f"/items/{item['id']}", {"status": "missing"}).json
    assert missing["status"] == "missing"
    found = testapp.patch_json(f"/items/{item['id']}", {"status": "available"}).json
    assert found["status"] == "available"
    events = testapp.get(f"/items/{item['id']}/events").json["items"]
    assert [(event["type"], event["data"].get("reason")) for event in events] == [
        ("created", "copies"),
        ("edited", "by_hand"),
        ("moved", "by_hand"),
        ("status_changed", "by_hand"),
        ("found", "by_hand"),
    ]
    assert all("userId" not in event and event["data"]["actor"] is None for event in events)
    assert error_code(testapp.get("/items/999999", status=404)) == "item_not_found"
    assert (
        error_code(testapp.patch_json("/items/999999", {"callNumber": "X"}, status=404)) == "item_not_found"
    )
    assert_replay_clean(dbconnection)


def test_a_books_items_page_by_id_for_anyone(testapp, anonymous):
    book = make_book(testapp, copies=5)
    first = anonymous.get(f"/books/{book['id']}/items", {"limit": 2}).json
    assert len(first["items"]) == 2 and first["next"] == first["items"][-1]["id"]
    rest = anonymous.get(f"/books/{book['id']}/items", {"limit": 10, "after": first["next"]}).json
    assert [item["id"] for item in first["items"] + rest["items"]] == [
        item["id"] for item in items_of(testapp, book)
    ]
    assert rest["next"] is None
    assert error_code(anonymous.get("/books/999999/items", status=404)) == "book_not_found"
