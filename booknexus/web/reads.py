"""The read side: every GET and HEAD, outside pyramid_tm's transaction.

Commands (POST, PATCH, DELETE) go through the request's transaction, the ORM and the logs
(``web.db``). Queries need none of it: pyramid_tm's ``tm.activate_hook`` leaves them out,
and their ``request.dbsession`` is a plain session on the read engine, closed when the
request ends. On PostgreSQL the read engine is an engine of its own:

- autocommit: a statement is its own snapshot, with no BEGIN or ROLLBACK round trip; a
  response built by one statement sees one snapshot. The few that need several statements
  (a ranked search) run them in ``snapshot(request)``, one REPEATABLE READ transaction;
- read-only at the server (``default_transaction_read_only``): a read cannot write;
- no pre-ping: a connection found dead marks the request's error retryable, and
  pyramid_retry runs the read again on a fresh connection (SQLAlchemy invalidates the
  pool's connections older than the failure), so a database restart between two reads
  costs the reader nothing. Commands keep the pre-ping: a write is not replayed blindly.

SQLite has one engine: a read's session there is one transaction, so one snapshot.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from pyramid_retry import mark_error_retryable
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

READ_METHODS = frozenset({"GET", "HEAD"})


def is_read(request) -> bool:
    return request.method in READ_METHODS


def commands_only(request) -> bool:
    """pyramid_tm's ``tm.activate_hook``: a transaction for commands, none for reads."""
    return not is_read(request)


def retry_reads_on_dead_connections(engine: Engine) -> None:
    event.listen(engine, "handle_error", _retry_reads_on_dead_connections)


def _retry_reads_on_dead_connections(context) -> None:
    if context.is_disconnect and context.sqlalchemy_exception is not None:
        mark_error_retryable(context.sqlalchemy_exception)


def read_session(request) -> Session:
    factory: sessionmaker = request.registry["read_session_factory"]
    session = factory()
    request.add_finished_callback(lambda request: session.close())
    return session


@contextmanager
def read_connection(request) -> Iterator[Connection]:
    """A connection straight from the read engine's pool, for a read that is one Core
    statement: no session to build and close around it."""
    with request.registry["read_engine"].connect() as connection:
        yield connection


@contextmanager
def snapshot(request) -> Iterator[Session]:
    """A session whose statements all see one snapshot of the database: for the reads that
    need more than one statement (PostgreSQL: REPEATABLE READ, READ ONLY by the engine)."""
    if not is_read(request):
        yield request.dbsession  # a command's transaction is one snapshot's worth already
        return
    engine = request.registry["snapshot_engine"]
    if engine is None:
        yield request.dbsession  # SQLite: the read session is one transaction already
        return
    with Session(bind=engine) as session, session.begin():
        yield session
