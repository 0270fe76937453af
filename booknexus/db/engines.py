"""Engines and sessions: the one place that knows how to connect.

The app's request wiring (``web.db``), Alembic's environment and every console script
build their engines here, so a connection carries the same limits and behaviour whoever
opened it.
"""

import os

import transaction
import zope.sqlalchemy
from sqlalchemy import engine_from_config, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from booknexus.db import pool_metrics
from booknexus.db.timeouts import Limits

DATABASE_URL_ENV = "BOOKNEXUS_DATABASE_URL"


def database_url(settings: dict) -> str:
    """The database URL: the environment wins over the ini file, so no ini holds credentials."""
    return os.environ.get(DATABASE_URL_ENV) or settings["sqlalchemy.url"]


def get_engine(
    settings: dict, prefix: str = "sqlalchemy.", *, bulk: bool = False, read_only: bool = False, **overrides
) -> Engine:
    """The engine on the configured database. On PostgreSQL every connection carries the
    statement and lock timeouts (``booknexus.db.*``): a request's, or with ``bulk`` the larger
    ones of the commands that work through whole tables; with ``read_only`` its transactions
    cannot write (the read side's engine)."""
    url = database_url(settings)
    options = {**settings, f"{prefix}url": url}
    # pre-ping replaces connections killed by a database restart instead of failing a request
    options.setdefault(f"{prefix}pool_pre_ping", True)
    # a failed statement's error message and log line never carry its values (password
    # hashes, emails): SQLAlchemy then prints "[SQL parameters hidden due to hide_parameters]"
    overrides.setdefault("hide_parameters", True)
    if make_url(url).get_backend_name() == "postgresql":
        limits = Limits.bulk(settings) if bulk else Limits.request(settings)
        startup = limits.connection_options() + (" -c default_transaction_read_only=on" if read_only else "")
        overrides.setdefault("connect_args", {"options": startup})
        overrides.setdefault("poolclass", pool_metrics.MeteredQueuePool)
    engine = engine_from_config(options, prefix, **overrides)
    pool_metrics.watch_pool(engine)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


def get_read_engine(settings: dict, engine: Engine) -> Engine:
    """The read side's engine. On PostgreSQL one of its own: autocommit (a statement is its
    own snapshot, no BEGIN/ROLLBACK round trip), read-only at the server, no pre-ping (a dead
    connection makes the read retryable instead: ``web.reads``). SQLite has one engine."""
    if engine.dialect.name != "postgresql":
        return engine
    return get_engine(settings, pool_pre_ping=False, isolation_level="AUTOCOMMIT", read_only=True)


def configure_sqlite(engine: Engine) -> None:
    """Make SQLite behave like PostgreSQL where it matters to us.

    Foreign keys (and so ON DELETE CASCADE) are off by default in SQLite, and pysqlite's
    own transaction handling breaks SAVEPOINT and transactional DDL; SQLAlchemy's
    documented recipe hands transaction control back to SQLAlchemy.
    """

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, connection_record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection):
        connection.exec_driver_sql("BEGIN")


def get_session_factory(engine: Engine) -> sessionmaker:
    return sessionmaker(bind=engine, expire_on_commit=False)


class RequestSession(Session):
    """A session joined to the request's transaction (scripts' sessions are plain ones)."""


def mark_changed(session: Session) -> None:
    """Tell the request's transaction that the session wrote (zope.sqlalchemy cannot see
    writes made by Core statements), so it commits rather than rolls back. A script's
    session commits itself: joining it to a transaction nobody ends would leak it."""
    if isinstance(session, RequestSession):
        zope.sqlalchemy.mark_changed(session)


def get_request_session_factory(engine: Engine) -> sessionmaker:
    """Sessions joined to the request's transaction: zope.sqlalchemy's listeners registered
    once, on the factory, with the thread-local transaction manager that pyramid_tm uses
    (one request per worker thread), rather than on each session, which costs a measurable
    share of a request (docs/performance.md)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False, class_=RequestSession)
    zope.sqlalchemy.register(factory, transaction_manager=transaction.manager)
    return factory
