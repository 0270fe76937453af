"""The request's database: ``request.dbsession``, one transaction per command, retries.

``request.dbsession`` is the only way views reach the database: for a command (POST, PATCH,
DELETE) a session joined to the request's transaction (pyramid_tm), committed only if the
view succeeds; for a query (GET, HEAD) a plain session on the read engine (``web.reads``).
Engines and session factories come from the persistence layer (``booknexus.db.engines``).
"""

from sqlalchemy.orm import Session, sessionmaker

from booknexus.db.engines import get_engine, get_read_engine, get_request_session_factory, get_session_factory
from booknexus.refusals import Refused
from booknexus.web import reads


def request_dbsession(request) -> Session:
    """A command's session, joined to the request's transaction; a read's is a plain one
    outside any transaction manager (``web.reads``)."""
    if reads.is_read(request):
        return reads.read_session(request)
    return request.registry["request_session_factory"]()


def commit_veto(request, response) -> bool:
    """Abort every failed request, with one exception: a refusal that says the work done
    before it stands (``Refused.keeps_changes``: the command settled a book's hold queue,
    lapsed holds expired and copies passed on, which holds whatever the request wanted;
    rolling it back would keep a lapsed hold's copy from the next reader)."""
    if request.exception is not None:
        return not (isinstance(request.exception, Refused) and request.exception.keeps_changes)
    return response.status_code >= 400


def includeme(config):
    """Engines, session factories, pyramid_tm and pyramid_retry; ``request.dbsession``."""
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
    reader = get_read_engine(settings, engine)
    if reader is not engine:
        reads.retry_reads_on_dead_connections(reader)
    config.registry["read_engine"] = reader
    config.registry["read_session_factory"] = sessionmaker(bind=reader, expire_on_commit=False)
    config.registry["snapshot_engine"] = (
        reader.execution_options(isolation_level="REPEATABLE READ") if reader is not engine else None
    )
    config.add_request_method(request_dbsession, "dbsession", reify=True)
