"""Lookups of books, shared by views, subscribers and scripts."""

from sqlalchemy.orm import Session

from booknexus.catalog.models import Book
from booknexus.refusals import NotFound


def get_book(session: Session, book_id: int) -> Book:
    book = session.get(Book, book_id)
    if book is None:
        raise NotFound("book", book_id)
    return book
