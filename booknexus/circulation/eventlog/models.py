from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.db.schema import Base, UTCDateTime, utcnow

# SQLite only auto-assigns INTEGER PRIMARY KEY, which is 64-bit there anyway.
Position = BigInteger().with_variant(Integer, "sqlite")


class BookLogEntry:
    """The columns every log shares. Append-only; ``id`` is the event's position in its log.

    No foreign keys on purpose: the history of a record outlives its user and book.
    """

    id: Mapped[int] = mapped_column(Position, primary_key=True)
    book_id: Mapped[int] = mapped_column("bookId")
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column("occurredAt", UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)


class LogEntry(BookLogEntry):
    """A log of records that belong to a reader (loans, holds): it names the reader too."""

    user_id: Mapped[int] = mapped_column("userId")


def log_indexes(table: str, key: str, subjects: tuple[str, ...] = ("userId", "bookId")) -> tuple:
    """A record's history, a user's and a book's, each in position order."""
    return tuple(Index(f"ix_{table}_{column}_id", column, "id") for column in (key, *subjects))


class CheckoutEvent(LogEntry, Base):
    """One change to one checkout."""

    __tablename__ = "CheckoutEvents"
    __table_args__ = (*log_indexes("CheckoutEvents", "checkoutId"), {"sqlite_autoincrement": True})

    checkout_id: Mapped[int] = mapped_column("checkoutId")


class HoldEvent(LogEntry, Base):
    """One change to one hold: the sibling of ``CheckoutEvent``, with the same guarantees."""

    __tablename__ = "HoldEvents"
    __table_args__ = (*log_indexes("HoldEvents", "holdId"), {"sqlite_autoincrement": True})

    hold_id: Mapped[int] = mapped_column("holdId")


class ItemEvent(BookLogEntry, Base):
    """One change to one item: created, its status, its branch, its transits. No reader: the
    loan log links items to readers, so reader privacy never has to reach this log."""

    __tablename__ = "ItemEvents"
    __table_args__ = (*log_indexes("ItemEvents", "itemId", ("bookId",)), {"sqlite_autoincrement": True})

    item_id: Mapped[int] = mapped_column("itemId")
