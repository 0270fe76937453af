"""Circulation's commands: lend a book's item, renew, delete a loan; place, capture and cancel
holds; remove a reader with everything of theirs (erasure and anonymisation: ``privacy``).
The desk's commands by barcode (check-out, check-in, returns, lost): ``desk``; where an item
goes next: ``routing``; the items themselves: ``inventory``.

Each is one function (session, actor, arguments -> the changed record, or a refusal from
``booknexus.refusals``) that takes its locks in the one order (``locks``), settles the book's
queue, checks the rules and appends to the log, all in the caller's transaction. The JSON
views, the desk's pages, a SIP2 server and the jobs call these and only translate: none of
them orchestrates a command itself.

A refusal raised after the book's queue was settled says so (``keeps_changes``): lapsed holds
expired and copies passed on stand whatever the command wanted, so the caller commits them.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from booknexus.accounts.events import UserDeleted
from booknexus.accounts.models import User
from booknexus.accounts.queries import ensure_not_last_librarian, ensure_not_the_anonymous_reader
from booknexus.branches.models import Branch
from booknexus.catalog.models import Book
from booknexus.circulation import locks
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.streams import STATUS_CHANGED, STREAMS
from booknexus.circulation.inventory import find_item, log_item
from booknexus.circulation.models import (
    AVAILABLE,
    CANCELLED,
    CHECKED_OUT,
    FULFILLED,
    ON_HOLD_SHELF,
    OPEN,
    READY,
    WAITING,
    Checkout,
    Hold,
    Item,
)
from booknexus.circulation.privacy import Policy, anonymise_on_closing
from booknexus.circulation.queue import settle
from booknexus.circulation.routing import (
    Route,
    capture,
    release,
    shelve,
)
from booknexus.circulation.rules import Rules, ensure_may_borrow, ensure_may_hold
from booknexus.db.schema import isoformat, utcnow
from booknexus.refusals import NotFound, Refused


@contextmanager
def after_settling() -> Iterator[None]:
    """Around what follows a settlement: a refusal from here on keeps the settlement."""
    try:
        yield
    except Refused as refusal:
        refusal.keeps_changes = True
        raise


def open_checkout(session: Session, checkout_id: int) -> tuple[Book, Item | None, Checkout]:
    """The checkout, its book and its item, locked in that order's reverse (book, item, loan),
    refused if returned."""
    book = locks.lock_book_of(session, Checkout, checkout_id)
    item_id = session.scalar(select(Checkout.item_id).where(Checkout.id == checkout_id))
    item = locks.lock_item(session, item_id) if item_id is not None else None
    checkout = locks.lock_record(session, Checkout, checkout_id)
    if checkout.returned_at is not None:
        raise Refused(
            "already_returned",
            f"Checkout {checkout.id} was returned at {isoformat(checkout.returned_at)}.",
            {"returnedAt": isoformat(checkout.returned_at)},
        )
    return book, item, checkout


def closed(session: Session, actor: int | None, record, event: str, *, policy: Policy, **extra):
    """A loan or a hold closed: logged, and its reader anonymised at once where the policy
    keeps no history (``0`` days)."""
    session.flush()
    eventlog.append(session, record, event, actor=actor, **extra)
    anonymise_on_closing(session, policy, STREAMS[type(record)], record.id, session.get(User, record.user_id))


def the_readers_hold(session: Session, hold_id: int | None) -> Hold | None:
    return session.get(Hold, hold_id) if hold_id is not None else None


def ready_hold_on(session: Session, item: Item) -> Hold | None:
    return session.scalars(select(Hold).where(Hold.item_id == item.id, Hold.status == READY)).first()


def ensure_lendable(session: Session, item: Item, user_id: int) -> None:
    """An item may be lent if it is on the shelf, or on the hold shelf for this reader."""
    if item.status == AVAILABLE:
        return
    details = {"itemId": item.id, "barcode": item.barcode, "status": item.status}
    if item.status == ON_HOLD_SHELF:
        hold = ready_hold_on(session, item)
        if hold is not None and hold.user_id == user_id:
            return
        raise Refused(
            "item_on_hold",
            f"Item {item.barcode} is on the hold shelf for another reader's hold.",
            {
                **details,
                "holdId": hold.id if hold else None,
                "expiresAt": isoformat(hold.expires_at) if hold else None,
            },
        )
    if item.status == CHECKED_OUT:
        loan = session.scalars(
            select(Checkout).where(Checkout.item_id == item.id, Checkout.returned_at.is_(None))
        ).first()
        raise Refused(
            "item_on_loan",
            f"Item {item.barcode} is on loan; check it in first.",
            {
                **details,
                "checkoutId": loan.id if loan else None,
                "dueAt": isoformat(loan.due_at) if loan else None,
            },
        )
    raise Refused("item_not_available", f"Item {item.barcode} is {item.status}: it cannot be lent.", details)


def lend(
    session: Session,
    actor: int | None,
    user: User,
    book: Book,
    item: Item,
    branch_id: int,
    own_hold: Hold | None,
    *,
    rules: Rules,
    days: int | None,
    override: bool,
    freed: Item | None = None,
) -> Checkout:
    """``freed``: the item on the hold shelf for the reader's own hold when they borrow another
    copy (locked by the caller with the one lent, in id order): it goes to the next hold."""
    now = utcnow()
    period = timedelta(days=days) if days else rules.loan_period
    checkout = Checkout(
        user_id=user.id,
        book_id=book.id,
        item_id=item.id,
        branch_id=branch_id,
        checked_out_at=now,
        due_at=now + period,
    )
    session.add(checkout)
    item.status = CHECKED_OUT
    item.current_branch_id = branch_id
    item.transit_to_branch_id = item.transit_sent_at = None
    session.flush()
    eventlog.append(
        session, checkout, eventlog.CHECKED_OUT, actor=actor, **({"override": True} if override else {})
    )
    if own_hold is not None:
        own_hold.status = FULFILLED
        own_hold.ended_at = now
        session.flush()
        eventlog.append(session, own_hold, eventlog.FULFILLED, actor=actor, checkoutId=checkout.id)
    log_item(session, item, STATUS_CHANGED, reason="checked_out")
    if freed is not None:
        release(session, freed, rules, actor, now, reason="hold_fulfilled")
    return checkout


def check_out(
    session: Session,
    actor: int | None,
    user_id: int,
    book_id: int,
    branch_id: int,
    *,
    rules: Rules,
    days: int | None = None,
    override: bool = False,
) -> Checkout:
    """Lend an item of the book to the reader at ``branch_id``: the one on the hold shelf for
    them, else one on the shelf there. ``override`` (a librarian's, checked by the caller)
    lends past the loan limit and the overdue block, never an item that is not there."""
    # the borrower first (their loan count), then the book, then the item: neither a reader's
    # limit nor a book's last item can be taken twice by racing commands
    user = locks.lock_borrower(session, user_id)
    book = locks.lock_book(session, book_id)
    state = settle(session, book, rules, actor)
    with after_settling():
        own_hold = the_readers_hold(session, ensure_may_borrow(session, user.id, book.id, rules, override))
        if own_hold is not None and own_hold.status == READY and own_hold.item_id is not None:
            item = locks.lock_item(session, own_hold.item_id)
        else:
            item = locks.lock_shelved_item(session, book.id, branch_id)
        if item is None:
            raise Refused(
                "no_copy_available",
                f"No copy of book {book.id} is on the shelf at branch {branch_id}: "
                f"{state.on_loan} of its {book.copies} are on loan"
                + (f", {state.set_aside} on the hold shelf." if state.set_aside else "."),
                {
                    "bookId": book.id,
                    "branchId": branch_id,
                    "copies": book.copies,
                    "onLoan": state.on_loan,
                    "setAside": state.set_aside,
                },
            )
    return lend(
        session, actor, user, book, item, branch_id, own_hold, rules=rules, days=days, override=override
    )


def renew(session: Session, actor: int | None, checkout_id: int, *, rules: Rules) -> Checkout:
    """Another loan period from the later of now and the due date, unless someone waits."""
    book, _item, checkout = open_checkout(session, checkout_id)
    settle(session, book, rules, actor)
    with after_settling():
        waiting = session.scalar(select(func.count()).where(Hold.book_id == book.id, Hold.status == WAITING))
        if waiting:
            raise Refused(
                "on_hold",
                f"{waiting} readers are waiting for book {book.id}; it cannot be renewed.",
                {"bookId": book.id, "waiting": waiting},
            )
        if checkout.renewals >= rules.max_renewals:
            raise Refused(
                "renewal_limit",
                f"Checkout {checkout.id} has been renewed {rules.max_renewals} times already.",
                {"renewals": checkout.renewals, "maxRenewals": rules.max_renewals},
            )
    checkout.due_at = max(utcnow(), checkout.due_at) + rules.loan_period
    checkout.renewals += 1
    session.flush()
    eventlog.append(session, checkout, eventlog.RENEWED, actor=actor)
    return checkout


def delete_checkout(session: Session, actor: int | None, checkout_id: int, *, rules: Rules) -> None:
    """Remove a checkout (a librarian's correction), logged; an open loan's item is back on
    the shelf where it was lent."""
    book = locks.lock_book_of(session, Checkout, checkout_id)
    item_id, returned_at = session.execute(
        select(Checkout.item_id, Checkout.returned_at).where(Checkout.id == checkout_id)
    ).first() or (None, None)
    item = locks.lock_item(session, item_id) if item_id is not None and returned_at is None else None
    deleted = eventlog.delete_and_append(
        session, Checkout.id == checkout_id, eventlog.DELETED, actor=actor, reason="checkout_deleted"
    )
    if not deleted:  # deleted with its user while we waited for the book
        raise NotFound("checkout", checkout_id)
    if item is not None and item.status == CHECKED_OUT:
        shelve(session, item, item.current_branch_id, reason="checkout_deleted")
    settle(session, book, rules, actor)


def ensure_pickup_location(session: Session, branch_id: int) -> Branch:
    branch = session.get(Branch, branch_id)
    if branch is None:
        raise NotFound("branch", branch_id)
    if not branch.is_pickup_location:
        raise Refused(
            "not_a_pickup_location",
            f"Readers cannot collect holds at branch {branch.code}.",
            {"branchId": branch.id, "code": branch.code},
        )
    return branch


def place_hold(
    session: Session, actor: int | None, user_id: int, book_id: int, pickup_branch_id: int, *, rules: Rules
) -> Hold:
    """Queue the reader for the book, to collect at ``pickup_branch_id``. It waits until an
    item is captured for it; an item on a shelf meanwhile puts it on that branch's pull list."""
    # the borrower first (their hold count), then the book, whose row lock orders the queue:
    # concurrent holds take positions one after another
    user = locks.lock_borrower(session, user_id)
    book = locks.lock_book(session, book_id)
    settle(session, book, rules, actor)
    with after_settling():
        ensure_may_hold(session, user.id, book.id, rules)
        ensure_pickup_location(session, pickup_branch_id)
    hold = Hold(
        user_id=user.id,
        book_id=book.id,
        status=WAITING,
        placed_at=utcnow(),
        pickup_branch_id=pickup_branch_id,
    )
    session.add(hold)
    session.flush()
    eventlog.append(session, hold, eventlog.PLACED, actor=actor)
    return hold


def capture_hold(
    session: Session, actor: int | None, hold_id: int, barcode: str, branch_id: int, *, rules: Rules
) -> tuple[Hold, Route]:
    """A librarian pulled an item from the shelf for a waiting hold (the pull list): it goes on
    the hold shelf here, or in transit to the hold's pickup branch."""
    ref = find_item(session, barcode)
    book = locks.lock_book_of(session, Hold, hold_id)
    if ref.book_id != book.id:
        raise Refused(
            "item_of_another_book",
            f"Item {barcode.upper()} is a copy of book {ref.book_id}, not of book {book.id}.",
            {"itemId": ref.id, "bookId": ref.book_id, "holdBookId": book.id},
        )
    item = locks.lock_item(session, ref.id)
    settle(session, book, rules, actor)
    with after_settling():
        hold = locks.lock_record(session, Hold, hold_id)
        if hold.status != WAITING:
            raise Refused(
                "hold_not_waiting",
                f"Hold {hold.id} is {hold.status}: only a waiting hold is captured.",
                {"holdId": hold.id, "status": hold.status},
            )
        if item.status != AVAILABLE:
            raise Refused(
                "item_not_available",
                f"Item {item.barcode} is {item.status}: only an item on the shelf is captured.",
                {"itemId": item.id, "barcode": item.barcode, "status": item.status},
            )
    return hold, capture(session, hold, item, branch_id, rules, actor, utcnow())


def cancel_hold(session: Session, actor: int | None, hold_id: int, *, rules: Rules, policy: Policy) -> Hold:
    """End an open hold. A ready hold's item is let go (the next hold picked up there, or the
    shelf); an item in transit for it travels on, and its check-in routes it."""
    book = locks.lock_book_of(session, Hold, hold_id)
    settle(session, book, rules, actor)  # a lapsed hold is expired, not cancelled
    with after_settling():
        item_id, status = session.execute(
            select(Hold.item_id, Hold.status).where(Hold.id == hold_id)
        ).first() or (
            None,
            None,
        )
        item = locks.lock_item(session, item_id) if item_id is not None and status == READY else None
        hold = locks.lock_record(session, Hold, hold_id)
        if hold.status not in OPEN:
            raise Refused("hold_ended", f"Hold {hold.id} is {hold.status} already.", {"status": hold.status})
    hold.status = CANCELLED
    hold.ended_at = now = utcnow()
    closed(session, actor, hold, eventlog.CANCELLED, policy=policy)
    if item is not None:
        release(session, item, rules, actor, now, reason="hold_cancelled")
    return hold


def remove_user(session: Session, actor: int | None, user_id: int, *, registry) -> None:
    """Delete an account; its loans and holds go with it, each logged (``UserDeleted``), and
    the queues it leaves move. Never the anonymous reader, never the last librarian."""
    # the user and every librarian first (lock order, step 1): circulation then locks their
    # books and removes their loans and holds
    user = locks.lock_user_and_librarians(session, user_id)
    ensure_not_the_anonymous_reader(user)
    ensure_not_last_librarian(session, user)
    registry.notify(UserDeleted(user, session, actor, registry))
    session.delete(user)
    session.flush()
