"""Engine, sessions and the per-request transaction.

``request.dbsession`` is the only way views reach the database: a session joined to
the request's transaction (pyramid_tm), committed only if the view succeeds.
"""

import os

import transaction
from sqlalchemy import engine_from_config, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from zope.sqlalchemy import datamanager

from booknexus.web.errors import ApiError

DATABASE_URL_ENV = "BOOKNEXUS_DATABASE_URL"


def database_url(settings: dict) -> str:
    """The database URL: the environment wins over the ini file, so no ini holds credentials."""
    return os.environ.get(DATABASE_URL_ENV) or settings["sqlalchemy.url"]


def get_engine(settings: dict, prefix: str = "sqlalchemy.", **overrides) -> Engine:
    options = {**settings, f"{prefix}url": database_url(settings)}
    # pre-ping replaces connections killed by a database restart instead of failing a request
    options.setdefault(f"{prefix}pool_pre_ping", True)
    engine = engine_from_config(options, prefix, **overrides)
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


TRANSACTION_MANAGER = "transaction_manager"  # session.info key: the request's manager


class RequestTransactionEvents(datamanager.ZopeTransactionEvents):
    """zope.sqlalchemy's listeners, registered once on the request session factory.

    ``zope.sqlalchemy.register(session, transaction_manager=request.tm)`` attaches seven
    listeners to every new session (a quarter of a millisecond per request); these are the
    same listeners, attached to the factory once, each finding its session's transaction
    manager (pyramid_tm's per-request one) in the session's info."""

    def after_begin(self, session, transaction, connection):
        datamanager.join_transaction(session, self.initial_state, manager_of(session), self.keep_session)

    def after_attach(self, session, instance):
        datamanager.join_transaction(session, self.initial_state, manager_of(session), self.keep_session)

    def after_flush(self, session, flush_context):
        mark_changed(session)

    def after_bulk_update(self, update_context):
        mark_changed(update_context.session)

    def after_bulk_delete(self, delete_context):
        mark_changed(delete_context.session)

    def before_commit(self, session):
        committing = manager_of(session).get().status == datamanager.ZopeStatus.COMMITTING
        assert session.in_nested_transaction() or committing, "Commit through the transaction manager"

    def do_orm_execute(self, execute_state):
        if execute_state.is_orm_statement and (
            execute_state.is_update or execute_state.is_insert or execute_state.is_delete
        ):
            mark_changed(execute_state.session)


def manager_of(session: Session):
    return session.info.get(TRANSACTION_MANAGER, transaction.manager)


def mark_changed(session: Session) -> None:
    """Tell the session's transaction manager that it wrote (zope.sqlalchemy cannot see writes
    made by Core statements), so it commits rather than rolls back."""
    datamanager.mark_changed(session, manager_of(session))


def get_request_session_factory(engine: Engine) -> sessionmaker:
    factory = get_session_factory(engine)
    events = RequestTransactionEvents()
    for name in ("after_begin", "after_attach", "after_flush", "after_bulk_update", "after_bulk_delete"):
        event.listen(factory, name, getattr(events, name))
    event.listen(factory, "before_commit", events.before_commit)
    event.listen(factory, "do_orm_execute", events.do_orm_execute)
    return factory


READ_ONLY_METHODS = ("GET", "HEAD")


def request_dbsession(request) -> Session:
    # Tests hand in a connection inside an outer transaction: each request then works in a
    # savepoint that pyramid_tm releases or rolls back, exactly as it would commit or abort.
    connection = request.environ.get("app.dbconnection")
    factory = request.registry["request_session_factory"]
    info = {TRANSACTION_MANAGER: request.tm}
    if connection is not None:
        return factory(bind=connection, join_transaction_mode="create_savepoint", info=info)
    reader = request.registry["read_only_engine"]
    if reader is not None and request.method in READ_ONLY_METHODS:
        return factory(bind=reader, info=info)
    return factory(info=info)


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
    settings["tm.manager_hook"] = "pyramid_tm.explicit_manager"
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
