"""The catalogue's read statements and the JSON of a book, shared by the JSON views and the
catalogue's pages: each statement built once per application (constructing a statement costs
more CPU than running it)."""

from sqlalchemy import bindparam, select

from booknexus.catalog.interfaces import stock
from booknexus.catalog.models import Book
from booknexus.db.schema import timestamp

BOOKS_WITH_STOCK = "booknexus.catalog.books_with_stock"
BOOK_WITH_STOCK = "booknexus.catalog.book_with_stock"


def serialize_book(book, branches: list[dict] | None) -> dict:
    """A book (the model, or a row of its columns) and its items by branch, as the API shows
    them: ``copies`` the items the library owns, ``available`` those on a shelf (not on loan,
    on the hold shelf, in transit, missing or lost)."""
    branches = branches or []
    return {
        "id": book.id,
        "title": book.title,
        "author": book.author,
        "isbn": book.isbn,
        "copies": book.copies,
        "available": sum(branch["available"] for branch in branches),
        "branches": branches,
        "createdAt": timestamp(book.created_at),
        "updatedAt": timestamp(book.updated_at),
    }


# labelled with the model's attribute names: a Core row then reads like a Book
BOOK_COLUMNS = tuple(
    getattr(Book, name).label(name)
    for name in ("id", "title", "author", "isbn", "copies", "created_at", "updated_at")
)


def books_with_stock(registry):
    """Books' columns (named as the model's attributes, which ``serialize_book`` reads) and
    their items by branch, in one statement; built once per application: constructing a
    statement costs more CPU than running it."""
    if BOOKS_WITH_STOCK not in registry:
        availability = stock(registry).availability_column(Book.id).label("branches")
        registry[BOOKS_WITH_STOCK] = select(*BOOK_COLUMNS, availability)
    return registry[BOOKS_WITH_STOCK]


def book_with_stock(registry):
    if BOOK_WITH_STOCK not in registry:
        registry[BOOK_WITH_STOCK] = books_with_stock(registry).where(Book.id == bindparam("book_id"))
    return registry[BOOK_WITH_STOCK]
