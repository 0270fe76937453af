"""Lookups of circulation shared by views, subscribers, scripts and the catalogue's stock."""

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from booknexus.catalog.models import Book
from booknexus.circulation.models import READY, Checkout, Hold


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


def set_aside_query(book_id) -> ColumnElement:
    """How many copies of a book are set aside for ready holds."""
    return select(func.count()).select_from(Hold).where(Hold.book_id == book_id, Hold.status == READY)
