"""Alembic environment: `alembic -c development.ini|production.ini upgrade head`.

The URL comes from the ini's [app:main] section, overridden by BOOKNEXUS_DATABASE_URL.
On PostgreSQL, concurrent runs are serialised by a session-level advisory lock held on a
connection of its own (a transaction-scoped lock would be released by the commit inside
``autocommit_block()``). A migration's statements work through whole tables (0002 imports
every loan, 0003 validates the keys and builds indexes over "Checkouts"), so they run with the
bulk commands' ``statement_timeout`` (``booknexus.db.bulk_statement_timeout``), never a
request's; each waits at most ``booknexus.migration_lock_timeout`` for its locks, so a
revision waiting for a table lock does not queue every request behind it for long.
On SQLite, foreign keys are switched off around the run (table recreation in batch mode
would otherwise cascade) and checked with ``PRAGMA foreign_key_check`` before commit.
"""

import logging
import time
from logging.config import fileConfig

from pyramid.paster import get_appsettings
from sqlalchemy import pool
from sqlalchemy.engine import make_url

from alembic import context
from booknexus.db.engines import database_url, get_engine
from booknexus.db.timeouts import DURATION, Limits
from booknexus.models import Base, in_the_models
from booknexus.operations.foreign_keys import (
    sqlite_foreign_key_violations,
    sqlite_foreign_keys_off,
)

# any constant unique to BookNexus migrations: pg_advisory_lock takes a bigint key
MIGRATION_LOCK_KEY = 0x426F6F6B4E6578  # "BookNex"

config = context.config
if config.config_file_name is not None and config.get_section("loggers"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

settings = get_appsettings(config.config_file_name)
# a migration holds one connection of its own (NullPool): the app's pool sizing does not apply
settings = {
    key: value
    for key, value in settings.items()
    if key not in ("sqlalchemy.pool_size", "sqlalchemy.max_overflow")
}
# for revisions that read the library's settings (0016: the default branch), importing nothing
config.attributes["booknexus.settings"] = settings
target_metadata = Base.metadata


def run_migrations_offline():
    context.configure(url=database_url(settings), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def migration_limits(settings: dict) -> Limits:
    """The bulk commands' statement_timeout; the lock wait of booknexus.migration_lock_timeout."""
    lock_timeout = str(settings.get("booknexus.migration_lock_timeout", "10s")).strip()
    if not DURATION.fullmatch(lock_timeout):
        raise ValueError(
            f"booknexus.migration_lock_timeout = {lock_timeout!r}: give a duration such as 500ms, 5s or 1min"
        )
    return Limits(Limits.bulk(settings).statement_timeout, lock_timeout)


def run_migrations_online():
    if make_url(database_url(settings)).get_backend_name() != "postgresql":
        engine = get_engine(settings, poolclass=pool.NullPool)
        migrate_sqlite(engine)
        engine.dispose()
        return
    limits = migration_limits(settings)
    log.info(
        "migrating with statement_timeout=%s (booknexus.db.bulk_statement_timeout) and "
        "lock_timeout=%s (booknexus.migration_lock_timeout)",
        limits.statement_timeout,
        limits.lock_timeout,
    )
    # the limits ride on every connection's startup packet: nothing the app's engines carry applies
    engine = get_engine(
        settings, poolclass=pool.NullPool, connect_args={"options": limits.connection_options()}
    )
    # AUTOCOMMIT: a second run waiting here must hold no snapshot, or the first run's
    # CREATE INDEX CONCURRENTLY would wait for it (and it for the first run)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock_connection:
        wait_for_migration_lock(lock_connection)
        try:
            migrate_postgresql(engine)
        finally:
            lock_connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
    engine.dispose()


def wait_for_migration_lock(connection, poll_seconds: float = 0.5) -> None:
    """Take the session-level migration lock, polling so no statement sits waiting."""
    statement = f"SELECT pg_try_advisory_lock({MIGRATION_LOCK_KEY})"
    if connection.exec_driver_sql(statement).scalar_one():
        return
    log.info("another migration is running: waiting for it to finish")
    while not connection.exec_driver_sql(statement).scalar_one():
        time.sleep(poll_seconds)


def migrate_postgresql(engine):
    with engine.connect() as connection:
        # one transaction per revision: a revision's autocommit_block() (VALIDATE CONSTRAINT,
        # CREATE INDEX CONCURRENTLY) then commits only its own work
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=in_the_models,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()


def migrate_sqlite(engine):
    with engine.connect() as connection, sqlite_foreign_keys_off(connection):
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            include_object=in_the_models,
            render_as_batch=True,
            # our connect hook makes SQLite's DDL transactional: one run, one transaction
            transactional_ddl=True,
        )
        with context.begin_transaction():
            context.run_migrations()
            broken = sqlite_foreign_key_violations(connection)
            if broken:
                raise RuntimeError(f"foreign key check failed after migrating: {broken[:10]}")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
