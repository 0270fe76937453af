"""Repair only what needs it: decide from facts that cost the same at any size.

A restart must not cost more with a bigger log, so startup (and ``booknexus-cleanup``
without ``--full``) first reads a few cheap facts:

- the foreign keys of "Checkouts", from the catalog: present, CASCADE/CASCADE, validated.
  Valid keys mean no orphan can exist, so there is nothing for the purge to find;
- the capture triggers (``booknexus.circulation.eventlog.capture``), from the catalog: present and enabled.
  With them, nothing written outside the app escapes the log;
- a sign that a log is out of step anyway, read with a handful of index probes in one
  statement (one snapshot) per log: the newest checkout (hold, item) must be live in its log, and
  the log's last event must agree with the table about its record. It catches what bypasses the
  triggers at the edges: a restore that brought one table back without the other, rows
  written with ``session_replication_role = replica``, a SQLite writer that died marked.
  What it cannot see (a row deep in the table changed with every trigger bypassed) is
  found by ``booknexus-check`` and repaired by ``booknexus-cleanup --full``.

Only when one of them gives a reason does the full repair (``booknexus.operations.cleanup``) scan.
On PostgreSQL the whole decision runs under a transaction-scoped advisory lock: a second
process starting at the same time waits, then finds the repair done, so it runs once.
"""

import json
import logging

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session

from booknexus.circulation.eventlog import capture
from booknexus.circulation.eventlog.capture import CAPTURED
from booknexus.circulation.eventlog.streams import ANONYMISED, ENDING, Stream
from booknexus.circulation.locks import lock_repair
from booknexus.operations.cleanup import CleanupReport, run_cleanup
from booknexus.operations.foreign_keys import checkout_foreign_keys, problems

log = logging.getLogger(__name__)

FULL = "asked for the full repair"


def edges(stream: Stream) -> TextClause:
    """One statement, so one snapshot even while other processes write."""
    records, events, key = f'"{stream.records.name}"', f'"{stream.events.name}"', f'"{stream.key}"'
    return text(f"""
    SELECT newest.id,
           (SELECT e.type FROM {events} e WHERE e.{key} = newest.id ORDER BY e.id DESC LIMIT 1),
           last.{key},
           last.type,
           last.data,
           EXISTS (SELECT 1 FROM {records} r WHERE r.id = last.{key})
    FROM (SELECT 1) AS one
    LEFT JOIN (SELECT id FROM {records} ORDER BY id DESC LIMIT 1) AS newest ON true
    LEFT JOIN (SELECT {key}, type, data FROM {events} ORDER BY id DESC LIMIT 1) AS last ON true
""")


EDGES = {stream: edges(stream) for stream in CAPTURED}


def log_out_of_step(session: Session, stream: Stream) -> str | None:
    """The O(1) sign: None when the edges of the table and its log agree."""
    edges = session.execute(EDGES[stream]).one()
    newest, newest_event, last_logged, last_type, last_data, last_exists = edges
    kind = stream.name[:-1]
    if newest is not None and (newest_event is None or newest_event in ENDING):
        return f"the newest {kind} ({newest}) is not live in the log"
    if isinstance(last_data, str):  # SQLite hands JSON back as text
        last_data = json.loads(last_data)
    ended = last_type in ENDING or (last_type == ANONYMISED and (last_data or {}).get("gone"))
    if last_logged is not None and (not ended) != bool(last_exists):
        state = "live" if not ended else "ended"
        return f"the log's last event ({last_type}) has {kind} {last_logged} {state}; the table disagrees"
    return None


def reasons_to_repair(session: Session) -> list[str]:
    connection = session.connection()
    reasons = [f"foreign keys: {problem}" for problem in problems(checkout_foreign_keys(connection))]
    missing = capture.missing(connection)
    if missing:
        reasons.append(f"capture triggers missing or disabled: {', '.join(missing)}")
    if capture.stale_mark(session):
        reasons.append("a writer died marked as the app: its changes may be unlogged")
    for stream in CAPTURED:
        sign = log_out_of_step(session, stream)
        if sign:
            reasons.append(f"{stream.name} log out of step: {sign}")
    return reasons


def install_capture(session: Session) -> None:
    """Put back missing or disabled capture triggers; a role that may not is reported, not fatal."""
    try:
        with session.begin_nested():
            capture.install(session.connection())
    except Exception as exc:  # noqa: BLE001 (e.g. not the table's owner: the repair still runs)
        log.warning("could not install the capture triggers: %s", str(exc).splitlines()[0])


def repair(session: Session, full: bool = False) -> CleanupReport:
    """In the caller's transaction: the cheap checks, then the full repair if they say so."""
    lock_repair(session)
    reasons = [FULL] if full else reasons_to_repair(session)
    if not reasons:
        report = CleanupReport(full=False)
        log.info(report.summary())
        return report
    if capture.missing(session.connection()):
        install_capture(session)
    report = run_cleanup(session, reasons)
    capture.unmark(session)  # the stale mark too: from here on the app marks its own writes
    return report
