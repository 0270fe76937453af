"""GET /health: does the service answer, and does its database?

Anyone may ask and hear the status (``ok``, ``starting``, ``degraded``): all a load balancer
or a readiness probe needs. What lies behind it (the database's error, which names its host,
port and user; the constraint problems; what the startup repair did) is for librarians and
for the metrics scrape token only.
"""

import logging

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from booknexus.accounts.roles import MANAGE
from booknexus.web.api import api_view
from booknexus.web.metrics import scrape_token_presented

log = logging.getLogger(__name__)


def may_see_details(request) -> bool:
    # the scrape token first: it needs no database, which may be the thing that is down
    if scrape_token_presented(request):
        return True
    try:
        return bool(request.has_permission(MANAGE))
    except DBAPIError:  # the bearer token cannot be checked: it earns nothing
        return False


@api_view(route_name="health", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def health(request):
    engine = request.registry["dbengine"]
    startup = request.registry["booknexus.startup"]
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except DBAPIError as exc:
        log.warning("health check: database unreachable: %s", exc.orig)
        request.response.status_int = 503
        body = {"status": "degraded", "database": "unreachable"}
    else:
        if startup.completed_at is None:
            # the database answers but the startup work is not done yet: not ready
            request.response.status_int = 503
            status = "starting"
        else:
            # A constraint problem does not stop the service, but it needs an operator.
            status = "degraded" if startup.constraint_problems else "ok"
        body = {"status": status, "database": "ok"}
    if not may_see_details(request):
        return {"status": body["status"]}
    return {**body, **startup.as_json()}


def includeme(config):
    config.add_route("health", "/health")
