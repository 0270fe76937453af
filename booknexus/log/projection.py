"""Replay: fold the checkout log into the state of every checkout and compare it with the table."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.checkouts.models import Checkout
from booknexus.log.append import DELETED, PURGED, STATE_FIELDS
from booknexus.log.models import CheckoutEvent

BATCH = 10_000
ENDING_EVENTS = (DELETED, PURGED)
COMPARED = ("userId", "bookId", *STATE_FIELDS)


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def replay(session: Session) -> dict[int, dict]:
    """The state of every live checkout according to the log, read in position order."""
    state: dict[int, dict] = {}
    events = session.scalars(
        select(CheckoutEvent).order_by(CheckoutEvent.id).execution_options(yield_per=BATCH)
    )
    for event in events:
        if event.type in ENDING_EVENTS:
            state.pop(event.checkout_id, None)
            continue
        state[event.checkout_id] = {
            "userId": event.user_id,
            "bookId": event.book_id,
            "checkedOutAt": _timestamp(event.data.get("checkedOutAt")),
            "dueAt": _timestamp(event.data.get("dueAt")),
            "returnedAt": _timestamp(event.data.get("returnedAt")),
            "renewals": event.data.get("renewals"),
        }
    return state


def table(session: Session) -> dict[int, dict]:
    rows = session.scalars(select(Checkout).order_by(Checkout.id).execution_options(yield_per=BATCH))
    return {
        row.id: {
            "userId": row.user_id,
            "bookId": row.book_id,
            "checkedOutAt": row.checked_out_at,
            "dueAt": row.due_at,
            "returnedAt": row.returned_at,
            "renewals": row.renewals,
        }
        for row in rows
    }


@dataclass
class Drift:
    missing: list[int] = field(default_factory=list)  # live in the log, absent from the table
    extra: list[int] = field(default_factory=list)  # in the table, unknown to the log or ended
    differing: list[tuple[int, str, object, object]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.differing)

    def report(self) -> str:
        if not self:
            return "no drift: replaying the checkout log reproduces the Checkouts table"
        lines = [
            f"missing from the table (live in the log): {len(self.missing)} {self.missing[:20]}",
            f"extra in the table (not live in the log): {len(self.extra)} {self.extra[:20]}",
            f"differing fields: {len(self.differing)}",
        ]
        lines += [
            f"  checkout {checkout_id} {name}: log={logged!r} table={actual!r}"
            for checkout_id, name, logged, actual in self.differing[:20]
        ]
        return "\n".join(lines)


def compare(session: Session) -> Drift:
    logged, actual = replay(session), table(session)
    drift = Drift(
        missing=sorted(logged.keys() - actual.keys()),
        extra=sorted(actual.keys() - logged.keys()),
    )
    for checkout_id in sorted(logged.keys() & actual.keys()):
        for name in COMPARED:
            if logged[checkout_id][name] != actual[checkout_id][name]:
                drift.differing.append(
                    (checkout_id, name, logged[checkout_id][name], actual[checkout_id][name])
                )
    return drift
