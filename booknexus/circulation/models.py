"""Circulation's records: the items (each physical copy of a book, with its barcode), loans
(checkouts) of items and reservations (holds) of books."""

import re
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.db.schema import Base, UTCDateTime, utcnow

# an item's status
AVAILABLE = "available"  # on the shelf at its current branch
CHECKED_OUT = "checked_out"
ON_HOLD_SHELF = "on_hold_shelf"  # captured for a ready hold, at the hold's pickup branch
IN_TRANSIT = "in_transit"  # travelling to transitToBranchId
MISSING = "missing"
LOST = "lost"  # declared lost by its reader
CLAIMED_RETURNED = "claimed_returned"  # its reader says it came back; the library has not seen it
WITHDRAWN = "withdrawn"  # no longer the library's: not counted in a book's copies
ITEM_STATUSES = (
    AVAILABLE,
    CHECKED_OUT,
    ON_HOLD_SHELF,
    IN_TRANSIT,
    MISSING,
    LOST,
    CLAIMED_RETURNED,
    WITHDRAWN,
)
UNACCOUNTED = (MISSING, LOST, CLAIMED_RETURNED)  # a scan of one of these is a find

# barcodes and card numbers as stored: upper-case letters, digits and -, so the unique
# constraint compares them whatever the case a scanner or a hand typed (the CHECK keeps rows
# written by hand to that form)
BARCODE = re.compile(r"[A-Z0-9-]{1,32}")
ITEM_TYPE = re.compile(r"[a-z0-9_-]{1,16}")
_STATUS_SQL = "status IN ({})".format(", ".join(f"'{status}'" for status in ITEM_STATUSES))


def normalise_barcode(barcode: str) -> str:
    return barcode.strip().upper()


class Item(Base):
    """One physical copy of a book: its barcode label, where it belongs and where it is."""

    __tablename__ = "Items"
    __table_args__ = (
        # a book's items by status: its copies, its availability, the item to lend or capture
        Index("ix_Items_bookId_status", "bookId", "status"),
        # a branch's shelves: the pull list (available here), outgoing transits
        Index("ix_Items_currentBranchId_status", "currentBranchId", "status"),
        # incoming transits
        Index("ix_Items_transitToBranchId", "transitToBranchId"),
        CheckConstraint(_STATUS_SQL, name="status_known"),
        CheckConstraint("barcode ~ '^[A-Z0-9-]{1,32}$'", name="barcode_form").ddl_if(dialect="postgresql"),
        CheckConstraint(
            "length(barcode) BETWEEN 1 AND 32 AND barcode NOT GLOB '*[^A-Z0-9-]*'", name="barcode_form"
        ).ddl_if(dialect="sqlite"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(
        "bookId", ForeignKey("Books.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    barcode: Mapped[str] = mapped_column(String(32), unique=True)
    home_branch_id: Mapped[int] = mapped_column("homeBranchId", ForeignKey("Branches.id", onupdate="CASCADE"))
    current_branch_id: Mapped[int] = mapped_column(
        "currentBranchId", ForeignKey("Branches.id", onupdate="CASCADE")
    )
    transit_to_branch_id: Mapped[int | None] = mapped_column(
        "transitToBranchId", ForeignKey("Branches.id", onupdate="CASCADE")
    )
    transit_sent_at: Mapped[datetime | None] = mapped_column("transitSentAt", UTCDateTime)
    item_type: Mapped[str] = mapped_column("itemType", String(16), default="book", server_default="book")
    call_number: Mapped[str | None] = mapped_column("callNumber", String(64))
    status: Mapped[str] = mapped_column(String(20), default=AVAILABLE, server_default=AVAILABLE)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)


# how a loan closed
RETURNED = "returned"
DECLARED_LOST = "lost"
CLAIMED = "claimed_returned"


class Checkout(Base):
    """A loan of one item of a book to one user; open while ``returned_at`` is null.

    ``itemId`` is null only for loans that closed before items existed (revision 0017 gave
    every open loan an item)."""

    __tablename__ = "Checkouts"
    __table_args__ = (
        # the open loan of an item (check-in, renewal by barcode): at most one
        Index(
            "uq_Checkouts_itemId_open",
            "itemId",
            unique=True,
            postgresql_where=text('"returnedAt" IS NULL'),
            sqlite_where=text('"returnedAt" IS NULL'),
        ),
        {"sqlite_autoincrement": True},
    )

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
    item_id: Mapped[int | None] = mapped_column(
        "itemId", ForeignKey("Items.id", ondelete="CASCADE", onupdate="CASCADE")
    )
    branch_id: Mapped[int | None] = mapped_column("branchId", ForeignKey("Branches.id", onupdate="CASCADE"))
    outcome: Mapped[str | None] = mapped_column(String(16))  # returned, lost, claimed_returned
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)


WAITING = "waiting"  # in the queue for the book
IN_TRANSIT_TO_PICKUP = "in_transit"  # an item is captured for it and travels to the pickup branch
READY = "ready"  # an item is on the pickup branch's hold shelf for the holder until expiresAt
FULFILLED = "fulfilled"  # the holder borrowed the book
CANCELLED = "cancelled"
EXPIRED = "expired"  # not picked up in time
OPEN = (WAITING, IN_TRANSIT_TO_PICKUP, READY)
STATUSES = (WAITING, IN_TRANSIT_TO_PICKUP, READY, FULFILLED, CANCELLED, EXPIRED)

_OPEN_SQL = text("status IN ('waiting', 'in_transit', 'ready')")
_READY_SQL = text("status = 'ready'")
_WAITING_SQL = text("status = 'waiting'")


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
        # the hold an item is captured for (check-in, the hold shelf, transits)
        Index("ix_Holds_itemId", "itemId"),
        # the books readers wait for: the pull list starts from them
        Index("ix_Holds_bookId_waiting", "bookId", postgresql_where=_WAITING_SQL, sqlite_where=_WAITING_SQL),
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
    # null only for holds that ended before branches existed (revision 0017)
    pickup_branch_id: Mapped[int | None] = mapped_column(
        "pickupBranchId", ForeignKey("Branches.id", onupdate="CASCADE")
    )
    # the item captured for it (in transit or on the hold shelf); null while it waits
    item_id: Mapped[int | None] = mapped_column(
        "itemId", ForeignKey("Items.id", ondelete="SET NULL", onupdate="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)
