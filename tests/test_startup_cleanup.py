"""The startup repair and constraint check, on real databases the tests fill or damage first."""

import contextlib
import json
import os
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, app_settings, bearer, close_app, librarian_token, started
from helpers import checkout, make_book, make_user
from legacy import bypass_capture, insert_checkout, unchecked, weaken_foreign_keys

import booknexus.config
from booknexus.circulation.eventlog import capture
from booknexus.circulation.eventlog.projection import compare
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS
from booknexus.db.engines import DATABASE_URL_ENV, get_engine
from booknexus.operations.repair import EDGES

pytestmark = pytest.mark.slow


@pytest.fixture
def start_app():
    apps = []

    def start(url, **settings):
        app = started(booknexus.config.main({}, **app_settings(url, **settings)))
        apps.append(app)
        return app, webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))

    yield start
    for app in apps:
        close_app(app)


def events_of(url: str, type_: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f'SELECT "checkoutId", data FROM "CheckoutEvents" WHERE type = \'{type_}\' ORDER BY id'
        ).all()
    engine.dispose()
    return [(checkout_id, data if isinstance(data, dict) else json.loads(data)) for checkout_id, data in rows]


def drift(url: str, stream=CHECKOUTS):
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session:
        found = compare(session, stream)
    engine.dispose()
    return found


def drop_capture(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        capture.uninstall(connection)
    engine.dispose()


HOW_BYPASSED = {
    # the capture triggers dropped (or disabled): the catalog check sees it
    "triggers_dropped": lambda url: drop_capture(url),
    # PostgreSQL: replica mode skips every trigger; SQLite: a writer that died marked as the
    # app. Only the O(1) sign (newest row not in the log) or the stale mark can tell.
    "triggers_bypassed": lambda url: None,
}


@contextlib.contextmanager
def behind_the_back(url: str, bypass: bool):
    """A committed connection that bypasses the foreign keys (and, if asked, the capture triggers)."""
    with unchecked(url) as connection:
        if bypass:
            bypass_capture(connection)
        yield connection


def damaged_database(url, client, how: str = "triggers_bypassed"):
    """Through the API: two users, two books, loans. Then, behind its back and unseen by the
    capture triggers: orphans, a row deleted by hand, a user deleted by hand (the database
    cascades), a row updated by hand, a row inserted by hand."""
    ada, alan, gone_user = make_user(client), make_user(client), make_user(client)
    dune, neuromancer = make_book(client, copies=5), make_book(client, copies=5)
    kept = checkout(client, ada, dune)
    deleted_by_hand = checkout(client, ada, neuromancer)
    cascaded = checkout(client, gone_user, dune)
    updated_by_hand = checkout(client, alan, dune)
    HOW_BYPASSED[how](url)
    bypass = how == "triggers_bypassed"
    with behind_the_back(url, bypass) as connection:
        orphan_user = insert_checkout(connection, 4040, dune["id"])
        orphan_book = insert_checkout(connection, alan["id"], 5050, returned=True)
        orphan_both = insert_checkout(connection, 4041, 5051)
    engine = get_engine({"sqlalchemy.url": url})  # on SQLite too, the database cascades
    with engine.begin() as connection:
        if bypass:
            bypass_capture(connection)
        connection.exec_driver_sql(f'DELETE FROM "Checkouts" WHERE id = {deleted_by_hand["id"]}')
        connection.exec_driver_sql(f'DELETE FROM "Users" WHERE id = {gone_user["id"]}')
        connection.exec_driver_sql(f'UPDATE "Checkouts" SET renewals = 2 WHERE id = {updated_by_hand["id"]}')
        by_hand = insert_checkout(connection, alan["id"], neuromancer["id"])
    engine.dispose()
    return {
        "kept": kept["id"],
        "orphans_user": [orphan_user, orphan_both],
        "orphan_book": orphan_book,
        "reconciled": [deleted_by_hand["id"], cascaded["id"]],
        "updated": updated_by_hand["id"],
        "imported": by_hand,
    }


@pytest.mark.parametrize("how", HOW_BYPASSED)
def test_startup_repairs_damage_the_triggers_did_not_see(backend, fresh_database, start_app, how):
    url = fresh_database(backend)
    first, client = start_app(url)
    ids = damaged_database(url, client, how)
    assert drift(url)  # the damage is visible to the replay

    _, restarted = start_app(url)
    health = restarted.get("/health").json
    report = health["cleanup"]
    assert report["full"] is True
    expected_reason = {
        "triggers_dropped": "capture triggers missing or disabled",
        "triggers_bypassed": "checkouts log out of step"
        if backend == "postgresql"
        else "a writer died marked",
    }[how]
    assert any(reason.startswith(expected_reason) for reason in report["reasons"]), report["reasons"]
    assert (report["purged_missing_user"], report["purged_missing_book"]) == (2, 1)
    assert (report["reconciled"], report["imported"], report["updated"]) == (2, 1, 1)
    assert report["first_ids"] == {
        "purged_missing_user": ids["orphans_user"],
        "purged_missing_book": [ids["orphan_book"]],
        "reconciled": ids["reconciled"],
        "imported": [ids["imported"]],
        "updated": [ids["updated"]],
    }
    assert health["constraints"] == {"ok": True, "problems": []}
    assert health["status"] == "ok"

    purged = events_of(url, "purged")
    assert [(cid, data["reason"]) for cid, data in purged] == [
        (ids["orphans_user"][0], "missing_user"),
        (ids["orphans_user"][1], "missing_user"),
        (ids["orphan_book"], "missing_book"),
    ]
    assert purged[2][1]["returnedAt"] == "2026-01-05T10:00:00.000000+00:00"
    external = [(cid, data["reason"]) for cid, data in events_of(url, "deleted")]
    assert external == [(cid, "external") for cid in ids["reconciled"]]
    assert [cid for cid, _ in events_of(url, "imported")] == [ids["imported"]]
    assert [(cid, data["renewals"], data["reason"]) for cid, data in events_of(url, "updated")] == [
        (ids["updated"], 2, "external")
    ]
    assert not drift(url), drift(url).report()
    restarted.get(f"/checkouts/{ids['kept']}", status=200)
    for orphan in [*ids["orphans_user"], ids["orphan_book"]]:
        restarted.get(f"/checkouts/{orphan}", status=404)
        assert restarted.get(f"/checkouts/{orphan}/events").json["items"][-1]["type"] == "purged"
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session:
        assert not capture.missing(session.connection())  # put back by the repair
        assert not capture.stale_mark(session)
    engine.dispose()

    # a second start finds no reason to scan
    _, again = start_app(url)
    report = again.get("/health").json["cleanup"]
    assert (report["full"], report["reasons"]) == (False, [])


def fill(url: str, checkouts: int) -> None:
    """``checkouts`` rows inserted by hand, in one statement: the capture triggers log them."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(
            """INSERT INTO "Users" (name, email, role, "createdAt", "updatedAt")
               VALUES ('Filler', 'filler@example.org', 'member', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"""
        )
        connection.exec_driver_sql(
            """INSERT INTO "Books" (title, author, isbn, copies, "createdAt", "updatedAt")
               VALUES ('Filler', 'Filler', NULL, 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"""
        )
        connection.exec_driver_sql(
            f"""WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {checkouts})
                INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", "returnedAt",
                                         renewals, "createdAt", "updatedAt")
                SELECT (SELECT max(id) FROM "Users"), (SELECT max(id) FROM "Books"), '2026-01-01 00:00:00',
                       '2026-01-15 00:00:00', '2026-01-02 00:00:00', 0, '2026-01-01 00:00:00',
                       '2026-01-01 00:00:00'
                FROM n"""
        )
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql('ANALYZE "Checkouts"; ANALYZE "CheckoutEvents"')
    engine.dispose()


def test_healthy_database_starts_without_scanning(backend, fresh_database, start_app):
    url = fresh_database(backend)
    fill(url, 20_000)
    assert not drift(url)  # the triggers logged the filler: healthy
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread().name == "booknexus-startup":
            statements.append(" ".join(statement.split()))

    sa.event.listen(sa.engine.Engine, "before_cursor_execute", record)
    try:
        _, client = start_app(url)
    finally:
        sa.event.remove(sa.engine.Engine, "before_cursor_execute", record)
    report = client.get("/health").json["cleanup"]
    assert (report["full"], report["reasons"]) == (False, [])
    assert report["purged_missing_user"] == report["imported"] == 0
    # only catalog reads, the lock and the edges of each table and its log: no anti-join, no write
    edges = [" ".join(statement.text.split()) for statement in EDGES.values()]
    cheap = (
        "BEGIN",
        "COMMIT",
        "PRAGMA",
        "SELECT pg_advisory_xact_lock",
        "SELECT 1",
        "SELECT set_config(",
        *edges,
    )
    catalogs = ("sqlite_master", "pg_constraint", "pg_trigger", "pg_catalog", '"LogWriter"')
    scanning = [s for s in statements if not s.startswith(cheap) and not any(c in s for c in catalogs)]
    assert statements and not scanning, scanning
    # one probe per log: loans, holds, items
    assert [statements.count(statement) for statement in edges] == [1, 1, 1]
    if backend == "postgresql":
        engine = sa.create_engine(url)
        with engine.connect() as connection:
            for statement in EDGES.values():
                plan = "\n".join(connection.execute(sa.text(f"EXPLAIN {statement.text}")).scalars())
                assert "Seq Scan" not in plan and "Index" in plan, plan
        engine.dispose()


def test_cleanup_can_be_switched_off(backend, fresh_database, start_app):
    url = fresh_database(backend)
    with behind_the_back(url, bypass=True) as connection:
        insert_checkout(connection, 77, 77)
    _, client = start_app(url, **{"booknexus.cleanup_on_startup": "false"})
    health = client.get("/health").json
    assert health["cleanup"] is None and health["constraints"]["ok"] is True
    assert drift(url).extra  # the orphan is still there, unlogged


def test_constraint_report_names_weak_foreign_keys(backend, fresh_database, start_app, caplog):
    url = fresh_database(backend)
    weaken_foreign_keys(url)
    _, client = start_app(url)
    health = client.get("/health").json
    assert health["status"] == "degraded"
    assert health["cleanup"]["full"] is True  # weak keys admit orphans: the purge must look
    assert any(reason.startswith("foreign keys:") for reason in health["cleanup"]["reasons"])
    assert health["constraints"]["ok"] is False
    problems = health["constraints"]["problems"]
    assert len(problems) == 2
    assert all("is ON DELETE NO ACTION, not CASCADE" in problem for problem in problems)
    assert any('"Checkouts"."userId"' in p for p in problems) and any(
        '"Checkouts"."bookId"' in p for p in problems
    )
    assert "booknexus-fix-fk" in health["constraints"]["fix"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("ON DELETE NO ACTION" in w and "booknexus-fix-fk" in w for w in warnings)


def run_script(name: str, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", f"booknexus.operations.scripts.{name}", str(ROOT / "development.ini"), *args],
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cleanup_and_check_commands(backend, fresh_database, start_app):
    url = fresh_database(backend)
    _, client = start_app(url, **{"booknexus.cleanup_on_startup": "false"})
    ids = damaged_database(url, client)

    check = run_script("check", url)
    assert check.returncode == 1
    assert "missing from the table (live in the log): 2" in check.stdout

    dry = run_script("cleanup", url, "--full", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing changed" in dry.stdout
    assert "cleanup (asked for the full repair)" in dry.stdout
    assert f"purged 2 checkouts of missing users {ids['orphans_user']}" in dry.stdout
    assert run_script("check", url).returncode == 1  # still drifting: nothing was changed

    real = run_script("cleanup", url)  # without --full: the cheap checks find the reason
    assert real.returncode == 0, real.stderr
    assert "imported 1 unlogged" in real.stdout and "resynced 1 changed by hand" in real.stdout
    check = run_script("check", url)
    assert check.returncode == 0, check.stdout
    assert "no drift" in check.stdout
    again = run_script("cleanup", url)
    assert "cleanup: nothing to repair" in again.stdout
    full = run_script("cleanup", url, "--full")
    assert "purged 0 checkouts of missing users" in full.stdout and "resynced 0" in full.stdout


@pytest.mark.parametrize("how", HOW_BYPASSED)
def test_startup_repairs_holds_changed_unseen(backend, fresh_database, start_app, how):
    """Holds get the checkouts' guarantees: hand changes the triggers did not see are found by
    the cheap checks and repaired, and the hold log replays to the table again."""
    url = fresh_database(backend)
    _, client = start_app(url)
    ada, alan = make_user(client), make_user(client)
    books = [make_book(client, copies=1) for _ in range(3)]
    for book in books:
        checkout(client, alan, book)
    deleted, updated = (
        client.post_json("/holds", {"userId": ada["id"], "bookId": b["id"]}).json for b in books[:2]
    )
    HOW_BYPASSED[how](url)
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        if how == "triggers_bypassed":
            bypass_capture(connection)
        connection.exec_driver_sql(f'DELETE FROM "Holds" WHERE id = {deleted["id"]}')
        connection.exec_driver_sql(f"UPDATE \"Holds\" SET status = 'cancelled' WHERE id = {updated['id']}")
        inserted = connection.exec_driver_sql(
            'INSERT INTO "Holds" ("userId", "bookId", status, "placedAt", "createdAt", "updatedAt") '
            f"VALUES ({ada['id']}, {books[2]['id']}, 'waiting', '2026-02-01 09:00:00', "
            "'2026-02-01 09:00:00', '2026-02-01 09:00:00') RETURNING id"
        ).scalar()
    engine.dispose()
    assert drift(url, HOLDS)

    _, restarted = start_app(url)
    report = restarted.get("/health").json["cleanup"]
    expected_reason = {
        "triggers_dropped": "capture triggers missing or disabled",
        "triggers_bypassed": "holds log out of step" if backend == "postgresql" else "a writer died marked",
    }[how]
    assert any(reason.startswith(expected_reason) for reason in report["reasons"]), report["reasons"]
    holds = report["holds"]
    assert (holds["reconciled"], holds["imported"], holds["updated"]) == (1, 1, 1)
    assert holds["first_ids"] == {
        "purged_missing_user": [],
        "purged_missing_book": [],
        "reconciled": [deleted["id"]],
        "imported": [inserted],
        "updated": [updated["id"]],
    }
    assert not drift(url, HOLDS), drift(url, HOLDS).report()
    assert not drift(url), drift(url).report()
    _, again = start_app(url)
    assert again.get("/health").json["cleanup"]["full"] is False
