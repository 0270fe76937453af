"""The catalogue's commands that circulation must hear of: a book's change and deletion.

Each takes the book's row lock first, through circulation (step 2 of its lock order, where
every change to a book's copies, loans and holds starts), asks circulation through the
declared interface (``interfaces.IStock``) or tells it by an event (``BookDeleted``), and
raises refusals, never HTTP errors.
"""

from sqlalchemy.orm import Session

from booknexus.catalog.events import BookDeleted
from booknexus.catalog.interfaces import stock
from booknexus.catalog.models import Book


def update_book(session: Session, actor: int | None, book_id: int, changes: dict, *, registry) -> Book:
    """Apply ``changes`` (validated fields) to the book; circulation may refuse its copies."""
    circulation = stock(registry)
    book = circulation.lock_book(session, book_id)
    circulation.copies_changing(session, actor, book, changes.get("copies"))
    for field, value in changes.items():
        setattr(book, field, value)
    session.flush()
    return book


def create_book(session: Session, actor: int | None, fields: dict, *, registry) -> Book:
    """A new book and its copies, as items at the default branch."""
    book = Book(**fields)
    session.add(book)
    session.flush()
    stock(registry).copies_created(session, actor, book)
    return book


def delete_book(session: Session, actor: int | None, book_id: int, *, registry) -> None:
    """Remove the book; its loans and holds go with it, each logged (``BookDeleted``)."""
    book = stock(registry).lock_book(session, book_id)
    registry.notify(BookDeleted(book, session, actor, registry))
    session.delete(book)
    session.flush()
