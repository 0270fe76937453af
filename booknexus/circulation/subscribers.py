"""What circulation does when the catalogue or the accounts delete something, in the same
transaction: a user's or a book's checkouts and holds go with them, each one logged, and the
queues they leave move."""

from pyramid.events import subscriber
from sqlalchemy.orm import Session

from booknexus.accounts.events import UserDeleted
from booknexus.catalog.events import BookDeleted
from booknexus.catalog.models import Book
from booknexus.circulation import locks
from booknexus.circulation.eventlog.append import DELETED, delete_and_append
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS
from booknexus.circulation.queue import books_freed_by, settle
from booknexus.circulation.rules import Rules


def delete_records_of(session: Session, actor: int | None, column: str, owner_id: int, reason: str) -> None:
    # checkouts first, then holds: the order every transaction takes the log locks in
    for stream in (CHECKOUTS, HOLDS):
        delete_and_append(
            session, stream.records.c[column] == owner_id, DELETED, actor=actor, stream=stream, reason=reason
        )


def remove_records_of_user(session: Session, actor: int | None, user_id: int, rules: Rules) -> None:
    """The caller holds the user's lock (step 1 of ``locks``); every book of theirs is locked
    next, then their records go, then the queues they leave move."""
    locks.lock_books_of_user(session, user_id)
    freed = [session.get(Book, book_id) for book_id in books_freed_by(session, user_id)]
    delete_records_of(session, actor, "userId", user_id, "user_deleted")
    for book in freed:
        settle(session, book, rules, actor)


@subscriber(UserDeleted)
def cascade_user(event):
    remove_records_of_user(event.session, event.actor, event.user.id, event.registry["booknexus.rules"])


@subscriber(BookDeleted)
def cascade_book(event):
    """The caller holds the book's lock: its records go (nobody's queue but its own moves)."""
    delete_records_of(event.session, event.actor, "bookId", event.book.id, "book_deleted")
