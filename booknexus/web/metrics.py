"""``GET /metrics``: the service's counters in Prometheus' text format (prometheus-client).

Served by several workers (``booknexus-serve``), each process writes its values to files
in ``PROMETHEUS_MULTIPROC_DIR`` and a scrape of any worker adds up all of them
(prometheus-client's multiprocess mode); in one process (``pserve``, tests) the values
live in memory. Readable by a librarian, or with the token of ``booknexus.metrics.token``
(for Prometheus' scrape configuration, which then needs no account). The pool's gauges
are defined with the engines (``booknexus.db.pool_metrics``).
"""

import hmac
import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from pyramid.httpexceptions import HTTPForbidden
from pyramid.response import Response
from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config

from booknexus.accounts.roles import MANAGE

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

# labels: the route *pattern* (/books/{id}), never the path, so ids make no new series
REQUESTS = Counter("booknexus_http_requests", "HTTP requests answered", ["method", "route", "status"])
DURATION = Histogram(
    "booknexus_http_request_duration_seconds",
    "Time from the request's arrival to its response, retries included",
    ["method", "route", "status"],
)
REFUSALS = Counter("booknexus_refusals", "Requests answered with a 4xx, by error code", ["code"])


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
