"""The hold queue of a book: first come, first served, and the pickup windows that lapse.

Every change to a book's loans, holds and items happens under its row lock (``locks.lock_book``),
then calls ``settle``: ready holds past their pickup date expire, and each lets its item go
(``routing.release``: to the next hold if it is picked up at that branch, else free on the
shelf). A waiting hold gets an item only when one is captured for it (``routing``): the item
must be in the desk's hands, so no count makes a hold ready by itself.

The queue's moves are consequences, not anybody's acts: a hold that becomes ready because
someone else's hold lapsed or was cancelled records ``actor: null`` (as an expiry does), so
one reader's id never lands in another reader's record; only a reader's own hold moving in
their own command records them.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, case, func, select, text
from sqlalchemy.orm import Session, aliased

from booknexus.catalog.models import Book
from booknexus.circulation import locks
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.models import EXPIRED, READY, WAITING, Hold
from booknexus.circulation.routing import release
from booknexus.circulation.rules import Rules
from booknexus.db.schema import UTCDateTime, isoformat, utcnow


def queue_position() -> ColumnElement:
    """A waiting hold's place in its book's queue (1 = next); null for any other status."""
    ahead = aliased(Hold, name="ahead")
    count = (
        select(func.count())
        .where(ahead.book_id == Hold.book_id, ahead.status == WAITING, ahead.id <= Hold.id)
        .scalar_subquery()
    )
    return case((Hold.status == WAITING, count), else_=None)


def expire(session: Session, hold: Hold) -> None:
    """A ready hold not picked up in time: it ended when its pickup date passed."""
    hold.status = EXPIRED
    hold.ended_at = hold.expires_at
    session.flush()
    eventlog.append(session, hold, eventlog.EXPIRED, actor=None, expiredAt=isoformat(hold.expires_at))


@dataclass(frozen=True)
class Shelf:
    """A book's circulation at one moment, read in one round trip."""

    on_loan: int  # open loans
    set_aside: int  # ready holds
    lapsed: bool  # a ready hold is past its pickup date


# one statement, compiled once: the hot path of every checkout, return and hold
SHELF = text("""
    SELECT (SELECT count(*) FROM "Checkouts" WHERE "bookId" = :book AND "returnedAt" IS NULL),
           (SELECT count(*) FROM "Holds" WHERE "bookId" = :book AND status = 'ready'),
           EXISTS (SELECT 1 FROM "Holds"
                   WHERE "bookId" = :book AND status = 'ready' AND "expiresAt" <= :now)
""").bindparams(bindparam("now", type_=UTCDateTime))


def shelf(session: Session, book_id: int, now: datetime) -> Shelf:
    on_loan, set_aside, lapsed = session.execute(SHELF, {"book": book_id, "now": now}).one()
    return Shelf(on_loan, set_aside, bool(lapsed))


def settle(
    session: Session, book: Book, limits: Rules, actor: int | None, now: datetime | None = None
) -> Shelf:
    """Expire the book's lapsed ready holds, each letting its item go.

    The caller holds the book's row lock. Each change is logged. Returns the book's
    circulation afterwards; on a quiet book (the usual case) that is one query.
    """
    now = now or utcnow()
    state = shelf(session, book.id, now)
    if not state.lapsed:
        return state
    lapsed_holds = (
        select(Hold)
        .where(Hold.book_id == book.id, Hold.status == READY, Hold.expires_at <= now)
        .order_by(Hold.id)
    )
    # their items first (lock order, step 3), then the holds
    items = locks.lock_items(
        session, lapsed_holds.with_only_columns(Hold.item_id).where(Hold.item_id.is_not(None))
    )
    for hold in session.scalars(lapsed_holds).all():
        expire(session, hold)
    for item in items:
        release(session, item, limits, actor, now, reason="hold_expired")
    return shelf(session, book.id, now)


def books_with_lapsed_holds(session: Session, now: datetime) -> list[int]:
    """Books with a ready hold past its pickup date (served by the partial index on expiresAt)."""
    return list(
        session.scalars(
            select(Hold.book_id)
            .where(Hold.status == READY, Hold.expires_at <= now)
            .distinct()
            .order_by(Hold.book_id)
        )
    )
