"""Reader privacy: closed loans and ended holds handed to the anonymous reader.

``booknexus.privacy.loan_history_days`` and ``booknexus.privacy.hold_history_days`` (default
30; ``never`` keeps everything) say how long after a loan is returned, or a hold has ended, its
reader is kept. Anonymising a record replaces its reader by the anonymous one everywhere: the
record's row, and every event of it in its log (``"userId"``, and ``data.actor`` where the
actor was that reader) — the one change the logs' triggers accept besides appends (revision
0010). Book, dates, renewals, types and positions stay, so circulation counts stay exact.
Each record touched gets an ``anonymised`` event (reason, actor; no personal data), so a
consumer tailing the log learns which of its copies to rewrite. Records deleted with their
reader or book count as closed at their deletion. Readers who chose ``keepHistory`` are left
as they are.

A run works in batches, each one short transaction taking the lock order's locks (the books,
then the records, then the logs), so it is safe to interrupt and to run twice at once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    JSON,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from booknexus.accounts.events import UserDeleted
from booknexus.accounts.models import ANONYMOUS_READER, User
from booknexus.accounts.queries import ensure_not_last_librarian, ensure_not_the_anonymous_reader
from booknexus.circulation import metrics
from booknexus.circulation.eventlog import capture
from booknexus.circulation.eventlog.append import append_rows, event_rows
from booknexus.circulation.eventlog.streams import (
    ANONYMISED,
    CHECKOUTS,
    ENDING,
    HOLDS,
    Stream,
)
from booknexus.circulation.locks import (
    lock_books,
    lock_books_of_user,
    lock_logs,
    lock_records,
    lock_user_and_librarians,
)
from booknexus.circulation.models import OPEN, Checkout, Hold
from booknexus.db.engines import mark_changed
from booknexus.db.schema import isoformat, utcnow
from booknexus.refusals import Refused

log = logging.getLogger(__name__)

ANONYMISING = "booknexus.anonymising"
ERASURE = "erasure"
POLICY = "policy"
BATCH = 1000  # records a transaction: its locks are held for a few milliseconds


@dataclass(frozen=True)
class Policy:
    loan_days: int | None  # None: never
    hold_days: int | None

    @classmethod
    def from_settings(cls, settings: dict) -> "Policy":
        def days(name: str) -> int | None:
            value = str(settings.get(f"booknexus.privacy.{name}", 30)).strip().lower()
            return None if value == "never" else int(value)

        return cls(days("loan_history_days"), days("hold_history_days"))

    def days(self, stream: Stream) -> int | None:
        return self.loan_days if stream is CHECKOUTS else self.hold_days


ANONYMOUS_EMAIL = "anonymous@booknexus.invalid"  # as revision 0010 made it: unique, so indexed


def anonymous_reader(session: Session) -> int:
    """The anonymous reader's id, by its email's unique index (role has none)."""
    return session.scalar(select(User.id).where(User.email == ANONYMOUS_EMAIL, User.role == ANONYMOUS_READER))


def _closed_before(stream: Stream, cutoff: datetime):
    records = stream.records
    if stream is CHECKOUTS:
        return and_(records.c.returnedAt.is_not(None), records.c.returnedAt < cutoff)
    return and_(records.c.endedAt.is_not(None), records.c.endedAt < cutoff, records.c.status.not_in(OPEN))


def _keeps_history(user_id):
    """The reader chose to keep their history: one primary-key probe per candidate row."""
    return exists().where(User.id == user_id, User.keep_history)


def _mark_anonymising(session: Session) -> None:
    """Tell the logs' triggers this transaction anonymises (and only that); gone at commit."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SELECT set_config('{ANONYMISING}', 'on', true)"))
    else:
        session.execute(text('INSERT OR IGNORE INTO "Anonymising" (id) VALUES (1)'))


def _unmark_anonymising(session: Session) -> None:
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text('DELETE FROM "Anonymising"'))


def _rewrite_events(session: Session, stream: Stream, record_ids, anonymous: int) -> None:
    """Every event of these records: the reader, and the actor where it was that reader."""
    events = stream.events
    anonymous_sql = literal_column(str(int(anonymous)))  # json_build_object cannot type a parameter
    if session.get_bind().dialect.name == "postgresql":
        addition = func.jsonb_build_object(literal_column("'actor'"), anonymous_sql)
        as_anonymous = cast(cast(events.c.data, JSONB).op("||")(addition), JSON)
        acted_themselves = events.c.data["actor"].as_string() == cast(events.c.userId, String)
    else:
        as_anonymous = func.json_set(events.c.data, "$.actor", anonymous_sql)
        acted_themselves = func.json_extract(events.c.data, "$.actor") == events.c.userId
    session.execute(
        update(events)
        .where(events.c[stream.key].in_(record_ids), events.c.userId != anonymous_sql)
        .values(userId=anonymous_sql, data=case((acted_themselves, as_anonymous), else_=events.c.data))
    )


def anonymise_records(
    session: Session, stream: Stream, record_ids: list[int], anonymous: int, reason: str, actor: int | None
) -> int:
    """Anonymise closed records still in their table; the caller holds their books' and
    their rows' locks. Returns how many."""
    if not record_ids:
        return 0
    capture.mark(session)  # the app logs this change itself
    lock_logs(session, stream)  # step 5: a tailing reader never sees a record half rewritten
    _mark_anonymising(session)
    records = stream.records
    session.execute(update(records).where(records.c.id.in_(record_ids)).values(userId=anonymous))
    _rewrite_events(session, stream, record_ids, anonymous)
    source = select(records).where(records.c.id.in_(record_ids)).subquery()
    dialect = session.get_bind().dialect.name
    rows = event_rows(dialect, source, ANONYMISED, stream, reason=reason, actor=actor).order_by(source.c.id)
    appended = append_rows(session, rows, stream)
    _unmark_anonymising(session)
    mark_changed(session)
    metrics.count_when_committed(session, stream, ANONYMISED, appended)
    return appended


def anonymise_gone(
    session: Session, stream: Stream, record_ids: list[int], anonymous: int, reason: str, actor: int | None
) -> int:
    """Anonymise the events of records that are gone (deleted with their reader or book)."""
    if not record_ids:
        return 0
    lock_logs(session, stream)
    _mark_anonymising(session)
    _rewrite_events(session, stream, record_ids, anonymous)
    events = stream.events
    ended = (
        select(events.c[stream.key].label("id"), func.max(events.c.bookId).label("bookId"))
        .where(events.c[stream.key].in_(record_ids), events.c.type.in_(ENDING))
        .group_by(events.c[stream.key])
        .subquery()
    )
    postgresql = session.get_bind().dialect.name == "postgresql"
    build = func.json_build_object if postgresql else func.json_object
    data = build(  # our own constants, inlined: json_build_object cannot type a parameter
        literal_column("'gone'"),
        literal_column("true" if postgresql else "json('true')"),
        literal_column("'reason'"),
        literal_column(f"'{reason}'"),
        literal_column("'actor'"),
        literal_column("NULL" if actor is None else str(int(actor))),
    )
    rows = select(
        ended.c.id,
        literal(anonymous),
        ended.c.bookId,
        literal(ANONYMISED),
        literal(utcnow(), events.c.occurredAt.type),
        data,
    ).order_by(ended.c.id)
    appended = append_rows(session, rows, stream)
    _unmark_anonymising(session)
    mark_changed(session)
    metrics.count_when_committed(session, stream, ANONYMISED, appended)
    return appended


def due_batch(session: Session, stream: Stream, now: datetime, days: int, anonymous: int) -> tuple[int, int]:
    """One batch of what the policy makes due, in one transaction (the caller's): records
    still in the table, then records gone. Returns (records, gone) anonymised."""
    cutoff = now - timedelta(days=days)
    records, events = stream.records, stream.events
    anonymous_sql = literal_column(str(int(anonymous)))  # a constant, as the partial indexes say it
    due = and_(
        _closed_before(stream, cutoff),
        records.c.userId != anonymous_sql,
        ~_keeps_history(records.c.userId),
    )
    # oldest first: the partial index on the closing time serves it, whatever the history's size
    oldest = (records.c.returnedAt if stream is CHECKOUTS else records.c.endedAt, records.c.id)
    books = select(records.c.bookId).where(due).order_by(*oldest).limit(BATCH)
    # the lock order: the books, then the records (re-read under the locks), then the logs
    lock_books(session, books)
    live = lock_records(session, select(records.c.id).where(due).order_by(*oldest).limit(BATCH))
    done = anonymise_records(session, stream, live, anonymous, POLICY, None)
    lock_logs(session, stream)  # a second run waits here, then finds these done
    gone = list(
        session.scalars(
            select(events.c[stream.key])
            .where(
                events.c.type.in_(ENDING),
                events.c.occurredAt < cutoff,
                events.c.userId != anonymous_sql,
                ~_keeps_history(events.c.userId),
            )
            .distinct()
            .order_by(events.c[stream.key])
            .limit(BATCH)
        )
    )
    return done, anonymise_gone(session, stream, gone, anonymous, POLICY, None)


def apply_policy(session_factory, policy: Policy, now: datetime | None = None) -> dict[str, int]:
    """Every batch the policy makes due, each in its own transaction, until none is left."""
    now = now or utcnow()
    counts = {}
    with session_factory() as session:
        anonymous = anonymous_reader(session)
    for stream in (CHECKOUTS, HOLDS):
        days = policy.days(stream)
        counts[stream.name] = counts[f"{stream.name}_gone"] = 0
        if days is None:
            continue
        while True:
            with session_factory() as session, session.begin():
                live, gone = due_batch(session, stream, now, days, anonymous)
            counts[stream.name] += live
            counts[f"{stream.name}_gone"] += gone
            if not live and not gone:
                break
    return counts


def policy(request) -> Policy:
    return request.registry["booknexus.privacy"]


def anonymise_on_closing(session: Session, policy: Policy, stream: Stream, record_id: int, user) -> None:
    """At ``0`` days a record is anonymised in the command that closes it (its book and row
    are locked already), unless its reader keeps their history."""
    if policy.days(stream) != 0 or user is None or user.keep_history:
        return
    anonymise_records(session, stream, [record_id], anonymous_reader(session), POLICY, None)
    session.expire_all()  # the rows changed under the ORM's feet


def forget_actor(session: Session, user_id: int) -> None:
    """Every event of either log that still names ``user_id`` as its actor (a change they
    made to a record not theirs: a librarian's act, or a queue move logged before revision
    0013) says ``actor: null`` from now on — the other change the logs' triggers accept."""
    postgresql = session.get_bind().dialect.name == "postgresql"
    for stream in (CHECKOUTS, HOLDS):
        events = stream.events
        lock_logs(session, stream)
        if postgresql:
            acted = events.c.data["actor"].as_string() == str(int(user_id))
            forgotten = cast(cast(events.c.data, JSONB).op("||")(text("""'{"actor": null}'::jsonb""")), JSON)
        else:
            acted = func.json_extract(events.c.data, "$.actor") == user_id
            forgotten = func.json_set(events.c.data, "$.actor", literal_column("json('null')"))
        session.execute(update(events).where(acted, events.c.userId != user_id).values(data=forgotten))


def erase_reader(session: Session, actor: int | None, user_id: int, *, registry) -> None:
    """Erasure on request: refused while the reader has a book out; otherwise every record of
    theirs is anonymised (reason ``erasure``, ``actor`` recorded), every event naming them as
    an actor forgets them, and the account is removed, in one transaction, under the lock
    order."""
    user = lock_user_and_librarians(session, user_id)
    ensure_not_the_anonymous_reader(user)
    ensure_not_last_librarian(session, user)
    out = session.execute(
        select(Checkout.id, Checkout.book_id, Checkout.due_at)
        .where(Checkout.user_id == user.id, Checkout.returned_at.is_(None))
        .order_by(Checkout.id)
    ).all()
    if out:
        raise Refused(
            "open_loans",
            f"User {user.id} has {len(out)} books out; they must be returned before erasure.",
            {"loans": [{"id": i, "bookId": b, "dueAt": isoformat(d)} for i, b, d in out]},
        )
    lock_books_of_user(session, user.id)
    anonymous = anonymous_reader(session)
    closed_holds = select(Hold.id).where(Hold.user_id == user.id, Hold.status.not_in(OPEN))
    for stream, ids in (
        (CHECKOUTS, select(Checkout.id).where(Checkout.user_id == user.id)),
        (HOLDS, closed_holds),
    ):
        anonymise_records(session, stream, lock_records(session, ids), anonymous, ERASURE, actor)
    session.expire_all()
    user = session.get(User, user.id)
    registry.notify(UserDeleted(user, session, actor, registry))  # their open holds go, logged
    session.delete(user)
    session.flush()
    for stream in (CHECKOUTS, HOLDS):  # what is gone now, or went before, keeps no trace of them
        events = stream.events
        gone = session.scalars(select(events.c[stream.key]).where(events.c.userId == user.id).distinct())
        anonymise_gone(session, stream, list(gone), anonymous, ERASURE, actor)
    _mark_anonymising(session)
    forget_actor(session, user.id)
    _unmark_anonymising(session)
    mark_changed(session)
    log.info("a reader was erased by user %s", actor)  # who and when; nothing about whom


def includeme(config):
    config.registry["booknexus.privacy"] = Policy.from_settings(config.get_settings())
