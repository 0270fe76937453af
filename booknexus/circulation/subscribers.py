"""What circulation does when the catalogue or the accounts delete something, in the same
transaction: a user's or a book's checkouts and holds go with them, each one logged; a book's
items go with it; the items a deleted reader had are accounted for."""

from pyramid.events import subscriber
from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.accounts.events import UserDeleted
from booknexus.catalog.events import BookDeleted
from booknexus.circulation import locks
from booknexus.circulation.eventlog.append import DELETED, delete_and_append
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS, ITEMS, STATUS_CHANGED
from booknexus.circulation.inventory import log_item
from booknexus.circulation.models import MISSING, READY, Checkout, Hold, Item
from booknexus.circulation.routing import release
from booknexus.circulation.rules import Rules
from booknexus.db.schema import utcnow


def delete_records_of(session: Session, actor: int | None, column: str, owner_id: int, reason: str) -> None:
    # checkouts first, then holds: the order every transaction takes the log locks in
    for stream in (CHECKOUTS, HOLDS):
        delete_and_append(
            session, stream.records.c[column] == owner_id, DELETED, actor=actor, stream=stream, reason=reason
        )


def remove_records_of_user(session: Session, actor: int | None, user_id: int, rules: Rules) -> None:
    """The caller holds the user's lock (step 1 of ``locks``); every book of theirs is locked
    next, then the items they had, then their records go.

    An item on loan to them becomes ``missing`` (reason ``reader_deleted``): it is on their
    shelf, not the library's, and must never be lent again by itself until a check-in finds it.
    An item on the hold shelf for them is let go (the next hold picked up there, or the shelf)."""
    locks.lock_books_of_user(session, user_id)
    on_loan = select(Checkout.item_id).where(Checkout.user_id == user_id, Checkout.returned_at.is_(None))
    held = select(Hold.item_id).where(Hold.user_id == user_id, Hold.status == READY)
    items = locks.lock_items(session, on_loan.union(held))
    lent = set(session.scalars(on_loan))
    delete_records_of(session, actor, "userId", user_id, "user_deleted")
    now = utcnow()
    for item in items:
        if item.id in lent:
            item.status = MISSING
            log_item(session, item, STATUS_CHANGED, reason="reader_deleted")
        else:
            release(session, item, rules, actor, now, reason="hold_reader_deleted")


@subscriber(UserDeleted)
def cascade_user(event):
    remove_records_of_user(event.session, event.actor, event.user.id, event.registry["booknexus.rules"])


@subscriber(BookDeleted)
def cascade_book(event):
    """The caller holds the book's lock: its records go, then its items (in the logs' order)."""
    delete_records_of(event.session, event.actor, "bookId", event.book.id, "book_deleted")
    delete_and_append(
        event.session, Item.book_id == event.book.id, DELETED, actor=None, stream=ITEMS, reason="book_deleted"
    )
