"""The foreign keys of "Checkouts", read from the database's own catalog.

Both must exist once, point at the right table, and cascade on delete and on update.
SQLAlchemy's reflection does not report ON DELETE/ON UPDATE of SQLite's inline REFERENCES
clauses, so the catalogs are queried directly.
"""

import contextlib
from dataclasses import dataclass

from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Table,
    UniqueConstraint,
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
    """The keys on "Checkouts"."userId" and "bookId", the ones a legacy database lacked or
    got wrong (the item's and the branch's, revision 0017's own, are not in question)."""
    return [fk for fk in _all_checkout_foreign_keys(connection) if fk.column in EXPECTED]


def _all_checkout_foreign_keys(connection: Connection) -> list[ForeignKey]:
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


def checkouts_table(connection: Connection) -> Table:
    """ "Checkouts" as it is, with the foreign keys it must have instead of the ones it has:
    the target of the SQLite rebuild. Read from the table itself (columns, defaults, checks,
    unique constraints), so a rebuild keeps whatever the schema has grown since."""
    inspector = inspect(connection)
    metadata = MetaData()  # private: names are given explicitly, not by the convention
    Table("Users", metadata, Column("id", Integer, primary_key=True))
    Table("Books", metadata, Column("id", Integer, primary_key=True))
    primary_key = set(inspector.get_pk_constraint("Checkouts")["constrained_columns"])
    columns = [
        Column(
            column["name"],
            column["type"],
            primary_key=column["name"] in primary_key,
            nullable=column["nullable"],
            server_default=text(column["default"]) if column["default"] is not None else None,
        )
        for column in inspector.get_columns("Checkouts")
    ]
    return Table(
        "Checkouts",
        metadata,
        *columns,
        *(
            CheckConstraint(text(check["sqltext"]), name=check.get("name"))
            for check in inspector.get_check_constraints("Checkouts")
        ),
        *(
            UniqueConstraint(*unique["column_names"], name=unique.get("name"))
            for unique in inspector.get_unique_constraints("Checkouts")
        ),
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
        sqlite_autoincrement=True,
    )


# what SQLite drops with a table: its own indexes and triggers (sql is NULL for the indexes
# it makes itself for a primary key or a unique constraint, which the new table makes again)
SQLITE_TABLE_OBJECTS = """
    SELECT type, name, sql FROM sqlite_master
    WHERE tbl_name = 'Checkouts' AND type IN ('index', 'trigger') AND sql IS NOT NULL
    ORDER BY type = 'trigger', name
"""


def _rebuild_sqlite(op) -> list[str]:
    # Batch mode recreates the table; its sqlite_sequence high-water mark must survive, or
    # the ids of deleted checkouts would be handed out again.
    connection = op.get_bind()
    high_water = connection.exec_driver_sql(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'Checkouts'), 0), "
        'coalesce((SELECT max(id) FROM "Checkouts"), 0))'
    ).scalar_one()
    # the capture triggers, 0010's partial index and any other: gone with the old table,
    # made again as they were
    kept = connection.exec_driver_sql(SQLITE_TABLE_OBJECTS).all()
    target = checkouts_table(connection)
    # the logs' triggers name "Checkouts": the rename that ends the rebuild must not check them
    # against a table that is, for that moment, missing
    connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
    with op.batch_alter_table(
        "Checkouts",
        copy_from=target,
        recreate="always",
        table_kwargs={"sqlite_autoincrement": True},
    ):
        pass
    connection.exec_driver_sql("PRAGMA legacy_alter_table = OFF")
    for _type, _name, sql in kept:
        connection.exec_driver_sql(sql)
    for column in EXPECTED:
        connection.exec_driver_sql(
            f'CREATE INDEX IF NOT EXISTS "{_index_name(column)}" ON "Checkouts" ("{column}")'
        )
    connection.exec_driver_sql("DELETE FROM sqlite_sequence WHERE name = 'Checkouts'")
    connection.exec_driver_sql(
        f"INSERT INTO sqlite_sequence (name, seq) VALUES ('Checkouts', {int(high_water)})"
    )
    triggers = sum(type_ == "trigger" for type_, _name, _sql in kept)
    return [
        "rebuilt Checkouts with CASCADE/CASCADE foreign keys and their indexes, "
        f"keeping its {len(kept) - triggers} indexes and {triggers} triggers"
    ]


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
