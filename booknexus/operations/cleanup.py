"""The full repair: make "Checkouts", "Holds" and "Items" agree with their logs, set-based.

It scans the whole tables, so it runs only when asked (``booknexus-cleanup --full``) or when
the cheap checks of ``booknexus.operations.repair`` find a reason. In one transaction, for each table:
1. purge orphans: delete every checkout or hold whose user (then: whose book) does not exist,
   logging a ``purged`` event for each (reason ``missing_user`` / ``missing_book``). Items
   have no reader, and their foreign key takes them with their book: nothing to purge;
2. reconcile: append ``deleted`` (reason ``external``) for every record the log says is
   live but the table no longer has (deleted by hand in SQL, or by the database's CASCADE);
3. import: append ``imported`` for every row of the table that the log does not hold as live;
4. resync: append ``updated`` (reason ``external``) for every row changed by hand since its
   last event.

Steps 2-4 are one pass (``find_mismatches``): each record's latest event is computed once
and compared with the table, and only the records whose log must catch up are kept, in a
temporary table the appends read. Only counts and the first few ids reach Python, so
memory does not grow with the table.
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
    String,
    Table,
    case,
    cast,
    column,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    text,
    true,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session
from sqlalchemy.sql import Subquery

from booknexus.accounts.models import User
from booknexus.catalog.models import Book
from booknexus.circulation.eventlog.append import (
    CHECKOUTS,
    DELETED,
    IMPORTED,
    PURGED,
    UPDATED,
    append_rows,
    delete_and_append,
    event_rows,
)
from booknexus.circulation.eventlog.capture import CAPTURED
from booknexus.circulation.eventlog.streams import ANONYMISED, ENDING, HOLDS, ITEMS, STREAMS, Stream
from booknexus.db.schema import isoformat, utcnow

log = logging.getLogger(__name__)

FIRST_IDS = 10
PENDING = "repair_pending"  # a temporary table: the records whose log must catch up


@dataclass
class Counts:
    """What the repair did to one table and its log."""

    purged_missing_user: int = 0
    purged_missing_book: int = 0
    reconciled: int = 0
    imported: int = 0
    updated: int = 0
    first_ids: dict[str, list[int]] = field(default_factory=dict)

    def summary(self, kind: str, purges: bool = True) -> str:
        ids = self.first_ids
        purged = (
            f"purged {self.purged_missing_user} {kind} of missing users "
            f"{ids.get('purged_missing_user', [])}, {self.purged_missing_book} of "
            f"missing books {ids.get('purged_missing_book', [])}; "
        )
        return (
            f"{purged if purges else ''}reconciled "
            f"{self.reconciled} deleted outside the app {ids.get('reconciled', [])}; "
            f"imported {self.imported} unlogged {ids.get('imported', [])}; "
            f"resynced {self.updated} changed by hand {ids.get('updated', [])}"
        )


@dataclass
class CleanupReport(Counts):
    """The checkouts' counts (as the report always had them), the holds' and items' beside them."""

    full: bool = True  # False: the cheap checks found no reason to scan
    reasons: list[str] = field(default_factory=list)  # why the full repair ran
    at: datetime = field(default_factory=utcnow)
    holds: Counts = field(default_factory=Counts)
    items: Counts = field(default_factory=Counts)

    def of(self, stream: Stream) -> Counts:
        return {CHECKOUTS: self, HOLDS: self.holds, ITEMS: self.items}[stream]

    def summary(self) -> str:
        if not self.full:
            return "cleanup: nothing to repair (foreign keys, capture triggers and the logs are in order)"
        return (
            f"cleanup ({'; '.join(self.reasons)}): checkouts: {super().summary('checkouts')}; "
            f"holds: {self.holds.summary('holds')}; items: {self.items.summary('items', purges=False)}"
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
    """A reader's record whose reader or book is gone (only a reader's: see the module's 1.)."""
    counts, records = report.of(stream), stream.records
    for name, where, reason in (
        ("purged_missing_user", missing_user(records), "missing_user"),
        ("purged_missing_book", missing_book(records), "missing_book"),
    ):
        counts.first_ids[name] = _first_ids(session, records.c.id, where)
        if counts.first_ids[name]:
            setattr(counts, name, delete_and_append(session, where, PURGED, stream=stream, reason=reason))


def latest_live(dialect: str, stream: Stream) -> Subquery:
    """Each record's latest event, where it leaves the record live, with the state it logged
    as columns: one pass over the log, each event's ``data`` parsed once (on PostgreSQL
    ``json_to_record``: a cast per field would parse it once per field, over twice the time)."""
    events = stream.events
    # an ``anonymised`` event changes only the reader, which every earlier event of the record
    # was rewritten with: the latest state is the latest other event's
    newest = (
        select(func.max(case((events.c.type != ANONYMISED, events.c.id))).label("id"))
        .group_by(events.c[stream.key])
        .subquery("newest")
    )
    records = stream.records
    if dialect == "postgresql":
        logged = (
            func.json_to_record(events.c.data)
            .table_valued(*(column(name, records.c[name].type) for name in stream.state_fields))
            .render_derived(name="logged", with_types=True)
        )
        state = [logged.c[name] for name in stream.state_fields]
        source = events.join(newest, newest.c.id == events.c.id).join(logged, true())
    else:
        data = events.c.data
        state = [_instant(dialect, data[name].as_string()).label(name) for name in stream.timestamps]
        state += [_logged_value(data, records.c[name]).label(name) for name in stream.values]
        source = events.join(newest, newest.c.id == events.c.id)
    return (
        select(
            events.c[stream.key].label("key"),
            *(events.c[name] for name in stream.subjects),
            events.c.data.label("raw"),
            *state,
        )
        .select_from(source)
        .where(events.c.type.not_in(ENDING))
        .subquery("latest")
    )


def _with_reason(dialect: str, data, reason: str) -> ColumnElement:
    """The last known state of a record, plus the reason it ended; the system is the actor."""
    if dialect == "postgresql":
        addition = func.jsonb_build_object(
            literal_column("'reason'"), literal_column(f"'{reason}'"), literal_column("'actor'"), null()
        )
        return cast(cast(data, JSONB).op("||")(addition), JSON)
    return func.json_set(data, "$.reason", reason, "$.actor", func.json("null"))


def find_mismatches(session: Session, stream: Stream) -> Table:
    """One pass over the table and its log's latest events, into a temporary table of the
    records whose log must catch up: ``reconciled`` (live in the log, gone from the table),
    ``imported`` (in the table, not live in the log) and ``updated`` (changed by hand since
    their last event). What the appends need of the log travels with them, so the log is
    read once."""
    dialect = session.get_bind().dialect.name
    records = stream.records
    latest = latest_live(dialect, stream)
    pending = Table(
        PENDING,
        MetaData(),
        Column("kind", String(10)),
        Column("key", Integer),
        *(Column(name, Integer) for name in stream.subjects),
        Column("data", JSON),
        prefixes=["TEMPORARY"],
    )
    session.execute(text(f"DROP TABLE IF EXISTS {PENDING}"))
    pending.create(session.connection())
    kind = case((records.c.id.is_(None), "reconciled"), (latest.c.key.is_(None), "imported"), else_="updated")
    gone = records.c.id.is_(None)
    session.execute(
        pending.insert().from_select(
            ["kind", "key", *stream.subjects, "data"],
            select(
                kind,
                func.coalesce(records.c.id, latest.c.key),
                *(case((gone, latest.c[name])) for name in stream.subjects),
                case((gone, latest.c.raw)),
            )
            .select_from(records.join(latest, latest.c.key == records.c.id, full=True))
            .where(or_(gone, latest.c.key.is_(None), differs(dialect, stream, latest))),
        )
    )
    return pending


def catch_up(session: Session, counts: Counts, stream: Stream) -> None:
    """reconcile, import and resync, from one pass (``find_mismatches``)."""
    dialect = session.get_bind().dialect.name
    pending = find_mismatches(session, stream)
    found = dict(session.execute(select(pending.c.kind, func.count()).group_by(pending.c.kind)).all())
    for name in ("reconciled", "imported", "updated"):
        counts.first_ids[name] = []
        if not found.get(name):
            continue
        these = pending.c.kind == name
        counts.first_ids[name] = _first_ids(session, pending.c.key, these)
        if name == "reconciled":
            rows = select(
                pending.c.key,
                *(pending.c[name] for name in stream.subjects),
                literal(DELETED),
                literal(utcnow(), stream.events.c.occurredAt.type),
                _with_reason(dialect, pending.c.data, "external"),
            ).where(these)
            setattr(counts, name, append_rows(session, rows.order_by(pending.c.key), stream))
            continue
        source = select(stream.records).where(stream.records.c.id.in_(select(pending.c.key).where(these)))
        source = source.subquery()
        extra = {"actor": None} if name == "imported" else {"actor": None, "reason": "external"}
        type_ = IMPORTED if name == "imported" else UPDATED
        rows = event_rows(dialect, source, type_, stream, **extra).order_by(source.c.id)
        setattr(counts, name, append_rows(session, rows, stream))
    session.execute(text(f"DROP TABLE {PENDING}"))


def _instant(dialect: str, value) -> ColumnElement:
    """A timestamp (or its logged text) in a form that compares by value."""
    if dialect == "postgresql":
        return cast(value, DateTime(timezone=True))
    return func.strftime("%Y-%m-%d %H:%M:%f", value)  # to the millisecond: SQLite's finest


def _logged_value(data, column) -> ColumnElement:
    """A value of the record as its event's ``data`` carries it, read back (SQLite)."""
    return (
        data[column.name].as_integer() if isinstance(column.type, Integer) else data[column.name].as_string()
    )


def differs(dialect: str, stream: Stream, latest: Subquery) -> ColumnElement:
    """The table's row and its latest event disagree about something the log carries."""
    records = stream.records

    def as_logged(name: str) -> ColumnElement:
        return (
            _instant(dialect, records.c[name])
            if name in stream.timestamps and dialect == "sqlite"
            else records.c[name]
        )

    fields = (*stream.subjects, *stream.state_fields)
    return tuple_(*(latest.c[name] for name in fields)).is_distinct_from(
        tuple_(*(as_logged(name) for name in fields))
    )


def run_cleanup(session: Session, reasons: list[str]) -> CleanupReport:
    """The four steps for each logged table, in the caller's transaction; the caller commits
    (or rolls back)."""
    report = CleanupReport(reasons=reasons)
    for stream in CAPTURED:
        if stream in STREAMS.values():
            purge(session, report, stream)
        catch_up(session, report.of(stream), stream)
    log.info(report.summary())
    return report
