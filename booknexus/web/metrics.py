"""``GET /metrics``: the service's counters in Prometheus' text format (prometheus-client).

Served by several workers (``booknexus-serve``), each process writes its values to files
in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any worker adds up all of them
(prometheus-client's multiprocess mode); in one process (``pserve``, tests) the values
live in memory. Readable by a librarian, or with the token of ``booknexus.metrics.token``
(for Prometheus' scrape configuration, which then needs no account).
"""

import hmac
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pyramid.httpexceptions import HTTPForbidden
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import QueuePool

from booknexus.web.security import MANAGE

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# labels: the route *pattern* (/books/{id}), never the path, so ids make no new series
REQUESTS = Counter("booknexus_http_requests", "HTTP requests answered", ["method", "route", "status"])
DURATION = Histogram(
    "booknexus_http_request_duration_seconds",
    "Time from the request's arrival to its response, retries included",
    ["method", "route", "status"],
)
REFUSALS = Counter("booknexus_refusals", "Requests answered with a 4xx, by error code", ["code"])
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


def exposition() -> bytes:
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def scrape_token_presented(request) -> bool:
    expected = request.registry.settings.get("booknexus.metrics.token")
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@view_config(route_name="metrics", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def metrics(request):
    # the scrape token is checked first: a scrape then costs no token lookup
    if not (scrape_token_presented(request) or request.has_permission(MANAGE)):
        raise HTTPForbidden()  # 401 or 403, as everywhere (web.errors.forbidden)
    response = Response(body=exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


def includeme(config):
    config.add_route("metrics", "/metrics")
