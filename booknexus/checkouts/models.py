from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.meta import Base, UTCDateTime, utcnow


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
