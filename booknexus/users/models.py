from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.meta import Base, UTCDateTime, utcnow

MEMBER = "member"
LIBRARIAN = "librarian"


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
    created_at: Mapped[datetime] = mapped_column("createdAt", UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column("updatedAt", UTCDateTime, default=utcnow, onupdate=utcnow)
