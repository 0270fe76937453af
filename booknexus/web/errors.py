"""The one error contract: ``{"error": {"status", "code", "message", "details", "requestId"}}``.

Domain code raises refusals (``booknexus.refusals``), views may raise ``ApiError`` for what
only HTTP knows (a 401, a body the API cannot read); everything else that can go wrong is
turned into the same shape here, so a client never sees an HTML page or a traceback.
"""

import logging
import re

from limits.errors import StorageError
from pyramid.exceptions import PredicateMismatch
from pyramid.httpexceptions import HTTPException, HTTPForbidden, HTTPNotFound
from pyramid.view import exception_view_config
from pyramid_openapi3.exceptions import ResponseValidationError, extract_errors
from sqlalchemy import exc as sa_exc

from booknexus.db.timeouts import timed_out
from booknexus.refusals import Invalid, NotFound, Refused, Throttled

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details=None, headers: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def not_found(kind: str, id_: int) -> NotFound:
    return NotFound(kind, id_)


# how the JSON API says each kind of refusal; any other Refused is a conflict with the
# library's state (409)
REFUSAL_STATUS = {NotFound: 404, Invalid: 400, Throttled: 429}


def error_response(request, status: int, code: str, message: str, details=None):
    request.error_code = code  # counted by web.observe once the request is over
    response = request.response
    response.status_int = status
    response.content_type = "application/json"
    response.json_body = {
        "error": {
            "status": status,
            "code": code,
            "message": message,
            "details": details,
            # the reader's screenshot of an error leads to its log lines
            "requestId": request.request_id,
        }
    }
    return response


def raw_path(request) -> str:
    """The path as it arrived (WSGI's latin-1 string): naming a request must not fail on
    bytes that are not UTF-8, as ``request.path`` would."""
    return request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", "")


def where(request) -> str:
    """A request as error lines name it (the JSON log also carries ``request_id`` itself)."""
    return f"{request.method} {raw_path(request)} (request {request.request_id})"


@exception_view_config(ApiError)
def api_error(exc, request):
    response = error_response(request, exc.status, exc.code, exc.message, exc.details)
    response.headers.update(exc.headers)
    return response


def refusal_status(exc: Refused) -> int:
    return next((REFUSAL_STATUS[kind] for kind in type(exc).__mro__ if kind in REFUSAL_STATUS), 409)


@exception_view_config(Refused)
def refused(exc, request):
    response = error_response(request, refusal_status(exc), exc.code, exc.message, exc.details)
    if isinstance(exc, Throttled):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def request_validation_error(exc, request):
    """Registered by the app factory over pyramid_openapi3's own list-shaped answer."""
    if isinstance(exc, ResponseValidationError):
        # our answer contradicts our own document: a bug on our side, never the client's
        log.error("response to %s contradicts the OpenAPI document: %s", where(request), exc)
        return error_response(request, 500, "internal_error", "Something went wrong on our side.")
    details = [_without_secrets(error) for error in extract_errors(request, exc.errors)]
    return error_response(request, 400, "invalid_request", "The request is not valid.", details)


REQUIRED = re.compile(r"^'([^']+)' is a required property$")
UNEXPECTED = re.compile(r"^Additional properties are not allowed \('([^']+)' was unexpected\)$")


def _without_secrets(error: dict) -> dict:
    """A validation error as the client sees it, never echoing a password or a raw body.
    A missing or unexpected property is named as the field (pyramid_openapi3 names the
    object's first property for the one, and nothing for the other)."""
    detail = {key: error[key] for key in ("field", "message") if key in error}
    named = REQUIRED.match(detail.get("message", "")) or UNEXPECTED.match(detail.get("message", ""))
    if named:
        detail["field"] = named.group(1)
    message = detail.get("message", "")
    if "password" in detail.get("field", "") or "password" in message:
        detail["message"] = "Invalid password field (its value is not repeated here)."
    elif message.startswith("Failed to deserialize value"):
        detail["message"] = "The body is not valid JSON."
    return detail


@exception_view_config(HTTPForbidden)
def forbidden(exc, request):
    """401 when we do not know who you are, 403 when we do and the answer is no."""
    if request.authenticated_userid is None:
        if "Authorization" in request.headers:
            code, message = "invalid_token", "The bearer token is malformed, expired, revoked or unknown."
        else:
            code, message = "authentication_required", "Log in first: POST /auth/tokens."
        response = error_response(request, 401, code, message)
        response.headers["WWW-Authenticate"] = 'Bearer realm="booknexus"'
        return response
    return error_response(request, 403, "forbidden", "You may not do this.")


@exception_view_config(PredicateMismatch)
def method_not_allowed(exc, request):
    allowed = allowed_methods(request)
    response = error_response(
        request,
        405,
        "method_not_allowed",
        f"{request.method} is not allowed on {raw_path(request)}.",
        {"allowed": allowed},
    )
    response.headers["Allow"] = ", ".join(allowed)  # RFC 9110 requires it on a 405
    return response


def allowed_methods(request) -> list[str]:
    """The methods the matched route has views for, read from Pyramid's introspector."""
    route = request.matched_route.name if request.matched_route else None
    methods = set()
    for item in request.registry.introspector.get_category("views"):
        view = item["introspectable"]
        if view["route_name"] == route and view["request_methods"]:
            methods.update(
                [view["request_methods"]]
                if isinstance(view["request_methods"], str)
                else view["request_methods"]
            )
    return sorted(methods)


@exception_view_config(HTTPNotFound)
def route_not_found(exc, request):
    return error_response(request, 404, "not_found", f"Nothing at {raw_path(request)}.")


@exception_view_config(UnicodeDecodeError)
def invalid_encoding(exc, request):
    # a URL whose %-escapes are not UTF-8 (Pyramid's URLDecodeError, when it routes)
    return error_response(request, 400, "invalid_encoding", "The URL is not UTF-8.", {"position": exc.start})


@exception_view_config(HTTPException)
def http_exception(exc, request):
    if exc.code >= 500:
        log.error("HTTP %s on %s", exc.code, where(request))
    return error_response(request, exc.code, exc.title.lower().replace(" ", "_"), exc.explanation)


def database_unavailable(exc, request):
    if _transaction_rollback(exc):
        # a serialization failure or deadlock that outlived pyramid_retry's attempts: the
        # database is up, the request lost a race; say so, never "cannot be reached"
        log.warning("conflict outlived its retries on %s: %s", where(request), exc)
        response = error_response(
            request, 409, "conflict", "The request conflicted with concurrent changes; retry."
        )
        response.headers["Retry-After"] = "1"
        return response
    if timed_out(exc):
        # a statement outran booknexus.db.statement_timeout or waited past lock_timeout;
        # the transaction is rolled back, its locks released
        log.warning("database time limit reached on %s: %s", where(request), exc.orig)
        response = error_response(
            request, 503, "database_timeout", "The database took too long on this request; retry later."
        )
        response.headers["Retry-After"] = "1"
        return response
    log.warning("database unavailable on %s: %s", where(request), exc)
    response = error_response(
        request, 503, "database_unavailable", "The database cannot be reached; retry later."
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _transaction_rollback(exc) -> bool:
    """SQLSTATE class 40 (serialization failure, deadlock detected): transient, not an outage."""
    return (getattr(getattr(exc, "orig", None), "sqlstate", None) or "").startswith("40")


@exception_view_config(StorageError)
def login_limit_unavailable(exc, request):
    # the failed-login counts live in a store of their own (booknexus.login_limit.storage)
    log.warning("login limit store unavailable on %s: %s", where(request), exc)
    response = error_response(
        request, 503, "login_limit_unavailable", "Logging in is unavailable for a moment; retry later."
    )
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


@exception_view_config(sa_exc.DataError)
@exception_view_config(UnicodeEncodeError)
def invalid_value(exc, request):
    # Values the schema admits but the database refuses (e.g. NUL bytes, lone surrogates).
    return error_response(request, 400, "invalid_value", "A value in the request cannot be stored.")


@exception_view_config(sa_exc.IntegrityError)
def integrity_error(exc, request):
    # Views check what they can first; this answers the races they cannot see coming.
    log.info("integrity error on %s: %s", where(request), exc.orig)
    return error_response(request, 409, "conflict", "The request conflicts with the current state; retry.")


@exception_view_config(Exception)
def internal_error(exc, request):
    log.exception("unhandled error on %s", where(request))
    return error_response(request, 500, "internal_error", "Something went wrong on our side.")


def includeme(config):
    """Exception views for an unreachable database; the rest are found by the app's scan."""
    for unavailable in (
        sa_exc.OperationalError,
        sa_exc.InterfaceError,
        sa_exc.TimeoutError,
    ):
        config.add_exception_view(database_unavailable, context=unavailable)
