"""Appending to the checkout log, always in the transaction that makes the change.

On PostgreSQL every append first takes ``LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE``:
appending transactions then assign positions and commit one after the other, so a reader
that has seen position N can never later see a lower position appear (gapless tailing).
Readers are not blocked: EXCLUSIVE mode still admits plain SELECTs.
"""

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    String,
    cast,
    delete,
    func,
    insert,
    literal,
    literal_column,
    null,
    select,
    text,
)
from sqlalchemy.orm import Session
from zope.sqlalchemy import mark_changed

from booknexus.checkouts.models import Checkout
from booknexus.log.models import CheckoutEvent
from booknexus.meta import isoformat, utcnow

CHECKED_OUT = "checked_out"
RENEWED = "renewed"
RETURNED = "returned"
DELETED = "deleted"
PURGED = "purged"
IMPORTED = "imported"

ISO_UTC_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'  # PostgreSQL's to_char

# The fields of a checkout that the log carries in ``data``, and replays.
STATE_FIELDS = ("checkedOutAt", "dueAt", "returnedAt", "renewals")


def lock_log(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text('LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE'))


def checkout_state(checkout: Checkout) -> dict:
    return {
        "checkedOutAt": isoformat(checkout.checked_out_at),
        "dueAt": isoformat(checkout.due_at),
        "returnedAt": isoformat(checkout.returned_at) if checkout.returned_at else None,
        "renewals": checkout.renewals,
    }


def append(session: Session, checkout: Checkout, type_: str, actor: int | None, **extra) -> None:
    """Record one change to one checkout (already flushed, so it has its id), made by ``actor``
    (a user id; None for the system: startup cleanup, migrations)."""
    lock_log(session)
    session.add(
        CheckoutEvent(
            checkout_id=checkout.id,
            user_id=checkout.user_id,
            book_id=checkout.book_id,
            type=type_,
            occurred_at=utcnow(),
            data={**checkout_state(checkout), **extra, "actor": actor},
        )
    )
    session.flush()


def _iso(dialect: str, column) -> ColumnElement:
    """SQL for ``meta.isoformat``: UTC, six fractional digits, ``+00:00``."""
    if dialect == "postgresql":
        return func.to_char(func.timezone(literal_column("'UTC'"), column), ISO_UTC_FORMAT)
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS.ffffff'
    return func.replace(column, " ", "T").concat("+00:00")


def _json_value(value) -> ColumnElement:
    # typed explicitly: PostgreSQL cannot infer a parameter's type inside json_build_object
    if value is None:
        return null()
    return cast(literal(value), Integer if isinstance(value, int) else String)


def state_json(dialect: str, source, **extra) -> ColumnElement:
    """SQL building the ``data`` of an event from a checkout row, for set-based appends."""
    pairs = []
    for field, column in (
        ("checkedOutAt", _iso(dialect, source.c.checkedOutAt)),
        ("dueAt", _iso(dialect, source.c.dueAt)),
        ("returnedAt", _iso(dialect, source.c.returnedAt)),
        ("renewals", source.c.renewals),
        *((key, _json_value(value)) for key, value in extra.items()),
    ):
        # keys are our own constants; inline them, as PostgreSQL cannot type a parameter
        # passed to json_build_object's variadic "any"
        pairs += [literal_column(f"'{field}'"), column]
    build = func.json_build_object if dialect == "postgresql" else func.json_object
    return build(*pairs)


def event_rows(dialect: str, source, type_: str, **extra) -> Select:
    """SELECT producing one event row per checkout row in ``source``."""
    return select(
        source.c.id,
        source.c.userId,
        source.c.bookId,
        literal(type_),
        literal(utcnow(), CheckoutEvent.occurred_at.type),
        state_json(dialect, source, **extra),
    )


EVENT_COLUMNS = ["checkoutId", "userId", "bookId", "type", "occurredAt", "data"]


def append_rows(session: Session, rows: Select) -> int:
    """INSERT ... SELECT into the log, set-based; returns how many events were appended."""
    lock_log(session)
    statement = insert(CheckoutEvent.__table__).from_select(EVENT_COLUMNS, rows)
    if session.get_bind().dialect.name == "postgresql":
        # the rowcount of this INSERT ... SELECT comes back as -1: count RETURNING in SQL
        appended = statement.returning(CheckoutEvent.__table__.c.id).cte("appended")
        count = session.scalar(select(func.count()).select_from(appended))
    else:
        count = session.execute(statement).rowcount
    # zope.sqlalchemy cannot see writes made by Core statements (least of all inside a
    # SELECT's CTEs): without this, pyramid_tm would roll the request back as read-only.
    mark_changed(session)
    return count


def delete_and_append(session: Session, where, type_: str, actor: int | None = None, **extra) -> int:
    """Delete every checkout matching ``where`` and log each one, set-based.

    PostgreSQL does it in one statement (``WITH gone AS (DELETE ... RETURNING *) INSERT``),
    so the log records exactly the rows deleted. SQLite, whose single writer excludes any
    race, logs the matching rows with INSERT ... SELECT and then deletes them.
    Returns the number of checkouts deleted (and events appended).
    """
    dialect = session.get_bind().dialect.name
    checkouts = Checkout.__table__
    extra["actor"] = actor
    if dialect == "postgresql":
        gone = delete(checkouts).where(where).returning(*checkouts.c).cte("gone")
        return append_rows(session, event_rows(dialect, gone, type_, **extra).order_by(gone.c.id))
    source = select(checkouts).where(where).subquery()
    appended = append_rows(session, event_rows(dialect, source, type_, **extra).order_by(source.c.id))
    session.execute(delete(checkouts).where(where))
    return appended
