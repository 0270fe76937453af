"""The full repair: make "Checkouts" and "Holds" agree with their logs, set-based.

It scans both whole tables, so it runs only when asked (``booknexus-cleanup --full``) or when
the cheap checks of ``booknexus.repair`` find a reason. In one transaction, for each table:
1. purge orphans: delete every checkout or hold whose user (then: whose book) does not exist,
   logging a ``purged`` event for each (reason ``missing_user`` / ``missing_book``);
2. reconcile: append ``deleted`` (reason ``external``) for every record the log says is
   live but the table no longer has (deleted by hand in SQL, or by the database's CASCADE);
3. import: append ``imported`` for every row of the table that the log does not hold as live;
4. resync: append ``updated`` (reason ``external``) for every row changed by hand since its
   last event.

Every step is one or two SQL statements; only counts and the first few ids reach Python,
so memory does not grow with the table.
"""

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    DateTime,
    Integer,
    MetaData,
    Table,
    and_,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from booknexus.books.models import Book
from booknexus.log.append import (
    CHECKOUTS,
    DELETED,
    IMPORTED,
    PURGED,
    UPDATED,
    append_rows,
    delete_and_append,
    event_rows,
)
from booknexus.log.capture import CAPTURED
from booknexus.log.streams import ENDING, Stream
from booknexus.meta import isoformat, utcnow
from booknexus.users.models import User

log = logging.getLogger(__name__)

FIRST_IDS = 10
LATEST = "repair_latest"  # a temporary table: each record's latest event, if live


@dataclass
class Counts:
    """What the repair did to one table and its log."""

    purged_missing_user: int = 0
    purged_missing_book: int = 0
    reconciled: int = 0
    imported: int = 0
    updated: int = 0
    first_ids: dict[str, list[int]] = field(default_factory=dict)

    def summary(self, kind: str) -> str:
        ids = self.first_ids
        return (
            f"purged {self.purged_missing_user} {kind} of missing users "
            f"{ids.get('purged_missing_user', [])}, {self.purged_missing_book} of "
            f"missing books {ids.get('purged_missing_book', [])}; reconciled "
            f"{self.reconciled} deleted outside the app {ids.get('reconciled', [])}; "
            f"imported {self.imported} unlogged {ids.get('imported', [])}; "
            f"resynced {self.updated} changed by hand {ids.get('updated', [])}"
        )


@dataclass
class CleanupReport(Counts):
    """The checkouts' counts (as the report always had them), the holds' beside them."""

    full: bool = True  # False: the cheap checks found no reason to scan
    reasons: list[str] = field(default_factory=list)  # why the full repair ran
    at: datetime = field(default_factory=utcnow)
    holds: Counts = field(default_factory=Counts)

    def of(self, stream: Stream) -> Counts:
        return self if stream is CHECKOUTS else self.holds

    def summary(self) -> str:
        if not self.full:
            return "cleanup: nothing to repair (foreign keys, capture triggers and the logs are in order)"
        return (
            f"cleanup ({'; '.join(self.reasons)}): checkouts: {super().summary('checkouts')}; "
            f"holds: {self.holds.summary('holds')}"
        )

    def as_json(self) -> dict:
        report = asdict(self)
        report["at"] = isoformat(self.at)
        return report


def missing_user(records: Table) -> ColumnElement:
    # NOT EXISTS, never NOT IN: NOT IN yields nothing once the subquery holds a NULL
    return ~exists().where(User.id == records.c.userId)


def missing_book(records: Table) -> ColumnElement:
    return ~exists().where(Book.id == records.c.bookId)


def _first_ids(session: Session, column, where) -> list[int]:
    return list(session.scalars(select(column).where(where).order_by(column).limit(FIRST_IDS)))


def purge(session: Session, report: CleanupReport, stream: Stream = CHECKOUTS) -> None:
    counts, records = report.of(stream), stream.records
    for name, where, reason in (
        ("purged_missing_user", missing_user(records), "missing_user"),
        ("purged_missing_book", missing_book(records), "missing_book"),
    ):
        counts.first_ids[name] = _first_ids(session, records.c.id, where)
        if counts.first_ids[name]:
            setattr(counts, name, delete_and_append(session, where, PURGED, stream=stream, reason=reason))


def latest_live_events(session: Session, stream: Stream) -> Table:
    """One pass over the log: each record's latest event, kept only if it leaves the record
    live, in a temporary table that reconcile, import and resync all read."""
    latest = Table(
        LATEST,
        MetaData(),
        Column("key", Integer, primary_key=True),
        Column("userId", Integer),
        Column("bookId", Integer),
        Column("data", JSON),
        prefixes=["TEMPORARY"],
    )
    events = stream.events
    newest = select(func.max(events.c.id).label("id")).group_by(events.c[stream.key]).subquery()
    session.execute(text(f"DROP TABLE IF EXISTS {LATEST}"))
    latest.create(session.connection())
    session.execute(
        latest.insert().from_select(
            ["key", "userId", "bookId", "data"],
            select(events.c[stream.key], events.c.userId, events.c.bookId, events.c.data)
            .join(newest, newest.c.id == events.c.id)
            .where(events.c.type.not_in(ENDING)),
        )
    )
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"ANALYZE {LATEST}"))  # the planner's estimates for the joins below
    return latest


def _with_reason(dialect: str, data, reason: str) -> ColumnElement:
    """The last known state of a record, plus the reason it ended; the system is the actor."""
    if dialect == "postgresql":
        addition = func.jsonb_build_object(
            literal_column("'reason'"), literal_column(f"'{reason}'"), literal_column("'actor'"), null()
        )
        return cast(cast(data, JSONB).op("||")(addition), JSON)
    return func.json_set(data, "$.reason", reason, "$.actor", func.json("null"))


def reconcile(session: Session, counts: Counts, stream: Stream, latest: Table) -> None:
    """``deleted`` (reason external) for every record live in the log and gone from the table."""
    dialect = session.get_bind().dialect.name
    gone = ~exists().where(stream.records.c.id == latest.c.key)
    counts.first_ids["reconciled"] = _first_ids(session, latest.c.key, gone)
    if not counts.first_ids["reconciled"]:
        return
    rows = (
        select(
            latest.c.key,
            latest.c.userId,
            latest.c.bookId,
            literal(DELETED),
            literal(utcnow(), stream.events.c.occurredAt.type),
            _with_reason(dialect, latest.c.data, "external"),
        )
        .where(gone)
        .order_by(latest.c.key)
    )
    counts.reconciled = append_rows(session, rows, stream)


def import_unlogged(session: Session, counts: Counts, stream: Stream, latest: Table) -> None:
    """``imported`` for every row of the table that the log does not hold as live."""
    dialect = session.get_bind().dialect.name
    records = stream.records
    unlogged = ~exists().where(latest.c.key == records.c.id)
    counts.first_ids["imported"] = _first_ids(session, records.c.id, unlogged)
    if not counts.first_ids["imported"]:
        return
    source = select(records).where(unlogged).subquery()
    rows = event_rows(dialect, source, IMPORTED, stream, actor=None).order_by(source.c.id)
    counts.imported = append_rows(session, rows, stream)


def _instant(dialect: str, value) -> ColumnElement:
    """A timestamp (or its logged text) in a form that compares by value."""
    if dialect == "postgresql":
        return cast(value, DateTime(timezone=True))
    return func.strftime("%Y-%m-%d %H:%M:%f", value)  # to the millisecond: SQLite's finest


def _logged_value(data, column) -> ColumnElement:
    return (
        data[column.name].as_integer() if isinstance(column.type, Integer) else data[column.name].as_string()
    )


def resync(session: Session, counts: Counts, stream: Stream, latest: Table) -> None:
    """``updated`` (reason external) for every row changed by hand since its last event."""
    dialect = session.get_bind().dialect.name
    records = stream.records
    data = latest.c.data
    differs = or_(
        latest.c.userId != records.c.userId,
        latest.c.bookId != records.c.bookId,
        *(
            _instant(dialect, data[name].as_string()).is_distinct_from(_instant(dialect, records.c[name]))
            for name in stream.timestamps
        ),
        *(_logged_value(data, records.c[name]).is_distinct_from(records.c[name]) for name in stream.values),
    )
    changed = exists().where(and_(latest.c.key == records.c.id, differs))
    counts.first_ids["updated"] = _first_ids(session, records.c.id, changed)
    if not counts.first_ids["updated"]:
        return
    source = select(records).where(changed).subquery()
    rows = event_rows(dialect, source, UPDATED, stream, actor=None, reason="external").order_by(source.c.id)
    counts.updated = append_rows(session, rows, stream)


def run_cleanup(session: Session, reasons: list[str]) -> CleanupReport:
    """The four steps for each logged table, in the caller's transaction; the caller commits
    (or rolls back)."""
    report = CleanupReport(reasons=reasons)
    for stream in CAPTURED:
        counts = report.of(stream)
        purge(session, report, stream)
        latest = latest_live_events(session, stream)
        reconcile(session, counts, stream, latest)
        import_unlogged(session, counts, stream, latest)
        resync(session, counts, stream, latest)
        session.execute(text(f"DROP TABLE {LATEST}"))
    log.info(report.summary())
    return report
