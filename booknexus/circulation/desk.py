"""The desk's commands, by barcode, as a scanner drives them: check out the scanned item to a
reader, check an item in and route it (``routing``: the hold shelf, a transit, home, the
shelf), renew by barcode, close a loan as lost or claimed returned. The old API's return
(``POST /checkouts/{id}/return``) is a check-in at the loan's branch.

Each takes its locks in the one order (``locks``) and shares the lending itself with
``commands``; the JSON views, the desk's pages and a SIP2 server call these and only translate.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.circulation import locks
from booknexus.circulation.commands import (
    after_settling,
    closed,
    ensure_lendable,
    lend,
    open_checkout,
    renew,
    the_readers_hold,
)
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog import streams
from booknexus.circulation.eventlog.streams import FOUND, STATUS_CHANGED
from booknexus.circulation.inventory import ItemRef, find_item, log_item
from booknexus.circulation.models import (
    AVAILABLE,
    CLAIMED,
    CLAIMED_RETURNED,
    DECLARED_LOST,
    IN_TRANSIT,
    IN_TRANSIT_TO_PICKUP,
    LOST,
    ON_HOLD_SHELF,
    READY,
    RETURNED,
    UNACCOUNTED,
    WITHDRAWN,
    Checkout,
    Hold,
    Item,
)
from booknexus.circulation.privacy import Policy
from booknexus.circulation.queue import settle
from booknexus.circulation.routing import (
    HOLD_SHELF,
    RESHELVE,
    TRANSIT,
    Route,
    capture,
    queue_actor,
    receive,
    route,
)
from booknexus.circulation.rules import Rules, ensure_may_borrow
from booknexus.db.schema import isoformat, utcnow
from booknexus.refusals import Invalid, NotFound, Refused


def check_out_item(
    session: Session,
    actor: int | None,
    user_id: int,
    barcode: str,
    branch_id: int,
    *,
    rules: Rules,
    days: int | None = None,
    override: bool = False,
) -> Checkout:
    """The desk's check-out: the scanned item to the reader. Refused (409, with what the desk
    can show) past the loan rules (unless overridden), or when the item is on loan, on the hold
    shelf for someone else, or not the library's to lend (in transit, missing, lost, ...)."""
    ref = find_item(session, barcode, reader=user_id)
    user = locks.lock_borrower(session, user_id)
    book = locks.lock_book(session, ref.book_id)
    # the scanned item, and the one on the hold shelf for this reader if it is another: in id order
    if ref.shelved_for_reader in (None, ref.id):
        items = {ref.id: locks.lock_item(session, ref.id)}
    else:
        items = {item.id: item for item in locks.lock_items(session, [ref.id, ref.shelved_for_reader])}
    if ref.id not in items:
        raise NotFound("item", barcode, key="barcode")
    item = items[ref.id]
    settle(session, book, rules, actor)
    with after_settling():
        own_hold = the_readers_hold(session, ensure_may_borrow(session, user.id, book.id, rules, override))
        ensure_lendable(session, item, user.id)
    freed = None
    if own_hold is not None and own_hold.status == READY and own_hold.item_id not in (None, item.id):
        freed = items.get(own_hold.item_id)
    return lend(
        session,
        actor,
        user,
        book,
        item,
        branch_id,
        own_hold,
        rules=rules,
        days=days,
        override=override,
        freed=freed,
    )


@dataclass
class CheckIn:
    """What a check-in did, and what the desk must do with the item in its hand."""

    item: Item
    route: Route
    checkout: Checkout | None = None  # the loan it closed
    found: str | None = None  # the status of an item seen again (missing, lost, ...)


def _close_loan(
    session: Session,
    actor: int | None,
    checkout: Checkout,
    at,
    outcome: str,
    event: str,
    *,
    policy: Policy,
    **extra,
) -> None:
    checkout.returned_at = at
    checkout.outcome = outcome
    closed(session, actor, checkout, event, policy=policy, **extra)


def check_in(
    session: Session,
    actor: int | None,
    barcode: str,
    branch_id: int,
    *,
    rules: Rules,
    policy: Policy,
    returned_at=None,
) -> CheckIn:
    """The desk's check-in: the loan of the scanned item closes (at ``returned_at`` for a book
    drop emptied later: not in the future, not before the loan) and the item is routed: to the
    first hold in its queue, home, or the shelf. An item not on loan answers too: an arrival
    from transit is received, a missing, lost or claimed-returned one is found."""
    ref = find_item(session, barcode)
    return _check_in(session, actor, ref, branch_id, rules=rules, policy=policy, returned_at=returned_at)


def _check_in(
    session: Session,
    actor: int | None,
    ref: ItemRef,
    branch_id: int,
    *,
    rules: Rules,
    policy: Policy,
    returned_at,
) -> CheckIn:
    now = utcnow()
    if returned_at is not None and returned_at > now:
        raise Invalid(
            "returned_in_future",
            f"returnedAt {isoformat(returned_at)} is in the future.",
            {"field": "returnedAt", "value": isoformat(returned_at)},
        )
    book = locks.lock_book(session, ref.book_id)
    item = locks.lock_item(session, ref.id)
    loan = locks.lock_open_loan_of(session, item.id)
    if loan is not None and returned_at is not None and returned_at < loan.checked_out_at:
        raise Invalid(
            "returned_before_loan",
            f"returnedAt {isoformat(returned_at)} is before the loan began "
            f"({isoformat(loan.checked_out_at)}).",
            {"field": "returnedAt", "checkedOutAt": isoformat(loan.checked_out_at)},
        )
    settle(session, book, rules, actor, now)  # may let this very item go (its hold lapsed)
    result = CheckIn(item=item, route=Route(RESHELVE))
    if loan is not None:
        _close_loan(
            session,
            actor,
            loan,
            returned_at or now,
            RETURNED,
            eventlog.RETURNED,
            policy=policy,
            returnBranchId=branch_id,
        )
        result.checkout = loan
    result.route = _route_scanned(session, actor, item, branch_id, result, rules, now)
    return result


def _route_scanned(
    session: Session, actor: int | None, item: Item, branch_id: int, result: CheckIn, rules: Rules, now
) -> Route:
    if item.status in UNACCOUNTED:
        result.found, item.status = item.status, AVAILABLE
        item.current_branch_id = branch_id
        log_item(session, item, FOUND, reason="checked_in", was=result.found)
    if item.status == WITHDRAWN:
        return Route(WITHDRAWN)  # not the library's any more: the desk sets it aside
    if item.status == IN_TRANSIT:
        if item.transit_to_branch_id != branch_id:
            return Route(TRANSIT, destination=item.transit_to_branch_id)  # passing through
        bound_for = _hold_holding(session, item, IN_TRANSIT_TO_PICKUP)
        receive(session, item, branch_id)
        if bound_for is not None and bound_for.pickup_branch_id == branch_id:
            return capture(session, bound_for, item, branch_id, rules, queue_actor(bound_for, actor), now)
    elif item.status == ON_HOLD_SHELF:
        held_for = _hold_holding(session, item, READY)
        if held_for is not None and held_for.pickup_branch_id == branch_id:
            return Route(HOLD_SHELF, hold=held_for)  # scanned again: it stays where it is
        if held_for is not None:  # found at the wrong branch: on its way to the right one
            return capture(session, held_for, item, branch_id, rules, queue_actor(held_for, actor), now)
    return route(session, item, branch_id, rules, actor, now)


def _hold_holding(session: Session, item: Item, status: str) -> Hold | None:
    return session.scalars(select(Hold).where(Hold.item_id == item.id, Hold.status == status)).first()


def renew_item(session: Session, actor: int | None, barcode: str, *, rules: Rules) -> Checkout:
    """The desk's renewal: the open loan of the scanned item."""
    ref = find_item(session, barcode)
    checkout_id = session.scalar(
        select(Checkout.id).where(Checkout.item_id == ref.id, Checkout.returned_at.is_(None))
    )
    if checkout_id is None:
        raise Refused("item_not_on_loan", f"Item {barcode.upper()} is not on loan.", {"itemId": ref.id})
    return renew(session, actor, checkout_id, rules=rules)


def return_loan(
    session: Session,
    actor: int | None,
    checkout_id: int,
    *,
    rules: Rules,
    policy: Policy,
    branch_id: int | None = None,
) -> CheckIn:
    """The item comes back (at the loan's branch unless another is named) and is routed as a
    check-in routes it."""
    book, item, checkout = open_checkout(session, checkout_id)
    if item is None:  # a loan from before items (none is open after revision 0017)
        checkout.returned_at = utcnow()
        checkout.outcome = RETURNED
        closed(session, actor, checkout, eventlog.RETURNED, policy=policy)
        return CheckIn(item=None, route=Route(RESHELVE), checkout=checkout)
    at = branch_id or checkout.branch_id or item.current_branch_id
    return _check_in(
        session, actor, ItemRef(item.id, book.id), at, rules=rules, policy=policy, returned_at=None
    )


def close_loan_as(
    session: Session, actor: int | None, checkout_id: int, outcome: str, *, rules: Rules, policy: Policy
) -> Checkout:
    """``lost`` (the reader declares the item lost) or ``claimed_returned`` (the reader says it
    came back; the library has not seen it): the loan closes with that outcome, the item takes
    it as its status until a check-in finds it."""
    book, item, checkout = open_checkout(session, checkout_id)
    settle(session, book, rules, actor)
    now = utcnow()
    event, status = {
        DECLARED_LOST: (streams.LOST, LOST),
        CLAIMED: (streams.CLAIMED_RETURNED, CLAIMED_RETURNED),
    }[outcome]
    _close_loan(session, actor, checkout, now, outcome, event, policy=policy)
    if item is not None:
        item.status = status
        log_item(session, item, STATUS_CHANGED, reason=outcome)
    return checkout
