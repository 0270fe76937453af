"""What circulation does when the catalogue or the accounts change, in the same transaction.

Deleting a user or a book takes their checkouts and holds with it, each one logged; a
book's copies cannot drop below those on loan and set aside, and more copies move its queue.
"""

from pyramid.events import subscriber

from booknexus.accounts.events import UserDeleted
from booknexus.catalog.events import BookChanged, BookChanging, BookDeleted
from booknexus.catalog.queries import get_book
from booknexus.circulation.eventlog.append import DELETED, delete_and_append
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS
from booknexus.circulation.locks import lock_books_of_user
from booknexus.circulation.queue import books_freed_by, settle_for
from booknexus.refusals import Refused


def delete_records_of(request, column: str, owner_id: int, reason: str) -> None:
    # checkouts first, then holds: the order every transaction takes the log locks in
    for stream in (CHECKOUTS, HOLDS):
        delete_and_append(
            request.dbsession,
            stream.records.c[column] == owner_id,
            DELETED,
            actor=request.authenticated_userid,
            stream=stream,
            reason=reason,
        )


@subscriber(UserDeleted)
def cascade_user(event):
    """The caller holds the user's lock (step 1 of ``booknexus.circulation.locks``); every
    book of theirs is locked next, then their records go, then the queues they leave move."""
    request, session, user_id = event.request, event.request.dbsession, event.user.id
    lock_books_of_user(session, user_id)
    freed = [get_book(session, book_id) for book_id in books_freed_by(session, user_id)]
    delete_records_of(request, "userId", user_id, "user_deleted")
    for book in freed:
        settle_for(request, book)


@subscriber(BookDeleted)
def cascade_book(event):
    delete_records_of(event.request, "bookId", event.book.id, "book_deleted")


@subscriber(BookChanging)
def keep_copies_for_loans_and_holds(event):
    """Lapsed holds expire first; then copies may not drop below those on loan and set aside."""
    state = settle_for(event.request, event.book)
    copies = event.changes.get("copies")
    if copies is not None and copies < state.on_loan + state.set_aside:
        on_loan, held = state.on_loan, state.set_aside
        raise Refused(
            "copies_on_loan",
            f"{on_loan} copies are on loan"
            + (f" and {held} set aside for holds" if held else "")
            + f"; copies cannot drop to {copies}.",
            {"copies": copies, "onLoan": on_loan, "setAside": held},
        )


@subscriber(BookChanged)
def move_the_queue(event):
    settle_for(event.request, event.book)  # more copies: the queue moves
