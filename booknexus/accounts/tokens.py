"""Bearer tokens: 32 random bytes, handed out once, stored only as their SHA-256."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from booknexus.accounts.models import Token, User
from booknexus.db.schema import utcnow

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


# built once: every authenticated request runs it, and building it costs more than running it
LIVE_TOKEN = (
    select(Token.id.label("token_id"), User.id.label("user_id"), User.role.label("role"))
    .join(User, User.id == Token.user_id)
    .where(
        Token.token_hash == bindparam("token_hash"),
        Token.revoked_at.is_(None),
        Token.expires_at > bindparam("now", type_=Token.expires_at.type),
    )
)


def find(session: Session, token: str):
    """The live token's id, its user's id and role (a row; None if the token is expired,
    revoked or unknown: a deleted user's are gone). One Core statement, no objects loaded."""
    return session.connection().execute(LIVE_TOKEN, {"token_hash": digest(token), "now": utcnow()}).first()


def revoke(session: Session, token_id: int) -> None:
    session.execute(update(Token).where(Token.id == token_id).values(revoked_at=utcnow()))


def revoke_all(session: Session, user_id: int, keep: int | None = None) -> int:
    """Revoke every live token of a user but ``keep``: after a password change, a token taken
    with the old password (a stolen one too) must stop working. Returns how many."""
    statement = update(Token).where(Token.user_id == user_id, Token.revoked_at.is_(None))
    if keep is not None:
        statement = statement.where(Token.id != keep)
    return session.execute(statement.values(revoked_at=utcnow())).rowcount
