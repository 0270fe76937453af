"""Alembic takes any legacy BookNexus database (Node/Sequelize) to a clean head."""

import json
import os
import subprocess
import sys
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import ROOT, alembic_config, downgrade, migrate

from booknexus.circulation.eventlog.projection import compare
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
