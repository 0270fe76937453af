"""Deleting a user or a book takes their checkouts and holds with it, each one logged."""

from pyramid.events import subscriber

from booknexus.books.events import BookDeleted
from booknexus.log.append import DELETED, delete_and_append
from booknexus.log.streams import CHECKOUTS, HOLDS
from booknexus.users.events import UserDeleted


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
    delete_records_of(event.request, "userId", event.user.id, "user_deleted")


@subscriber(BookDeleted)
def cascade_book(event):
    delete_records_of(event.request, "bookId", event.book.id, "book_deleted")
