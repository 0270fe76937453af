"""Deleting a user or a book takes their checkouts with it, each one logged."""

from pyramid.events import subscriber

from booknexus.books.events import BookDeleted
from booknexus.checkouts.models import Checkout
from booknexus.log.append import DELETED, delete_and_append
from booknexus.users.events import UserDeleted


@subscriber(UserDeleted)
def cascade_user_checkouts(event):
    delete_and_append(
        event.request.dbsession,
        Checkout.user_id == event.user.id,
        DELETED,
        reason="user_deleted",
        actor=event.request.authenticated_userid,
    )


@subscriber(BookDeleted)
def cascade_book_checkouts(event):
    delete_and_append(
        event.request.dbsession,
        Checkout.book_id == event.book.id,
        DELETED,
        reason="book_deleted",
        actor=event.request.authenticated_userid,
    )
