"""Alembic takes any legacy BookNexus database (Node/Sequelize) to a clean head."""

import json
import logging
import os
import subprocess
import sys
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from conftest import ROOT, alembic_config, database_url_env, downgrade, migrate

from alembic import command
from booknexus.circulation.eventlog.projection import compare, compare_all
from booknexus.db.engines import DATABASE_URL_ENV, get_engine
from booknexus.operations.foreign_keys import checkout_foreign_keys, problems

pytestmark = pytest.mark.slow

FK_STATES = ["absent", "sequelize", "duplicate", "hand_named", "cascade"]

REFERENCES = {
    "absent": ("", ""),
    "sequelize": ('REFERENCES "Users" (id) ON UPDATE CASCADE', 'REFERENCES "Books" (id) ON UPDATE CASCADE'),
    "duplicate": ('REFERENCES "Users" (id) ON UPDATE CASCADE', 'REFERENCES "Books" (id) ON UPDATE CASCADE'),
    "hand_named": (
        'CONSTRAINT checkout_user FOREIGN KEY ("userId") REFERENCES "Users" (id)',
        'CONSTRAINT checkout_book FOREIGN KEY ("bookId") REFERENCES "Books" (id)',
    ),
    "cascade": (
        'REFERENCES "Users" (id) ON DELETE CASCADE ON UPDATE CASCADE',
        'REFERENCES "Books" (id) ON DELETE CASCADE ON UPDATE CASCADE',
    ),
}


def legacy_ddl(dialect: str, fk_state: str) -> list[str]:
    """What Sequelize's sync() left behind (varchar(255), no timestamp defaults)."""
    serial = "SERIAL PRIMARY KEY" if dialect == "postgresql" else "INTEGER PRIMARY KEY AUTOINCREMENT"
    ts = "TIMESTAMP WITH TIME ZONE"
    user_ref, book_ref = REFERENCES[fk_state]
    inline = fk_state != "hand_named"
    extra = ""
    if fk_state == "duplicate" and dialect == "sqlite":  # SQLite: both keys in CREATE TABLE
        extra = (
            ', FOREIGN KEY ("userId") REFERENCES "Users" (id) ON UPDATE CASCADE'
            ', FOREIGN KEY ("bookId") REFERENCES "Books" (id) ON UPDATE CASCADE'
        )
    statements = [
        f'CREATE TABLE "Users" (id {serial}, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL '
        f'UNIQUE, "createdAt" {ts} NOT NULL, "updatedAt" {ts} NOT NULL)',
        f'CREATE TABLE "Books" (id {serial}, title VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, '
        f'isbn VARCHAR(255) UNIQUE, copies INTEGER DEFAULT 1, "createdAt" {ts} NOT NULL, '
        f'"updatedAt" {ts} NOT NULL)',
        f'CREATE TABLE "Checkouts" (id {serial}, '
        f'"userId" INTEGER NOT NULL {user_ref if inline else ""}, '
        f'"bookId" INTEGER NOT NULL {book_ref if inline else ""}, '
        f'"checkedOutAt" {ts}, "dueAt" {ts}, "returnedAt" {ts}, "createdAt" {ts} NOT NULL, '
        f'"updatedAt" {ts} NOT NULL' + ("" if inline else f", {user_ref}, {book_ref}") + extra + ")",
    ]
    if fk_state == "duplicate" and dialect == "postgresql":
        statements += [
            'ALTER TABLE "Checkouts" ADD FOREIGN KEY ("userId") REFERENCES "Users" (id) ON UPDATE CASCADE',
            'ALTER TABLE "Checkouts" ADD FOREIGN KEY ("bookId") REFERENCES "Books" (id) ON UPDATE CASCADE',
        ]
    return statements


T0 = "2026-01-01 10:00:00+00"
T1 = "2026-01-15 10:00:00+00"
T2 = "2026-01-10 09:30:00+00"
# (id, userId, bookId, returnedAt); users 1-3 and books 1-3 exist
CHECKOUTS = [
    (1, 1, 1, None),
    (2, 2, 1, T2),
    (3, 4, 2, None),  # the orphan of the original crash: user 4 is gone
    (4, 3, 99, T2),  # book 99 is gone
    (5, 3, 3, None),
    (6, 5, 98, None),  # both gone
]
ORPHANS = {3: "missing_user", 4: "missing_book", 6: "missing_user"}


def build_legacy(url: str, fk_state: str) -> None:
    engine = sa.create_engine(url)
    dialect = engine.dialect.name
    t0 = T0 if dialect == "postgresql" else "2026-01-01 10:00:00.000000"
    with engine.connect() as connection:
        if dialect == "postgresql":
            connection.exec_driver_sql("SET session_replication_role = replica")  # orphans in
        for statement in legacy_ddl(dialect, fk_state):
            connection.exec_driver_sql(statement)
        for i in (1, 2, 3):
            connection.exec_driver_sql(
                f'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
                f"VALUES ('User {i}', 'user{i}@example.org', '{t0}', '{t0}')"
            )
            connection.exec_driver_sql(
                f'INSERT INTO "Books" (title, author, isbn, copies, "createdAt", "updatedAt") '
                f"VALUES ('Book {i}', 'Author {i}', NULL, 2, '{t0}', '{t0}')"
            )
        for checkout_id, user_id, book_id, returned in CHECKOUTS:
            returned_sql = "NULL" if returned is None else f"'{sqlite_ts(returned, dialect)}'"
            connection.exec_driver_sql(
                'INSERT INTO "Checkouts" (id, "userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", '
                f'"createdAt", "updatedAt") VALUES ({checkout_id}, {user_id}, {book_id}, '
                f"'{t0}', '{sqlite_ts(T1, dialect)}', {returned_sql}, '{t0}', '{t0}')"
            )
        if dialect == "postgresql":
            connection.exec_driver_sql("SELECT setval('\"Checkouts_id_seq\"', 6)")
        connection.commit()
    engine.dispose()


def sqlite_ts(value: str, dialect: str) -> str:
    if dialect == "postgresql":
        return value
    return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M:%S.%f")


def query(url: str, sql: str) -> list:
    engine = get_engine({"sqlalchemy.url": url})
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(sql).all()
    engine.dispose()
    return rows


def head_state(url: str) -> dict:
    engine = get_engine({"sqlalchemy.url": url})
    with engine.connect() as connection:
        fks = checkout_foreign_keys(connection)
        indexes = {ix["name"] for ix in sa.inspect(connection).get_indexes("Checkouts")}
        with sa.orm.Session(bind=connection) as session:
            drift = compare(session)
        version = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one()
    engine.dispose()
    return {"fks": fks, "indexes": indexes, "drift": drift, "version": version}


def run_check(url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "booknexus.operations.scripts.check", str(ROOT / "production.ini")],
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("fk_state", FK_STATES)
def test_legacy_database_upgrades_to_a_clean_head(backend, empty_database, fk_state):
    url = empty_database(backend)
    build_legacy(url, fk_state)
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        before = checkout_foreign_keys(connection)
    engine.dispose()
    assert len(before) == {"absent": 0, "duplicate": 4}.get(fk_state, 2)  # the legacy shape is real

    migrate(url)

    state = head_state(url)
    assert state["version"] == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert problems(state["fks"]) == []
    assert sorted((fk.name, fk.column) for fk in state["fks"]) == [
        ("fk_Checkouts_bookId_Books", "bookId"),
        ("fk_Checkouts_userId_Users", "userId"),
    ]
    assert {"ix_Checkouts_userId", "ix_Checkouts_bookId"} <= state["indexes"]
    assert not state["drift"], state["drift"].report()

    rows = query(
        url, 'SELECT id, "userId", "bookId", "returnedAt" IS NULL, renewals FROM "Checkouts" ORDER BY id'
    )
    expected = [(i, u, b, r is None, 0) for i, u, b, r in CHECKOUTS if i not in ORPHANS]
    assert [tuple(row) for row in rows] == expected
    due = query(url, 'SELECT "dueAt" FROM "Checkouts" WHERE id = 1')[0][0]
    assert str(due).startswith("2026-01-15 10:00:00")

    events = query(url, 'SELECT "checkoutId", type, data FROM "CheckoutEvents" ORDER BY id')
    decoded = [
        (cid, kind, data if isinstance(data, dict) else json.loads(data)) for cid, kind, data in events
    ]
    assert [(cid, kind) for cid, kind, _ in decoded if kind == "imported"] == [
        (i, "imported") for i, *_ in CHECKOUTS
    ]
    assert {cid: data["reason"] for cid, kind, data in decoded if kind == "purged"} == ORPHANS

    check = run_check(url)
    assert check.returncode == 0, check.stdout + check.stderr

    # the database now cascades, so no new orphan can appear
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        connection.exec_driver_sql('DELETE FROM "Users" WHERE id = 1')
    engine.dispose()
    assert query(url, 'SELECT * FROM "Checkouts" WHERE "userId" = 1') == []

    # ids of deleted checkouts are never handed out again
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        new_id = connection.exec_driver_sql(
            'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", "createdAt", '
            "\"updatedAt\") VALUES (2, 2, '2026-02-01 00:00:00', '2026-02-01 00:00:00', "
            "'2026-02-01 00:00:00', '2026-02-01 00:00:00') RETURNING id"
        ).scalar_one()
    engine.dispose()
    assert new_id == 7


def test_operators_statements_after_upgrade(empty_database):
    """The statements from the incident report, verbatim, on PostgreSQL."""
    url = empty_database("postgresql")
    build_legacy(url, "sequelize")
    migrate(url)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql('DELETE FROM "Users" WHERE id = 1;')
        assert connection.exec_driver_sql('SELECT * FROM "Checkouts" WHERE "userId" = 1;').all() == []
        assert (
            connection.exec_driver_sql(
                'SELECT * FROM "Checkouts" WHERE "userId" NOT IN (SELECT id FROM "Users");'
            ).all()
            == []
        )
        assert (
            connection.exec_driver_sql(
                'SELECT * FROM "Checkouts" WHERE "bookId" NOT IN (SELECT id FROM "Books");'
            ).all()
            == []
        )
    engine.dispose()


def test_downgrade_to_base_and_upgrade_again_and_twice(backend, empty_database):
    url = empty_database(backend)
    migrate(url)
    downgrade(url, "base")
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert tables <= {"alembic_version", "sqlite_sequence"}
    migrate(url)
    first = head_state(url)
    events_before = query(url, 'SELECT count(*) FROM "CheckoutEvents"')
    migrate(url)  # at head already: changes nothing
    second = head_state(url)
    assert first["fks"] == second["fks"] and first["indexes"] == second["indexes"]
    assert query(url, 'SELECT count(*) FROM "CheckoutEvents"') == events_before
    for revision in ("0002", "0001"):
        downgrade(url, revision)
        migrate(url)
        assert not head_state(url)["drift"]


def test_fix_fk_command(backend, fresh_database):
    from legacy import weaken_foreign_keys

    url = fresh_database(backend)
    weaken_foreign_keys(url)

    def fix_fk(*args):
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "booknexus.operations.scripts.fix_fk",
                str(ROOT / "development.ini"),
                *args,
            ],
            env={**os.environ, DATABASE_URL_ENV: url},
            capture_output=True,
            text=True,
            timeout=120,
        )

    check = fix_fk("--check")
    assert check.returncode == 1 and "ON DELETE NO ACTION, not CASCADE" in check.stdout
    fixed = fix_fk()
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert fix_fk("--check").returncode == 0
    assert problems(head_state(url)["fks"]) == []


def test_concurrent_upgrades_migrate_once(empty_database, tmp_path):
    url = empty_database("postgresql")
    build_legacy(url, "absent")
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "alembic", "-c", str(ROOT / "production.ini"), "upgrade", "head"],
            env={**os.environ, DATABASE_URL_ENV: url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("Running upgrade 0002 -> 0003" in out for out in outputs) == 1, outputs
    purged = query(url, "SELECT count(*) FROM \"CheckoutEvents\" WHERE type = 'purged'")[0][0]
    assert purged == len(ORPHANS)


def test_rolling_back_an_adopted_legacy_database_keeps_the_librarys_data(backend, empty_database):
    """An operator rolling back a failed deploy: `alembic downgrade base` on a database the old
    back end made leaves its users, books and loans in place; upgrading adopts them again."""
    url = empty_database(backend)
    build_legacy(url, "sequelize")
    migrate(url)
    downgrade(url, "base")
    assert query(url, 'SELECT count(*) FROM "Users"') == [(3,)]
    assert query(url, 'SELECT count(*) FROM "Books"') == [(3,)]
    kept = query(url, 'SELECT id FROM "Checkouts" ORDER BY id')
    assert kept == [(1,), (2,), (5,)]  # the orphans were purged by 0003, and logged
    engine = sa.create_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    assert "CheckoutEvents" not in tables and "Holds" not in tables  # what BookNexus made is gone
    migrate(url)
    assert not head_state(url)["drift"]
    assert query(url, 'SELECT count(*) FROM "Checkouts"') == [(3,)]


# A library of the old back end for the items conversion (revision 0017), without orphans:
# every loan must come through. Book 2 has more open loans and ready holds than copies.
LIBRARY_COPIES = {1: 2, 2: 1, 3: 3, 4: 1}
# (id, userId, bookId, returned)
LIBRARY_LOANS = [
    (1, 1, 1, False),
    (2, 2, 1, True),
    (3, 3, 2, False),
    (4, 4, 2, False),
    (5, 5, 3, False),
    (6, 1, 3, True),
    (7, 2, 4, True),
    (8, 6, 2, True),
]
# (userId, bookId, status): put in at revision 0016, the legacy schema having no holds
LIBRARY_HOLDS = [
    (2, 2, "ready"),
    (1, 2, "waiting"),
    (6, 3, "ready"),
    (2, 3, "waiting"),
    (3, 1, "waiting"),
    (4, 4, "cancelled"),
]
# every book's items after the upgrade: copies first, then the loans' and ready holds' items
LIBRARY_ITEMS = {
    1: ["checked_out", "available"],
    2: ["checked_out", "checked_out", "on_hold_shelf"],  # the anomaly: two items created
    3: ["checked_out", "on_hold_shelf", "available"],
    4: ["available"],
}


def build_legacy_library(url: str) -> None:
    engine = sa.create_engine(url)
    dialect = engine.dialect.name
    t0, t1, t2 = (sqlite_ts(value, dialect) for value in (T0, T1, T2))
    with engine.begin() as connection:
        for statement in legacy_ddl(dialect, "sequelize"):
            connection.exec_driver_sql(statement)
        for i in range(1, 7):
            connection.exec_driver_sql(
                'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
                f"VALUES ('Reader {i}', 'reader{i}@example.org', '{t0}', '{t0}')"
            )
        for book_id, copies in LIBRARY_COPIES.items():
            connection.exec_driver_sql(
                'INSERT INTO "Books" (id, title, author, isbn, copies, "createdAt", "updatedAt") '
                f"VALUES ({book_id}, 'Book {book_id}', 'Author', NULL, {copies}, '{t0}', '{t0}')"
            )
        for checkout_id, user_id, book_id, returned in LIBRARY_LOANS:
            returned_sql = f"'{t2}'" if returned else "NULL"
            connection.exec_driver_sql(
                'INSERT INTO "Checkouts" (id, "userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", '
                f'"createdAt", "updatedAt") VALUES ({checkout_id}, {user_id}, {book_id}, '
                f"'{t0}', '{t1}', {returned_sql}, '{t0}', '{t0}')"
            )
        if dialect == "postgresql":
            connection.exec_driver_sql("SELECT setval('\"Books_id_seq\"', 4)")
            connection.exec_driver_sql("SELECT setval('\"Checkouts_id_seq\"', 8)")
    engine.dispose()


def add_library_holds(url: str) -> None:
    """The holds, written by hand at revision 0016 (its capture triggers log them)."""
    engine = sa.create_engine(url)
    stamp, expires = (sqlite_ts(value, engine.dialect.name) for value in (T2, T1))
    with engine.begin() as connection:
        for user_id, book_id, status in LIBRARY_HOLDS:
            ready_at, expires_at, ended_at = {
                "ready": (f"'{stamp}'", f"'{expires}'", "NULL"),
                "waiting": ("NULL", "NULL", "NULL"),
            }.get(status, ("NULL", "NULL", f"'{stamp}'"))
            connection.exec_driver_sql(
                'INSERT INTO "Holds" ("userId", "bookId", status, "placedAt", "readyAt", "expiresAt", '
                f'"endedAt", "createdAt", "updatedAt") VALUES ({user_id}, {book_id}, \'{status}\', '
                f"'{stamp}', {ready_at}, {expires_at}, {ended_at}, '{stamp}', '{stamp}')"
            )
    engine.dispose()


def items_ini(tmp_path, **settings) -> Config:
    """An ini with the app's settings given and nothing else (no logging: caplog sees alembic)."""
    lines = "".join(f"booknexus.items.{key} = {value}\n" for key, value in settings.items())
    ini = tmp_path / "items.ini"
    ini.write_text(
        "[app:main]\nuse = egg:booknexus\nsqlalchemy.url = sqlite://\n"
        f"{lines}\n[alembic]\nscript_location = {ROOT / 'alembic'}\n"
    )
    return Config(str(ini))


def drifts(url: str) -> list:
    engine = get_engine({"sqlalchemy.url": url})
    with engine.connect() as connection, sa.orm.Session(bind=connection) as session:
        found = compare_all(session)
    engine.dispose()
    return found


def test_the_items_upgrade_keeps_every_loan_and_lends_each_an_item(backend, empty_database, tmp_path, caplog):
    url = empty_database(backend)
    build_legacy_library(url)
    migrate(url, "0016")
    add_library_holds(url)
    loans_before = query(
        url, 'SELECT id, "userId", "bookId", "returnedAt" IS NULL FROM "Checkouts" ORDER BY id'
    )
    assert [tuple(row) for row in loans_before] == [(i, u, b, not r) for i, u, b, r in LIBRARY_LOANS]

    # the ini of the first upgrade configured logging, taking caplog's handler off the root logger
    alembic_log = logging.getLogger("alembic")
    alembic_log.addHandler(caplog.handler)
    try:
        with database_url_env(url):
            command.upgrade(items_ini(tmp_path), "head")  # no barcode_prefix setting: BN
    finally:
        alembic_log.removeHandler(caplog.handler)

    # every loan is still there, as it was
    loans = query(
        url,
        'SELECT id, "userId", "bookId", "returnedAt" IS NULL, "itemId", "branchId" FROM "Checkouts" ORDER BY id',
    )
    assert [tuple(row[:4]) for row in loans] == [tuple(row) for row in loans_before]
    assert [(row[0], row[4], row[5]) for row in loans if not row[3]] == [
        (i, None, None) for i, _, _, returned in LIBRARY_LOANS if returned
    ]
    items = {
        row[0]: tuple(row[1:])
        for row in query(
            url, 'SELECT id, "bookId", barcode, status, "homeBranchId", "currentBranchId" FROM "Items"'
        )
    }
    # every open loan has an item of its own book, checked out, at the default branch; none shares one
    open_loans = [row for row in loans if row[3]]
    assert len(open_loans) == 4
    for checkout_id, _, book_id, _, item_id, branch_id in open_loans:
        assert items[item_id][0] == book_id and items[item_id][2] == "checked_out", checkout_id
        assert branch_id == 1
    assert len({row[4] for row in open_loans}) == len(open_loans)
    # ready holds have an item of their book on the hold shelf; the open ones pick up at the default branch
    holds = query(url, 'SELECT "bookId", status, "itemId", "pickupBranchId" FROM "Holds" ORDER BY id')
    ready = [row for row in holds if row[1] == "ready"]
    assert [(book_id, items[item_id][2]) for book_id, _, item_id, _ in ready] == [
        (2, "on_hold_shelf"),
        (3, "on_hold_shelf"),
    ]
    assert all(items[item_id][0] == book_id for book_id, _, item_id, _ in ready)
    assert {row[2] for row in ready}.isdisjoint(row[4] for row in open_loans)
    assert [(status, item_id, branch) for _, status, item_id, branch in holds if status != "ready"] == [
        ("waiting", None, 1),
        ("waiting", None, 1),
        ("waiting", None, 1),
        ("cancelled", None, None),
    ]
    # every book has exactly ``copies`` items not withdrawn; the anomaly's copies were raised to match
    copies = dict(query(url, 'SELECT id, copies FROM "Books"'))
    assert copies == {**LIBRARY_COPIES, 2: 3}
    per_book = {}
    for book_id, barcode, status, home, current in sorted(items.values(), key=lambda item: item[1]):
        per_book.setdefault(book_id, []).append(status)
        assert (home, current) == (1, 1)
        assert barcode.startswith(f"BN{book_id}-")
    assert per_book == LIBRARY_ITEMS
    assert {book_id: len(statuses) for book_id, statuses in per_book.items()} == copies
    assert sorted(barcode for _, barcode, *_ in items.values()) == sorted(
        f"BN{book_id}-{n}" for book_id, count in copies.items() for n in range(1, count + 1)
    )
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "items:" in r.getMessage()
    ]
    assert warnings == [
        "items: 1 books had more open loans and ready holds than copies: "
        "their missing items were created and their copies raised to match"
    ]

    # the logs learnt it all, and replay of each gives its table back
    created = query(url, 'SELECT "itemId" FROM "ItemEvents" WHERE type = \'created\' ORDER BY "itemId"')
    assert [row[0] for row in created] == sorted(items)
    for table, key, expected in (
        ("CheckoutEvents", "checkoutId", sorted(row[0] for row in open_loans)),
        ("HoldEvents", "holdId", [1, 2, 3, 4, 5]),
    ):
        updated = query(url, f'SELECT "{key}", data FROM "{table}" WHERE type = \'updated\' ORDER BY "{key}"')
        decoded = [
            (record_id, data if isinstance(data, dict) else json.loads(data)) for record_id, data in updated
        ]
        assert [record_id for record_id, data in decoded if data["reason"] == "items"] == expected, table
    found = drifts(url)
    assert [drift.stream.name for drift in found] == ["checkouts", "holds", "items"]
    assert not any(found), "\n".join(drift.report() for drift in found)


@pytest.mark.parametrize("prefix", ["B N", "X" * 17, "BN_"], ids=["space", "too long", "underscore"])
def test_a_bad_barcode_prefix_stops_the_items_upgrade(backend, empty_database, tmp_path, prefix):
    url = empty_database(backend)
    build_legacy_library(url)
    migrate(url, "0016")
    with database_url_env(url), pytest.raises(ValueError, match="booknexus.items.barcode_prefix = "):
        command.upgrade(items_ini(tmp_path, barcode_prefix=prefix), "head")
    assert query(url, "SELECT version_num FROM alembic_version") == [("0016",)]
    engine = sa.create_engine(url)
    assert "Items" not in sa.inspect(engine).get_table_names()
    engine.dispose()
    assert query(url, 'SELECT count(*) FROM "Checkouts"') == [(len(LIBRARY_LOANS),)]
