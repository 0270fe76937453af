"""No reader's id lands in another reader's record, and erasure leaves none behind.

A queue move is a consequence, not an act: the hold that becomes ready because another reader
cancelled, borrowed or placed records ``actor: null``. Erasure nulls the erased account
wherever it is still named as an actor (a librarian's acts on others' records), in both logs;
revision 0013 rewrites the queue moves logged before it.
"""

import json
from datetime import timedelta

import sqlalchemy as sa
from conftest import Client, downgrade, issue_token, migrate
from helpers import capture, checkout, hold, make_book, make_user, ready_hold

from booknexus.circulation.models import Hold
from booknexus.db.engines import get_engine
from booknexus.db.schema import utcnow


def events_naming(connection, user_id: int) -> list[tuple]:
    """Every event of either log that names ``user_id`` as its reader or its actor."""
    found = []
    for log in ("CheckoutEvents", "HoldEvents"):
        rows = connection.execute(sa.text(f'SELECT id, "userId", type, data FROM "{log}"')).all()
        for row in rows:
            data = row.data if isinstance(row.data, dict) else json.loads(row.data)
            if row.userId == user_id or data.get("actor") == user_id:
                found.append((log, row.id, row.type, row.userId, data.get("actor")))
    return found


def member_client(app, dbconnection, dbsession):
    member, token = issue_token(dbsession, role="member")
    dbsession.commit()
    return member.id, Client(app, dbconnection, token)


def test_a_hold_readied_by_another_readers_cancel_records_no_actor(app, dbconnection, dbsession, testapp):
    book = make_book(testapp, copies=1)
    ada_id, ada = member_client(app, dbconnection, dbsession)
    grace = make_user(testapp)
    mine = ada.post_json("/holds", {"userId": ada_id, "bookId": book["id"]}, status=201).json
    capture(testapp, mine, book)  # a librarian pulled the copy for her: the librarian's act
    waiting = hold(testapp, grace, book)
    ada.delete(f"/holds/{mine['id']}", status=204)  # Grace's hold is ready now, because of Ada

    events = testapp.get("/hold-events", {"holdId": waiting["id"]}).json["items"]
    assert [event["type"] for event in events] == ["placed", "ready"]
    assert events[1]["data"]["actor"] is None
    own = testapp.get("/hold-events", {"holdId": mine["id"]}).json["items"]
    assert [(event["type"], event["data"]["actor"]) for event in own] == [
        ("placed", ada_id),
        ("ready", testapp.user_id),
        ("cancelled", ada_id),
    ]


def test_a_hold_readied_when_another_reader_places_records_no_actor(app, dbconnection, dbsession, testapp):
    """Ada's placing settles the book first: Alan's lapsed hold expires, and its copy goes to
    Grace, who waited. Grace's hold became ready in Ada's request, not by Ada's act."""
    book = make_book(testapp, copies=1)
    ada_id, ada = member_client(app, dbconnection, dbsession)
    alan, grace = make_user(testapp), make_user(testapp)
    lapsed = ready_hold(testapp, alan, book)
    waiting = hold(testapp, grace, book)
    dbconnection.execute(
        sa.update(Hold).where(Hold.id == lapsed["id"]).values(expires_at=utcnow() - timedelta(hours=1))
    )
    ada.post_json("/holds", {"userId": ada_id, "bookId": book["id"]}, status=201)
    ready = testapp.get("/hold-events", {"holdId": waiting["id"], "type": "ready"}).json["items"]
    assert [event["data"]["actor"] for event in ready] == [None]
    expired = testapp.get("/hold-events", {"holdId": lapsed["id"], "type": "expired"}).json["items"]
    assert [event["data"]["actor"] for event in expired] == [None]


def test_after_erasure_no_event_anywhere_carries_the_erased_id(app, dbconnection, dbsession, testapp):
    """A librarian who lent and took holds for others, then borrowed and held themselves,
    is erased (another librarian remains): no event of either log names them any more."""
    lender, lender_token = issue_token(dbsession)  # a second librarian, the one erased
    lender_id = lender.id
    dbsession.commit()
    lender_client = Client(app, dbconnection, lender_token)
    book, other = make_book(testapp, copies=1), make_book(testapp, copies=3)
    grace = make_user(testapp)
    loan = checkout(lender_client, grace, other)  # the lender's acts on Grace's records
    lender_client.post(f"/checkouts/{loan['id']}/renew")
    held = hold(lender_client, grace, book)
    lender_client.delete(f"/holds/{held['id']}", status=204)
    own = checkout(testapp, {"id": lender_id}, other)  # the lender's own reading
    testapp.post(f"/checkouts/{own['id']}/return")
    assert events_naming(dbconnection, lender_id)  # named, as reader and as actor

    testapp.post(f"/users/{lender_id}/erasure", status=204)
    assert events_naming(dbconnection, lender_id) == []
    # Grace's loan still says what happened to it; only who did it is forgotten
    history = testapp.get(f"/checkouts/{loan['id']}/events").json["items"]
    assert [(event["type"], event["data"]["actor"]) for event in history] == [
        ("checked_out", None),
        ("renewed", None),
    ]


def test_revision_0013_forgets_the_actors_of_past_queue_moves(backend, empty_database):
    url = empty_database(backend)
    migrate(url, "0012")
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        ada, grace = (
            connection.execute(
                sa.text(
                    'INSERT INTO "Users" (name, email, role, "keepHistory", "createdAt", "updatedAt") '
                    "VALUES (:name, :email, 'member', false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
                ),
                {"name": name, "email": f"{name}@example.org"},
            ).scalar_one()
            for name in ("ada", "grace")
        )
        book = connection.execute(
            sa.text(
                'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") '
                "VALUES ('Dune', 'Herbert', 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
            )
        ).scalar_one()
        for hold_id, user, actor in ((1, grace, ada), (2, ada, ada)):  # a foreign and an own move
            connection.execute(
                sa.text(
                    'INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data) '
                    "VALUES (:hold, :user, :book, 'ready', CURRENT_TIMESTAMP, :data)"
                ),
                {
                    "hold": hold_id,
                    "user": user,
                    "book": book,
                    "data": f'{{"status": "ready", "actor": {actor}}}',
                },
            )
    migrate(url, "0013")
    with engine.connect() as connection:
        assert events_naming(connection, ada) == [("HoldEvents", 2, "ready", ada, ada)]
        # and the log still refuses any other change
        try:
            connection.execute(sa.text("UPDATE \"HoldEvents\" SET type = 'placed'"))
        except sa.exc.DBAPIError:
            connection.rollback()
        else:
            raise AssertionError("the log accepted an UPDATE outside anonymisation")
    downgrade(url, "0012")
    engine.dispose()
