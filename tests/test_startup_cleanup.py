"""The startup cleanup and constraint check, on real databases the tests damage first."""

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, app_settings, bearer, close_app, librarian_token
from helpers import checkout, make_book, make_user
from legacy import insert_checkout, unchecked, weaken_foreign_keys

import booknexus
from booknexus.db import DATABASE_URL_ENV, get_engine
from booknexus.log.projection import compare


@pytest.fixture
def start_app():
    started = []

    def start(url, **settings):
        app = booknexus.main({}, **app_settings(url, **settings))
        started.append(app)
        return app, webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))

    yield start
    for app in started:
        close_app(app)


def events_of(url: str, type_: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(
            f'SELECT "checkoutId", data FROM "CheckoutEvents" WHERE type = \'{type_}\' ORDER BY id'
        ).all()
    engine.dispose()
    return [(checkout_id, data if isinstance(data, dict) else json.loads(data)) for checkout_id, data in rows]


def drift(url: str):
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session:
        found = compare(session)
    engine.dispose()
    return found


def damaged_database(url, client):
    """Through the API: two users, two books, loans. Then, behind its back: orphans, a row
    deleted by hand, a user deleted by hand (the database cascades), a row inserted by hand."""
    ada, alan, gone_user = make_user(client), make_user(client), make_user(client)
    dune, neuromancer = make_book(client, copies=5), make_book(client, copies=5)
    kept = checkout(client, ada, dune)
    deleted_by_hand = checkout(client, ada, neuromancer)
    cascaded = checkout(client, gone_user, dune)
    with unchecked(url) as connection:
        orphan_user = insert_checkout(connection, 4040, dune["id"])
        orphan_book = insert_checkout(connection, alan["id"], 5050, returned=True)
        orphan_both = insert_checkout(connection, 4041, 5051)
    engine = get_engine({"sqlalchemy.url": url})  # on SQLite too, the database cascades
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DELETE FROM "Checkouts" WHERE id = {deleted_by_hand["id"]}')
        connection.exec_driver_sql(f'DELETE FROM "Users" WHERE id = {gone_user["id"]}')
        by_hand = insert_checkout(connection, alan["id"], neuromancer["id"])
    engine.dispose()
    return {
        "kept": kept["id"],
        "orphans_user": [orphan_user, orphan_both],
        "orphan_book": orphan_book,
        "reconciled": [deleted_by_hand["id"], cascaded["id"]],
        "imported": by_hand,
    }


def test_startup_purges_reconciles_imports_and_reports(backend, fresh_database, start_app):
    url = fresh_database(backend)
    first, client = start_app(url)
    ids = damaged_database(url, client)
    assert drift(url)  # the damage is visible to the replay

    _, restarted = start_app(url)
    health = restarted.get("/health").json
    report = health["cleanup"]
    assert (report["purged_missing_user"], report["purged_missing_book"]) == (2, 1)
    assert (report["reconciled"], report["imported"]) == (2, 1)
    assert report["first_ids"] == {
        "purged_missing_user": ids["orphans_user"],
        "purged_missing_book": [ids["orphan_book"]],
        "reconciled": ids["reconciled"],
        "imported": [ids["imported"]],
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
    assert not drift(url), drift(url).report()
    restarted.get(f"/checkouts/{ids['kept']}", status=200)
    for orphan in [*ids["orphans_user"], ids["orphan_book"]]:
        restarted.get(f"/checkouts/{orphan}", status=404)
        assert restarted.get(f"/checkouts/{orphan}/events").json["items"][-1]["type"] == "purged"

    # a second start finds nothing to do
    _, again = start_app(url)
    report = again.get("/health").json["cleanup"]
    assert [report[k] for k in ("purged_missing_user", "purged_missing_book", "reconciled", "imported")] == [
        0
    ] * 4


def test_cleanup_can_be_switched_off(backend, fresh_database, start_app):
    url = fresh_database(backend)
    with unchecked(url) as connection:
        insert_checkout(connection, 77, 77)
    _, client = start_app(url, **{"booknexus.cleanup_on_startup": "false"})
    health = client.get("/health").json
    assert health["cleanup"] is None and health["constraints"]["ok"] is True
    assert drift(url).extra  # the orphan is still there


def test_constraint_report_names_weak_foreign_keys(backend, fresh_database, start_app, caplog):
    url = fresh_database(backend)
    weaken_foreign_keys(url)
    _, client = start_app(url)
    health = client.get("/health").json
    assert health["status"] == "degraded"
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
        [sys.executable, "-m", f"booknexus.scripts.{name}", str(ROOT / "development.ini"), *args],
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

    dry = run_script("cleanup", url, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "dry run, nothing changed" in dry.stdout
    assert f"purged 2 checkouts of missing users {ids['orphans_user']}" in dry.stdout
    assert run_script("check", url).returncode == 1  # still drifting: nothing was changed

    real = run_script("cleanup", url)
    assert real.returncode == 0, real.stderr
    assert "imported 1 unlogged" in real.stdout
    check = run_script("check", url)
    assert check.returncode == 0, check.stdout
    assert "no drift" in check.stdout
