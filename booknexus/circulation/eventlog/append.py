"""Appending to the logs, always in the transaction that makes the change.

On PostgreSQL every append first takes ``LOCK TABLE ... IN EXCLUSIVE MODE`` on its log (and
on every log before it, in one fixed order: ``locks.lock_logs``): appending
transactions then assign positions and commit one after the other, so a reader that has
seen position N can never later see a lower position appear (gapless tailing). Readers are
not blocked: EXCLUSIVE mode still admits plain SELECTs.
"""

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
)
from sqlalchemy.orm import Session

from booknexus.circulation import metrics
from booknexus.circulation.eventlog import capture
from booknexus.circulation.eventlog.streams import (  # noqa: F401  (the event types, re-exported for callers)
    CANCELLED,
    CHECKED_OUT,
    CHECKOUTS,
    DELETED,
    EXPIRED,
    FULFILLED,
    IMPORTED,
    LOGS,
    PLACED,
    PURGED,
    READY,
    RENEWED,
    RETURNED,
    UPDATED,
    Stream,
)
from booknexus.circulation.locks import lock_logs
from booknexus.db.engines import mark_changed
from booknexus.db.schema import ISO_UTC_FORMAT, isoformat, utcnow


def record_state(stream: Stream, record) -> dict:
    """What the log carries of a record: its state fields, timestamps in one text form."""
    state = {}
    for column in stream.timestamps:
        value = getattr(record, stream.attribute(column))
        state[column] = isoformat(value) if value is not None else None
    for column in stream.values:
        state[column] = getattr(record, stream.attribute(column))
    return state


def subjects(stream: Stream, record) -> dict:
    """What the record belongs to (its reader and book; an item's book), as its log names it."""
    return {column: getattr(record, stream.attribute(column)) for column in stream.subjects}


def append(session: Session, record, type_: str, actor: int | None, **extra) -> None:
    """Record one change to one checkout, hold or item (already flushed, so it has its id),
    made by ``actor`` (a user id; None for the system: cleanup, expiry, migrations)."""
    stream = LOGS[type(record)]
    lock_logs(session, stream)
    # parameters apart from the statement, so SQLAlchemy compiles the INSERT once
    session.execute(
        stream.events.insert(),
        {
            stream.key: record.id,
            **subjects(stream, record),
            "type": type_,
            "occurredAt": utcnow(),
            "data": {**record_state(stream, record), **extra, "actor": actor},
        },
    )
    mark_changed(session)
    metrics.count_when_committed(session, stream, type_)


def _iso(dialect: str, column) -> ColumnElement:
    """SQL for ``meta.isoformat``: UTC, six fractional digits, ``+00:00``."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(literal_column("'UTC'"), column), ISO_UTC_FORMAT)
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'
    return func.replace(column, " ", "T").concat("+00:00")


def _json_value(value) -> ColumnElement:
    # typed explicitly: PostgreSQL cannot infer a parameter's type inside json_build_object
    if value is None:
        return null()
    return cast(literal(value), Integer if isinstance(value, int) else String)


def state_json(dialect: str, source, stream: Stream = CHECKOUTS, **extra) -> ColumnElement:
    """SQL building the ``data`` of an event from a record row, for set-based appends."""
    pairs = []
    for field, column in (
        *((name, _iso(dialect, source.c[name])) for name in stream.timestamps),
        *((name, source.c[name]) for name in stream.values),
        *((key, _json_value(value)) for key, value in extra.items()),
    ):
        # keys are our own constants; inline them, as PostgreSQL cannot type a parameter
        # passed to json_build_object's variadic "any"
        pairs += [literal_column(f"'{field}'"), column]
    build = func.json_build_object if dialect == "postgresql" else func.json_object
    return build(*pairs)


def event_rows(dialect: str, source, type_: str, stream: Stream = CHECKOUTS, **extra) -> Select:
    """SELECT producing one event row per record row in ``source``."""
    return select(
        source.c.id,
        *(source.c[column] for column in stream.subjects),
        literal(type_),
        literal(utcnow(), stream.events.c.occurredAt.type),
        state_json(dialect, source, stream, **extra),
    )


def event_columns(stream: Stream) -> list[str]:
    return [stream.key, *stream.subjects, "type", "occurredAt", "data"]


def append_rows(session: Session, rows: Select, stream: Stream = CHECKOUTS) -> int:
    """INSERT ... SELECT into the log, set-based; returns how many events were appended."""
    lock_logs(session, stream)
    statement = insert(stream.events).from_select(event_columns(stream), rows)
    if session.get_bind().dialect.name == "postgresql":
        # the rowcount of this INSERT ... SELECT comes back as -1: count RETURNING in SQL
        appended = statement.returning(stream.events.c.id).cte("appended")
        count = session.scalar(select(func.count()).select_from(appended))
    else:
        count = session.execute(statement).rowcount
    # zope.sqlalchemy cannot see writes made by Core statements (least of all inside a
    # SELECT's CTEs): without this, pyramid_tm would roll the request back as read-only.
    mark_changed(session)
    return count


def delete_and_append(
    session: Session,
    where,
    type_: str,
    actor: int | None = None,
    stream: Stream = CHECKOUTS,
    **extra,
) -> int:
    """Delete every record of ``stream`` matching ``where`` and log each one, set-based.

    PostgreSQL does it in one statement (``WITH gone AS (DELETE ... RETURNING *) INSERT``),
    so the log records exactly the rows deleted. SQLite, whose single writer excludes any
    race, logs the matching rows with INSERT ... SELECT and then deletes them.
    Returns the number of records deleted (and events appended).
    """
    dialect = session.get_bind().dialect.name
    records = stream.records
    extra["actor"] = actor
    capture.mark(session)  # logged here: the capture triggers stand aside
    if dialect == "postgresql":
        gone = delete(records).where(where).returning(*records.c).cte("gone")
        appended = append_rows(
            session, event_rows(dialect, gone, type_, stream, **extra).order_by(gone.c.id), stream
        )
    else:
        source = select(records).where(where).subquery()
        appended = append_rows(
            session, event_rows(dialect, source, type_, stream, **extra).order_by(source.c.id), stream
        )
        session.execute(delete(records).where(where))
    metrics.count_when_committed(session, stream, type_, appended)
    return appended
