"""Where an item goes next: to a hold (its shelf here, or in transit to its pickup branch),
home, or back on the shelf. The desk's check-in, a capture and a hold that lets its item go
all end here, so every way an item moves follows one set of rules.

The caller holds the book's lock and the item's (``locks``, steps 2 and 3).

Holds stay title-level: a hold waits in its book's queue (first come, first served) until an
item is *captured* for it: scanned at check-in (or ``POST /holds/{id}/capture``) while the hold
is first in the queue. Captured where the hold is picked up, the item goes on that branch's
hold shelf and the hold is ``ready`` (the pickup window starts); captured elsewhere, it is
sent ``in_transit`` to the pickup branch, whose check-in puts it on the shelf.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from booknexus.circulation import locks
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.streams import (
    CAPTURED,
    MOVED,
    READY,
    SENT,
    STATUS_CHANGED,
    TRANSIT_RECEIVED,
    TRANSIT_SENT,
)
from booknexus.circulation.inventory import log_item
from booknexus.circulation.models import (
    AVAILABLE,
    IN_TRANSIT,
    IN_TRANSIT_TO_PICKUP,
    ON_HOLD_SHELF,
    Hold,
    Item,
)
from booknexus.circulation.models import READY as HOLD_READY
from booknexus.circulation.rules import Rules
from booknexus.db.schema import isoformat

# what the desk must do with the item in its hand
RESHELVE = "reshelve"
HOLD_SHELF = "hold_shelf"
TRANSIT = "transit"


@dataclass
class Route:
    action: str
    hold: Hold | None = None
    destination: int | None = None  # the branch an item in transit goes to


def queue_actor(hold: Hold, actor: int | None) -> int | None:
    """A queue move is a consequence, not anybody's act: only a reader's own hold moving in
    their own command records them (``queue``)."""
    return actor if hold.user_id == actor else None


def first_waiting(session: Session, book_id: int) -> Hold | None:
    """The next hold in the book's queue."""
    return locks.lock_first_waiting(session, book_id)


def capture(
    session: Session, hold: Hold, item: Item, branch_id: int, rules: Rules, actor: int | None, now: datetime
) -> Route:
    """Set the item aside for the hold: on this branch's hold shelf, or on its way there.
    ``actor`` is recorded as given: the caller decides whether this is an act on the hold (a
    librarian's capture) or a consequence of another (``queue_actor``)."""
    hold.item_id = item.id
    item.current_branch_id = branch_id
    if hold.pickup_branch_id == branch_id:
        item.status = ON_HOLD_SHELF
        item.transit_to_branch_id = item.transit_sent_at = None
        hold.status = HOLD_READY
        hold.ready_at = now
        hold.expires_at = now + rules.pickup_period
        session.flush()
        eventlog.append(session, hold, READY, actor=actor, itemId=item.id)
        log_item(session, item, CAPTURED, holdId=hold.id)
        return Route(HOLD_SHELF, hold=hold)
    hold.status = IN_TRANSIT_TO_PICKUP
    send(session, item, hold.pickup_branch_id, now, reason="hold", holdId=hold.id)
    eventlog.append(session, hold, SENT, actor=actor, itemId=item.id)
    return Route(TRANSIT, hold=hold, destination=hold.pickup_branch_id)


def send(session: Session, item: Item, destination: int, now: datetime, **why) -> None:
    item.status = IN_TRANSIT
    item.transit_to_branch_id = destination
    item.transit_sent_at = now
    log_item(session, item, TRANSIT_SENT, **why)


def receive(session: Session, item: Item, branch_id: int) -> None:
    """An item in transit arrives where it was sent."""
    sent_at = item.transit_sent_at
    item.current_branch_id = branch_id
    item.transit_to_branch_id = item.transit_sent_at = None
    item.status = AVAILABLE
    log_item(session, item, TRANSIT_RECEIVED, sentAt=isoformat(sent_at) if sent_at else None)


def route(
    session: Session, item: Item, branch_id: int, rules: Rules, actor: int | None, now: datetime
) -> Route:
    """An item free in the desk's hands at ``branch_id``: the first hold in the queue gets it;
    else it goes home if it is away, else back on the shelf here."""
    hold = first_waiting(session, item.book_id)
    if hold is not None:
        return capture(session, hold, item, branch_id, rules, queue_actor(hold, actor), now)
    if branch_id != item.home_branch_id:
        item.current_branch_id = branch_id
        send(session, item, item.home_branch_id, now, reason="home")
        return Route(TRANSIT, destination=item.home_branch_id)
    shelve(session, item, branch_id)
    return Route(RESHELVE)


def shelve(session: Session, item: Item, branch_id: int, **why) -> None:
    moved = item.current_branch_id != branch_id
    changed = item.status != AVAILABLE
    item.current_branch_id = branch_id
    item.status = AVAILABLE
    if changed:
        log_item(session, item, STATUS_CHANGED, **why)
    elif moved:
        log_item(session, item, MOVED, **why)


def release(
    session: Session, item: Item, rules: Rules, actor: int | None, now: datetime, reason: str
) -> None:
    """A hold let its item go (expired, cancelled, its reader deleted, or the reader borrowed
    another copy). On the hold shelf, the item stays there for the next hold in the queue if that
    one is picked up at this branch (a new pickup window); else it is free where it lies, and
    the pull list shows it to the branch, whose check-in of it then routes it. An item still in
    transit travels on: its check-in routes it."""
    if item.status != ON_HOLD_SHELF:
        return
    hold = first_waiting(session, item.book_id)
    if hold is not None and hold.pickup_branch_id == item.current_branch_id:
        capture(session, hold, item, item.current_branch_id, rules, queue_actor(hold, actor), now)
        return
    shelve(session, item, item.current_branch_id, reason=reason)
