"""Lookups of users, shared by views, subscribers and scripts."""

from sqlalchemy import bindparam, func, select
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


# built once: every login runs it. Both sides folded by the database's own lower(), the one
# the unique index on lower(email) holds (revision 0012), which this lookup uses
BY_EMAIL = select(User).where(func.lower(User.email) == func.lower(bindparam("email"))).order_by(User.id)
EMAIL_HOLDERS = select(User.id).where(func.lower(User.email) == func.lower(bindparam("email")))


def find_by_email(session: Session, email: str) -> User | None:
    """The account of ``email``, whatever its case. A legacy database may hold a group of
    accounts whose emails differ only in case (revision 0012) until a librarian resolves it:
    such an email names the account that has it exactly, or none (never a guess between people)."""
    users = session.scalars(BY_EMAIL, {"email": email}).all()
    if len(users) == 1:
        return users[0]
    return next((user for user in users if user.email == email), None)


def ensure_email_free(session: Session, email: str, user_id: int | None = None) -> None:
    """Refuse an email that another account holds in any case. The account that holds it
    already (in any case; in a legacy group too) may keep it or change its case: no new pair."""
    holders = session.scalars(EMAIL_HOLDERS, {"email": email}).all()
    if holders and user_id not in holders:
        raise Refused("email_taken", f"{email} is already registered.", {"email": email})


def carries_card(card_number: str):
    """The condition "this account carries the card", whatever case the scanner or the
    keyboard gave it (the unique index on ``upper("cardNumber")`` answers it)."""
    return func.upper(User.card_number) == card_number.upper()


def find_by_card(session: Session, card_number: str) -> User | None:
    return session.scalar(select(User).where(carries_card(card_number)))


def ensure_card_free(session: Session, card_number: str, user_id: int | None = None) -> None:
    """One card, one reader: refuse a number another account carries, in any case."""
    holder = find_by_card(session, card_number)
    if holder is not None and holder.id != user_id:
        raise Refused(
            "card_number_taken",
            f"Card {card_number} belongs to another reader.",
            {"cardNumber": card_number, "userId": holder.id},
        )
