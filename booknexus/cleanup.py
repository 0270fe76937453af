"""The cleanup: make the Checkouts table and the checkout log agree, set-based.

In one transaction:
1. purge orphans: delete every checkout whose user (then: whose book) does not exist,
   logging a ``purged`` event for each (reason ``missing_user`` / ``missing_book``);
2. reconcile: append ``deleted`` (reason ``external``) for every checkout the log says is
   live but the table no longer has (deleted by hand in SQL, or by the database's CASCADE);
3. import: append ``imported`` for every row of the table that the log does not hold as live.

Every step is one or two SQL statements; only counts and the first few ids reach Python,
so memory does not grow with the table. On PostgreSQL a transaction-scoped advisory lock
keeps two processes from cleaning at once: the second skips, and goes on starting.
"""

import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import (
    JSON,
    ColumnElement,
    and_,
    cast,
    exists,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, aliased

from booknexus.books.models import Book
from booknexus.checkouts.models import Checkout
from booknexus.log.append import (
    DELETED,
    IMPORTED,
    PURGED,
    append_rows,
    delete_and_append,
    event_rows,
)
from booknexus.log.models import CheckoutEvent
from booknexus.meta import isoformat, utcnow
from booknexus.users.models import User

log = logging.getLogger(__name__)

CLEANUP_LOCK_KEY = 0x426F6F6B436C6E  # "BookCln", any constant of our own
FIRST_IDS = 10
ENDING = (DELETED, PURGED)


@dataclass
class CleanupReport:
    ran: bool = True  # False: another process held the cleanup lock
    at: datetime = field(default_factory=utcnow)
    purged_missing_user: int = 0
    purged_missing_book: int = 0
    reconciled: int = 0
    imported: int = 0
    first_ids: dict[str, list[int]] = field(default_factory=dict)

    def summary(self) -> str:
        if not self.ran:
            return "cleanup skipped: another process is running it"
        return (
            f"cleanup: purged {self.purged_missing_user} checkouts of missing users "
            f"{self.first_ids.get('purged_missing_user', [])}, {self.purged_missing_book} of "
            f"missing books {self.first_ids.get('purged_missing_book', [])}; reconciled "
            f"{self.reconciled} deleted outside the app {self.first_ids.get('reconciled', [])}; "
            f"imported {self.imported} unlogged {self.first_ids.get('imported', [])}"
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


def take_cleanup_lock(session: Session) -> bool:
    if session.get_bind().dialect.name != "postgresql":
        return True  # SQLite: one writer at a time anyway
    return session.scalar(text(f"SELECT pg_try_advisory_xact_lock({CLEANUP_LOCK_KEY})"))


def run_cleanup(session: Session) -> CleanupReport:
    """Run the three steps in the caller's transaction; the caller commits (or rolls back)."""
    if not take_cleanup_lock(session):
        report = CleanupReport(ran=False)
    else:
        report = CleanupReport()
        purge(session, report)
        reconcile(session, report)
        import_unlogged(session, report)
    log.info(report.summary())
    return report
