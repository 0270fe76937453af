"""The catalogue's one question to circulation: how many copies of a book are out.

The catalogue knows nothing of loans and holds. Circulation answers the question by
registering ``out_columns`` (``booknexus.circulation.stock``); without it every copy is in.
"""

from sqlalchemy import ColumnElement, literal

STOCK = "booknexus.catalog.stock"


def nothing_out(book_id: ColumnElement) -> tuple[ColumnElement, ColumnElement]:
    return literal(0), literal(0)


def out_columns(registry, book_id: ColumnElement) -> tuple[ColumnElement, ColumnElement]:
    """Two columns for a book id: its copies on loan and its copies set aside for holds."""
    return registry.get(STOCK, nothing_out)(book_id)
