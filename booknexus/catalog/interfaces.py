"""What the catalogue asks of circulation, which it cannot import (circulation sits above it).

Circulation registers the one implementation as a utility of the app's registry
(``booknexus.circulation.stock``); the catalogue finds it with ``stock(registry)``.
"""

from zope.interface import Interface


class IStock(Interface):
    """Circulation's answers about a book's copies."""

    def lock_book(session, book_id):
        """The book, locked for a change (step 2 of circulation's lock order: every change to
        a book's copies, loans and holds takes it); a ``NotFound`` if there is none."""

    def availability_column(book_id):
        """A column for a book id: its items by branch, ``[{branchId, available, items}]``
        (null when it has none), for the catalogue's statements to select beside each book."""

    def copies_created(session, actor, book):
        """A new book (flushed, with its ``copies``): that many items, at the default branch."""

    def copies_changing(session, actor, book, copies):
        """Under the book's row lock, before its copies change to ``copies`` (or None: other
        fields change): settle its queue; add items, or withdraw items on the shelf; refuse a
        count below the items not on the shelf (a ``Refused`` that keeps the settlement)."""


def stock(registry) -> IStock:
    return registry.getUtility(IStock)
