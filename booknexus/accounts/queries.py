"""Lookups of users, shared by views, subscribers and scripts."""

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from booknexus.accounts.models import ANONYMOUS_READER, User
from booknexus.accounts.roles import LIBRARIAN
from booknexus.refusals import NotFound, Refused


def get_user(session: Session, user_id: int, for_update: bool = False) -> User:
    user = session.get(User, user_id, with_for_update=for_update)
    if user is None:
        raise NotFound("user", user_id)
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
        raise Refused(
            "last_librarian",
            f"User {user.id} is the last librarian; make another librarian first.",
            {"userId": user.id},
        )


def lock_user_and_librarians(session: Session, user_id: int) -> User:
    """Step 1 of the lock order (``booknexus.circulation.locks``) for removing a user or changing
    a role: the user and every librarian, in id order."""
    locked = session.scalars(
        select(User)
        .where(or_(User.id == user_id, User.role == LIBRARIAN))
        .order_by(User.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).all()
    user = next((user for user in locked if user.id == user_id), None)
    if user is None:
        raise NotFound("user", user_id)
    return user


def ensure_not_the_anonymous_reader(user: User) -> None:
    if user.role == ANONYMOUS_READER:
        raise Refused(
            "anonymous_reader",
            "The anonymous reader holds anonymised history; it cannot be changed or deleted.",
            {"userId": user.id},
        )
