"""Creating (or promoting) a librarian: the one account that must exist before any login."""

from sqlalchemy.orm import Session

from booknexus.accounts import tokens
from booknexus.accounts.models import User
from booknexus.accounts.passwords import hash_password
from booknexus.accounts.queries import ensure_email_free, ensure_not_the_anonymous_reader, find_by_email
from booknexus.accounts.roles import LIBRARIAN


def create_or_promote_librarian(session: Session, email: str, password: str, name: str | None = None) -> User:
    """The account of ``email`` (whatever its case) made a librarian with this password, or a
    new librarian. Refused (``Refused``): the anonymous reader, and an email that names no one
    account of a legacy group differing only in case (``email_taken``)."""
    user = find_by_email(session, email)
    if user is None:
        ensure_email_free(session, email)
        user = User(name=name or email.split("@")[0], email=email)
        session.add(user)
    else:
        ensure_not_the_anonymous_reader(user)
        if name:
            user.name = name
        # a password reset: every token taken with the old one (a stolen one too) stops working
        tokens.revoke_all(session, user.id)
    user.role = LIBRARIAN
    user.password_hash = hash_password(password)
    session.flush()
    return user
