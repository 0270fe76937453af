"""The hold queue of a book: who gets the next free copy, and when a set-aside copy lapses.

Every change to a book's loans or holds happens under its row lock (``locks.lock_book``),
then calls ``settle``: ready holds past their pickup date expire, and each free copy goes to
the first waiting hold. So after every command:
    open loans + ready holds <= copies, and a copy is free only if nobody is waiting.

The queue's moves are consequences, not anybody's acts: a hold that becomes ready because
someone else returned, cancelled or borrowed records ``actor: null`` (as an expiry does), so
one reader's id never lands in another reader's record; only a reader's own hold becoming
ready in their own command records them.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, bindparam, case, func, or_, select, text
from sqlalchemy.orm import Session, aliased

from booknexus.catalog.models import Book
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.models import EXPIRED, READY, WAITING, Checkout, Hold
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
    waiting: int  # holds in the queue


# one statement, compiled once: the hot path of every checkout, return and hold
SHELF = text("""
    SELECT (SELECT count(*) FROM "Checkouts" WHERE "bookId" = :book AND "returnedAt" IS NULL),
           (SELECT count(*) FROM "Holds" WHERE "bookId" = :book AND status = 'ready'),
           EXISTS (SELECT 1 FROM "Holds"
                   WHERE "bookId" = :book AND status = 'ready' AND "expiresAt" <= :now),
           (SELECT count(*) FROM "Holds" WHERE "bookId" = :book AND status = 'waiting')
""").bindparams(bindparam("now", type_=UTCDateTime))


def shelf(session: Session, book_id: int, now: datetime) -> Shelf:
    on_loan, set_aside, lapsed, waiting = session.execute(SHELF, {"book": book_id, "now": now}).one()
    return Shelf(on_loan, set_aside, bool(lapsed), waiting)


def settle(
    session: Session, book: Book, limits: Rules, actor: int | None, now: datetime | None = None
) -> Shelf:
    """Expire the book's lapsed ready holds, then give its free copies to the queue, in order.

    The caller holds the book's row lock. Each change is logged. Returns the book's
    circulation afterwards; on a quiet book (the usual case) that is one query.
    """
    now = now or utcnow()
    state = shelf(session, book.id, now)
    if not state.lapsed and not (state.waiting and book.copies > state.on_loan + state.set_aside):
        return state
    lapsed = session.scalars(
        select(Hold)
        .where(Hold.book_id == book.id, Hold.status == READY, Hold.expires_at <= now)
        .order_by(Hold.id)
    ).all()
    for hold in lapsed:
        expire(session, hold)
    free = book.copies - state.on_loan - (state.set_aside - len(lapsed))
    if free > 0 and state.waiting:
        first = session.scalars(
            select(Hold).where(Hold.book_id == book.id, Hold.status == WAITING).order_by(Hold.id).limit(free)
        ).all()
        for hold in first:
            hold.status = READY
            hold.ready_at = now
            hold.expires_at = now + limits.pickup_period
            session.flush()
            eventlog.append(session, hold, eventlog.READY, actor=actor if hold.user_id == actor else None)
    return shelf(session, book.id, now)


def books_freed_by(session: Session, user_id: int) -> list[int]:
    """Books whose queue moves when this user goes: a copy they hold or have on loan comes
    free and somebody else is waiting for it. In id order, the order to lock them in."""
    theirs = or_(
        Book.id.in_(
            select(Checkout.book_id).where(Checkout.user_id == user_id, Checkout.returned_at.is_(None))
        ),
        Book.id.in_(select(Hold.book_id).where(Hold.user_id == user_id, Hold.status == READY)),
    )
    waited_for = Book.id.in_(select(Hold.book_id).where(Hold.status == WAITING, Hold.user_id != user_id))
    return list(session.scalars(select(Book.id).where(theirs, waited_for).order_by(Book.id)))


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
