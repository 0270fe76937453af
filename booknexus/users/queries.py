"""Lookups of users, shared by views, subscribers and scripts."""

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.errors import ApiError, not_found
from booknexus.users.models import LIBRARIAN, User


def get_user(session: Session, user_id: int, for_update: bool = False) -> User:
    user = session.get(User, user_id, with_for_update=for_update)
    if user is None:
        raise not_found("user", user_id)
    return user


def ensure_not_last_librarian(session: Session, user: User) -> None:
    """Refuse to delete or demote the only librarian: nobody could manage the library after.

    The caller holds every librarian's row lock (``locks.lock_user_and_librarians``), so two
    librarians removing each other at once cannot both succeed.
    """
    if user.role != LIBRARIAN:
        return
    others = session.scalars(select(User.id).where(User.role == LIBRARIAN, User.id != user.id)).first()
    if others is None:
        raise ApiError(
            409,
            "last_librarian",
            f"User {user.id} is the last librarian; make another librarian first.",
            {"userId": user.id},
        )
