"""The one order in which every change takes its locks.

1. **Readers**, in id order: a borrower's row (``FOR NO KEY UPDATE``) before their loans and
   holds are counted, so the loan and hold limits hold however many requests race; a
   deletion or a change of role locks the user and every librarian (``FOR UPDATE``,
   ``accounts.queries.lock_user_and_librarians``), so the last-librarian rule holds too.
2. **Books**, in id order: a book's row before its copies, loans and hold queue are read or
   changed (every change to a checkout or a hold, its deletion included, locks its book).
3. The **checkout and hold rows** of those books.
4. The **logs**, ``"CheckoutEvents"`` then ``"HoldEvents"`` (``eventlog.append.lock_log``): last,
   and held from the first append to the commit.

A transaction never waits for a lock earlier in this order than one it holds, so no two
transactions can wait for each other: there is no deadlock to detect or retry.
``FOR NO KEY UPDATE`` on a reader does not block the foreign-key checks (``FOR KEY SHARE``)
of rows inserted for them, nor their logins.
"""

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from booknexus.accounts.models import User
from booknexus.catalog.models import Book
from booknexus.circulation.models import Checkout, Hold
from booknexus.refusals import NotFound


def lock_borrower(session: Session, user_id: int) -> User:
    """Step 1 for a loan or a hold: the borrower, whose counts the rules are about to read."""
    user = session.get(User, user_id, with_for_update={"key_share": True}, populate_existing=True)
    if user is None:
        raise NotFound("user", user_id)
    return user


def lock_books_of_user(session: Session, user_id: int) -> list[int]:
    """Step 2 for removing a user: every book of which they have a checkout or a hold, in id
    order (the caller holds the user's lock, so no new one can appear meanwhile)."""
    theirs = union(
        select(Checkout.book_id).where(Checkout.user_id == user_id),
        select(Hold.book_id).where(Hold.user_id == user_id),
    )
    return list(
        session.scalars(select(Book.id).where(Book.id.in_(theirs)).order_by(Book.id).with_for_update())
    )
