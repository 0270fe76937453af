"""Engine, sessions and the per-request transaction.

``request.dbsession`` is the only way views reach the database: a session joined to
the request's transaction (pyramid_tm), committed only if the view succeeds.
"""

import os

import transaction
import zope.sqlalchemy
from sqlalchemy import engine_from_config, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from booknexus.web import metrics, reads
from booknexus.web.errors import ApiError
from booknexus.web.timeouts import Limits

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
    cannot write (the read side's engine, ``web.reads``)."""
    url = database_url(settings)
    options = {**settings, f"{prefix}url": url}
    # pre-ping replaces connections killed by a database restart instead of failing a request
    options.setdefault(f"{prefix}pool_pre_ping", True)
    if make_url(url).get_backend_name() == "postgresql":
        limits = Limits.bulk(settings) if bulk else Limits.request(settings)
        startup = limits.connection_options() + (" -c default_transaction_read_only=on" if read_only else "")
        overrides.setdefault("connect_args", {"options": startup})
        overrides.setdefault("poolclass", metrics.MeteredQueuePool)
    engine = engine_from_config(options, prefix, **overrides)
    metrics.watch_pool(engine)
    if engine.dialect.name == "sqlite":
        configure_sqlite(engine)
    return engine


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
    (waitress serves one request per thread), rather than on each session (~0.25 ms)."""
    factory = sessionmaker(bind=engine, expire_on_commit=False, class_=RequestSession)
    zope.sqlalchemy.register(factory, transaction_manager=transaction.manager)
    return factory


def request_dbsession(request) -> Session:
    """A command's session, joined to the request's transaction; a read's is a plain one
    outside any transaction manager (``web.reads``)."""
    if reads.is_read(request):
        return reads.read_session(request)
    # Tests hand in a connection inside an outer transaction: each request then works in a
    # savepoint that pyramid_tm releases or rolls back, exactly as it would commit or abort.
    connection = request.environ.get("app.dbconnection")
    factory = request.registry["request_session_factory"]
    if connection is not None:
        return factory(bind=connection, join_transaction_mode="create_savepoint")
    return factory()


def commit_veto(request, response) -> bool:
    """Abort every failed request, with one exception: a refusal (409) after the request
    settled a book's hold queue. Views check everything before they write, so all such a
    request wrote is the settlement (lapsed holds expired, copies passed on), which holds
    whatever the request wanted; rolling it back would keep a lapsed hold's copy from the
    next reader until someone's request succeeds."""
    if request.exception is not None:
        refused = isinstance(request.exception, ApiError) and request.exception.status == 409
        return not (refused and getattr(request, "settled_a_book", False))
    return response.status_code >= 400


def includeme(config):
    """Engine, session factory, pyramid_tm and pyramid_retry; ``request.dbsession``."""
    settings = config.get_settings()
    # no tm.manager_hook: pyramid_tm then uses the thread-local transaction.manager, the one
    # the request session factory is registered with
    settings["tm.commit_veto"] = commit_veto
    settings["tm.activate_hook"] = reads.commands_only
    # pyramid_tm would look the user up after the response, a second database round trip
    # (and a second failure when the database is down); the log records actors itself
    settings["tm.annotate_user"] = False
    config.include("pyramid_tm")
    config.include("pyramid_retry")

    engine = get_engine(settings)
    config.registry["dbengine"] = engine
    config.registry["dbsession_factory"] = get_session_factory(engine)
    config.registry["request_session_factory"] = get_request_session_factory(engine)
    reader = reads.read_engine(settings, engine, get_engine)
    config.registry["read_engine"] = reader
    config.registry["read_session_factory"] = sessionmaker(bind=reader, expire_on_commit=False)
    config.registry["snapshot_engine"] = (
        reader.execution_options(isolation_level="REPEATABLE READ") if reader is not engine else None
    )
    config.add_request_method(request_dbsession, "dbsession", reify=True)
