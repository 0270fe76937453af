"""GET /health: does the service answer, and does its database?"""

import logging

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from booknexus.web.api import api_view

log = logging.getLogger(__name__)


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
        return {"status": "degraded", "database": "unreachable", **startup.as_json()}
    if startup.completed_at is None:
        # the database answers but the startup work is not done yet: not ready
        request.response.status_int = 503
        return {"status": "starting", "database": "ok", **startup.as_json()}
    # A constraint problem does not stop the service, but it needs an operator.
    status = "degraded" if startup.constraint_problems else "ok"
    return {"status": status, "database": "ok", **startup.as_json()}


def includeme(config):
    config.add_route("health", "/health")
