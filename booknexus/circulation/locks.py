"""The one order in which every change takes its locks, and the only module that takes them.

1. **Readers**, in id order: a borrower's row (``FOR NO KEY UPDATE``: ``lock_borrower``) before
   their loans and holds are counted, so the loan and hold limits hold however many requests
   race; a deletion or a change of role locks the user and every librarian (``FOR UPDATE``:
   ``lock_user_and_librarians``), so the last-librarian rule holds too.
2. **Books**, in id order: a book's row before its copies, loans and hold queue are read or
   changed (every change to a checkout or a hold, its deletion included, locks its book:
   ``lock_book``, ``lock_book_of``, ``lock_books``).
3. **Items** of those books (``lock_item``, ``lock_items`` in id order, ``lock_shelved_item``,
   ``lock_shelved_items``): every change to an item (its status, its branch, its transit) takes
   its book's lock first, so two transactions never wait for each other's items: whoever holds
   an item's lock holds its book's, which the other must take first. (A command locks the items
   it knows of up front in id order; one it learns of later, say a lapsed hold's, it locks then.)
   An item is found by its barcode before any lock (``find_item``: items never change book).
4. The **checkout and hold rows** of those books (``lock_record``, ``lock_records``).
5. The **logs**, ``"CheckoutEvents"``, ``"HoldEvents"`` then ``"ItemEvents"`` (``lock_logs``):
   last, and held from the first append to the commit.

A transaction never waits for a lock earlier in this order than one it holds, so no two
transactions can wait for each other: there is no deadlock to detect or retry.
``FOR NO KEY UPDATE`` on a reader does not block the foreign-key checks (``FOR KEY SHARE``)
of rows inserted for them, nor their logins. The startup repair's advisory lock
(``lock_repair``) comes before all of these: it is taken first, in a transaction of its own.

SQLite has one writer at a time: the row and table locks are no-ops there, the order holds
trivially.
"""

from sqlalchemy import Select, or_, select, text, union
from sqlalchemy.orm import Session

from booknexus.accounts.models import User
from booknexus.accounts.roles import LIBRARIAN
from booknexus.catalog.models import Book
from booknexus.circulation.eventlog.streams import CHECKOUTS, Stream
from booknexus.circulation.models import AVAILABLE, WAITING, Checkout, Hold, Item
from booknexus.refusals import NotFound

# any constant unique to BookNexus's startup repair: pg_advisory_xact_lock takes a bigint key
REPAIR_LOCK_KEY = 0x426F6F6B436C6E  # "BookCln"


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


# --- 1. readers ----------------------------------------------------------------------------


def lock_borrower(session: Session, user_id: int) -> User:
    """A loan's or a hold's reader, whose counts the rules are about to read."""
    user = session.get(User, user_id, with_for_update={"key_share": True}, populate_existing=True)
    if user is None:
        raise NotFound("user", user_id)
    return user


def lock_user_and_librarians(session: Session, user_id: int) -> User:
    """For removing a user or changing a role: the user and every librarian, in id order."""
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


# --- 2. books ------------------------------------------------------------------------------


def lock_book(session: Session, book_id: int) -> Book:
    book = session.get(Book, book_id, with_for_update=True, populate_existing=True)
    if book is None:
        raise NotFound("book", book_id)
    return book


def lock_book_of(session: Session, record: type, record_id: int) -> Book:
    """The book of a checkout or hold (``record`` is the class), locked, in one statement."""
    book_id = select(record.book_id).where(record.id == record_id).scalar_subquery()
    book = session.scalar(
        select(Book).where(Book.id == book_id).with_for_update().execution_options(populate_existing=True)
    )
    if book is None:
        raise NotFound(record.__tablename__.lower().removesuffix("s"), record_id)
    return book


def lock_books(session: Session, book_ids: Select) -> list[int]:
    """The books whose ids ``book_ids`` selects, in id order."""
    return list(
        session.scalars(select(Book.id).where(Book.id.in_(book_ids)).order_by(Book.id).with_for_update())
    )


def lock_books_of_user(session: Session, user_id: int) -> list[int]:
    """For removing a user: every book of which they have a checkout or a hold, in id order
    (the caller holds the user's lock, so no new one can appear meanwhile)."""
    return lock_books(
        session,
        union(
            select(Checkout.book_id).where(Checkout.user_id == user_id),
            select(Hold.book_id).where(Hold.user_id == user_id),
        ),
    )


# --- 3. items -----------------------------------------------------------------------------


def lock_item(session: Session, item_id: int) -> Item:
    """An item whose book the caller has locked."""
    item = session.get(Item, item_id, with_for_update=True, populate_existing=True)
    if item is None:
        raise NotFound("item", item_id)
    return item


def lock_items(session: Session, item_ids: Select) -> list[Item]:
    """The items ``item_ids`` selects, in id order (their books locked by the caller)."""
    return list(
        session.scalars(
            select(Item)
            .where(Item.id.in_(item_ids))
            .order_by(Item.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )


def lock_shelved_item(session: Session, book_id: int, branch_id: int) -> Item | None:
    """An item of the book on the shelf at the branch (the lowest id), to lend."""
    query = select(Item).where(
        Item.book_id == book_id, Item.status == AVAILABLE, Item.current_branch_id == branch_id
    )
    return session.scalars(query.order_by(Item.id).limit(1).with_for_update()).first()


def lock_shelved_items(session: Session, book_id: int, count: int) -> list[Item]:
    """Up to ``count`` items of the book on a shelf, the newest first (fewer copies withdraw them)."""
    query = select(Item).where(Item.book_id == book_id, Item.status == AVAILABLE)
    return list(session.scalars(query.order_by(Item.id.desc()).limit(count).with_for_update()))


# --- 4. checkouts and holds ----------------------------------------------------------------


def lock_record(session: Session, record: type, record_id: int):
    """A checkout or a hold whose book the caller has locked; NotFound if it went meanwhile
    (deleted with its user while we waited for the book)."""
    found = session.get(record, record_id, with_for_update=True, populate_existing=True)
    if found is None:
        raise NotFound(record.__tablename__.lower().removesuffix("s"), record_id)
    return found


def lock_open_loan_of(session: Session, item_id: int) -> Checkout | None:
    """The open loan of an item whose book and item the caller has locked."""
    query = select(Checkout).where(Checkout.item_id == item_id, Checkout.returned_at.is_(None))
    return session.scalars(query.with_for_update()).first()


def lock_first_waiting(session: Session, book_id: int) -> Hold | None:
    """The next hold in a locked book's queue."""
    query = select(Hold).where(Hold.book_id == book_id, Hold.status == WAITING).order_by(Hold.id).limit(1)
    return session.scalars(query.with_for_update()).first()


def lock_records(session: Session, ids: Select) -> list[int]:
    """The checkout or hold rows ``ids`` selects (their books locked by the caller)."""
    return list(session.scalars(ids.with_for_update()))


# --- 5. the logs ---------------------------------------------------------------------------


def log_lock_statement(stream: Stream) -> str:
    """The statement of step 5, also run by the capture triggers (``eventlog.capture``) when
    a change made by hand in SQL is logged: the same locks, in the same order."""
    return f"LOCK TABLE {', '.join(stream.lock_tables)} IN EXCLUSIVE MODE"


def lock_logs(session: Session, stream: Stream = CHECKOUTS) -> None:
    """``LOCK TABLE ... IN EXCLUSIVE MODE`` on a stream's log and every log before it (the
    stream's ``lock_tables``, always in the one order): appends then commit one after the
    other, so tailing is gapless; plain SELECTs are not blocked."""
    if _postgresql(session):
        session.execute(text(log_lock_statement(stream)))


# --- before everything: the startup repair -------------------------------------------------


def lock_repair(session: Session) -> None:
    """One repair at a time across processes; the others wait, then find nothing to do."""
    if _postgresql(session):
        session.execute(text(f"SELECT pg_advisory_xact_lock({REPAIR_LOCK_KEY})"))
