"""Purge orphaned checkouts and rebuild the foreign keys of Checkouts as CASCADE/CASCADE.

Legacy databases carry no foreign keys, Sequelize's (ON UPDATE CASCADE only, sometimes
twice on one column) or hand-made ones, and may hold orphans that would make adding a key
fail (`Key (userId)=(4) is not present in table "Users"`). Orphans are deleted first, each
logged as `purged`; then whatever keys exist are dropped and the two CASCADE/CASCADE keys
and their indexes created. Existing keys are found by introspection, never by name.

Frozen in time: the SQL below is this revision's own, as it was on its day
(booknexus-fix-fk does the same work with the application's current code).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import logging

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")

EXPECTED = {"userId": "Users", "bookId": "Books"}  # column -> referred table
MISSING = {"missing_user": ('"Users"', '"userId"'), "missing_book": ('"Books"', '"bookId"')}
ISO = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'
COLUMNS = '"checkoutId", "userId", "bookId", type, "occurredAt", data'


def _orphan(reason: str) -> str:
    table, column = MISSING[reason]
    return f"NOT EXISTS (SELECT 1 FROM {table} p WHERE p.id = c.{column})"


def _purge_postgresql(reason: str) -> int:
    state = ", ".join(
        [
            f"'{name}', to_char(timezone('UTC', gone.\"{name}\"), '{ISO}')"
            for name in ("checkedOutAt", "dueAt", "returnedAt")
        ]
        + ["'renewals', gone.renewals", f"'reason', '{reason}'", "'actor', NULL"]
    )
    op.execute('LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE')
    return (
        op.get_bind()
        .exec_driver_sql(f"""
        WITH gone AS (DELETE FROM "Checkouts" c WHERE {_orphan(reason)} RETURNING c.*),
             appended AS (
                 INSERT INTO "CheckoutEvents" ({COLUMNS})
                 SELECT gone.id, gone."userId", gone."bookId", 'purged', now(), json_build_object({state})
                 FROM gone ORDER BY gone.id RETURNING 1)
        SELECT count(*) FROM appended""")
        .scalar()
    )


def _purge_sqlite(reason: str) -> int:
    connection = op.get_bind()
    state = ", ".join(
        [
            f"'{name}', replace(c.\"{name}\", ' ', 'T') || '+00:00'"
            for name in ("checkedOutAt", "dueAt", "returnedAt")
        ]
        + ["'renewals', c.renewals", f"'reason', '{reason}'", "'actor', NULL"]
    )
    purged = connection.exec_driver_sql(f"""
        INSERT INTO "CheckoutEvents" ({COLUMNS})
        SELECT c.id, c."userId", c."bookId", 'purged', strftime('%Y-%m-%d %H:%M:%f000', 'now'), json_object({state})
        FROM "Checkouts" c WHERE {_orphan(reason)} ORDER BY c.id""").rowcount
    connection.exec_driver_sql(
        f'DELETE FROM "Checkouts" WHERE id IN (SELECT c.id FROM "Checkouts" c WHERE {_orphan(reason)})'
    )
    return purged


def _fk_name(column: str, table: str) -> str:
    return f"fk_Checkouts_{column}_{table}"


def _index_name(column: str) -> str:
    return f"ix_Checkouts_{column}"


def _foreign_keys(connection) -> list[tuple]:
    """(name, column, referred table, on delete, on update, validated) of each key."""
    if connection.dialect.name == "postgresql":
        actions = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}
        rows = connection.exec_driver_sql("""
            SELECT c.conname, a.attname, c.confrelid::regclass::text,
                   c.confdeltype::text, c.confupdtype::text, c.convalidated
            FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
            WHERE c.contype = 'f' AND c.conrelid = '"Checkouts"'::regclass ORDER BY c.conname""")
        return [(n, col, t.strip('"'), actions[d], actions[u], v) for n, col, t, d, u, v in rows]
    names = {
        fk["constrained_columns"][0]: fk["name"]
        for fk in sa.inspect(connection).get_foreign_keys("Checkouts")
        if fk.get("name")
    }
    rows = connection.exec_driver_sql('PRAGMA foreign_key_list("Checkouts")').mappings()
    return [(names.get(r["from"]), r["from"], r["table"], r["on_delete"], r["on_update"], True) for r in rows]


def _needs_rebuild(current: list[tuple]) -> bool:
    for column, table in EXPECTED.items():
        on_column = [fk for fk in current if fk[1] == column]
        if len(on_column) != 1:
            return True
        name, _, referred, on_delete, on_update, validated = on_column[0]
        if (name, referred, on_delete.upper(), on_update.upper(), validated) != (
            _fk_name(column, table),
            table,
            "CASCADE",
            "CASCADE",
            True,
        ):
            return True
    return len(current) != len(EXPECTED)


def _index_is_valid(name: str) -> bool | None:
    """pg_index.indisvalid of the index ``name``; None when there is none."""
    return (
        op.get_bind()
        .execute(
            sa.text("SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass(:name)"),
            {"name": f'"{name}"'},
        )
        .scalar()
    )


def _create_index_concurrently(name: str, on: str) -> None:
    """CREATE INDEX CONCURRENTLY that ends with a valid index. A build cut short (its
    statement_timeout, a cancelled or killed run) leaves the index behind, INVALID: never used
    by a query, still updated by every write, and skipped by IF NOT EXISTS on every rerun.
    Such a leftover is dropped and built again."""
    op.execute(f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{name}" ON {on}')
    if _index_is_valid(name):
        return
    log.warning("index %s was left INVALID by an interrupted build: dropping it and building it again", name)
    op.execute(f'DROP INDEX CONCURRENTLY IF EXISTS "{name}"')
    op.execute(f'CREATE INDEX CONCURRENTLY "{name}" ON {on}')
    if not _index_is_valid(name):
        raise RuntimeError(f"index {name} is still INVALID after building it again")


def _rebuild_postgresql(current: list[tuple], needs_rebuild: bool) -> list[str]:
    done = []
    if needs_rebuild:
        for fk in current:
            op.execute(f'ALTER TABLE "Checkouts" DROP CONSTRAINT "{fk[0]}"')
            done.append(f"dropped {fk[0]}")
        for column, table in EXPECTED.items():
            op.execute(
                f'ALTER TABLE "Checkouts" ADD CONSTRAINT "{_fk_name(column, table)}" '
                f'FOREIGN KEY ("{column}") REFERENCES "{table}" (id) '
                "ON DELETE CASCADE ON UPDATE CASCADE NOT VALID"
            )
            done.append(f"added {_fk_name(column, table)} (CASCADE/CASCADE)")
    # the long check runs in its own transactions, not under ADD CONSTRAINT's strong lock
    with op.get_context().autocommit_block():
        for column in EXPECTED:
            _create_index_concurrently(_index_name(column), f'"Checkouts" ("{column}")')
        if needs_rebuild:
            for column, table in EXPECTED.items():
                op.execute(f'ALTER TABLE "Checkouts" VALIDATE CONSTRAINT "{_fk_name(column, table)}"')
    return done


def _checkouts_table() -> sa.Table:
    """ "Checkouts" as it must be: the target of the SQLite rebuild."""
    metadata = sa.MetaData()
    sa.Table("Users", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table("Books", metadata, sa.Column("id", sa.Integer, primary_key=True))
    timestamp = sa.DateTime(timezone=True)
    return sa.Table(
        "Checkouts",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("userId", sa.Integer, nullable=False),
        sa.Column("bookId", sa.Integer, nullable=False),
        sa.Column("checkedOutAt", timestamp, nullable=False),
        sa.Column("dueAt", timestamp, nullable=False),
        sa.Column("returnedAt", timestamp),
        sa.Column("renewals", sa.Integer, nullable=False, server_default="0"),
        sa.Column("createdAt", timestamp, nullable=False),
        sa.Column("updatedAt", timestamp, nullable=False),
        *(
            sa.ForeignKeyConstraint(
                [column],
                [f"{table}.id"],
                name=_fk_name(column, table),
                ondelete="CASCADE",
                onupdate="CASCADE",
            )
            for column, table in EXPECTED.items()
        ),
        *(sa.Index(_index_name(column), column) for column in EXPECTED),
        sqlite_autoincrement=True,
    )


def _rebuild_sqlite() -> list[str]:
    # Batch mode recreates the table; its sqlite_sequence high-water mark must survive, or
    # the ids of deleted checkouts would be handed out again.
    connection = op.get_bind()
    high_water = connection.exec_driver_sql(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'Checkouts'), 0), "
        'coalesce((SELECT max(id) FROM "Checkouts"), 0))'
    ).scalar_one()
    with op.batch_alter_table(
        "Checkouts",
        copy_from=_checkouts_table(),
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
    ):
        pass
    connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'Checkouts'")
    connection.exec_driver_sql(
        f"INSERT INTO sqlite_sequence (name, seq) VALUES ('Checkouts', {int(high_water)})"
    )
    return ["rebuilt Checkouts with CASCADE/CASCADE foreign keys and their indexes"]


def upgrade():
    connection = op.get_bind()
    postgresql = connection.dialect.name == "postgresql"
    purged = {reason: (_purge_postgresql if postgresql else _purge_sqlite)(reason) for reason in MISSING}
    if any(purged.values()):
        log.info(
            "Checkouts foreign keys: purged %s orphans of missing users, %s of missing books",
            purged["missing_user"],
            purged["missing_book"],
        )
    current = _foreign_keys(connection)
    needs_rebuild = _needs_rebuild(current)
    if postgresql:
        done = _rebuild_postgresql(current, needs_rebuild)
    elif needs_rebuild:
        done = _rebuild_sqlite()
    else:
        done = []
        for column in EXPECTED:
            op.execute(f'CREATE INDEX IF NOT EXISTS "{_index_name(column)}" ON "Checkouts" ("{column}")')
    for action in done:
        log.info("Checkouts foreign keys: %s", action)


def downgrade():
    # Nothing to undo: CASCADE/CASCADE keys and their indexes are valid under revision 0002
    # too (a new database gets exactly these from 0001), the purged orphans pointed at
    # nothing and stay recorded in the log, and restoring a legacy database's weaker keys
    # would only bring back the bug this revision fixes.
    log.info("downgrade 0003: foreign keys and indexes kept as they are")
