"""Accounts: readers and librarians, and their bearer tokens."""

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, false, func
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.accounts.roles import MEMBER
from booknexus.db.schema import Base, UTCDateTime, utcnow

# The one account closed loans and holds are handed to when their reader is anonymised
# (revision 0010): it cannot log in, be edited or deleted, and is listed only when asked for.
ANONYMOUS_READER = "anonymous"


class User(Base):
    """A reader. Table and column names are the legacy Sequelize ones."""

    __tablename__ = "Users"
    # AUTOINCREMENT on SQLite: a deleted user's id is never handed out again
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str] = mapped_column(String(255), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=MEMBER, server_default=MEMBER)
    # Argon2id hash; legacy users have none until a librarian sets a password
    password_hash: Mapped[str | None] = mapped_column("passwordHash", String(255))
    # the reader opted in to keep their reading history past the retention policy
    keep_history: Mapped[bool] = mapped_column("keepHistory", default=False, server_default=false())
    # the barcode of their library card, as printed; unique whatever its case (revision 0015)
    card_number: Mapped[str | None] = mapped_column("cardNumber", String(32))
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)


# one email, whatever its case (revision 0012; on a legacy database that held accounts whose
# emails differ only in case, the index keeps those apart by id until they are resolved)
Index("ix_Users_lower_email", func.lower(User.email), unique=True)
Index("uq_Users_cardNumber_upper", func.upper(User.card_number), unique=True)


class Token(Base):
    """A bearer token, stored only as the SHA-256 of its value.

    Deleting the user deletes their tokens (CASCADE), so a deleted user's token is rejected.
    """

    __tablename__ = "Tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        "userId", ForeignKey("Users.id", ondelete="CASCADE", onupdate="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column("tokenHash", String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    # indexed: the retention job prunes expired tokens by it (revision 0014)
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column("revokedAt", UTCDateTime)
