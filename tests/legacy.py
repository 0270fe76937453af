"""Damage a database behind the app's back: orphans, hand-made deletes, weak foreign keys."""

import contextlib

import sqlalchemy as sa


@contextlib.contextmanager
def unchecked(url: str):
    """A connection on which foreign keys are not enforced, committed at the end."""
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # replica mode skips the FK triggers: how orphans got in before the FKs existed
            connection.exec_driver_sql("SET session_replication_role = replica")
        else:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
        yield connection
        connection.commit()
    engine.dispose()


def bypass_capture(connection) -> None:
    """Write behind the capture triggers' back for the rest of the transaction, the foreign
    keys still acting: the app's mark, borrowed by a writer that does not log (on SQLite, as a
    writer that died marked leaves it). The way a log can still get out of step."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT set_config('booknexus.app_write', 'on', true)")
    else:
        connection.exec_driver_sql('INSERT OR IGNORE INTO "LogWriter" (id) VALUES (1)')


def insert_checkout(connection, user_id: int, book_id: int, returned: bool = False) -> int:
    now = "2026-01-01 10:00:00.000000"
    returned_at = "'2026-01-05 10:00:00.000000'" if returned else "NULL"
    if connection.dialect.name == "postgresql":
        now = "2026-01-01 10:00:00+00"
        returned_at = "'2026-01-05 10:00:00+00'" if returned else "NULL"
    return connection.exec_driver_sql(
        'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", '
        f"renewals, \"createdAt\", \"updatedAt\") VALUES ({user_id}, {book_id}, '{now}', '{now}', "
        f"{returned_at}, 0, '{now}', '{now}') RETURNING id"
    ).scalar_one()


def weaken_foreign_keys(url: str) -> None:
    """Replace the CASCADE foreign keys with Sequelize's defaults (ON UPDATE CASCADE only)."""
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            for column, table in (("userId", "Users"), ("bookId", "Books")):
                connection.exec_driver_sql(
                    f'ALTER TABLE "Checkouts" DROP CONSTRAINT "fk_Checkouts_{column}_{table}"'
                )
                connection.exec_driver_sql(
                    f'ALTER TABLE "Checkouts" ADD CONSTRAINT "Checkouts_{column}_fkey" '
                    f'FOREIGN KEY ("{column}") REFERENCES "{table}" (id) ON UPDATE CASCADE'
                )
    if engine.dialect.name == "sqlite":
        with unchecked(url) as connection:
            sql = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'Checkouts'"
            ).scalar_one()
            weak = sql.replace("ON DELETE CASCADE ON UPDATE CASCADE", "ON UPDATE CASCADE")
            weak = weak.replace("TABLE IF NOT EXISTS", "TABLE")
            weak = weak.replace('TABLE "Checkouts"', 'TABLE "Checkouts_weak"')
            connection.exec_driver_sql(weak)
            connection.exec_driver_sql('INSERT INTO "Checkouts_weak" SELECT * FROM "Checkouts"')
            connection.exec_driver_sql('DROP TABLE "Checkouts"')
            # the logs' triggers name "Checkouts": SQLite would check them against the missing table
            connection.exec_driver_sql("PRAGMA legacy_alter_table = ON")
            connection.exec_driver_sql('ALTER TABLE "Checkouts_weak" RENAME TO "Checkouts"')
    engine.dispose()
