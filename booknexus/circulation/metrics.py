"""The library's own counters: loans, returns, renewals, holds and items' changes, by log and
event type.

Counted from the logs' appends, and only once the request's transaction has committed:
a refused or rolled-back change is no event. The commands (cleanup, expiry, anonymisation)
run in their own processes and are not counted here; their output reports what they did.
"""

import transaction
from prometheus_client import Counter

from booknexus.circulation.eventlog.streams import Stream
from booknexus.db.engines import RequestSession

EVENTS = Counter(
    "booknexus_circulation_events", "Events appended to the logs, by log and type", ["log", "type"]
)


def count_when_committed(session, stream: Stream, type_: str, how_many: int = 1) -> None:
    if how_many and isinstance(session, RequestSession):
        transaction.get().addAfterCommitHook(_count, args=(stream.name, type_, how_many))


def _count(committed: bool, log: str, type_: str, how_many: int) -> None:
    if committed:
        EVENTS.labels(log, type_).inc(how_many)
