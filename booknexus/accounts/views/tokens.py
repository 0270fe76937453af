from datetime import timedelta

from pyramid.httpexceptions import HTTPNoContent
from pyramid.security import NO_PERMISSION_REQUIRED

from booknexus.accounts import tokens
from booknexus.accounts.metrics import LOGINS
from booknexus.accounts.passwords import verify_password
from booknexus.accounts.queries import find_by_email
from booknexus.accounts.throttle import login_throttle
from booknexus.refusals import Throttled
from booknexus.web.api import api_view
from booknexus.web.errors import ApiError


def token_ttl(request) -> timedelta:
    return timedelta(hours=float(request.registry.settings.get("booknexus.token_ttl_hours", 24)))


@api_view(route_name="tokens", request_method="POST", permission=NO_PERMISSION_REQUIRED)
def log_in(request):
    body = request.openapi_validated.body
    throttle = login_throttle(request)
    try:
        throttle.ensure_allowed(body["email"], request.client_addr)  # before any hashing
    except Throttled:
        LOGINS.labels("throttled").inc()
        raise
    user = find_by_email(request.dbsession, body["email"])  # whatever its case
    # one answer for a wrong email and a wrong password (and a user without one)
    if not verify_password(user.password_hash if user else None, body["password"]):
        throttle.failed(body["email"], request.client_addr)
        LOGINS.labels("failed").inc()
        raise ApiError(401, "invalid_credentials", "Wrong email or password.")
    throttle.succeeded(body["email"])
    LOGINS.labels("succeeded").inc()
    token, expires_at = tokens.issue(request.dbsession, user, token_ttl(request))
    request.response.status_int = 201
    return {
        "token": token,
        "tokenType": "Bearer",
        "expiresAt": expires_at,
        "userId": user.id,
        "role": user.role,
    }


@api_view(route_name="current_token", request_method="DELETE", permission="authenticated")
def log_out(request):
    tokens.revoke(request.dbsession, request.identity.token_id)
    return HTTPNoContent()
