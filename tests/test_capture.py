"""Changes made to "Checkouts" and "Holds" outside the app are in their logs right after the statement.

On both databases (PostgreSQL: statement-level triggers with transition tables; SQLite:
row-level triggers), through real commits; the app's own writes append one event each.
"""

import json

import pytest
import sqlalchemy as sa
import webtest
from conftest import app_settings, bearer, close_app, librarian_token, started
from helpers import checkout, hold, make_book, make_user

import booknexus.config
from booknexus.circulation.eventlog.projection import compare
from booknexus.circulation.eventlog.streams import HOLDS
from booknexus.db.engines import get_engine


@pytest.fixture
def library(backend, fresh_database):
    """A served app, a reader with three loans, and a hand on the database (its own engine)."""
    url = fresh_database(backend)
    app = started(booknexus.config.main({}, **app_settings(url)))
    client = webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))
    reader, other = make_user(client), make_user(client)
    book = make_book(client, copies=9)
    loans = [checkout(client, reader, book) for _ in range(3)]
    hand = get_engine({"sqlalchemy.url": url})  # a connection of its own; SQLite's FKs on, to cascade
    yield client, hand, reader, other, book, loans
    hand.dispose()
    close_app(app)


def events(
    hand, record_id: int, log: str = "CheckoutEvents", key: str = "checkoutId"
) -> list[tuple[str, dict]]:
    with hand.connect() as connection:
        rows = connection.execute(
            sa.text(f'SELECT type, data FROM "{log}" WHERE "{key}" = :id ORDER BY id'), {"id": record_id}
        ).all()
    return [(type_, data if isinstance(data, dict) else json.loads(data)) for type_, data in rows]


def hold_events(hand, hold_id: int) -> list[tuple[str, dict]]:
    return events(hand, hold_id, "HoldEvents", "holdId")


def drift(hand, stream=None):
    with sa.orm.Session(hand) as session:
        return compare(session, stream) if stream else compare(session)


def by_hand(hand, statement: str) -> list:
    """Run one statement on a connection of the hand's own, committed; its rows if any."""
    with hand.begin() as connection:
        result = connection.exec_driver_sql(statement)
        return result.all() if result.returns_rows else []


def test_app_writes_append_exactly_one_event_each(library):
    client, hand, reader, _, book, loans = library
    first = loans[0]
    client.post(f"/checkouts/{first['id']}/renew", status=200)
    client.post(f"/checkouts/{first['id']}/return", status=200)
    client.delete(f"/checkouts/{loans[1]['id']}", status=204)
    assert [type_ for type_, _ in events(hand, first["id"])] == ["checked_out", "renewed", "returned"]
    assert [type_ for type_, _ in events(hand, loans[1]["id"])] == ["checked_out", "deleted"]
    client.delete(f"/users/{reader['id']}", status=204)  # the app's cascade logs, not the triggers
    assert [type_ for type_, _ in events(hand, loans[2]["id"])] == ["checked_out", "deleted"]
    assert all(
        data.get("reason") != "external"
        for cid in (first["id"], loans[2]["id"])
        for _, data in events(hand, cid)
    )
    assert not drift(hand), drift(hand).report()


def test_hand_insert_update_and_delete_are_logged_at_once(library):
    client, hand, reader, other, book, loans = library
    # timestamps as each database stores them (SQLite: UTC text without an offset)
    feb1, feb15, mar1 = (
        f"2026-{day} 09:00:00{'+00' if hand.dialect.name == 'postgresql' else ''}"
        for day in ("02-01", "02-15", "03-01")
    )
    inserted = by_hand(
        hand,
        'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", renewals, "createdAt", '
        f"\"updatedAt\") VALUES ({other['id']}, {book['id']}, '{feb1}', '{feb15}', 0, '{feb1}', '{feb1}') "
        "RETURNING id",
    )[0][0]
    assert events(hand, inserted)[-1][0] == "imported"
    assert events(hand, inserted)[-1][1]["reason"] == "external"
    assert not drift(hand), drift(hand).report()

    by_hand(hand, f'UPDATE "Checkouts" SET renewals = 5, "dueAt" = \'{mar1}\' WHERE id = {loans[0]["id"]}')
    type_, data = events(hand, loans[0]["id"])[-1]
    assert (type_, data["renewals"], data["dueAt"], data["reason"], data["actor"]) == (
        "updated",
        5,
        "2026-03-01T09:00:00.000000+00:00"
        if hand.dialect.name == "postgresql"
        else "2026-03-01T09:00:00+00:00",
        "external",
        None,
    )
    assert not drift(hand), drift(hand).report()  # replay yields the updated row
    assert client.get(f"/checkouts/{loans[0]['id']}").json["renewals"] == 5

    by_hand(hand, f'UPDATE "Checkouts" SET "updatedAt" = "updatedAt" WHERE id = {loans[0]["id"]}')
    assert events(hand, loans[0]["id"])[-1][0] == "updated"  # no event for a change the log does not carry
    assert len(events(hand, loans[0]["id"])) == 2

    by_hand(hand, f'DELETE FROM "Checkouts" WHERE id = {loans[1]["id"]}')
    assert events(hand, loans[1]["id"])[-1][0] == "deleted"
    assert events(hand, loans[1]["id"])[-1][1]["reason"] == "external"
    assert not drift(hand), drift(hand).report()


def test_user_deleted_by_hand_logs_the_cascade(library):
    client, hand, reader, _, book, loans = library
    by_hand(hand, f'DELETE FROM "Users" WHERE id = {reader["id"]}')  # the database cascades
    for loan in loans:
        type_, data = events(hand, loan["id"])[-1]
        assert (type_, data["reason"]) == ("deleted", "external")
    assert not drift(hand), drift(hand).report()


def test_one_statement_over_many_rows_and_a_changed_id(library):
    client, hand, reader, other, book, loans = library
    by_hand(hand, f'UPDATE "Checkouts" SET "userId" = {other["id"]} WHERE "userId" = {reader["id"]}')
    assert [events(hand, loan["id"])[-1][0] for loan in loans] == ["updated"] * 3
    moved = loans[0]["id"]
    by_hand(hand, f'UPDATE "Checkouts" SET id = 9000 WHERE id = {moved}')
    assert events(hand, moved)[-1][0] == "deleted"
    assert events(hand, 9000)[-1][0] == "imported"
    assert not drift(hand), drift(hand).report()


def test_emptying_the_table_is_logged(library):
    client, hand, *_, loans = library
    # PostgreSQL's TRUNCATE has no transition table: its own trigger logs what the log held live
    everything = 'TRUNCATE "Checkouts"' if hand.dialect.name == "postgresql" else 'DELETE FROM "Checkouts"'
    by_hand(hand, everything)
    assert [events(hand, loan["id"])[-1][0] for loan in loans] == ["deleted"] * 3
    assert not drift(hand), drift(hand).report()


def test_hand_changes_to_holds_are_logged_at_once(library):
    client, hand, reader, other, book, loans = library
    waited_for = make_book(client, copies=1)
    checkout(client, other, waited_for)
    placed = hold(client, reader, waited_for)
    assert [type_ for type_, _ in hold_events(hand, placed["id"])] == ["placed"]  # the app's own, once
    stamp = "2026-02-01 09:00:00" + ("+00" if hand.dialect.name == "postgresql" else "")

    inserted = by_hand(
        hand,
        'INSERT INTO "Holds" ("userId", "bookId", status, "placedAt", "createdAt", "updatedAt") '
        f"VALUES ({other['id']}, {book['id']}, 'waiting', '{stamp}', '{stamp}', '{stamp}') RETURNING id",
    )[0][0]
    type_, data = hold_events(hand, inserted)[-1]
    assert (type_, data["status"], data["reason"], data["actor"]) == ("imported", "waiting", "external", None)
    assert not drift(hand, HOLDS), drift(hand, HOLDS).report()

    by_hand(
        hand, f"UPDATE \"Holds\" SET status = 'cancelled', \"endedAt\" = '{stamp}' WHERE id = {placed['id']}"
    )
    type_, data = hold_events(hand, placed["id"])[-1]
    assert (type_, data["status"], data["reason"]) == ("updated", "cancelled", "external")
    assert not drift(hand, HOLDS), drift(hand, HOLDS).report()
    by_hand(hand, f'UPDATE "Holds" SET "updatedAt" = "updatedAt" WHERE id = {placed["id"]}')
    assert len(hold_events(hand, placed["id"])) == 2  # nothing the log carries changed

    by_hand(hand, f'UPDATE "Holds" SET id = 9100 WHERE id = {inserted}')
    assert hold_events(hand, inserted)[-1][0] == "deleted"
    assert hold_events(hand, 9100)[-1][0] == "imported"
    by_hand(hand, 'DELETE FROM "Holds" WHERE id = 9100')
    assert hold_events(hand, 9100)[-1] == (
        "deleted",
        {**hold_events(hand, 9100)[-1][1], "reason": "external"},
    )
    assert not drift(hand, HOLDS), drift(hand, HOLDS).report()


def test_hand_deletions_of_holds_by_cascade_and_by_emptying_are_logged(library):
    client, hand, reader, other, book, loans = library
    waited_for = make_book(client, copies=1)
    checkout(client, other, waited_for)
    by_reader = hold(client, reader, waited_for)
    second = make_book(client, copies=1)
    checkout(client, reader, second)
    by_other = hold(client, other, second)
    by_hand(hand, f'DELETE FROM "Users" WHERE id = {reader["id"]}')  # the database cascades
    type_, data = hold_events(hand, by_reader["id"])[-1]
    assert (type_, data["reason"]) == ("deleted", "external")
    assert hold_events(hand, by_other["id"])[-1][0] == "placed"
    assert not drift(hand, HOLDS), drift(hand, HOLDS).report()
    everything = 'TRUNCATE "Holds"' if hand.dialect.name == "postgresql" else 'DELETE FROM "Holds"'
    by_hand(hand, everything)
    assert hold_events(hand, by_other["id"])[-1][0] == "deleted"
    assert not drift(hand, HOLDS), drift(hand, HOLDS).report()
    assert not drift(hand), drift(hand).report()
