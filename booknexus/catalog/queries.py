"""Lookups of books, shared by views, subscribers and scripts."""

from sqlalchemy.orm import Session

from booknexus.catalog.models import Book
from booknexus.refusals import NotFound


def get_book(session: Session, book_id: int, for_update: bool = False) -> Book:
    book = session.get(Book, book_id, with_for_update=for_update)
    if book is None:
        raise NotFound("book", book_id)
    return book
