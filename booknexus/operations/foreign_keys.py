"""The foreign keys of "Checkouts", read from the database's own catalog.

Both must exist once, point at the right table, and cascade on delete and on update.
SQLAlchemy's reflection does not report ON DELETE/ON UPDATE of SQLite's inline REFERENCES
clauses, so the catalogs are queried directly.
"""

import contextlib
from dataclasses import dataclass

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Table,
    inspect,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

FIX_COMMAND = "booknexus-fix-fk <ini> (or: alembic -c <ini> upgrade head)"
EXPECTED = {"userId": "Users", "bookId": "Books"}  # column -> referred table


@dataclass(frozen=True)
class ForeignKey:
    name: str | None  # SQLite's inline constraints may have none
    column: str
    referred_table: str
    on_delete: str
    on_update: str
    validated: bool = True


POSTGRESQL_FOREIGN_KEYS = text("""
    SELECT c.conname, a.attname, c.confrelid::regclass::text,
           c.confdeltype::text, c.confupdtype::text, c.convalidated
    FROM pg_constraint c
    JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
    WHERE c.contype = 'f' AND c.conrelid = '"Checkouts"'::regclass
    ORDER BY c.conname
""")
POSTGRESQL_ACTIONS = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL", "d": "SET DEFAULT"}


def checkout_foreign_keys(connection: Connection) -> list[ForeignKey]:
    if connection.dialect.name == "postgresql":
        return [
            ForeignKey(
                name,
                column,
                table.strip('"'),
                POSTGRESQL_ACTIONS[delete],
                POSTGRESQL_ACTIONS[update],
                validated,
            )
            for name, column, table, delete, update, validated in connection.execute(POSTGRESQL_FOREIGN_KEYS)
        ]
    rows = connection.exec_driver_sql('PRAGMA foreign_key_list("Checkouts")').mappings()
    names = sqlite_constraint_names(connection)
    return [
        ForeignKey(names.get(row["from"]), row["from"], row["table"], row["on_delete"], row["on_update"])
        for row in rows
    ]


def sqlite_constraint_names(connection: Connection) -> dict[str, str]:
    """Names of SQLite's named FK constraints, by column (PRAGMA does not report them)."""
    return {
        fk["constrained_columns"][0]: fk["name"]
        for fk in inspect(connection).get_foreign_keys("Checkouts")
        if fk.get("name")
    }


def problems(foreign_keys: list[ForeignKey]) -> list[str]:
    """What is wrong with the foreign keys of "Checkouts"; empty when all is well."""
    found = []
    for column, table in EXPECTED.items():
        on_column = [fk for fk in foreign_keys if fk.column == column]
        if not on_column:
            found.append(f'"Checkouts"."{column}" has no foreign key to "{table}"')
        if len(on_column) > 1:
            names = ", ".join(str(fk.name) for fk in on_column)
            found.append(f'"Checkouts"."{column}" has {len(on_column)} foreign keys ({names})')
        for fk in on_column:
            label = f'foreign key {fk.name or "(unnamed)"} on "Checkouts"."{column}"'
            if fk.referred_table != table:
                found.append(f'{label} refers to "{fk.referred_table}", not "{table}"')
            if fk.on_delete.upper() != "CASCADE":
                found.append(f"{label} is ON DELETE {fk.on_delete.upper()}, not CASCADE")
            if fk.on_update.upper() != "CASCADE":
                found.append(f"{label} is ON UPDATE {fk.on_update.upper()}, not CASCADE")
            if not fk.validated:
                found.append(f"{label} is NOT VALID (existing rows unchecked)")
    return found


def _index_name(column: str) -> str:
    return f"ix_Checkouts_{column}"


def _fk_name(column: str, table: str) -> str:
    return f"fk_Checkouts_{column}_{table}"  # the naming convention's name, spelled out


def rebuild(op) -> list[str]:
    """Purge orphans, then give "Checkouts" exactly one CASCADE/CASCADE foreign key per
    column, named by the convention, and an index on each. Returns what it did.

    ``op`` is an Alembic ``Operations`` (the FK revision, or booknexus-fix-fk). Existing
    constraints are found by introspection, never by name: a legacy table may carry
    Sequelize's names, hand-made ones, or two on one column. On PostgreSQL the new keys
    are added NOT VALID and validated in their own transactions, so the long check does
    not hold the strong lock of ALTER TABLE ... ADD CONSTRAINT.
    """
    from booknexus.circulation.eventlog import capture
    from booknexus.operations.cleanup import (  # the log's own purge, logged
        CleanupReport,
        purge,
    )

    connection = op.get_bind()
    done = []
    session = Session(bind=connection)
    report = CleanupReport()
    purge(session, report)
    capture.unmark(session)  # the caller's transaction commits without the session
    session.close()
    if report.purged_missing_user or report.purged_missing_book:
        done.append(
            f"purged {report.purged_missing_user} orphans of missing users, "
            f"{report.purged_missing_book} of missing books"
        )
    current = checkout_foreign_keys(connection)
    needs_rebuild = bool(problems(current)) or any(
        fk.name != _fk_name(fk.column, fk.referred_table) for fk in current
    )
    if connection.dialect.name == "postgresql":
        done += _rebuild_postgresql(op, current, needs_rebuild)
    elif needs_rebuild:
        done += _rebuild_sqlite(op)
    else:
        for column in EXPECTED:
            op.execute(f'CREATE INDEX IF NOT EXISTS "{_index_name(column)}" ON "Checkouts" ("{column}")')
    return done


def _rebuild_postgresql(op, current: list[ForeignKey], needs_rebuild: bool) -> list[str]:
    done = []
    if needs_rebuild:
        for fk in current:
            op.execute(f'ALTER TABLE "Checkouts" DROP CONSTRAINT "{fk.name}"')
            done.append(f"dropped {fk.name}")
        for column, table in EXPECTED.items():
            op.execute(
                f'ALTER TABLE "Checkouts" ADD CONSTRAINT "{_fk_name(column, table)}" '
                f'FOREIGN KEY ("{column}") REFERENCES "{table}" (id) '
                "ON DELETE CASCADE ON UPDATE CASCADE NOT VALID"
            )
            done.append(f"added {_fk_name(column, table)} (CASCADE/CASCADE)")
    with op.get_context().autocommit_block():
        for column in EXPECTED:
            op.execute(
                f'CREATE INDEX CONCURRENTLY IF NOT EXISTS "{_index_name(column)}" ON "Checkouts" ("{column}")'
            )
        if needs_rebuild:
            for column, table in EXPECTED.items():
                op.execute(f'ALTER TABLE "Checkouts" VALIDATE CONSTRAINT "{_fk_name(column, table)}"')
    return done


def checkouts_table() -> Table:
    """ "Checkouts" as it must be: the target of the SQLite rebuild."""
    metadata = MetaData()  # private: names are given explicitly, not by the convention
    Table("Users", metadata, Column("id", Integer, primary_key=True))
    Table("Books", metadata, Column("id", Integer, primary_key=True))
    timestamp = DateTime(timezone=True)
    return Table(
        "Checkouts",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("userId", Integer, nullable=False),
        Column("bookId", Integer, nullable=False),
        Column("checkedOutAt", timestamp, nullable=False),
        Column("dueAt", timestamp, nullable=False),
        Column("returnedAt", timestamp),
        Column("renewals", Integer, nullable=False, server_default="0"),
        Column("createdAt", timestamp, nullable=False),
        Column("updatedAt", timestamp, nullable=False),
        *(
            ForeignKeyConstraint(
                [column],
                [f"{table}.id"],
                name=_fk_name(column, table),
                ondelete="CASCADE",
                onupdate="CASCADE",
            )
            for column, table in EXPECTED.items()
        ),
        *(Index(_index_name(column), column) for column in EXPECTED),
        sqlite_autoincrement=True,
    )


def _rebuild_sqlite(op) -> list[str]:
    # Batch mode recreates the table; its sqlite_sequence high-water mark must survive, or
    # the ids of deleted checkouts would be handed out again.
    connection = op.get_bind()
    high_water = connection.exec_driver_sql(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'Checkouts'), 0), "
        'coalesce((SELECT max(id) FROM "Checkouts"), 0))'
    ).scalar_one()
    # the logs' triggers name "Checkouts": the rename that ends the rebuild must not check them
    # against a table that is, for that moment, missing
    connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    with op.batch_alter_table(
        "Checkouts",
        copy_from=checkouts_table(),
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
    ):
        pass
    connection.exec_driver_sql("PRAGMA legacy_alter_table = OFF")
    connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'Checkouts'")
    connection.exec_driver_sql(
        f"INSERT INTO sqlite_sequence (name, seq) VALUES ('Checkouts', {int(high_water)})"
    )
    return ["rebuilt Checkouts with CASCADE/CASCADE foreign keys and their indexes"]


@contextlib.contextmanager
def sqlite_foreign_keys_off(connection: Connection):
    """Foreign keys off for a table rebuild, checked before the caller commits.

    PRAGMA foreign_keys is ignored inside a transaction, so it is set on the raw
    connection before SQLAlchemy begins one.
    """
    raw = connection.connection.driver_connection
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def sqlite_foreign_key_violations(connection: Connection) -> list:
    return connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
