"""`alembic -c production.ini upgrade head` runs with the bulk commands' time limits, not a
request's, and a concurrent index build that was cut short is built again, not skipped.

Each upgrade here is the operator's command in a process of its own, on an ini that is
production.ini with a few settings changed (PasteDeploy's ``use = config:``): the request's
``statement_timeout`` is set far below what a migration's statements need, as a database large
enough for 10s to be too short would have it.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from conftest import ROOT, alembic_config, migrate
from test_migrations import build_legacy, legacy_ddl

from booknexus.db.engines import DATABASE_URL_ENV
from booknexus.operations.foreign_keys import checkout_foreign_keys, problems

pytestmark = pytest.mark.slow

REQUEST_LIMIT = "50ms"  # the request's statement_timeout here: every bulk statement takes longer

SHOW_LIMITS = '''"""Record the limits a migration's statements run with."""

import sqlalchemy as sa

from alembic import op

revision = "limits_seen"
down_revision = "{head}"
branch_labels = None
depends_on = None


def seen(place):
    connection = op.get_bind()
    statement = connection.exec_driver_sql("SHOW statement_timeout").scalar_one()
    lock = connection.exec_driver_sql("SHOW lock_timeout").scalar_one()
    connection.execute(
        sa.text('INSERT INTO "LimitsSeen" VALUES (:place, :statement, :lock)'),
        {{"place": place, "statement": statement, "lock": lock}},
    )


def upgrade():
    op.execute('CREATE TABLE "LimitsSeen" (place text, statement_timeout text, lock_timeout text)')
    seen("revision")
    with op.get_context().autocommit_block():  # where CREATE INDEX CONCURRENTLY runs
        seen("autocommit")


def downgrade():
    op.execute('DROP TABLE "LimitsSeen"')
'''


def production_ini(tmp_path: Path, extra_versions: Path | None = None, **settings: str) -> Path:
    """production.ini with ``settings`` changed, migrating with alembic/ (and the revisions in
    ``extra_versions``), logging alembic's lines as plain text."""
    changed = "\n".join(f"{key} = {value}" for key, value in settings.items())
    versions = str(ROOT / "alembic" / "versions")
    if extra_versions is not None:
        versions += os.pathsep + str(extra_versions)
    ini = tmp_path / "limits.ini"
    ini.write_text(f"""[app:main]
use = config:{ROOT / "production.ini"}#main
{changed}

[alembic]
script_location = {ROOT / "alembic"}
version_locations = {versions}
path_separator = os

[loggers]
keys = root, alembic

[handlers]
keys = console

[formatters]
keys = plain

[logger_root]
level = WARN
handlers = console

[logger_alembic]
level = INFO
handlers =
qualname = alembic

[handler_console]
class = StreamHandler
args = (sys.stderr,)
formatter = plain

[formatter_plain]
format = %(levelname)s %(name)s %(message)s
""")
    return ini


def upgrade(ini: Path, url: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ini), "upgrade", "head"],
        check=False,
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )


def rows(url: str, statement: str) -> list[tuple]:
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        found = [tuple(row) for row in connection.exec_driver_sql(statement)]
    engine.dispose()
    return found


def index_validity(url: str) -> dict[str, bool]:
    """Every index on the BookNexus tables, by name: whether it is valid."""
    return dict(
        rows(
            url,
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema()",
        )
    )


@pytest.mark.parametrize(
    ("settings", "statement_timeout", "lock_timeout"),
    [
        ({}, "30min", "10s"),  # production.ini's bulk_statement_timeout, the migration lock default
        (
            {"booknexus.db.bulk_statement_timeout": "7min", "booknexus.migration_lock_timeout": "3s"},
            "7min",
            "3s",
        ),
    ],
    ids=["production.ini", "changed"],
)
def test_a_migration_runs_with_the_bulk_limits(
    empty_database, tmp_path, settings, statement_timeout, lock_timeout
):
    url = empty_database("postgresql")
    extra = tmp_path / "versions"
    extra.mkdir()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    (extra / "limits_seen.py").write_text(SHOW_LIMITS.format(head=head))
    ini = production_ini(tmp_path, extra, **{"booknexus.db.statement_timeout": REQUEST_LIMIT, **settings})

    run = upgrade(ini, url)

    assert run.returncode == 0, run.stderr
    seen = rows(url, 'SELECT place, statement_timeout, lock_timeout FROM "LimitsSeen" ORDER BY place')
    assert seen == [
        ("autocommit", statement_timeout, lock_timeout),
        ("revision", statement_timeout, lock_timeout),
    ]
    assert f"statement_timeout={statement_timeout}" in run.stderr, run.stderr
    assert f"lock_timeout={lock_timeout}" in run.stderr, run.stderr


def test_an_index_left_invalid_by_an_interrupted_build_is_built_again(empty_database):
    """A CREATE INDEX CONCURRENTLY stopped by its statement_timeout (here while it waits for a
    writer to finish) leaves the index in the catalogue, INVALID: never used by a query, still
    updated by every write. The next upgrade must not take it for done."""
    url = empty_database("postgresql")
    build_legacy(url, "sequelize")
    migrate(url, "0002")  # 0003 builds "ix_Checkouts_userId" and "ix_Checkouts_bookId" concurrently
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as writer, engine.connect() as builder:
        writer.exec_driver_sql("BEGIN")
        writer.exec_driver_sql('LOCK TABLE "Checkouts" IN ROW EXCLUSIVE MODE')
        builder.exec_driver_sql("SET statement_timeout = '300ms'")
        with pytest.raises(sa.exc.OperationalError, match="statement timeout"):
            builder.exec_driver_sql(
                'CREATE INDEX CONCURRENTLY "ix_Checkouts_userId" ON "Checkouts" ("userId")'
            )
        writer.exec_driver_sql("ROLLBACK")
    engine.dispose()
    assert index_validity(url)["ix_Checkouts_userId"] is False  # the interrupted build's leftover

    migrate(url)

    validity = index_validity(url)
    assert validity["ix_Checkouts_userId"] is True
    assert validity["ix_Checkouts_bookId"] is True
    assert [name for name, valid in validity.items() if not valid] == []


LARGE = 200_000  # checkouts: the 0002 import of these takes far longer than REQUEST_LIMIT
ORPHANS = 2_000  # every hundredth loan's reader is gone: 0003 purges them


def test_a_large_legacy_database_upgrades_with_production_limits(empty_database, tmp_path):
    url = empty_database("postgresql")
    users = LARGE // 10
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("SET session_replication_role = replica")  # the orphans in
        for statement in legacy_ddl("postgresql", "sequelize"):
            connection.exec_driver_sql(statement)
        connection.exec_driver_sql(
            'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
            f"SELECT 'User ' || n, 'user' || n || '@example.org', now(), now() FROM generate_series(1, {users}) n"
        )
        connection.exec_driver_sql(
            'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") '
            "SELECT 'Book ' || n, 'Author ' || n, 1000, now(), now() FROM generate_series(1, 1000) n"
        )
        connection.exec_driver_sql(
            'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", '
            '"createdAt", "updatedAt") '
            f"SELECT CASE WHEN mod(n, {LARGE // ORPHANS}) = 0 THEN {users} + n ELSE 1 + mod(n, {users}) END, "
            "1 + mod(n, 1000), now(), now() + interval '14 days', CASE WHEN mod(n, 3) = 0 THEN now() END, now(), now() "
            f"FROM generate_series(1, {LARGE}) n"
        )
    engine.dispose()
    ini = production_ini(tmp_path, **{"booknexus.db.statement_timeout": REQUEST_LIMIT})

    run = upgrade(ini, url)

    assert run.returncode == 0, run.stderr[-3000:]
    assert "statement_timeout=30min" in run.stderr
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rows(url, "SELECT version_num FROM alembic_version") == [(head,)]
    assert rows(url, 'SELECT count(*) FROM "Checkouts"') == [(LARGE - ORPHANS,)]
    open_loans = rows(url, 'SELECT count(*) FROM "Checkouts" WHERE "returnedAt" IS NULL')[0][0]
    assert open_loans > 0
    assert rows(url, 'SELECT type, count(*) FROM "CheckoutEvents" GROUP BY type ORDER BY type') == [
        ("imported", LARGE),
        ("purged", ORPHANS),
        ("updated", open_loans),  # 0017: each open loan given its item
    ]
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        assert problems(checkout_foreign_keys(connection)) == []
    engine.dispose()
    assert [name for name, valid in index_validity(url).items() if not valid] == []
