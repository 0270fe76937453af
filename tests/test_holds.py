"""Holds: the queue, set-aside copies, expiry, cancellation, and their log, on both databases."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from conftest import ROOT, Client, issue_token
from helpers import (
    capture,
    checkout,
    error_code,
    hold,
    hold_events,
    make_book,
    make_user,
    ready_hold,
)
from sqlalchemy import update

from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.projection import compare_all
from booknexus.circulation.eventlog.streams import CREATED
from booknexus.circulation.models import Hold, Item
from booknexus.db.engines import DATABASE_URL_ENV


def ts(value: str) -> datetime:
    return datetime.fromisoformat(value)


def book_of(testapp, book) -> dict:
    return testapp.get(f"/books/{book['id']}").json


def lapse(connection, hold_id: int, ago: timedelta = timedelta(hours=1)) -> datetime:
    """Move a ready hold's pickup date into the past, behind the API's back."""
    expired_at = datetime.now(UTC) - ago
    connection.execute(update(Hold).where(Hold.id == hold_id).values(expires_at=expired_at))
    return expired_at


def assert_replay_clean(dbconnection):
    with sa.orm.Session(bind=dbconnection, join_transaction_mode="create_savepoint") as session:
        drifts = compare_all(session)
    assert not any(drifts), "\n".join(drift.report() for drift in drifts)


def test_hold_on_a_shelved_copy_waits_on_the_pull_list_until_captured(testapp):
    """Since items (issue 27) a copy on the shelf is not a hold's until a librarian pulls it
    and scans it: before, the hold was ready at once, with no copy in anyone's hands."""
    user, book = make_user(testapp), make_book(testapp, copies=2)
    placed = hold(testapp, user, book)
    assert set(placed) == {
        "id",
        "userId",
        "bookId",
        "status",
        "position",
        "placedAt",
        "readyAt",
        "expiresAt",
        "pickupBranchId",
        "itemId",
    }
    assert (placed["status"], placed["position"], placed["pickupBranchId"], placed["itemId"]) == (
        "waiting",
        1,
        1,
        None,
    )
    pull = testapp.get("/branches/1/pull-list").json["items"]
    assert [(entry["bookId"], entry["waiting"], len(entry["items"])) for entry in pull] == [
        (book["id"], 1, 2)
    ]
    before = datetime.now(UTC)
    captured = capture(testapp, placed, book)
    assert captured["action"] == "hold_shelf" and captured["item"]["status"] == "on_hold_shelf"
    assert captured["hold"]["name"] == user["name"]
    ready = testapp.get(f"/holds/{placed['id']}").json
    assert (ready["status"], ready["position"], ready["itemId"]) == ("ready", None, captured["item"]["id"])
    assert before <= ts(ready["readyAt"]) <= datetime.now(UTC)
    assert ts(ready["expiresAt"]) - ts(ready["readyAt"]) == timedelta(days=7)
    assert book_of(testapp, book)["available"] == 1  # one copy on the hold shelf
    assert testapp.get("/branches/1/pull-list").json["items"] == []


def test_holds_queue_first_come_first_served(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    borrower, first, second, third = (make_user(testapp) for _ in range(4))
    loan = checkout(testapp, borrower, book)
    waiting = [hold(testapp, user, book) for user in (first, second, third)]
    assert [(h["status"], h["position"], h["readyAt"]) for h in waiting] == [
        ("waiting", 1, None),
        ("waiting", 2, None),
        ("waiting", 3, None),
    ]
    assert book_of(testapp, book)["available"] == 0

    testapp.post(f"/checkouts/{loan['id']}/return")
    now_ready = testapp.get(f"/holds/{waiting[0]['id']}").json
    assert now_ready["status"] == "ready" and now_ready["position"] is None
    assert [testapp.get(f"/holds/{h['id']}").json["position"] for h in waiting[1:]] == [1, 2]
    assert book_of(testapp, book)["available"] == 0  # the returned copy is set aside

    # anyone but the holder is refused, and told why
    refused = checkout(testapp, second, book, status=409)
    assert refused["error"]["code"] == "no_copy_available"
    assert refused["error"]["details"] == {
        "bookId": book["id"],
        "branchId": 1,
        "copies": 1,
        "onLoan": 0,
        "setAside": 1,
    }

    # the holder's checkout fulfils the hold; the queue does not move (no copy came free)
    taken = checkout(testapp, first, book)
    assert testapp.get(f"/holds/{waiting[0]['id']}").json["status"] == "fulfilled"
    assert testapp.get(f"/holds/{waiting[1]['id']}").json == {**waiting[1], "position": 1}
    fulfilled = hold_events(testapp, holdId=waiting[0]["id"])
    assert [e["type"] for e in fulfilled] == ["placed", "ready", "fulfilled"]
    assert fulfilled[-1]["data"]["checkoutId"] == taken["id"]
    assert_replay_clean(dbconnection)


def test_cancelling_a_ready_hold_passes_the_copy_on(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    first, second = make_user(testapp), make_user(testapp)
    ready, waiting = ready_hold(testapp, first, book), hold(testapp, second, book)
    assert (ready["status"], waiting["status"], waiting["position"]) == ("ready", "waiting", 1)
    testapp.delete(f"/holds/{ready['id']}", status=204)
    assert testapp.get(f"/holds/{ready['id']}").json["status"] == "cancelled"
    assert testapp.get(f"/holds/{waiting['id']}").json["status"] == "ready"
    again = testapp.delete(f"/holds/{ready['id']}", status=409)
    assert again.json["error"]["code"] == "hold_ended"
    assert again.json["error"]["details"] == {"status": "cancelled"}
    # a waiting hold cancelled leaves the others' order intact
    third, fourth = make_user(testapp), make_user(testapp)
    h3, h4 = hold(testapp, third, book), hold(testapp, fourth, book)
    testapp.delete(f"/holds/{h3['id']}", status=204)
    assert testapp.get(f"/holds/{h4['id']}").json["position"] == 1
    assert [e["type"] for e in hold_events(testapp, holdId=ready["id"])] == ["placed", "ready", "cancelled"]
    assert_replay_clean(dbconnection)


def test_a_lapsed_hold_expires_on_the_next_request_touching_the_book(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    first, second, walk_in = make_user(testapp), make_user(testapp), make_user(testapp)
    ready, waiting = ready_hold(testapp, first, book), hold(testapp, second, book)
    expired_at = lapse(dbconnection, ready["id"])
    # the walk-in's checkout touches the book: the lapsed hold expires, the copy goes to
    # the next in the queue, so the walk-in is still refused
    refused = checkout(testapp, walk_in, book, status=409)
    assert refused["error"]["details"]["setAside"] == 1
    expired = testapp.get(f"/holds/{ready['id']}").json
    assert expired["status"] == "expired"
    assert testapp.get(f"/holds/{waiting['id']}").json["status"] == "ready"
    last = hold_events(testapp, holdId=ready["id"])[-1]
    assert last["type"] == "expired"
    assert ts(last["data"]["expiredAt"]) == expired_at
    assert ts(last["data"]["endedAt"]) == expired_at
    assert last["data"]["actor"] is None  # the system expired it
    assert_replay_clean(dbconnection)


def test_the_holder_cannot_pick_up_a_lapsed_hold(testapp, dbconnection):
    book = make_book(testapp, copies=1)
    holder = make_user(testapp)
    ready = ready_hold(testapp, holder, book)
    lapse(dbconnection, ready["id"])
    # expired first, then: nobody waits, so the copy is simply free again and they may borrow
    checkout(testapp, holder, book)
    assert testapp.get(f"/holds/{ready['id']}").json["status"] == "expired"


def test_conflicts_have_stable_codes(testapp):
    book = make_book(testapp, copies=1)
    user = make_user(testapp)
    hold(testapp, user, book)
    twice = hold(testapp, user, book, status=409)
    assert error_code_of(twice) == "already_holding"
    assert twice["error"]["details"] == {"userId": user["id"], "bookId": book["id"]}
    other = make_book(testapp, copies=2)
    checkout(testapp, user, other)
    assert error_code_of(hold(testapp, user, other, status=409)) == "already_on_loan"
    nobody = testapp.post_json("/holds", {"userId": 999999, "bookId": book["id"]}, status=404).json["error"]
    assert (nobody["code"], nobody["details"]) == ("user_not_found", {"id": 999999})
    nothing = testapp.post_json("/holds", {"userId": user["id"], "bookId": 999999}, status=404).json["error"]
    assert (nothing["code"], nothing["details"]) == ("book_not_found", {"id": 999999})


def error_code_of(body: dict) -> str:
    return body["error"]["code"]


def test_hold_limit(testapp):
    user = make_user(testapp)
    for _ in range(5):  # booknexus.max_holds
        hold(testapp, user, make_book(testapp))
    refused = hold(testapp, user, make_book(testapp), status=409)
    assert refused["error"]["code"] == "hold_limit"
    assert refused["error"]["details"] == {"userId": user["id"], "openHolds": 5, "maxHolds": 5}


def test_loan_limit_and_librarian_override(testapp):
    user = make_user(testapp)
    for _ in range(10):  # booknexus.max_loans
        checkout(testapp, user, make_book(testapp))
    book = make_book(testapp)
    refused = checkout(testapp, user, book, status=409)
    assert refused["error"]["code"] == "loan_limit"
    assert refused["error"]["details"] == {"userId": user["id"], "openLoans": 10, "maxLoans": 10}
    lent = checkout(testapp, user, book, override=True)
    history = testapp.get(f"/checkouts/{lent['id']}/events").json["items"]
    assert history[0]["data"]["override"] is True and history[0]["data"]["actor"] == testapp.user_id
    # never past the copies that exist
    assert (
        error_code(
            testapp.post_json(
                "/checkouts", {"userId": user["id"], "bookId": book["id"], "override": True}, status=409
            )
        )
        == "no_copy_available"
    )


def test_overdue_loan_blocks_borrowing_and_holds(testapp, dbconnection):
    user = make_user(testapp)
    loan = checkout(testapp, user, make_book(testapp))
    overdue_since = datetime.now(UTC) - timedelta(days=2)
    dbconnection.execute(
        sa.text('UPDATE "Checkouts" SET "dueAt" = :due WHERE id = :id'),
        {"due": overdue_since, "id": loan["id"]},
    )
    for refused in (
        checkout(testapp, user, make_book(testapp), status=409),
        hold(testapp, user, make_book(testapp), status=409),
    ):
        assert refused["error"]["code"] == "has_overdue"
        assert ts(refused["error"]["details"]["overdueSince"]) == overdue_since
    checkout(testapp, user, make_book(testapp), override=True)
    testapp.post(f"/checkouts/{loan['id']}/return")
    checkout(testapp, user, make_book(testapp))


def test_member_cannot_override(app, testapp, dbconnection, dbsession):
    member, token = issue_token(dbsession, role="member")
    dbsession.commit()
    client = Client(app, dbconnection, token)
    book = make_book(testapp)
    body = {"userId": member.id, "bookId": book["id"], "override": True}
    assert error_code(client.post_json("/checkouts", body, status=403)) == "forbidden"
    # for themselves, a member places, reads and cancels holds; sees only their own
    mine = client.post_json("/holds", {"userId": member.id, "bookId": book["id"]}, status=201).json
    assert client.get("/holds", {"userId": member.id}).json["items"] == [mine]
    client.get("/holds", status=403)
    client.delete(f"/holds/{mine['id']}", status=204)


def test_renewal_refused_while_someone_waits(testapp):
    book = make_book(testapp, copies=1)
    borrower, waiter = make_user(testapp), make_user(testapp)
    loan = checkout(testapp, borrower, book)
    testapp.post(f"/checkouts/{loan['id']}/renew", status=200)
    waiting = hold(testapp, waiter, book)
    refused = testapp.post(f"/checkouts/{loan['id']}/renew", status=409)
    assert refused.json["error"]["code"] == "on_hold"
    assert refused.json["error"]["details"] == {"bookId": book["id"], "waiting": 1}
    testapp.delete(f"/holds/{waiting['id']}", status=204)
    testapp.post(f"/checkouts/{loan['id']}/renew", status=200)


@pytest.mark.parametrize("frees", ["copies_raised", "checkout_deleted"])
def test_every_copy_freed_goes_on_the_pull_list(testapp, dbconnection, frees):
    """A copy that comes free on a shelf (a new one, a loan deleted as a mistake) is the
    waiting hold's once the desk scans it; before items the hold became ready by count. (A
    reader deleted with a copy on loan leaves it missing: test_desk.)"""
    book = make_book(testapp, copies=1)
    borrower, waiter = make_user(testapp), make_user(testapp)
    loan = checkout(testapp, borrower, book)
    waiting = hold(testapp, waiter, book)
    if frees == "copies_raised":
        assert testapp.patch_json(f"/books/{book['id']}", {"copies": 2}).json["available"] == 1
    else:
        testapp.delete(f"/checkouts/{loan['id']}", status=204)
    assert testapp.get(f"/holds/{waiting['id']}").json["status"] == "waiting"
    (pulled,) = testapp.get("/branches/1/pull-list").json["items"]
    (item,) = pulled["items"]
    scanned = testapp.post_json("/circulation/check-in", {"itemBarcode": item["barcode"]}).json
    assert (scanned["action"], scanned["hold"]["id"]) == ("hold_shelf", waiting["id"])
    assert testapp.get(f"/holds/{waiting['id']}").json["status"] == "ready"
    assert_replay_clean(dbconnection)


def test_copies_cannot_drop_below_loans_and_set_aside(testapp):
    book = make_book(testapp, copies=2)
    checkout(testapp, make_user(testapp), book)
    ready_hold(testapp, make_user(testapp), book)
    refused = testapp.patch_json(f"/books/{book['id']}", {"copies": 1}, status=409)
    assert refused.json["error"]["details"] == {"copies": 1, "onShelf": 0, "onLoan": 1, "setAside": 1}


@pytest.mark.parametrize("deleted", ["user", "book"])
def test_deleting_user_or_book_ends_their_holds_logged(testapp, dbconnection, deleted):
    book = make_book(testapp, copies=1)
    user, bystander = make_user(testapp), make_user(testapp)
    ready = ready_hold(testapp, user, book)
    waiting = hold(testapp, bystander, book)
    target = user if deleted == "user" else book
    testapp.delete(f"/{deleted}s/{target['id']}", status=204)
    testapp.get(f"/holds/{ready['id']}", status=404)
    gone = hold_events(testapp, type="deleted", **{f"{deleted}Id": target["id"]})
    assert [e["holdId"] for e in gone] == (
        [ready["id"]] if deleted == "user" else [ready["id"], waiting["id"]]
    )
    assert {e["data"]["reason"] for e in gone} == {f"{deleted}_deleted"}
    # the history of a deleted hold stays readable
    history = testapp.get(f"/holds/{ready['id']}/events").json["items"]
    assert [e["type"] for e in history] == ["placed", "ready", "deleted"]
    if deleted == "user":  # the copy set aside for them goes to the next in the queue
        assert testapp.get(f"/holds/{waiting['id']}").json["status"] == "ready"
    assert_replay_clean(dbconnection)


def test_list_holds_filters_and_pages(testapp):
    book, other = make_book(testapp, copies=1), make_book(testapp, copies=1)
    users = [make_user(testapp) for _ in range(3)]
    placed = [ready_hold(testapp, users[0], book)]
    placed += [hold(testapp, user, book) for user in users[1:]] + [hold(testapp, users[0], other)]
    since = {"after": placed[0]["id"] - 1}

    def ids(**params):
        return [h["id"] for h in testapp.get("/holds", {**since, **params}).json["items"]]

    assert ids() == [h["id"] for h in placed]
    assert ids(bookId=book["id"]) == [h["id"] for h in placed[:3]]
    assert ids(userId=users[0]["id"]) == [placed[0]["id"], placed[3]["id"]]
    assert ids(status="waiting") == [placed[1]["id"], placed[2]["id"], placed[3]["id"]]
    page = testapp.get("/holds", {**since, "limit": 2}).json
    assert page["next"] == placed[1]["id"]
    assert [h["position"] for h in page["items"]] == [None, 1]
    assert error_code(testapp.get("/holds", {"status": "lost"}, status=400)) == "invalid_request"
    assert error_code(testapp.get("/holds/999999", status=404)) == "hold_not_found"
    assert error_code(testapp.get("/holds/999999/events", status=404)) == "hold_not_found"


def test_hold_log_is_append_only(testapp, dbconnection):
    hold(testapp, make_user(testapp), make_book(testapp))
    for statement in ("UPDATE \"HoldEvents\" SET type = 'x'", 'DELETE FROM "HoldEvents"'):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            dbconnection.execute(sa.text(statement))
        dbconnection.rollback()


def test_last_librarian_cannot_be_deleted_or_demoted(testapp):
    me = testapp.user_id
    refused = testapp.delete(f"/users/{me}", status=409)
    assert refused.json["error"]["code"] == "last_librarian"
    assert error_code(testapp.patch_json(f"/users/{me}", {"role": "member"}, status=409)) == "last_librarian"
    colleague = make_user(testapp, role="librarian")
    testapp.patch_json(f"/users/{colleague['id']}", {"role": "member"}, status=200)
    testapp.patch_json(f"/users/{colleague['id']}", {"role": "librarian"}, status=200)
    testapp.delete(f"/users/{colleague['id']}", status=204)
    last = testapp.delete(f"/users/{me}", status=409).json["error"]
    assert (last["code"], last["details"]) == ("last_librarian", {"userId": me})


def test_expire_holds_command_for_cron(backend, fresh_database):
    """booknexus-expire-holds, as a cron job runs it: a real process on a committed database."""
    url = fresh_database(backend)
    engine = sa.create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                'INSERT INTO "Users" (id, name, email, role, "createdAt", "updatedAt") VALUES '
                "(101, 'A', 'a@x.org', 'member', :now, :now), (102, 'B', 'b@x.org', 'member', :now, :now)"
            ),
            {"now": now},
        )
        connection.execute(
            sa.text(
                'INSERT INTO "Books" (id, title, author, copies, "createdAt", "updatedAt") '
                "VALUES (1, 'T', 'A', 1, :now, :now)"
            ),
            {"now": now},
        )
    session = sa.orm.Session(engine)
    with session.begin():
        shelved = Item(
            book_id=1, barcode="T-1", home_branch_id=1, current_branch_id=1, status="on_hold_shelf"
        )
        session.add(shelved)
        session.flush()
        eventlog.append(session, shelved, CREATED, actor=None)
        lapsed = Hold(
            user_id=101,
            book_id=1,
            status="ready",
            placed_at=now - timedelta(days=9),
            ready_at=now - timedelta(days=8),
            expires_at=now - timedelta(days=1),
            pickup_branch_id=1,
            item_id=shelved.id,
        )
        waiting = Hold(
            user_id=102, book_id=1, status="waiting", placed_at=now - timedelta(days=8), pickup_branch_id=1
        )
        for hold_ in (lapsed, waiting):
            session.add(hold_)
            session.flush()
            eventlog.append(session, hold_, eventlog.PLACED, actor=None)
        lapsed_id, waiting_id = lapsed.id, waiting.id
    engine.dispose()
    result = subprocess.run(
        [sys.executable, "-m", "booknexus.operations.scripts.expire_holds", str(ROOT / "development.ini")],
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "expired the lapsed holds of 1 books" in result.stdout
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session:
        statuses = dict(session.execute(sa.select(Hold.id, Hold.status)).all())
        # the lapsed hold's item stays on the shelf for the next hold, picked up there too
        assert statuses == {lapsed_id: "expired", waiting_id: "ready"}
        assert session.get(Hold, waiting_id).item_id == session.scalar(sa.select(Item.id))
        assert not any(compare_all(session))
    engine.dispose()
