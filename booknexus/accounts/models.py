from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from booknexus.meta import Base, UTCDateTime, utcnow


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
    expires_at: Mapped[datetime] = mapped_column("expiresAt", UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column("revokedAt", UTCDateTime)
