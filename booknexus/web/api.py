"""What every JSON view shares: the view decorator, pagination and serialisation."""

from datetime import datetime

from pyramid.events import NewRequest, subscriber
from pyramid.renderers import JSON
from pyramid.view import view_config
from sqlalchemy import Select, bindparam

from booknexus.db.schema import isoformat
from booknexus.web.errors import ApiError

DEFAULT_LIMIT = 50


def api_view(**settings):
    """``view_config`` with our defaults: JSON out, request validated by the OpenAPI document."""
    settings.setdefault("renderer", "json")
    settings.setdefault("openapi", True)
    return view_config(**settings)


def query_params(request) -> dict:
    """Validated query parameters, with the document's defaults applied."""
    return request.openapi_validated.parameters.query


def path_id(request) -> int:
    return request.openapi_validated.parameters.path["id"]


def keyset_page(session, statement: Select, key, limit: int, after: int | None, serialize):
    """One page ordered by ``key``, starting after the cursor ``after``; ``serialize`` gets
    each row's values."""
    page = keyset_statement(statement, key, after is not None)
    rows, next_key = keyset_rows(session, page, limit, after)
    return {"items": [serialize(*row) for row in rows], "next": next_key}


def keyset_statement(statement: Select, key, after: bool) -> Select:
    """``statement`` as a page ordered by ``key``: rows after the bind parameter ``after``
    (if ``after``), at most the bind parameter ``limit``. Keyset pagination: a page costs
    the same however deep it is. Its values are bound, so the read side builds each shape
    of page once and runs it many times (building a statement cost more than running it)."""
    if after:
        statement = statement.where(key > bindparam("after"))
    return statement.order_by(key).limit(bindparam("limit"))


def keyset_rows(executor, page: Select, limit: int, after: int | None, values: dict | None = None):
    """The rows of one page (a ``keyset_statement``, selecting an entity or its id first)
    and the next page's cursor; run on a session, or on a connection (the read side's rows,
    with no ORM around them)."""
    rows = executor.execute(page, {**(values or {}), "after": after, "limit": limit + 1}).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if rows else None
    return rows, getattr(last, "id", last) if more else None


def json_renderer() -> JSON:
    renderer = JSON()
    renderer.add_adapter(datetime, lambda value, request: isoformat(value))
    return renderer


@subscriber(NewRequest)
def reject_undecodable_input(event):
    # JSON is UTF-8 (RFC 8259), and so are URLs (RFC 3986 for IRIs); say so plainly instead
    # of letting the validator, or webob decoding the query string, trip on it
    request = event.request
    if request.query_string:
        try:
            request.GET  # noqa: B018  (webob decodes it once, here, and keeps it)
        except UnicodeDecodeError as exc:
            raise ApiError(
                400, "invalid_encoding", "The query string is not UTF-8.", {"position": exc.start}
            ) from None
    if request.content_length:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                400, "invalid_encoding", "The request body is not UTF-8.", {"position": exc.start}
            ) from None
