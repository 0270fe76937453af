"""Bearer tokens: 32 random bytes, handed out once, stored only as their SHA-256."""

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select, update
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


PRUNE_BATCH = 1000  # tokens a transaction: a short one, whatever the number due


def prune_expired(session: Session, now: datetime) -> int:
    """Delete one batch of tokens expired before ``now`` (revoked or not: an expired token
    opens nothing, and its times are the last trace of a login); returns how many. The
    index on the expiry finds them, so a run costs what is due, not the table's size."""
    due = select(Token.id).where(Token.expires_at < now).order_by(Token.expires_at).limit(PRUNE_BATCH)
    return session.execute(delete(Token).where(Token.id.in_(due.scalar_subquery()))).rowcount


def prune_all_expired(session_factory, now: datetime | None = None) -> int:
    """Every expired token, batch by batch, each batch its own transaction."""
    now = now or utcnow()
    pruned = 0
    while True:
        with session_factory() as session, session.begin():
            done = prune_expired(session, now)
        pruned += done
        if done < PRUNE_BATCH:
            return pruned
