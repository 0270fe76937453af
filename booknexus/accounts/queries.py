"""Lookups of users, shared by views, subscribers and scripts."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.accounts.models import ANONYMOUS_READER, User
from booknexus.accounts.roles import LIBRARIAN
from booknexus.refusals import NotFound, Refused


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("user", user_id)
    return user


def ensure_not_last_librarian(session: Session, user: User) -> None:
    """Refuse to delete or demote the only librarian: nobody could manage the library after.

    The caller holds every librarian's row lock (``circulation.locks.lock_user_and_librarians``), so two
    librarians removing each other at once cannot both succeed.
    """
    if user.role != LIBRARIAN:
        return
    others = session.scalars(select(User.id).where(User.role == LIBRARIAN, User.id != user.id)).first()
    if others is None:
        raise Refused(
            "last_librarian",
            f"User {user.id} is the last librarian; make another librarian first.",
            {"userId": user.id},
        )


def ensure_not_the_anonymous_reader(user: User) -> None:
    if user.role == ANONYMOUS_READER:
        raise Refused(
            "anonymous_reader",
            "The anonymous reader holds anonymised history; it cannot be changed or deleted.",
            {"userId": user.id},
        )
