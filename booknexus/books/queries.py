"""Lookups of books and their loans, shared by views, subscribers and scripts."""

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from booknexus.books.models import Book
from booknexus.checkouts.models import Checkout
from booknexus.errors import not_found


def get_book(session: Session, book_id: int, for_update: bool = False) -> Book:
    book = session.get(Book, book_id, with_for_update=for_update)
    if book is None:
        raise not_found("book", book_id)
    return book


def lock_book_of(session: Session, record, record_id: int) -> Book | None:
    """The book of a checkout or hold (``record`` is the class), locked, in one statement:
    every change to a book's loans and holds locks the book before anything else."""
    book_id = select(record.book_id).where(record.id == record_id).scalar_subquery()
    return session.scalar(select(Book).where(Book.id == book_id).with_for_update())


def open_loans_query(book_id):
    return (
        select(func.count())
        .select_from(Checkout)
        .where(Checkout.book_id == book_id, Checkout.returned_at.is_(None))
    )


def loans_by_book(session: Session, book_ids: list[int]) -> dict[int, int]:
    """Open loans per book for a whole page, in one query."""
    if not book_ids:
        return {}
    rows = session.execute(
        select(Checkout.book_id, func.count())
        .where(Checkout.book_id.in_(book_ids), Checkout.returned_at.is_(None))
        .group_by(Checkout.book_id)
    )
    return dict(rows.all())
