"""Lookups of circulation shared by views, subscribers, scripts and the catalogue's stock."""

from sqlalchemy import ColumnElement, func, select

from booknexus.circulation.models import READY, Checkout, Hold


def open_loans_query(book_id):
    return (
        select(func.count())
        .select_from(Checkout)
        .where(Checkout.book_id == book_id, Checkout.returned_at.is_(None))
    )


def set_aside_query(book_id) -> ColumnElement:
    """How many copies of a book are set aside for ready holds."""
    return select(func.count()).select_from(Hold).where(Hold.book_id == book_id, Hold.status == READY)
