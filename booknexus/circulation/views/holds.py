"""The holds, as the JSON API shows and changes them: each command is one call to
``circulation.commands``."""

from functools import cache

from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import bindparam, select

from booknexus.circulation import commands
from booknexus.circulation.models import Hold, Item
from booknexus.circulation.privacy import policy
from booknexus.circulation.queue import queue_position
from booknexus.circulation.rules import rules
from booknexus.circulation.serialize import serialize_hold, serialize_item
from booknexus.circulation.views.desk import serialize_route
from booknexus.circulation.views.places import branch_id_of
from booknexus.db.schema import attribute_columns
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params
from booknexus.web.errors import not_found


def with_position(request, hold_id: int) -> dict:
    row = request.dbsession.execute(select(Hold, queue_position()).where(Hold.id == hold_id)).first()
    if row is None:
        raise not_found("hold", hold_id)
    return serialize_hold(*row)


HOLD_FILTERS = {"userId": Hold.user_id, "bookId": Hold.book_id, "status": Hold.status}


@cache
def holds_page(filters: tuple[str, ...], after: bool):
    """A page of holds with their queue positions, filtered on these columns (bind
    parameters of their names): built once per combination, run with values."""
    statement = select(*attribute_columns(Hold), queue_position())  # rows, not objects
    for name in filters:
        statement = statement.where(HOLD_FILTERS[name] == bindparam(name))
    return keyset_statement(statement, Hold.id, after)


@api_view(route_name="holds", request_method="GET", permission="view")
def list_holds(request):
    params = query_params(request)
    values = {name: params[name] for name in HOLD_FILTERS if params.get(name) is not None}
    page = holds_page(tuple(values), params.get("after") is not None)
    rows, next_id = keyset_rows(
        request.dbsession.connection(), page, params["limit"], params.get("after"), values
    )
    return {"items": [serialize_hold(row, row[-1]) for row in rows], "next": next_id}


@api_view(route_name="holds", request_method="POST", permission="hold")
def place_hold(request):
    body = request.openapi_validated.body
    hold = commands.place_hold(
        request.dbsession,
        request.authenticated_userid,
        body["userId"],
        body["bookId"],
        branch_id_of(request, body.get("pickupBranchId")),
        rules=rules(request),
    )
    request.response.status_int = 201
    return with_position(request, hold.id)


@api_view(route_name="hold_capture", request_method="POST")
def capture_hold(request):
    """A librarian pulled an item for a waiting hold: the hold shelf here, or a transit."""
    body = request.openapi_validated.body
    hold, route = commands.capture_hold(
        request.dbsession,
        request.authenticated_userid,
        path_id(request),
        body["itemBarcode"],
        branch_id_of(request, body.get("branchId")),
        rules=rules(request),
    )
    return {
        **serialize_route(request, route),
        "item": serialize_item(request.dbsession.get(Item, hold.item_id)),
    }


@api_view(route_name="hold", request_method="GET", permission="view")
def show_hold(request):
    return with_position(request, path_id(request))


@api_view(route_name="hold", request_method="DELETE", permission="cancel")
def cancel_hold(request):
    commands.cancel_hold(
        request.dbsession,
        request.authenticated_userid,
        path_id(request),
        rules=rules(request),
        policy=policy(request),
    )
    return HTTPNoContent()
