"""Bearer tokens: 32 random bytes, handed out once, stored only as their SHA-256."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from booknexus.accounts.models import Token, User
from booknexus.web.schema import utcnow

TOKEN_BYTES = 32


def digest(token: str) -> str:
    # a plain hash suffices: the token has 256 bits of entropy, nothing to brute-force
    return hashlib.sha256(token.encode()).hexdigest()


def issue(session: Session, user: User, ttl: timedelta) -> tuple[str, datetime]:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    expires_at = utcnow() + ttl
    session.add(Token(user_id=user.id, token_hash=digest(token), expires_at=expires_at))
    session.flush()
    return token, expires_at


def find(session: Session, token: str) -> tuple[Token, User] | None:
    """The live token and its user: not expired, not revoked (a deleted user's are gone)."""
    row = session.execute(
        select(Token, User)
        .join(User, User.id == Token.user_id)
        .where(Token.token_hash == digest(token), Token.revoked_at.is_(None), Token.expires_at > utcnow())
    ).first()
    return tuple(row) if row else None


def revoke(session: Session, token: Token) -> None:
    token.revoked_at = utcnow()
    session.flush()


def revoke_all(session: Session, user_id: int, keep: Token | None = None) -> int:
    """Revoke every live token of a user but ``keep``: after a password change, a token taken
    with the old password (a stolen one too) must stop working. Returns how many."""
    statement = update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(Token.id != keep.id)
    return session.execute(statement.values(revoked_at=utcnow())).rowcount
