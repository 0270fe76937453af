"""Small builders shared by the functional tests: they go through the API like a client."""

import itertools
import time

_serial = itertools.count(1)


def make_user(testapp, **fields) -> dict:
    n = next(_serial)
    body = {"name": f"Reader {n}", "email": f"reader{n}@example.org", **fields}
    return testapp.post_json("/users", body, status=201).json


def make_book(testapp, **fields) -> dict:
    n = next(_serial)
    body = {"title": f"Book {n}", "author": f"Author {n}", **fields}
    return testapp.post_json("/books", body, status=201).json


def checkout(testapp, user, book, status=201, **fields) -> dict:
    body = {"userId": user["id"], "bookId": book["id"], **fields}
    return testapp.post_json("/checkouts", body, status=status).json


def error_code(response) -> str:
    return response.json["error"]["code"]


def hold(testapp, user, book, status=201) -> dict:
    return testapp.post_json("/holds", {"userId": user["id"], "bookId": book["id"]}, status=status).json


def items_of(testapp, book, **params) -> list[dict]:
    return testapp.get(f"/books/{book['id']}/items", {"limit": 100, **params}).json["items"]


def shelved_item(testapp, book) -> dict:
    """An item of the book on a shelf: the one a librarian pulls from the pull list."""
    return next(item for item in items_of(testapp, book) if item["status"] == "available")


def capture(testapp, placed, book, status=200, **fields) -> dict:
    """The desk pulls a copy from the shelf for the hold and scans it (``POST /holds/{id}/capture``)."""
    body = {"itemBarcode": shelved_item(testapp, book)["barcode"], **fields}
    return testapp.post_json(f"/holds/{placed['id']}/capture", body, status=status).json


def ready_hold(testapp, user, book) -> dict:
    """A hold placed on a book with a copy on the shelf, pulled and captured: ready for pickup."""
    placed = hold(testapp, user, book)
    capture(testapp, placed, book)
    return testapp.get(f"/holds/{placed['id']}").json


def hold_events(testapp, **params) -> list[dict]:
    return testapp.get("/hold-events", {"limit": 500, **params}).json["items"]


def wait_for(predicate, timeout: float = 30, interval: float = 0.05, what: str = "the condition"):
    """``predicate()``'s first true value, polled until ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"{what} not met within {timeout}s")
