"""How long a statement may run, and wait for a lock, on PostgreSQL.

A request's limits are small: a runaway statement must not hold the log's lock or a book's
row for minutes while every other request queues behind it. The commands that work through
whole tables (startup repair, ``booknexus-cleanup --full``, ``booknexus-expire-holds``,
``booknexus-anonymise``) get larger ones. The limits ride on the connection itself (the
``options`` of its startup packet), so a request pays no round trip for them; work that
needs the larger limits on a request connection raises them for its own transaction only
(``raise_for_bulk_work``). A statement stopped by either limit becomes a 503 (``web.errors``).
"""

import re
from dataclasses import dataclass

from sqlalchemy import Connection, text

DURATION = re.compile(r"\d+(ms|s|min|h)?")

# PostgreSQL's SQLSTATEs for "canceled by statement_timeout" and "lock_timeout expired"
QUERY_CANCELED = "57014"
LOCK_NOT_AVAILABLE = "55P03"


def _duration(settings: dict, key: str, default: str) -> str:
    value = str(settings.get(key, default)).strip()
    if not DURATION.fullmatch(value):
        raise ValueError(f"{key} = {value!r}: give a duration such as 500ms, 5s, 30min or 0 (no limit)")
    return value


@dataclass(frozen=True)
class Limits:
    statement_timeout: str
    lock_timeout: str

    @classmethod
    def request(cls, settings: dict) -> "Limits":
        return cls(
            _duration(settings, "booknexus.db.statement_timeout", "10s"),
            _duration(settings, "booknexus.db.lock_timeout", "5s"),
        )

    @classmethod
    def bulk(cls, settings: dict) -> "Limits":
        return cls(
            _duration(settings, "booknexus.db.bulk_statement_timeout", "30min"),
            _duration(settings, "booknexus.db.bulk_lock_timeout", "1min"),
        )

    def connection_options(self) -> str:
        return f"-c statement_timeout={self.statement_timeout} -c lock_timeout={self.lock_timeout}"


def raise_for_bulk_work(connection: Connection, settings: dict) -> None:
    """The bulk limits for the rest of this transaction (PostgreSQL; SQLite has none)."""
    if connection.dialect.name != "postgresql":
        return
    limits = Limits.bulk(settings)
    # set_config(..., true) is SET LOCAL with parameters: it ends with the transaction
    connection.execute(
        text(
            "SELECT set_config('statement_timeout', :statement, true),"
            " set_config('lock_timeout', :lock, true)"
        ),
        {"statement": limits.statement_timeout, "lock": limits.lock_timeout},
    )


def timed_out(exc) -> bool:
    """Whether a database error is one of our limits firing."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in (QUERY_CANCELED, LOCK_NOT_AVAILABLE)
