"""Replay: fold a log into the state of every record and compare it with the table."""

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from booknexus.circulation.eventlog.streams import (
    ANONYMISED,
    CHECKOUTS,
    ENDING,
    LOGS,
    Stream,
)

BATCH = 10_000


def _timestamp(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value is not None else None


def replay(session: Session, stream: Stream = CHECKOUTS) -> dict[int, dict]:
    """The state of every live record according to its log, read in position order."""
    state: dict[int, dict] = {}
    events = stream.events
    rows = session.execute(
        select(
            events.c[stream.key],
            events.c.type,
            events.c.data,
            *(events.c[name] for name in stream.subjects),
        )
        .order_by(events.c.id)
        .execution_options(yield_per=BATCH)
    )
    for record_id, type_, data, *subjects in rows:
        if type_ in ENDING:
            state.pop(record_id, None)
            continue
        if type_ == ANONYMISED and (data.get("gone") or record_id not in state):
            continue  # a record already gone: nothing to replay
        state[record_id] = {
            **dict(zip(stream.subjects, subjects, strict=True)),
            **{name: _timestamp(data.get(name)) for name in stream.timestamps},
            **{name: data.get(name) for name in stream.values},
        }
    return state


def compared(stream: Stream) -> tuple[str, ...]:
    return (*stream.subjects, *stream.state_fields)


def table(session: Session, stream: Stream = CHECKOUTS) -> dict[int, dict]:
    records = stream.records
    columns = compared(stream)
    rows = session.execute(
        select(records.c.id, *(records.c[name] for name in columns))
        .order_by(records.c.id)
        .execution_options(yield_per=BATCH)
    )
    return {row[0]: dict(zip(columns, row[1:], strict=True)) for row in rows}


@dataclass
class Drift:
    stream: Stream = CHECKOUTS
    missing: list[int] = field(default_factory=list)  # live in the log, absent from the table
    extra: list[int] = field(default_factory=list)  # in the table, unknown to the log or ended
    differing: list[tuple[int, str, object, object]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.differing)

    def report(self) -> str:
        table_name = self.stream.records.name
        if not self:
            return f"no drift: replaying the {self.stream.events.name} log reproduces the {table_name} table"
        missing, extra = len(self.missing), len(self.extra)
        lines = [
            f"{table_name}: missing from the table (live in the log): {missing} {self.missing[:20]}",
            f"{table_name}: extra in the table (not live in the log): {extra} {self.extra[:20]}",
            f"{table_name}: differing fields: {len(self.differing)}",
        ]
        lines += [
            f"  {self.stream.key} {record_id} {name}: log={logged!r} table={actual!r}"
            for record_id, name, logged, actual in self.differing[:20]
        ]
        return "\n".join(lines)


def compare(session: Session, stream: Stream = CHECKOUTS) -> Drift:
    logged, actual = replay(session, stream), table(session, stream)
    drift = Drift(
        stream=stream,
        missing=sorted(logged.keys() - actual.keys()),
        extra=sorted(actual.keys() - logged.keys()),
    )
    for record_id in sorted(logged.keys() & actual.keys()):
        for name in compared(stream):
            if logged[record_id][name] != actual[record_id][name]:
                drift.differing.append((record_id, name, logged[record_id][name], actual[record_id][name]))
    return drift


def compare_all(session: Session) -> list[Drift]:
    """Every log against its table: checkouts, holds, then items."""
    return [compare(session, stream) for stream in LOGS.values()]
