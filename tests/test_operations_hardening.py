"""The operator's commands under real conditions: a race with a deletion, a hand-damaged
schema, a write that arrives while the startup repair holds the logs."""

import json
import logging
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, app_settings, bearer, close_app, librarian_token, started
from helpers import checkout, hold, make_book, make_user, wait_for
from legacy import bypass_capture, insert_checkout, unchecked, weaken_foreign_keys

import booknexus.config
from booknexus.accounts.models import User
from booknexus.catalog.models import Book
from booknexus.circulation.models import Item
from booknexus.circulation.rules import Rules
from booknexus.db.engines import DATABASE_URL_ENV, get_engine, get_session_factory
from booknexus.operations.scripts.expire_holds import expire_all

pytestmark = pytest.mark.slow


def scalar(url: str, sql: str, **params):
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        value = connection.execute(sa.text(sql), params).scalar()
    engine.dispose()
    return value


def waiting_on_a_lock(url: str, like: str) -> bool:
    """Whether a session of the database waits for a lock in a statement matching ``like``."""
    return bool(
        scalar(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE :like",
            like=like,
        )
    )


# --- booknexus-expire-holds ----------------------------------------------------------------


def test_expire_holds_skips_a_book_deleted_under_it_and_goes_on(pg_template, fresh_database, caplog):
    """A real race: the job lists two books, then the first is deleted (by another connection)
    while the job waits for its row lock. The job skips it, says so, and settles the second.
    (``pg_template``: migrated before the test, so Alembic's logging setup cannot unhook caplog.)"""
    url = fresh_database("postgresql")
    # a ready hold lapses at once: the job has work as soon as the copy comes back
    settings = app_settings(url, **{"booknexus.hold_pickup_days": "0"})
    app = started(booknexus.config.main({}, **settings))
    client = webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))
    lapsed = {}
    for name in ("doomed", "kept"):
        book, borrower, waiting = make_book(client), make_user(client), make_user(client)
        loan = checkout(client, borrower, book)
        placed = hold(client, waiting, book)
        client.post(f"/checkouts/{loan['id']}/return", status=200)
        assert client.get(f"/holds/{placed['id']}").json["status"] == "ready"
        lapsed[name] = (book["id"], placed["id"])
    close_app(app)

    doomed, kept = lapsed["doomed"][0], lapsed["kept"][0]
    holder_engine = sa.create_engine(url)
    job_engine = get_engine(settings, bulk=True)
    outcome = {}

    def job():
        try:
            outcome["settled"] = expire_all(get_session_factory(job_engine), Rules.from_settings(settings))
        except Exception as exc:  # noqa: BLE001 (what the cron job would have died of)
            outcome["error"] = exc

    caplog.set_level(logging.INFO, logger="booknexus")
    with holder_engine.connect() as holder:
        holder.exec_driver_sql(f'SELECT id FROM "Books" WHERE id = {doomed} FOR UPDATE')
        running = threading.Thread(target=job)
        running.start()
        wait_for(
            lambda: waiting_on_a_lock(url, '%FROM "Books"%FOR UPDATE%'), what="the job waiting for the book"
        )
        holder.exec_driver_sql(f'DELETE FROM "Books" WHERE id = {doomed}')  # its holds go with it
        holder.commit()
        running.join(timeout=30)
    job_engine.dispose()
    holder_engine.dispose()

    assert "error" not in outcome, f"the job died: {outcome.get('error')!r}"
    assert outcome["settled"] == 1
    assert any(f"book {doomed} was deleted" in record.getMessage() for record in caplog.records), (
        "the skipped book is logged"
    )
    kept_hold = lapsed["kept"][1]
    assert scalar(url, f'SELECT status FROM "Holds" WHERE id = {kept_hold}') == "expired"
    assert scalar(url, f'SELECT count(*) FROM "Holds" WHERE "bookId" = {doomed}') == 0
    assert scalar(url, f'SELECT count(*) FROM "Books" WHERE id = {kept}') == 1


# --- booknexus-fix-fk on SQLite ------------------------------------------------------------


def schema_of_checkouts(url: str) -> set[tuple]:
    """Every trigger and index of "Checkouts" (those SQLite makes for the table itself aside)."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE tbl_name = 'Checkouts' AND type IN ('index', 'trigger') AND sql IS NOT NULL"
        ).all()
    engine.dispose()
    return {tuple(row) for row in rows}


def weaken_keeping_triggers_and_indexes(url: str) -> None:
    """Sequelize's weak foreign keys, as a hand-changed database carries them, with every
    trigger and index of the table in place (legacy.weaken_foreign_keys drops them)."""
    kept = schema_of_checkouts(url)
    high_water = scalar(url, "SELECT seq FROM sqlite_sequence WHERE name = 'Checkouts'")
    weaken_foreign_keys(url)
    with unchecked(url) as connection:
        for _type, _name, sql in sorted(kept):
            connection.exec_driver_sql(sql)
        connection.exec_driver_sql(f"UPDATE sqlite_sequence SET seq = {high_water} WHERE name = 'Checkouts'")


def fix_fk(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "booknexus-fix-fk"), "development.ini", *args],
        env={**os.environ, DATABASE_URL_ENV: url},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fix_fk_on_sqlite_keeps_every_trigger_and_index(fresh_database):
    url = fresh_database("sqlite")
    app = started(booknexus.config.main({}, **app_settings(url)))
    client = webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))
    reader, book = make_user(client), make_book(client, copies=3)
    loans = [checkout(client, reader, book)["id"] for _ in range(3)]
    client.delete(f"/checkouts/{loans[2]}", status=204)
    close_app(app)
    before = schema_of_checkouts(url)
    names = {name for _type, name, _sql in before}
    # what the rebuild must keep: the capture triggers and 0010's partial index
    assert {"Checkouts_capture_insert", "Checkouts_capture_update", "Checkouts_capture_delete"} <= names
    assert "ix_Checkouts_returnedAt_named" in names
    weaken_keeping_triggers_and_indexes(url)
    assert schema_of_checkouts(url) == before
    assert fix_fk(url, "--check").returncode == 1
    high_water = scalar(url, "SELECT seq FROM sqlite_sequence WHERE name = 'Checkouts'")
    assert high_water == loans[2]  # the deleted loan's id is never handed out again

    fixed = fix_fk(url)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "rebuilt Checkouts" in fixed.stdout
    assert fix_fk(url, "--check").returncode == 0
    assert schema_of_checkouts(url) == before
    assert scalar(url, 'SELECT group_concat(id) FROM "Checkouts" ORDER BY id') == f"{loans[0]},{loans[1]}"
    assert scalar(url, "SELECT seq FROM sqlite_sequence WHERE name = 'Checkouts'") == high_water
    # the capture triggers still act: a loan written by hand is logged as it happens
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        by_hand = insert_checkout(connection, reader["id"], book["id"])
    engine.dispose()
    assert by_hand == high_water + 1
    logged = scalar(url, f'SELECT type FROM "CheckoutEvents" WHERE "checkoutId" = {by_hand}')
    assert logged == "imported"


# --- a write while the startup repair runs -------------------------------------------------


def post(url: str, path: str, body: dict, token: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers), json.loads(error.read())


def test_a_write_during_the_startup_repair_answers_within_a_second(fresh_database, serve_url):
    """The repair holds the logs' locks while it works (here: while it waits for a hold row
    that another connection holds, as a big repair would take its time). A checkout sent
    meanwhile answers within a second: done, or 503 with Retry-After, never a wait for the
    request's lock_timeout (5 s) behind the repair."""
    url = fresh_database("postgresql")
    engine = get_engine({"sqlalchemy.url": url})
    with sa.orm.Session(engine) as session, session.begin():
        reader, book = User(name="Ada", email="ada@example.org"), Book(title="Dune", author="Herbert")
        session.add_all([reader, book])
        session.flush()
        # its one copy, on the default branch's shelf (left to the repair to log, as the loan)
        session.add(Item(book_id=book.id, barcode="DUNE-1", home_branch_id=1, current_branch_id=1))
        reader_id, book_id = reader.id, book.id
    with engine.begin() as connection:  # a loan the log never saw: the repair imports it
        bypass_capture(connection)
        insert_checkout(connection, reader_id, book_id, returned=True)
    engine.dispose()
    with unchecked(url) as connection:  # an orphan hold: the repair purges it, after the import
        orphan = connection.exec_driver_sql(
            'INSERT INTO "Holds" ("userId", "bookId", status, "placedAt", "createdAt", "updatedAt") '
            "VALUES (4040, 5050, 'waiting', now(), now(), now()) RETURNING id"
        ).scalar_one()
    token = librarian_token(url)

    holder_engine = sa.create_engine(url)
    with holder_engine.connect() as holder:
        holder.exec_driver_sql(f'SELECT id FROM "Holds" WHERE id = {orphan} FOR UPDATE')
        served = serve_url(url, token, wait=False)
        wait_for(lambda: waiting_on_a_lock(url, '%DELETE FROM "Holds"%'), what="the repair waiting")
        assert scalar(
            url,
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = 'CheckoutEvents' AND l.mode = 'ExclusiveLock' AND l.granted",
        ), "the repair holds the checkout log's lock"
        started_at = time.monotonic()
        status, headers, body = post(
            served.url, "/checkouts", {"userId": reader_id, "bookId": book_id}, token
        )
        elapsed = time.monotonic() - started_at
        holder.rollback()  # the repair goes on
    holder_engine.dispose()
    assert elapsed < 1.0, f"answered {status} after {elapsed:.1f}s: {body}"
    assert status == 201 or (status == 503 and headers.get("Retry-After") == "1"), (status, headers, body)

    assert served.app.registry["booknexus.startup"].wait(30)
    assert served.request("GET", "/health")[1]["cleanup"]["holds"]["purged_missing_user"] == 1
    if status != 201:  # the retry the client was told to make
        status, headers, body = post(
            served.url, "/checkouts", {"userId": reader_id, "bookId": book_id}, token
        )
        assert status == 201, body
