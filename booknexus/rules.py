"""The library's loan rules: read from the settings once, checked before lending or holding.

A member may have at most ``booknexus.max_loans`` open loans and ``booknexus.max_holds``
waiting or ready holds, and may not borrow or place holds while a loan of theirs is overdue.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Integer, bindparam, column, exists, func, select, text
from sqlalchemy.orm import Session

from booknexus.checkouts.models import Checkout
from booknexus.errors import ApiError
from booknexus.holds.models import OPEN, Hold
from booknexus.meta import UTCDateTime, isoformat, utcnow


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
    SELECT count(*), min(CASE WHEN "dueAt" < :now THEN "dueAt" END),
           (SELECT id FROM "Holds" WHERE "userId" = :user AND "bookId" = :book
                                    AND status IN ('waiting', 'ready'))
    FROM "Checkouts" WHERE "userId" = :user AND "returnedAt" IS NULL
""")
    .bindparams(bindparam("now", type_=UTCDateTime))
    .columns(column("count", Integer), column("overdue", UTCDateTime), column("hold", Integer))
)


def borrower(session: Session, user_id: int, book_id: int):
    """A user's open loans, the earliest due date among the overdue ones, and their open hold
    on the book (its id, or None), in one round trip."""
    return session.execute(BORROWER, {"user": user_id, "book": book_id, "now": utcnow()}).one()


def _refuse_overdue(user_id: int, overdue) -> None:
    if overdue is not None:
        raise ApiError(
            409,
            "has_overdue",
            f"User {user_id} has a loan overdue since {isoformat(overdue)}; return it first.",
            {"userId": user_id, "overdueSince": isoformat(overdue)},
        )


def ensure_may_borrow(
    session: Session, user_id: int, book_id: int, limits: Rules, override: bool
) -> int | None:
    """Check the loan rules (unless a librarian overrides them); returns the id of the
    user's open hold on the book, if any."""
    loans, overdue, hold_id = borrower(session, user_id, book_id)
    if override:
        return hold_id
    _refuse_overdue(user_id, overdue)
    if loans >= limits.max_loans:
        raise ApiError(
            409,
            "loan_limit",
            f"User {user_id} has {loans} open loans, the most allowed.",
            {"userId": user_id, "openLoans": loans, "maxLoans": limits.max_loans},
        )
    return hold_id


def ensure_may_hold(session: Session, user_id: int, book_id: int, limits: Rules) -> None:
    _, overdue, hold_id = borrower(session, user_id, book_id)
    if hold_id is not None:
        raise ApiError(
            409,
            "already_holding",
            f"User {user_id} already holds book {book_id}.",
            {"userId": user_id, "bookId": book_id},
        )
    if session.scalar(
        select(
            exists().where(
                Checkout.user_id == user_id, Checkout.book_id == book_id, Checkout.returned_at.is_(None)
            )
        )
    ):
        raise ApiError(
            409,
            "already_on_loan",
            f"User {user_id} has book {book_id} on loan already.",
            {"userId": user_id, "bookId": book_id},
        )
    _refuse_overdue(user_id, overdue)
    holds = session.scalar(select(func.count()).where(Hold.user_id == user_id, Hold.status.in_(OPEN)))
    if holds >= limits.max_holds:
        raise ApiError(
            409,
            "hold_limit",
            f"User {user_id} has {holds} open holds, the most allowed.",
            {"userId": user_id, "openHolds": holds, "maxHolds": limits.max_holds},
        )


def includeme(config):
    config.registry["booknexus.rules"] = Rules.from_settings(config.get_settings())
