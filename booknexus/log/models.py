from datetime import datetime

from sqlalchemy import JSON, BigInteger, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.meta import Base, UTCDateTime, utcnow

# SQLite only auto-assigns INTEGER PRIMARY KEY, which is 64-bit there anyway.
Position = BigInteger().with_variant(Integer, "sqlite")


class CheckoutEvent(Base):
    """One change to one checkout. Append-only; ``id`` is the event's global position.

    No foreign keys on purpose: the history of a checkout outlives its user and book.
    """

    __tablename__ = "CheckoutEvents"
    __table_args__ = (
        Index("ix_CheckoutEvents_checkoutId_id", "checkoutId", "id"),
        Index("ix_CheckoutEvents_userId_id", "userId", "id"),
        Index("ix_CheckoutEvents_bookId_id", "bookId", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Position, primary_key=True)
    checkout_id: Mapped[int] = mapped_column("checkoutId")
    user_id: Mapped[int] = mapped_column("userId")
    book_id: Mapped[int] = mapped_column("bookId")
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column("occurredAt", UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)


class HoldEvent(Base):
    """One change to one hold: the sibling of ``CheckoutEvent``, with the same guarantees."""

    __tablename__ = "HoldEvents"
    __table_args__ = (
        Index("ix_HoldEvents_holdId_id", "holdId", "id"),
        Index("ix_HoldEvents_userId_id", "userId", "id"),
        Index("ix_HoldEvents_bookId_id", "bookId", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Position, primary_key=True)
    hold_id: Mapped[int] = mapped_column("holdId")
    user_id: Mapped[int] = mapped_column("userId")
    book_id: Mapped[int] = mapped_column("bookId")
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column("occurredAt", UTCDateTime, default=utcnow)
    data: Mapped[dict] = mapped_column(JSON)
