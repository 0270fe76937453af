"""Creating (or promoting) a librarian: the one account that must exist before any login."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.accounts.models import User
from booknexus.accounts.passwords import hash_password
from booknexus.accounts.roles import LIBRARIAN


def create_or_promote_librarian(session: Session, email: str, password: str, name: str | None = None) -> User:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(name=name or email.split("@")[0], email=email)
        session.add(user)
    elif name:
        user.name = name
    user.role = LIBRARIAN
    user.password_hash = hash_password(password)
    session.flush()
    return user
