"""At startup: repair what needs repair, verify the foreign keys, never keep the port shut.

A subscriber to Pyramid's ApplicationCreated starts the work in a background thread and
returns at once, so the server listens whatever the size of the database; ``/health``
answers 503 ``starting`` until the work is done (a readiness probe's signal), while every
other endpoint serves. The work is ``booknexus.operations.repair`` (cheap checks, the full repair only
if they find a reason; ``booknexus.cleanup_on_startup``, default true) and the constraint
verification. If the database cannot be reached, or anything else about it fails, the
error is logged and the work is retried with exponential backoff until it succeeds.

A full repair holds the logs' locks until it commits (seconds on a large database). Until
the work is done, every transaction of the app waits at most ``STARTUP_LOCK_TIMEOUT`` for a
lock, so a write that needs a log answers 503 ``database_timeout`` with ``Retry-After: 1``
within a second instead of queueing behind the repair for the request's whole lock_timeout.
"""

import logging
import threading
from datetime import datetime

from pyramid.events import ApplicationCreated, subscriber
from pyramid.settings import asbool
from sqlalchemy import event
from sqlalchemy.orm import sessionmaker

from booknexus.db.schema import utcnow
from booknexus.db.timeouts import raise_for_bulk_work
from booknexus.operations.cleanup import CleanupReport
from booknexus.operations.foreign_keys import (
    FIX_COMMAND,
    checkout_foreign_keys,
    problems,
)
from booknexus.operations.repair import repair

log = logging.getLogger(__name__)

STARTUP_LOCK_TIMEOUT = "500ms"
WORKER = "booknexus-startup"  # the thread that does the work


def short_lock_waits(session_factory: sessionmaker):
    """Until the returned function is called, each request's transaction waits at most
    ``STARTUP_LOCK_TIMEOUT`` for a lock (PostgreSQL: ``SET LOCAL``, gone with the transaction;
    the repair's own transactions, on sessions of their own, take the bulk limits instead).
    SQLite has no such limit. A session event of the request sessions' factory, not an engine
    event: an engine that ever had a listener dispatches events on every statement after."""
    if session_factory.kw["bind"].dialect.name != "postgresql":
        return lambda: None

    def on_begin(session, transaction, connection):
        connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{STARTUP_LOCK_TIMEOUT}'")

    event.listen(session_factory, "after_begin", on_begin)
    return lambda: event.remove(session_factory, "after_begin", on_begin)


class StartupState:
    """What the startup work found; read by /health. Written by one thread at a time."""

    def __init__(self, settings: dict):
        self.cleanup_enabled = asbool(settings.get("booknexus.cleanup_on_startup", True))
        self.initial_delay = float(settings.get("booknexus.startup_retry_initial_seconds", 1))
        self.max_delay = float(settings.get("booknexus.startup_retry_max_seconds", 30))
        self.cleanup: CleanupReport | None = None
        self.constraint_problems: list[str] | None = None
        self.completed_at: datetime | None = None
        self.attempts = 0
        self.last_error: str | None = None
        self.done = threading.Event()
        self.stopping = threading.Event()
        self.worker: threading.Thread | None = None

    def as_json(self) -> dict:
        constraints = None
        if self.constraint_problems is not None:
            constraints = {"ok": not self.constraint_problems, "problems": self.constraint_problems}
            if self.constraint_problems:
                constraints["fix"] = FIX_COMMAND
        return {
            "constraints": constraints,
            "cleanup": self.cleanup.as_json() if self.cleanup else None,
            "startup": {
                "completed": self.completed_at is not None,
                "attempts": self.attempts,
                "lastError": self.last_error,
            },
        }

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the startup work is done (tests, scripts); False on timeout."""
        return self.done.wait(timeout)

    def stop(self) -> None:
        """Stop retrying (tests, shutdown)."""
        self.stopping.set()
        if self.worker is not None:
            self.worker.join(timeout=10)


def attempt(registry, state: StartupState) -> None:
    """One try at the startup work, in one transaction."""
    state.attempts += 1
    session = registry["dbsession_factory"]()
    report = None
    try:
        with session.begin():
            # the repair may work through whole tables: not under a request's time limits
            raise_for_bulk_work(session.connection(), registry.settings)
            if state.cleanup_enabled:
                report = repair(session)
            found = problems(checkout_foreign_keys(session.connection()))
    finally:
        session.close()
    if report is not None:
        state.cleanup = report  # only once committed
    for problem in found:
        log.warning("constraint check: %s; fix with: %s", problem, FIX_COMMAND)
    state.constraint_problems = found
    state.completed_at = utcnow()
    state.last_error = None
    state.done.set()


def attempt_safely(registry, state: StartupState) -> bool:
    try:
        attempt(registry, state)
        return True
    except Exception as exc:  # nothing about the database may stop the server from serving
        state.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        log.warning("startup cleanup failed (attempt %s): %s", state.attempts, state.last_error)
        return False


def work_until_done(registry, state: StartupState, restore_lock_waits) -> None:
    try:
        delay = state.initial_delay
        while not attempt_safely(registry, state):
            if state.stopping.wait(delay):
                return
            delay = min(delay * 2, state.max_delay)
    finally:
        restore_lock_waits()
    log.info("startup work done after %s attempt(s)", state.attempts)


@subscriber(ApplicationCreated)
def on_application_created(event):
    registry = event.app.registry
    state = registry["booknexus.startup"]
    # before the port opens: no request may queue behind the repair for its whole lock_timeout
    restore_lock_waits = short_lock_waits(registry["request_session_factory"])
    state.worker = threading.Thread(
        target=work_until_done,
        args=(registry, state, restore_lock_waits),
        name=WORKER,
        daemon=True,
    )
    state.worker.start()


def includeme(config):
    config.registry["booknexus.startup"] = StartupState(config.get_settings())
