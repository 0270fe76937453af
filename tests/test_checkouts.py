from datetime import UTC, datetime, timedelta

from helpers import checkout, error_code, make_book, make_user
from sqlalchemy import update

from booknexus.circulation.models import Checkout


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def set_due(connection, checkout_id: int, due_at: datetime) -> None:
    """Move a loan's due date behind the API's back (time travel for overdue cases)."""
    connection.execute(update(Checkout).where(Checkout.id == checkout_id).values(due_at=due_at))


def test_checkout_default_loan_period(testapp):
    user, book = make_user(testapp), make_book(testapp)
    before = datetime.now(UTC)
    loan = checkout(testapp, user, book)
    assert (loan["userId"], loan["bookId"], loan["renewals"], loan["returnedAt"]) == (
        user["id"],
        book["id"],
        0,
        None,
    )
    assert ts(loan["dueAt"]) - ts(loan["checkedOutAt"]) == timedelta(days=14)
    assert before <= ts(loan["checkedOutAt"]) <= datetime.now(UTC)
    assert testapp.get(f"/checkouts/{loan['id']}").json == loan


def test_checkout_with_days(testapp):
    loan = checkout(testapp, make_user(testapp), make_book(testapp), days=3)
    assert ts(loan["dueAt"]) - ts(loan["checkedOutAt"]) == timedelta(days=3)


def test_checkout_unknown_user_or_book_is_404(testapp):
    user, book = make_user(testapp), make_book(testapp)
    response = testapp.post_json("/checkouts", {"userId": 999999, "bookId": book["id"]}, status=404)
    assert error_code(response) == "user_not_found"
    response = testapp.post_json("/checkouts", {"userId": user["id"], "bookId": 999999}, status=404)
    assert error_code(response) == "book_not_found"


def test_no_copy_available_is_409(testapp):
    book = make_book(testapp, copies=1)
    checkout(testapp, make_user(testapp), book)
    response = checkout(testapp, make_user(testapp), book, status=409)
    assert response["error"]["code"] == "no_copy_available"
    assert response["error"]["details"] == {  # since items: at which branch nothing is on the shelf
        "bookId": book["id"],
        "branchId": 1,
        "copies": 1,
        "onLoan": 1,
        "setAside": 0,
    }


def test_return_then_return_again_is_409(testapp):
    book = make_book(testapp)
    loan = checkout(testapp, make_user(testapp), book)
    returned = testapp.post(f"/checkouts/{loan['id']}/return").json
    assert returned["returnedAt"] is not None
    assert testapp.get(f"/books/{book['id']}").json["available"] == 1
    again = testapp.post(f"/checkouts/{loan['id']}/return", status=409)
    assert error_code(again) == "already_returned"
    assert again.json["error"]["details"] == {"returnedAt": returned["returnedAt"]}
    assert testapp.get(f"/checkouts/{loan['id']}").json == returned


def test_renew_extends_from_due_date_up_to_the_limit(testapp):
    loan = checkout(testapp, make_user(testapp), make_book(testapp), days=30)
    first = testapp.post(f"/checkouts/{loan['id']}/renew").json
    assert ts(first["dueAt"]) == ts(loan["dueAt"]) + timedelta(days=14)
    assert first["renewals"] == 1
    second = testapp.post(f"/checkouts/{loan['id']}/renew").json
    assert ts(second["dueAt"]) == ts(first["dueAt"]) + timedelta(days=14)
    refused = testapp.post(f"/checkouts/{loan['id']}/renew", status=409)
    assert refused.json["error"]["code"] == "renewal_limit"
    assert refused.json["error"]["details"] == {"renewals": 2, "maxRenewals": 2}
    assert testapp.get(f"/checkouts/{loan['id']}").json == second


def test_renew_overdue_loan_extends_from_now(testapp, dbconnection):
    loan = checkout(testapp, make_user(testapp), make_book(testapp))
    set_due(dbconnection, loan["id"], datetime.now(UTC) - timedelta(days=100))
    before = datetime.now(UTC)
    renewed = testapp.post(f"/checkouts/{loan['id']}/renew").json
    assert before + timedelta(days=14) <= ts(renewed["dueAt"])
    assert ts(renewed["dueAt"]) <= datetime.now(UTC) + timedelta(days=14)


def test_renew_returned_is_409(testapp):
    loan = checkout(testapp, make_user(testapp), make_book(testapp))
    testapp.post(f"/checkouts/{loan['id']}/return")
    assert error_code(testapp.post(f"/checkouts/{loan['id']}/renew", status=409)) == "already_returned"


def test_unknown_checkout_is_404(testapp):
    for call in (
        lambda: testapp.get("/checkouts/777777", status=404),
        lambda: testapp.delete("/checkouts/777777", status=404),
        lambda: testapp.post("/checkouts/777777/return", status=404),
        lambda: testapp.post("/checkouts/777777/renew", status=404),
    ):
        assert error_code(call()) == "checkout_not_found"


def test_delete_checkout(testapp):
    book = make_book(testapp)
    loan = checkout(testapp, make_user(testapp), book)
    testapp.delete(f"/checkouts/{loan['id']}", status=204)
    testapp.get(f"/checkouts/{loan['id']}", status=404)
    assert testapp.get(f"/books/{book['id']}").json["available"] == 1


def test_list_filters(testapp, dbconnection):
    ada, alan = make_user(testapp), make_user(testapp)
    dune, neuro = make_book(testapp, copies=5), make_book(testapp, copies=5)
    a1 = checkout(testapp, ada, dune)
    a2 = checkout(testapp, ada, neuro)
    b1 = checkout(testapp, alan, dune, days=1)
    testapp.post(f"/checkouts/{a2['id']}/return")
    set_due(dbconnection, b1["id"], datetime.now(UTC) - timedelta(days=1))
    since = {"after": a1["id"] - 1}

    def ids(**params):
        return [c["id"] for c in testapp.get("/checkouts", {**since, **params}).json["items"]]

    assert ids() == [a1["id"], a2["id"], b1["id"]]
    assert ids(userId=ada["id"]) == [a1["id"], a2["id"]]
    assert ids(bookId=dune["id"]) == [a1["id"], b1["id"]]
    assert ids(userId=ada["id"], bookId=dune["id"]) == [a1["id"]]
    assert ids(open="true") == [a1["id"], b1["id"]]
    assert ids(open="false") == [a2["id"]]
    assert ids(overdue="true") == [b1["id"]]
    page = testapp.get("/checkouts", {**since, "limit": 2}).json
    assert page["next"] == a2["id"]
