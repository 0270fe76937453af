"""The foreign keys of "Checkouts", read from the database's own catalog.

Both must exist once, point at the right table, and cascade on delete and on update.
SQLAlchemy's reflection does not report ON DELETE/ON UPDATE of SQLite's inline REFERENCES
clauses, so the catalogs are queried directly.
"""

from dataclasses import dataclass

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

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
            ForeignKey(name, column, table.strip('"'), POSTGRESQL_ACTIONS[delete],
                       POSTGRESQL_ACTIONS[update], validated)
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
