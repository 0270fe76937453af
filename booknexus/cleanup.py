"""The full repair: make the Checkouts table and the checkout log agree, set-based.

It scans both whole tables, so it runs only when asked (``booknexus-cleanup --full``) or when
the cheap checks of ``booknexus.repair`` find a reason. In one transaction:
1. purge orphans: delete every checkout whose user (then: whose book) does not exist,
   logging a ``purged`` event for each (reason ``missing_user`` / ``missing_book``);
2. reconcile: append ``deleted`` (reason ``external``) for every checkout the log says is
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
    ColumnElement,
    DateTime,
    and_,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, aliased

from booknexus.books.models import Book
from booknexus.checkouts.models import Checkout
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
from booknexus.log.models import CheckoutEvent
from booknexus.meta import isoformat, utcnow
from booknexus.users.models import User

log = logging.getLogger(__name__)

FIRST_IDS = 10
ENDING = (DELETED, PURGED)


@dataclass
class CleanupReport:
    full: bool = True  # False: the cheap checks found no reason to scan
    reasons: list[str] = field(default_factory=list)  # why the full repair ran
    at: datetime = field(default_factory=utcnow)
    purged_missing_user: int = 0
    purged_missing_book: int = 0
    reconciled: int = 0
    imported: int = 0
    updated: int = 0
    first_ids: dict[str, list[int]] = field(default_factory=dict)

    def summary(self) -> str:
        if not self.full:
            return "cleanup: nothing to repair (foreign keys, capture triggers and the log are in order)"
        return (
            f"cleanup ({'; '.join(self.reasons)}): "
            f"purged {self.purged_missing_user} checkouts of missing users "
            f"{self.first_ids.get('purged_missing_user', [])}, {self.purged_missing_book} of "
            f"missing books {self.first_ids.get('purged_missing_book', [])}; reconciled "
            f"{self.reconciled} deleted outside the app {self.first_ids.get('reconciled', [])}; "
            f"imported {self.imported} unlogged {self.first_ids.get('imported', [])}; "
            f"resynced {self.updated} changed by hand {self.first_ids.get('updated', [])}"
        )

    def as_json(self) -> dict:
        report = asdict(self)
        report["at"] = isoformat(self.at)
        return report


def missing_user() -> ColumnElement:
    # NOT EXISTS, never NOT IN: NOT IN yields nothing once the subquery holds a NULL
    return ~exists().where(User.id == Checkout.user_id)


def missing_book() -> ColumnElement:
    return ~exists().where(Book.id == Checkout.book_id)


def latest_events():
    """Each checkout's most recent event (none later for the same checkout)."""
    event, later = aliased(CheckoutEvent, name="event"), aliased(CheckoutEvent, name="later")
    newest = ~exists().where(later.checkout_id == event.checkout_id, later.id > event.id)
    return event, newest


def live_in_log(checkout_id) -> ColumnElement:
    event, newest = latest_events()
    return exists().where(event.checkout_id == checkout_id, newest, event.type.not_in(ENDING))


def _first_ids(session: Session, where) -> list[int]:
    return list(session.scalars(select(Checkout.id).where(where).order_by(Checkout.id).limit(FIRST_IDS)))


def purge(session: Session, report: CleanupReport) -> None:
    for name, where, reason in (
        ("purged_missing_user", missing_user(), "missing_user"),
        ("purged_missing_book", missing_book(), "missing_book"),
    ):
        report.first_ids[name] = _first_ids(session, where)
        if report.first_ids[name]:
            setattr(report, name, delete_and_append(session, where, PURGED, reason=reason))


def _with_reason(dialect: str, data, reason: str) -> ColumnElement:
    """The last known state of a checkout, plus the reason it ended; the system is the actor."""
    if dialect == "postgresql":
        addition = func.jsonb_build_object(
            literal_column("'reason'"), literal_column(f"'{reason}'"), literal_column("'actor'"), null()
        )
        return cast(cast(data, JSONB).op("||")(addition), JSON)
    return func.json_set(data, "$.reason", reason, "$.actor", func.json("null"))


def reconcile(session: Session, report: CleanupReport) -> None:
    dialect = session.get_bind().dialect.name
    event, newest = latest_events()
    gone = and_(newest, event.type.not_in(ENDING), ~exists().where(Checkout.id == event.checkout_id))
    report.first_ids["reconciled"] = list(
        session.scalars(select(event.checkout_id).where(gone).order_by(event.checkout_id).limit(FIRST_IDS))
    )
    if not report.first_ids["reconciled"]:
        return
    rows = (
        select(
            event.checkout_id,
            event.user_id,
            event.book_id,
            literal(DELETED),
            literal(utcnow(), CheckoutEvent.occurred_at.type),
            _with_reason(dialect, event.data, "external"),
        )
        .where(gone)
        .order_by(event.checkout_id)
    )
    report.reconciled = append_rows(session, rows)


def import_unlogged(session: Session, report: CleanupReport) -> None:
    dialect = session.get_bind().dialect.name
    checkouts = Checkout.__table__
    unlogged = ~live_in_log(checkouts.c.id)
    report.first_ids["imported"] = _first_ids(session, unlogged)
    if not report.first_ids["imported"]:
        return
    source = select(checkouts).where(unlogged).subquery()
    rows = event_rows(dialect, source, IMPORTED, actor=None).order_by(source.c.id)
    report.imported = append_rows(session, rows)


def _instant(dialect: str, value) -> ColumnElement:
    """A timestamp (or its logged text) in a form that compares by value."""
    if dialect == "postgresql":
        return cast(value, DateTime(timezone=True))
    return func.strftime("%Y-%m-%d %H:%M:%f", value)  # to the millisecond: SQLite's finest


def resync(session: Session, report: CleanupReport) -> None:
    dialect = session.get_bind().dialect.name
    checkouts = Checkout.__table__
    event, newest = latest_events()
    differs = or_(
        event.user_id != checkouts.c.userId,
        event.book_id != checkouts.c.bookId,
        *(
            _instant(dialect, event.data[name].as_string()).is_distinct_from(
                _instant(dialect, checkouts.c[name])
            )
            for name in CHECKOUTS.timestamps
        ),
        *(event.data[name].as_integer().is_distinct_from(checkouts.c[name]) for name in CHECKOUTS.values),
    )
    changed = exists().where(event.checkout_id == checkouts.c.id, newest, event.type.not_in(ENDING), differs)
    report.first_ids["updated"] = _first_ids(session, changed)
    if not report.first_ids["updated"]:
        return
    source = select(checkouts).where(changed).subquery()
    rows = event_rows(dialect, source, UPDATED, actor=None, reason="external").order_by(source.c.id)
    report.updated = append_rows(session, rows)


def run_cleanup(session: Session, reasons: list[str]) -> CleanupReport:
    """The four steps, in the caller's transaction; the caller commits (or rolls back)."""
    report = CleanupReport(reasons=reasons)
    purge(session, report)
    reconcile(session, report)
    import_unlogged(session, report)
    resync(session, report)
    log.info(report.summary())
    return report
