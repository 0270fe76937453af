"""The connection pool's gauges: connections in use and threads waiting for one.

They live with the engines that feed them; ``web.metrics`` exposes them with the rest.
"""

from prometheus_client import Gauge
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

CONNECTIONS_IN_USE = Gauge(
    "booknexus_db_connections_in_use",
    "Database connections checked out of the pool",
    multiprocess_mode="livesum",
)
CONNECTIONS_WAITING = Gauge(
    "booknexus_db_connections_waiting",
    "Threads asking the pool for a connection (waiting when the pool is exhausted)",
    multiprocess_mode="livesum",
)


class MeteredQueuePool(QueuePool):
    """SQLAlchemy's QueuePool, counting the threads inside ``connect()`` (the pool has no
    event before a checkout: that is where a thread waits when every connection is taken)."""

    def connect(self):
        CONNECTIONS_WAITING.inc()
        try:
            return super().connect()
        finally:
            CONNECTIONS_WAITING.dec()


def watch_pool(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, connection_record, connection_proxy):
        CONNECTIONS_IN_USE.inc()

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection, connection_record):
        CONNECTIONS_IN_USE.dec()
