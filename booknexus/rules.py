"""The library's loan rules: read from the settings once, checked before lending or holding.

A member may have at most ``booknexus.max_loans`` open loans and ``booknexus.max_holds``
waiting or ready holds, and may not borrow or place holds while a loan of theirs is overdue.
"""

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from booknexus.checkouts.models import Checkout
from booknexus.errors import ApiError
from booknexus.holds.models import OPEN, Hold
from booknexus.meta import isoformat, utcnow


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


def ensure_nothing_overdue(session: Session, user_id: int) -> None:
    overdue = session.scalar(
        select(func.min(Checkout.due_at)).where(
            Checkout.user_id == user_id, Checkout.returned_at.is_(None), Checkout.due_at < utcnow()
        )
    )
    if overdue is not None:
        raise ApiError(
            409,
            "has_overdue",
            f"User {user_id} has a loan overdue since {isoformat(overdue)}; return it first.",
            {"userId": user_id, "overdueSince": isoformat(overdue)},
        )


def ensure_may_borrow(session: Session, user_id: int, limits: Rules) -> None:
    ensure_nothing_overdue(session, user_id)
    loans = session.scalar(
        select(func.count()).where(Checkout.user_id == user_id, Checkout.returned_at.is_(None))
    )
    if loans >= limits.max_loans:
        raise ApiError(
            409,
            "loan_limit",
            f"User {user_id} has {loans} open loans, the most allowed.",
            {"userId": user_id, "openLoans": loans, "maxLoans": limits.max_loans},
        )


def ensure_may_hold(session: Session, user_id: int, book_id: int, limits: Rules) -> None:
    if session.scalar(
        select(exists().where(Hold.user_id == user_id, Hold.book_id == book_id, Hold.status.in_(OPEN)))
    ):
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
    ensure_nothing_overdue(session, user_id)
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
