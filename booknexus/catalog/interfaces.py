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

    def out_columns(book_id):
        """Two columns for a book id: its copies on loan and its copies set aside for holds,
        for the catalogue's statements to select beside each book (one round trip)."""

    def copies_changing(session, actor, book, copies):
        """Under the book's row lock, before its copies change to ``copies`` (or None: other
        fields change): settle its queue; refuse a count below the copies on loan and set
        aside (a ``Refused`` that keeps the settlement)."""

    def copies_changed(session, actor, book):
        """After the change is flushed: more copies move the queue."""


def stock(registry) -> IStock:
    return registry.getUtility(IStock)
