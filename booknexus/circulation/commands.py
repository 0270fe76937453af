"""Circulation's commands: check out, return, renew, delete a loan; place and cancel holds;
remove a reader with everything of theirs (erasure and anonymisation: ``privacy``).

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
from booknexus.catalog.models import Book
from booknexus.circulation import locks
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.streams import STREAMS
from booknexus.circulation.models import CANCELLED, FULFILLED, OPEN, READY, WAITING, Checkout, Hold
from booknexus.circulation.privacy import Policy, anonymise_on_closing
from booknexus.circulation.queue import settle
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


def _open_checkout(session: Session, checkout_id: int) -> tuple[Book, Checkout]:
    """The checkout and its book, both locked (the book first), refused if returned."""
    book = locks.lock_book_of(session, Checkout, checkout_id)
    checkout = locks.lock_record(session, Checkout, checkout_id)
    if checkout.returned_at is not None:
        raise Refused(
            "already_returned",
            f"Checkout {checkout.id} was returned at {isoformat(checkout.returned_at)}.",
            {"returnedAt": isoformat(checkout.returned_at)},
        )
    return book, checkout


def _closed(
    session: Session, actor: int | None, book: Book, record, event: str, *, rules: Rules, policy: Policy
):
    """A loan returned or a hold cancelled: logged, its copy to the queue, and its reader
    anonymised at once where the policy keeps no history (``0`` days)."""
    session.flush()
    eventlog.append(session, record, event, actor=actor)
    settle(session, book, rules, actor)
    anonymise_on_closing(session, policy, STREAMS[type(record)], record.id, session.get(User, record.user_id))


def check_out(
    session: Session,
    actor: int | None,
    user_id: int,
    book_id: int,
    *,
    rules: Rules,
    days: int | None = None,
    override: bool = False,
) -> Checkout:
    """Lend a copy of the book to the reader. ``override`` (a librarian's, checked by the
    caller) lends past the loan limit and the overdue block, never past the copies."""
    # the borrower first (their loan count), then the book (its copies): neither a reader's
    # limit nor a book's last copy can be taken twice by racing commands
    user = locks.lock_borrower(session, user_id)
    book = locks.lock_book(session, book_id)
    state = settle(session, book, rules, actor)
    with after_settling():
        hold_id = ensure_may_borrow(session, user.id, book.id, rules, override)
        own_hold = session.get(Hold, hold_id) if hold_id is not None else None
        # copies set aside for other readers' ready holds are theirs, override or not
        held_for_others = state.set_aside - (1 if own_hold is not None and own_hold.status == READY else 0)
        if state.on_loan + held_for_others >= book.copies:
            raise Refused(
                "no_copy_available",
                f"All {book.copies} copies of book {book.id} are on loan"
                + (f" or set aside for {held_for_others} holds." if held_for_others else "."),
                {
                    "bookId": book.id,
                    "copies": book.copies,
                    "onLoan": state.on_loan,
                    "setAside": held_for_others,
                },
            )
    now = utcnow()
    period = timedelta(days=days) if days else rules.loan_period
    checkout = Checkout(user_id=user.id, book_id=book.id, checked_out_at=now, due_at=now + period)
    session.add(checkout)
    session.flush()
    eventlog.append(
        session, checkout, eventlog.CHECKED_OUT, actor=actor, **({"override": True} if override else {})
    )
    if own_hold is not None:
        own_hold.status = FULFILLED
        own_hold.ended_at = now
        session.flush()
        eventlog.append(session, own_hold, eventlog.FULFILLED, actor=actor, checkoutId=checkout.id)
    return checkout


def return_loan(
    session: Session, actor: int | None, checkout_id: int, *, rules: Rules, policy: Policy
) -> Checkout:
    """The copy comes back: the loan closes and the copy goes to the first waiting hold."""
    book, checkout = _open_checkout(session, checkout_id)
    checkout.returned_at = utcnow()
    _closed(session, actor, book, checkout, eventlog.RETURNED, rules=rules, policy=policy)
    return checkout


def renew(session: Session, actor: int | None, checkout_id: int, *, rules: Rules) -> Checkout:
    """Another loan period from the later of now and the due date, unless someone waits."""
    book, checkout = _open_checkout(session, checkout_id)
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
    """Remove a checkout (a librarian's correction), logged; an open loan's copy is free."""
    book = locks.lock_book_of(session, Checkout, checkout_id)
    deleted = eventlog.delete_and_append(
        session, Checkout.id == checkout_id, eventlog.DELETED, actor=actor, reason="checkout_deleted"
    )
    if not deleted:  # deleted with its user while we waited for the book
        raise NotFound("checkout", checkout_id)
    settle(session, book, rules, actor)


def place_hold(session: Session, actor: int | None, user_id: int, book_id: int, *, rules: Rules) -> Hold:
    """Queue the reader for the book: ready at once if a copy is free and nobody is ahead."""
    # the borrower first (their hold count), then the book, whose row lock orders the queue:
    # concurrent holds take positions one after another
    user = locks.lock_borrower(session, user_id)
    book = locks.lock_book(session, book_id)
    settle(session, book, rules, actor)
    with after_settling():
        ensure_may_hold(session, user.id, book.id, rules)
    hold = Hold(user_id=user.id, book_id=book.id, status=WAITING, placed_at=utcnow())
    session.add(hold)
    session.flush()
    eventlog.append(session, hold, eventlog.PLACED, actor=actor)
    settle(session, book, rules, actor)  # a free copy goes to this hold if nobody waits ahead
    return hold


def cancel_hold(session: Session, actor: int | None, hold_id: int, *, rules: Rules, policy: Policy) -> Hold:
    """End a waiting or ready hold; a ready hold's copy goes to the next in line."""
    book = locks.lock_book_of(session, Hold, hold_id)
    settle(session, book, rules, actor)  # a lapsed hold is expired, not cancelled
    with after_settling():
        hold = locks.lock_record(session, Hold, hold_id)
        if hold.status not in OPEN:
            raise Refused("hold_ended", f"Hold {hold.id} is {hold.status} already.", {"status": hold.status})
    hold.status = CANCELLED
    hold.ended_at = utcnow()
    _closed(session, actor, book, hold, eventlog.CANCELLED, rules=rules, policy=policy)
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
