"""booknexus-fix-fk <ini> [--check]: rebuild the foreign keys of "Checkouts" outside Alembic.

For a database at head whose constraints were changed by hand. Purges orphans (logged),
then drops whatever keys "Checkouts"."userId"/"bookId" carry and creates them again with
ON DELETE CASCADE ON UPDATE CASCADE. With --check it only reports: exit 1 if anything is wrong.
"""

import argparse
import sys

from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext

from booknexus.operations.foreign_keys import (
    checkout_foreign_keys,
    problems,
    rebuild,
    sqlite_foreign_key_violations,
    sqlite_foreign_keys_off,
)
from booknexus.operations.scripts import database_of


def report(connection) -> list[str]:
    found = problems(checkout_foreign_keys(connection))
    for problem in found:
        print(f"problem: {problem}")
    if not found:
        print('ok: "Checkouts"."userId" and "bookId" each have one CASCADE/CASCADE foreign key')
    return found


def fix(connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # transactional_ddl: on SQLite too (our connect hook makes its DDL transactional), so the
    # rebuild commits as a whole or not at all
    context = MigrationContext.configure(
        connection, opts={"render_as_batch": sqlite, "transactional_ddl": True}
    )
    with context.begin_transaction():
        for action in rebuild(Operations(context)) or ["nothing to do"]:
            print(action)
        if sqlite and sqlite_foreign_key_violations(connection):
            raise RuntimeError("foreign key check failed after the rebuild; rolled back")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config_uri", help="e.g. production.ini")
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if wrong")
    args = parser.parse_args(argv)
    with database_of(args.config_uri) as engine:
        with engine.connect() as connection:
            found = report(connection)
            connection.rollback()
            if args.check:
                return 1 if found else 0
            if engine.dialect.name == "sqlite":
                with sqlite_foreign_keys_off(connection):
                    fix(connection)
            else:
                fix(connection)
            return 1 if report(connection) else 0


if __name__ == "__main__":
    sys.exit(main())
