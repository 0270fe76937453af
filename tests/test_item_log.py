"""The item log has every guarantee of the loan and hold logs, on both databases: append-only,
the app's changes appended in their own transaction, hand changes captured by triggers, replay
equal to the table, the startup sign and the full repair, gapless tailing (librarians only)."""

import json
import os
import subprocess
import sys
import threading
import uuid

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, app_settings, bearer, close_app, issue_token, librarian_token, started
from helpers import make_book

import booknexus.config
from booknexus.accounts.roles import MEMBER
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog import capture
from booknexus.circulation.eventlog.projection import compare, compare_all
from booknexus.circulation.eventlog.streams import (
    CHECKOUTS,
    CREATED,
    DELETED,
    HOLDS,
    ITEMS,
    STATUS_CHANGED,
)
from booknexus.circulation.models import Item
from booknexus.db.engines import DATABASE_URL_ENV, get_engine
from booknexus.operations.repair import log_out_of_step

MAIN = 1  # the migrated database's default branch


def barcode() -> str:
    return f"T-{uuid.uuid4().hex[:12].upper()}"


def stamp(dialect: str) -> str:
    """A timestamp as each database stores it (SQLite: UTC text without an offset)."""
    return "2026-02-01 09:00:00" + ("+00" if dialect == "postgresql" else "")


def insert_item(connection, book_id: int, status: str = "available") -> int:
    """One item inserted by hand in SQL, as an operator would."""
    at = stamp(connection.dialect.name)
    return connection.exec_driver_sql(
        'INSERT INTO "Items" ("bookId", barcode, "homeBranchId", "currentBranchId", status, '
        f"\"createdAt\", \"updatedAt\") VALUES ({book_id}, '{barcode()}', {MAIN}, {MAIN}, '{status}', "
        f"'{at}', '{at}') RETURNING id"
    ).scalar_one()


def add_item(session, book_id: int, actor: int | None = None) -> Item:
    """An item made by the app's way: flushed, then its ``created`` event appended."""
    item = Item(book_id=book_id, barcode=barcode(), home_branch_id=MAIN, current_branch_id=MAIN)
    session.add(item)
    session.flush()
    eventlog.append(session, item, CREATED, actor=actor)
    return item


def events(hand, item_id: int) -> list[tuple[str, dict]]:
    with hand.connect() as connection:
        rows = connection.execute(
            sa.text('SELECT type, data FROM "ItemEvents" WHERE "itemId" = :id ORDER BY id'), {"id": item_id}
        ).all()
    return [(type_, data if isinstance(data, dict) else json.loads(data)) for type_, data in rows]


def by_hand(hand, statement: str):
    """One statement on a connection of the hand's own, committed; its first value if any."""
    with hand.begin() as connection:
        result = connection.exec_driver_sql(statement)
        return result.scalar() if result.returns_rows else None


def drift(hand, stream=ITEMS):
    with sa.orm.Session(hand) as session:
        return compare(session, stream)


def no_drift_anywhere(hand) -> bool:
    with sa.orm.Session(hand) as session:
        drifts = compare_all(session)
    return [drift.stream for drift in drifts] == [CHECKOUTS, HOLDS, ITEMS] and not any(drifts)


@pytest.fixture
def library(backend, fresh_database):
    """A served app over a database of its own, two books, and a hand on the database (its own
    engine: on SQLite too the foreign keys act, so the database cascades)."""
    url = fresh_database(backend)
    app = started(booknexus.config.main({}, **app_settings(url)))
    client = webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))
    books = make_book(client), make_book(client)
    hand = get_engine({"sqlalchemy.url": url})
    yield url, client, hand, books
    hand.dispose()
    close_app(app)


def test_the_item_log_is_append_only_in_the_database(testapp, dbconnection, dbsession):
    add_item(dbsession, make_book(testapp)["id"])
    dbsession.flush()
    logged = dbconnection.exec_driver_sql('SELECT count(*) FROM "ItemEvents"').scalar()
    assert logged >= 1
    statements = ["UPDATE \"ItemEvents\" SET type = 'moved'", 'DELETE FROM "ItemEvents"']
    if dbconnection.dialect.name == "postgresql":
        statements.append('TRUNCATE "ItemEvents"')
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="ItemEvents is append-only"):
            with dbconnection.begin_nested():
                dbconnection.exec_driver_sql(statement)
    assert dbconnection.exec_driver_sql('SELECT count(*) FROM "ItemEvents"').scalar() == logged


def test_app_changes_append_one_event_each_and_the_triggers_stand_aside(testapp, dbsession):
    book = make_book(testapp)
    item = add_item(dbsession, book["id"])
    dbsession.commit()
    item.status = "missing"
    dbsession.flush()  # marked as the app's: the update trigger must not log it too
    eventlog.append(dbsession, item, STATUS_CHANGED, actor=testapp.user_id, was="available")
    dbsession.commit()

    history = testapp.get(f"/items/{item.id}/events").json
    state = {
        "barcode": item.barcode,
        "homeBranchId": MAIN,
        "currentBranchId": MAIN,
        "transitToBranchId": None,
        "transitSentAt": None,
        "itemType": "book",
        "callNumber": None,
    }
    first, second = history["items"]
    assert history["next"] is None
    assert first == {
        "position": first["position"],
        "itemId": item.id,
        "bookId": book["id"],
        "type": "created",
        "occurredAt": first["occurredAt"],
        "data": {**state, "status": "available", "actor": None},
    }
    assert second == {
        "position": second["position"],
        "itemId": item.id,
        "bookId": book["id"],
        "type": "status_changed",
        "occurredAt": second["occurredAt"],
        "data": {**state, "status": "missing", "was": "available", "actor": testapp.user_id},
    }
    assert second["position"] > first["position"]
    with sa.orm.Session(bind=dbsession.connection(), join_transaction_mode="create_savepoint") as session:
        assert not compare(session, ITEMS), compare(session, ITEMS).report()


def test_a_books_items_deleted_by_the_app_are_logged_set_based(testapp, dbsession):
    book, other = make_book(testapp), make_book(testapp)
    for _ in range(3):
        add_item(dbsession, book["id"])
    kept = add_item(dbsession, other["id"]).id
    of_book = sa.select(Item.id).where(Item.book_id == book["id"]).order_by(Item.id)
    gone = list(dbsession.scalars(of_book))  # those the catalogue made with the book too
    deleted = eventlog.delete_and_append(
        dbsession,
        ITEMS.records.c.bookId == book["id"],
        DELETED,
        actor=testapp.user_id,
        stream=ITEMS,
        reason="book_deleted",
    )
    dbsession.commit()
    assert deleted == len(gone) >= 3
    logged = testapp.get("/item-events", {"bookId": book["id"], "type": "deleted"}).json["items"]
    assert [(e["itemId"], e["data"]["reason"], e["data"]["actor"]) for e in logged] == [
        (item_id, "book_deleted", testapp.user_id) for item_id in gone
    ]
    assert all("userId" not in e for e in logged)
    # one event each: the capture triggers stood aside for the app's own deletion
    history = testapp.get("/item-events", {"bookId": book["id"], "limit": 500}).json["items"]
    assert [e["type"] for e in history].count("deleted") == len(gone)
    assert {e["type"] for e in history} == {"created", "deleted"}
    assert dbsession.scalars(of_book).all() == []
    assert [e["type"] for e in testapp.get(f"/items/{kept}/events").json["items"]] == ["created"]
    with sa.orm.Session(bind=dbsession.connection(), join_transaction_mode="create_savepoint") as session:
        assert not compare(session, ITEMS), compare(session, ITEMS).report()


def test_hand_insert_update_and_delete_of_items_are_logged_at_once(library):
    _, client, hand, (book, other) = library
    with hand.begin() as connection:
        inserted = insert_item(connection, book["id"])
    type_, data = events(hand, inserted)[-1]
    assert (type_, data["status"], data["homeBranchId"], data["reason"], data["actor"]) == (
        "imported",
        "available",
        MAIN,
        "external",
        None,
    )
    assert not drift(hand), drift(hand).report()

    by_hand(hand, f"UPDATE \"Items\" SET status = 'missing', \"callNumber\" = 'QA76' WHERE id = {inserted}")
    type_, data = events(hand, inserted)[-1]
    assert (type_, data["status"], data["callNumber"], data["reason"], data["actor"]) == (
        "updated",
        "missing",
        "QA76",
        "external",
        None,
    )
    by_hand(hand, f'UPDATE "Items" SET "bookId" = {other["id"]} WHERE id = {inserted}')
    assert events(hand, inserted)[-1][0] == "updated"
    assert client.get("/item-events", {"itemId": inserted}).json["items"][-1]["bookId"] == other["id"]
    by_hand(hand, f'UPDATE "Items" SET "updatedAt" = "updatedAt" WHERE id = {inserted}')
    assert len(events(hand, inserted)) == 3  # nothing the log carries changed: no event
    assert not drift(hand), drift(hand).report()

    by_hand(hand, f'UPDATE "Items" SET id = 9200 WHERE id = {inserted}')
    assert events(hand, inserted)[-1][0] == "deleted"
    assert events(hand, 9200)[-1][0] == "imported"
    by_hand(hand, 'DELETE FROM "Items" WHERE id = 9200')
    type_, data = events(hand, 9200)[-1]
    assert (type_, data["status"], data["reason"], data["actor"]) == ("deleted", "missing", "external", None)
    assert not drift(hand), drift(hand).report()


def test_a_book_deleted_by_hand_takes_its_items_and_the_log_records_them(library):
    _, client, hand, (book, other) = library
    with hand.begin() as connection:
        mine = [insert_item(connection, book["id"]) for _ in range(2)]
        theirs = insert_item(connection, other["id"])
    by_hand(hand, f'DELETE FROM "Books" WHERE id = {book["id"]}')  # the database cascades
    for item_id in mine:
        type_, data = events(hand, item_id)[-1]
        assert (type_, data["reason"], data["actor"]) == ("deleted", "external", None)
    assert [type_ for type_, _ in events(hand, theirs)] == ["imported"]
    assert no_drift_anywhere(hand)
    # the history outlives the item and its book
    assert [e["type"] for e in client.get(f"/items/{mine[0]}/events").json["items"]] == [
        "imported",
        "deleted",
    ]


def test_emptying_the_items_table_is_logged(library):
    _, _, hand, (book, other) = library
    with hand.begin() as connection:
        items = [insert_item(connection, book_id) for book_id in (book["id"], other["id"], book["id"])]
    # PostgreSQL's TRUNCATE has no transition table: its own trigger logs what the log held
    # live (CASCADE: the loans and holds that point at items go too, and are logged as well)
    postgresql = hand.dialect.name == "postgresql"
    by_hand(hand, 'TRUNCATE "Items" CASCADE' if postgresql else 'DELETE FROM "Items"')
    assert [events(hand, item_id)[-1][0] for item_id in items] == ["deleted"] * 3
    assert no_drift_anywhere(hand)


def test_the_capture_triggers_of_items_are_checked(library):
    _, _, hand, _ = library
    dialect = hand.dialect.name
    expected = capture.trigger_names(ITEMS, dialect)
    with hand.begin() as connection:
        assert capture.missing(connection) == []
        capture.uninstall(connection, (ITEMS,))
        assert capture.missing(connection) == expected
        capture.install(connection, (ITEMS,))
        if dialect == "postgresql":
            connection.exec_driver_sql('ALTER TABLE "Items" DISABLE TRIGGER "Items_capture_update"')
            assert capture.missing(connection) == ["Items_capture_update"]
            connection.exec_driver_sql('ALTER TABLE "Items" ENABLE TRIGGER "Items_capture_update"')
        assert capture.missing(connection) == []


def unseen(hand):
    """A transaction that writes "Items" behind the capture triggers' back: PostgreSQL's replica
    mode (which skips every trigger), SQLite's triggers dropped and put back after."""
    connection = hand.connect()
    transaction = connection.begin()
    if hand.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
    else:
        capture.uninstall(connection, (ITEMS,))
    return connection, transaction


def commit_unseen(connection, transaction) -> None:
    if connection.dialect.name == "sqlite":
        capture.install(connection, (ITEMS,))
    transaction.commit()
    connection.close()


def damage(hand, book_id: int) -> dict:
    """Three items logged by hand; then, unseen by the triggers: one updated, one deleted, one
    inserted."""
    with hand.begin() as connection:
        updated, deleted, kept = (insert_item(connection, book_id) for _ in range(3))
    connection, transaction = unseen(hand)
    connection.exec_driver_sql(f"UPDATE \"Items\" SET status = 'lost' WHERE id = {updated}")
    connection.exec_driver_sql(f'DELETE FROM "Items" WHERE id = {deleted}')
    inserted = insert_item(connection, book_id)
    commit_unseen(connection, transaction)
    return {"updated": updated, "reconciled": deleted, "imported": inserted, "kept": kept}


def run_script(name: str, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"booknexus.operations.scripts.{name}", str(ROOT / "development.ini"), *args],
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_reports_item_drift_and_the_full_repair_fixes_it(library):
    url, _, hand, (book, _) = library
    ids = damage(hand, book["id"])

    check = run_script("check", url)
    assert check.returncode == 1, check.stdout
    assert f"Items: missing from the table (live in the log): 1 [{ids['reconciled']}]" in check.stdout
    assert f"Items: extra in the table (not live in the log): 1 [{ids['imported']}]" in check.stdout
    assert f"itemId {ids['updated']} status: log='available' table='lost'" in check.stdout
    assert "no drift: replaying the CheckoutEvents log" in check.stdout  # the other logs still agree

    repaired = run_script("cleanup", url, "--full")
    assert repaired.returncode == 0, repaired.stderr
    assert (
        f"items: reconciled 1 deleted outside the app [{ids['reconciled']}]; "
        f"imported 1 unlogged [{ids['imported']}]; resynced 1 changed by hand [{ids['updated']}]"
    ) in repaired.stdout
    assert [type_ for type_, _ in events(hand, ids["reconciled"])] == ["imported", "deleted"]
    assert events(hand, ids["reconciled"])[-1][1]["reason"] == "external"
    assert [type_ for type_, _ in events(hand, ids["imported"])] == ["imported"]
    type_, data = events(hand, ids["updated"])[-1]
    assert (type_, data["status"], data["reason"]) == ("updated", "lost", "external")
    assert len(events(hand, ids["kept"])) == 1

    check = run_script("check", url)
    assert check.returncode == 0, check.stdout
    assert "no drift: replaying the ItemEvents log reproduces the Items table" in check.stdout


@pytest.mark.parametrize("unseen_change", ["newest_inserted", "newest_deleted"])
def test_the_startup_sign_notices_an_item_log_out_of_step(library, start_again, unseen_change):
    url, _, hand, (book, _) = library
    with hand.begin() as connection:
        older, newest = insert_item(connection, book["id"]), insert_item(connection, book["id"])
    with sa.orm.Session(hand) as session:
        assert log_out_of_step(session, ITEMS) is None
    connection, transaction = unseen(hand)
    if unseen_change == "newest_inserted":
        newest = insert_item(connection, book["id"])
        expected = f"the newest item ({newest}) is not live in the log"
    else:
        connection.exec_driver_sql(f'DELETE FROM "Items" WHERE id = {newest}')
        expected = f"the log's last event (imported) has item {newest} live; the table disagrees"
    commit_unseen(connection, transaction)
    with sa.orm.Session(hand) as session:
        assert log_out_of_step(session, ITEMS) == expected
        assert log_out_of_step(session, CHECKOUTS) is None

    report = start_again(url).get("/health").json["cleanup"]
    assert report["reasons"] == [f"items log out of step: {expected}"]
    repaired = (report["items"]["reconciled"], report["items"]["imported"])
    assert repaired == ((0, 1) if unseen_change == "newest_inserted" else (1, 0))
    assert not drift(hand), drift(hand).report()
    assert [type_ for type_, _ in events(hand, older)] == ["imported"]
    assert start_again(url).get("/health").json["cleanup"]["full"] is False


@pytest.fixture
def start_again():
    apps = []

    def start(url):
        app = started(booknexus.config.main({}, **app_settings(url)))
        apps.append(app)
        return webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))

    yield start
    for app in apps:
        close_app(app)


def test_item_events_page_gaplessly_with_after(testapp, dbsession):
    book, other = make_book(testapp), make_book(testapp)
    items = [add_item(dbsession, book_id) for book_id in (book["id"], other["id"], book["id"])]
    items[0].status = "missing"
    dbsession.flush()
    eventlog.append(dbsession, items[0], STATUS_CHANGED, actor=testapp.user_id)
    dbsession.commit()
    everything = testapp.get("/item-events", {"limit": 500}).json["items"]
    ours = [e for e in everything if e["itemId"] in {item.id for item in items}]
    start = ours[0]["position"] - 1

    seen, after = [], start
    while True:
        page = testapp.get("/item-events", {"after": after, "limit": 2}).json
        seen += page["items"]
        assert len(page["items"]) <= 2
        if page["next"] is None:
            break
        assert page["next"] == page["items"][-1]["position"]
        after = page["next"]
    assert [e["position"] for e in seen] == [e["position"] for e in everything if e["position"] > start]
    assert [(e["itemId"], e["type"]) for e in seen] == [
        (items[0].id, "created"),
        (items[1].id, "created"),
        (items[2].id, "created"),
        (items[0].id, "status_changed"),
    ]
    by_book = testapp.get("/item-events", {"bookId": other["id"]}).json["items"]
    assert {e["bookId"] for e in by_book} == {other["id"]}
    assert items[1].id in [e["itemId"] for e in by_book]
    assert not {items[0].id, items[2].id} & {e["itemId"] for e in by_book}
    by_item = testapp.get("/item-events", {"itemId": items[0].id, "type": "status_changed"}).json["items"]
    assert [e["position"] for e in by_item] == [seen[-1]["position"]]


def test_item_logs_are_the_librarians_alone(testapp, anonymous, dbsession):
    item = add_item(dbsession, make_book(testapp)["id"])
    _, token = issue_token(dbsession, role=MEMBER)
    dbsession.commit()
    member = webtest.TestApp(testapp.app, extra_environ=bearer(token))
    for path in ("/item-events", f"/items/{item.id}/events"):
        assert anonymous.get(path, status=401).json["error"]["code"] == "authentication_required"
        assert member.get(path, status=403).json["error"]["code"] == "forbidden"
        assert testapp.get(path).json["items"][-1]["itemId"] == item.id
    assert testapp.get("/items/99999/events", status=404).json["error"]["code"] == "item_not_found"


def appending(engine, writer: str, book_id: int) -> tuple:
    """A transaction that has appended to the item log, not committed: the app's (``eventlog.
    append``) or a hand insert's (its capture trigger). Returns it and its item's id."""
    if writer == "app":
        session = sa.orm.Session(engine)
        return session, add_item(session, book_id).id
    connection = engine.connect()
    connection.begin()
    return connection, insert_item(connection, book_id)


@pytest.mark.parametrize("writer", ["app", "hand"])
def test_appends_to_the_item_log_commit_in_position_order(fresh_database, writer):
    """Gapless tailing: an append to the item log holds the logs' lock to its commit, so the next
    writer of the same kind waits, and no reader can see a position appear behind one it has
    already read. Either lock alone would make a writer of the other kind wait: hence two of a
    kind. PostgreSQL only: SQLite admits one writer at a time."""
    url = fresh_database("postgresql")
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        book_id = connection.exec_driver_sql(
            'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") VALUES (\'Gapless\', '
            "'A', 1, now(), now()) RETURNING id"
        ).scalar_one()
    first, first_id = appending(engine, writer, book_id)
    later: dict = {}

    def append_later():
        second, later["id"] = appending(engine, writer, book_id)
        second.commit()
        second.close()

    thread = threading.Thread(target=append_later)
    thread.start()
    thread.join(timeout=1.0)
    assert thread.is_alive(), "the later append did not wait for the earlier one's commit"
    with engine.connect() as reader:
        assert reader.exec_driver_sql('SELECT count(*) FROM "ItemEvents"').scalar() == 0
    first.commit()
    first.close()
    thread.join(timeout=30)
    with engine.connect() as reader:
        logged = reader.exec_driver_sql('SELECT "itemId" FROM "ItemEvents" ORDER BY id').scalars().all()
    assert logged == [first_id, later["id"]]
    engine.dispose()
