"""Alembic environment: `alembic -c development.ini|production.ini upgrade head`.

The URL comes from the ini's [app:main] section, overridden by BOOKNEXUS_DATABASE_URL.
On PostgreSQL, concurrent runs are serialised by a session-level advisory lock held on a
connection of its own (a transaction-scoped lock would be released by the commit inside
``autocommit_block()``), and every statement waits at most ``lock_timeout`` for its locks.
On SQLite, foreign keys are switched off around the run (table recreation in batch mode
would otherwise cascade) and checked with ``PRAGMA foreign_key_check`` before commit.
"""

import logging
from logging.config import fileConfig

from pyramid.paster import get_appsettings
from sqlalchemy import pool

from alembic import context
from booknexus.db import get_engine
from booknexus.models import Base

# any constant unique to BookNexus migrations: pg_advisory_lock takes a bigint key
MIGRATION_LOCK_KEY = 0x426F6F6B4E6578  # "BookNex"

config = context.config
if config.config_file_name is not None and config.get_section("loggers"):
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

settings = get_appsettings(config.config_file_name)
target_metadata = Base.metadata


def run_migrations_offline():
    from booknexus.db import database_url

    context.configure(url=database_url(settings), target_metadata=target_metadata,
                      literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    engine = get_engine(settings, poolclass=pool.NullPool)
    if engine.dialect.name == "postgresql":
        with engine.connect() as lock_connection:
            log.info("waiting for the migration lock")
            lock_connection.exec_driver_sql(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})")
            lock_connection.commit()
            try:
                migrate_postgresql(engine)
            finally:
                lock_connection.exec_driver_sql(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})")
                lock_connection.commit()
    else:
        migrate_sqlite(engine)
    engine.dispose()


def migrate_postgresql(engine):
    lock_timeout = settings.get("booknexus.migration_lock_timeout", "10s")
    with engine.connect() as connection:
        connection.exec_driver_sql(f"SET lock_timeout = '{lock_timeout}'")
        connection.commit()
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


def migrate_sqlite(engine):
    with engine.connect() as connection:
        # PRAGMA foreign_keys is ignored inside a transaction: set it on the raw connection
        # before SQLAlchemy begins one.
        raw = connection.connection.driver_connection
        raw.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=True,
                # our connect hook makes SQLite's DDL transactional: one run, one transaction
                transactional_ddl=True,
            )
            with context.begin_transaction():
                context.run_migrations()
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"foreign key check failed after migrating: {broken[:10]}")
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
