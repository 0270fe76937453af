"""Every request observed once: its request id, its access-log line, its metrics.

The request id comes from ``X-Request-ID`` when the value is sane (1-128 characters of
letters, digits and ``._:+/=-``), otherwise it is made here; it is echoed in the response's
``X-Request-ID``, carried in every error body (``requestId``) and in every log record made
while the request runs (``record.request_id``, which the JSON formatter of production.ini
writes out). The tween sits above pyramid_tm and the exception views, below pyramid_retry:
an attempt that pyramid_retry will repeat is neither logged nor counted, so one request is
one line and one count, its duration the whole of it.
"""

import contextvars
import logging
import os
import re
import time
from functools import cache

from pyramid.tweens import INGRESS
from pyramid_retry import is_error_retryable

from booknexus.web import metrics
from booknexus.web.security import known_actor

HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# the environ outlives pyramid_retry's attempts; the request object does not
REQUEST_ID_KEY = "booknexus.request_id"
STARTED_KEY = "booknexus.started"

current_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

access_log = logging.getLogger("booknexus.access")


def request_id(request) -> str:
    environ = request.environ
    if REQUEST_ID_KEY not in environ:
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        environ[REQUEST_ID_KEY] = offered if SANE_REQUEST_ID.fullmatch(offered) else os.urandom(16).hex()
    return environ[REQUEST_ID_KEY]


@cache
def request_series(method: str, route: str, status: int):
    """The counter and histogram children of one label set, looked up once per process
    (``labels()`` costs more than the increment itself; the label sets are bounded)."""
    return metrics.REQUESTS.labels(method, route, status), metrics.DURATION.labels(method, route, status)


def observe_tween_factory(handler, registry):
    def observe(request):
        started = request.environ.setdefault(STARTED_KEY, time.perf_counter())
        token = current_request_id.set(request_id(request))
        try:
            response = handler(request)
            response.headers[HEADER] = request.request_id
            exception = request.exception
            if exception is None or not is_error_retryable(request, exception):
                record(request, response.status_int, time.perf_counter() - started)
            return response
        finally:
            current_request_id.reset(token)

    return observe


def record(request, status: int, seconds: float) -> None:
    method = request.method if request.method in METHODS else "OTHER"
    route = request.matched_route.pattern if request.matched_route else "unmatched"
    requests, duration = request_series(method, route, status)
    requests.inc()
    duration.observe(seconds)
    error_code = getattr(request, "error_code", None)
    if error_code is not None and 400 <= status < 500:
        metrics.REFUSALS.labels(error_code).inc()
    duration_ms = round(seconds * 1000, 1)
    actor = known_actor(request)
    client = request.client_addr
    access_log.info(
        "%s %s %s %.1f ms actor=%s client=%s request_id=%s",
        method,
        route,
        status,
        duration_ms,
        actor,
        client,
        request.request_id,
        extra={
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "actor": actor,
            "client": client,
        },
    )


def install_log_record_factory() -> None:
    """Every log record made while a request runs carries its id (None outside requests)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_request_id", False):
        return

    def with_request_id(*args, **kwargs):
        log_record = previous(*args, **kwargs)
        log_record.request_id = current_request_id.get()
        return log_record

    with_request_id.adds_request_id = True
    logging.setLogRecordFactory(with_request_id)


def includeme(config):
    install_log_record_factory()
    config.add_request_method(request_id, "request_id", reify=True)
    config.add_tween("booknexus.web.observe.observe_tween_factory", under=INGRESS)
