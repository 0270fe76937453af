"""What every JSON view shares: the view decorator, pagination and serialisation."""

from datetime import datetime

from pyramid.events import NewRequest, subscriber
from pyramid.renderers import JSON
from pyramid.view import view_config
from sqlalchemy import Select

from booknexus.web.errors import ApiError
from booknexus.web.schema import isoformat

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
    rows, next_key = keyset_rows(session, statement, key, limit, after)
    return {"items": [serialize(*row) for row in rows], "next": next_key}


def keyset_rows(executor, statement: Select, key, limit: int, after: int | None) -> tuple[list, int | None]:
    """One page's rows ordered by ``key`` after ``after``, and the next page's cursor; run on
    a session, or on a connection (the read side's rows, with no ORM around them).

    Keyset pagination: the cost of a page does not depend on how deep it is. The statement
    selects an entity or its id first (and maybe more columns).
    """
    if after is not None:
        statement = statement.where(key > after)
    rows = executor.execute(statement.order_by(key).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1][0] if rows else None
    return rows, getattr(last, "id", last) if more else None


def json_renderer() -> JSON:
    renderer = JSON()
    renderer.add_adapter(datetime, lambda value, request: isoformat(value))
    return renderer


@subscriber(NewRequest)
def reject_undecodable_body(event):
    # JSON is UTF-8 (RFC 8259); say so plainly instead of letting the validator trip on it
    request = event.request
    if request.content_length:
        try:
            request.body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(
                400, "invalid_encoding", "The request body is not UTF-8.", {"position": exc.start}
            ) from None
