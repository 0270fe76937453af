"""The library's loan rules: read from the settings once, checked before lending or holding.

A member may have at most ``booknexus.max_loans`` open loans and ``booknexus.max_holds``
open holds (waiting, in transit or ready), and may not borrow or place holds while a loan
of theirs is overdue.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Integer, bindparam, column, text
from sqlalchemy.orm import Session

from booknexus.db.schema import UTCDateTime, isoformat, utcnow
from booknexus.refusals import Refused


@dataclass(frozen=True)
class Rules:
    loan_period: timedelta
    max_renewals: int
    max_loans: int
    max_holds: int
    pickup_period: timedelta  # how long a copy is set aside for a ready hold

    @classmethod
    def from_settings(cls, settings: dict) -> "Rules":
        return cls(
            loan_period=timedelta(days=int(settings.get("booknexus.loan_days", 14))),
            max_renewals=int(settings.get("booknexus.max_renewals", 2)),
            max_loans=int(settings.get("booknexus.max_loans", 10)),
            max_holds=int(settings.get("booknexus.max_holds", 5)),
            pickup_period=timedelta(days=float(settings.get("booknexus.hold_pickup_days", 7))),
        )


def rules(request) -> Rules:
    return request.registry["booknexus.rules"]


# compiled once: read on every checkout and hold
BORROWER = (
    text("""
    SELECT count(*) AS loans,
           min(CASE WHEN "dueAt" < :now THEN "dueAt" END) AS overdue,
           count(CASE WHEN "bookId" = :book THEN 1 END) AS loans_of_book,
           (SELECT id FROM "Holds" WHERE "userId" = :user AND "bookId" = :book
                                    AND status IN ('waiting', 'in_transit', 'ready')) AS hold,
           (SELECT count(*) FROM "Holds" WHERE "userId" = :user
                                          AND status IN ('waiting', 'in_transit', 'ready')) AS holds
    FROM "Checkouts" WHERE "userId" = :user AND "returnedAt" IS NULL
""")
    .bindparams(bindparam("now", type_=UTCDateTime))
    .columns(
        column("loans", Integer),
        column("overdue", UTCDateTime),
        column("loans_of_book", Integer),
        column("hold", Integer),
        column("holds", Integer),
    )
)


def borrower(session: Session, user_id: int, book_id: int):
    """In one round trip, a user's open loans, the earliest due date among the overdue ones,
    their open loans of the book, their open hold on it (its id or None) and their open holds."""
    return session.execute(BORROWER, {"user": user_id, "book": book_id, "now": utcnow()}).one()


def _refuse_overdue(user_id: int, overdue) -> None:
    if overdue is not None:
        raise Refused(
            "has_overdue",
            f"User {user_id} has a loan overdue since {isoformat(overdue)}; return it first.",
            {"userId": user_id, "overdueSince": isoformat(overdue)},
        )


def ensure_may_borrow(
    session: Session, user_id: int, book_id: int, limits: Rules, override: bool
) -> int | None:
    """Check the loan rules (unless a librarian overrides them); returns the id of the
    user's open hold on the book, if any."""
    state = borrower(session, user_id, book_id)
    if override:
        return state.hold
    _refuse_overdue(user_id, state.overdue)
    if state.loans >= limits.max_loans:
        raise Refused(
            "loan_limit",
            f"User {user_id} has {state.loans} open loans, the most allowed.",
            {"userId": user_id, "openLoans": state.loans, "maxLoans": limits.max_loans},
        )
    return state.hold


def ensure_may_hold(session: Session, user_id: int, book_id: int, limits: Rules) -> None:
    state = borrower(session, user_id, book_id)
    if state.hold is not None:
        raise Refused(
            "already_holding",
            f"User {user_id} already holds book {book_id}.",
            {"userId": user_id, "bookId": book_id},
        )
    if state.loans_of_book:
        raise Refused(
            "already_on_loan",
            f"User {user_id} has book {book_id} on loan already.",
            {"userId": user_id, "bookId": book_id},
        )
    _refuse_overdue(user_id, state.overdue)
    if state.holds >= limits.max_holds:
        raise Refused(
            "hold_limit",
            f"User {user_id} has {state.holds} open holds, the most allowed.",
            {"userId": user_id, "openHolds": state.holds, "maxHolds": limits.max_holds},
        )


def includeme(config):
    config.registry["booknexus.rules"] = Rules.from_settings(config.get_settings())
