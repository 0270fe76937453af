"""What happens to a book, for whoever else must act on it in the same transaction."""

from sqlalchemy.orm import Session


class BookDeleted:
    """Notified before a book's row is deleted, in the transaction that deletes it, by
    ``actor``; subscribers (circulation) remove and log what belonged to it."""

    def __init__(self, book, session: Session, actor: int | None, registry):
        self.book = book
        self.session = session
        self.actor = actor
        self.registry = registry
