"""Circulation's records: loans (checkouts) and reservations (holds)."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.db.schema import Base, UTCDateTime, utcnow


class Checkout(Base):
    """A loan of one copy of a book to one user; open while ``returned_at`` is null."""

    __tablename__ = "Checkouts"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    # The database cascades too: it is the safety net behind the logged, app-level cascade.
    user_id: Mapped[int] = mapped_column(
        "userId", ForeignKey("Users.id", ondelete="CASCADE", onupdate="CASCADE"), index=True
    )
    book_id: Mapped[int] = mapped_column(
        "bookId", ForeignKey("Books.id", ondelete="CASCADE", onupdate="CASCADE"), index=True
    )
    checked_out_at: Mapped[datetime] = mapped_column("checkedOutAt", UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column("dueAt", UTCDateTime)
    returned_at: Mapped[datetime | None] = mapped_column("returnedAt", UTCDateTime)
    renewals: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)


WAITING = "waiting"  # in the queue for the book
READY = "ready"  # a copy is set aside for the holder until expiresAt
FULFILLED = "fulfilled"  # the holder borrowed the book
CANCELLED = "cancelled"
EXPIRED = "expired"  # not picked up in time
OPEN = (WAITING, READY)
STATUSES = (WAITING, READY, FULFILLED, CANCELLED, EXPIRED)

_OPEN_SQL = text("status IN ('waiting', 'ready')")
_READY_SQL = text("status = 'ready'")


class Hold(Base):
    """A reservation of a book by a user: a place in the book's first-come-first-served queue."""

    __tablename__ = "Holds"
    __table_args__ = (
        # the queue of a book, in order; also serves the cascade from "Books"
        Index("ix_Holds_bookId_status_id", "bookId", "status", "id"),
        # a user's open holds (the hold limit); also serves the cascade from "Users"
        Index("ix_Holds_userId_status", "userId", "status"),
        # one open hold per user and book, whatever races the application misses
        Index(
            "uq_Holds_userId_bookId_open",
            "userId",
            "bookId",
            unique=True,
            postgresql_where=_OPEN_SQL,
            sqlite_where=_OPEN_SQL,
        ),
        # ready holds by expiry, for booknexus-expire-holds
        Index("ix_Holds_expiresAt_ready", "expiresAt", postgresql_where=_READY_SQL, sqlite_where=_READY_SQL),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # CASCADE is the safety net behind the logged, app-level cascade (as for checkouts)
    user_id: Mapped[int] = mapped_column(
        "userId", ForeignKey("Users.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    book_id: Mapped[int] = mapped_column(
        "bookId", ForeignKey("Books.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    status: Mapped[str] = mapped_column(String(16), default=WAITING)
    placed_at: Mapped[datetime] = mapped_column("placedAt", UTCDateTime, default=utcnow)
    ready_at: Mapped[datetime | None] = mapped_column("readyAt", UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column("expiresAt", UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column("endedAt", UTCDateTime)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)
