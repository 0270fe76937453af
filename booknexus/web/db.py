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

from booknexus.web import metrics
from booknexus.web.errors import ApiError
from booknexus.web.timeouts import Limits

DATABASE_URL_ENV = "BOOKNEXUS_DATABASE_URL"


def database_url(settings: dict) -> str:
    """The database URL: the environment wins over the ini file, so no ini holds credentials."""
    return os.environ.get(DATABASE_URL_ENV) or settings["sqlalchemy.url"]


def get_engine(settings: dict, prefix: str = "sqlalchemy.", *, bulk: bool = False, **overrides) -> Engine:
    """The engine on the configured database. On PostgreSQL every connection carries the
    statement and lock timeouts (``booknexus.db.*``): a request's, or with ``bulk`` the larger
    ones of the commands that work through whole tables."""
    url = database_url(settings)
    options = {**settings, f"{prefix}url": url}
    # pre-ping replaces connections killed by a database restart instead of failing a request
    options.setdefault(f"{prefix}pool_pre_ping", True)
    if make_url(url).get_backend_name() == "postgresql":
        limits = Limits.bulk(settings) if bulk else Limits.request(settings)
        overrides.setdefault("connect_args", {"options": limits.connection_options()})
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


READ_ONLY_METHODS = ("GET", "HEAD")


def request_dbsession(request) -> Session:
    # Tests hand in a connection inside an outer transaction: each request then works in a
    # savepoint that pyramid_tm releases or rolls back, exactly as it would commit or abort.
    connection = request.environ.get("app.dbconnection")
    factory = request.registry["request_session_factory"]
    if connection is not None:
        return factory(bind=connection, join_transaction_mode="create_savepoint")
    reader = request.registry["read_only_engine"]
    if reader is not None and request.method in READ_ONLY_METHODS:
        return factory(bind=reader)
    return factory()


def read_only_engine(engine: Engine) -> Engine | None:
    """The engine's pool without transactions, for requests that only read (PostgreSQL).

    A read in a transaction costs two round trips besides its statements: BEGIN, and the
    ROLLBACK that ends it. Reads write nothing and take no locks, so each of their statements
    can run on its own; what a request reads in one statement (the views of the hot reads
    use one) is one snapshot either way. The request keeps its pyramid_tm transaction."""
    if engine.dialect.name != "postgresql":
        return None  # SQLite: one file, no round trips to save
    return engine.execution_options(isolation_level="AUTOCOMMIT")


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
    # pyramid_tm would look the user up after the response, a second database round trip
    # (and a second failure when the database is down); the log records actors itself
    settings["tm.annotate_user"] = False
    config.include("pyramid_tm")
    config.include("pyramid_retry")

    engine = get_engine(settings)
    config.registry["dbengine"] = engine
    config.registry["dbsession_factory"] = get_session_factory(engine)
    config.registry["request_session_factory"] = get_request_session_factory(engine)
    config.registry["read_only_engine"] = read_only_engine(engine)
    config.add_request_method(request_dbsession, "dbsession", reify=True)
