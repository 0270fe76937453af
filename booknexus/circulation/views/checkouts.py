"""The loans, as the JSON API shows and changes them: each command is one call to
``circulation.commands``."""

from functools import cache

from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import bindparam, select

from booknexus.accounts.roles import MANAGE
from booknexus.circulation import commands, desk
from booknexus.circulation.models import CLAIMED, DECLARED_LOST, Checkout
from booknexus.circulation.privacy import policy
from booknexus.circulation.rules import rules
from booknexus.circulation.serialize import serialize_checkout
from booknexus.circulation.views.places import branch_id_of
from booknexus.db.schema import attribute_columns, utcnow
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params
from booknexus.web.errors import ApiError, not_found

# GET /checkouts' filters, as conditions on bind parameters of the same names
CHECKOUT_FILTERS = {
    "userId": Checkout.user_id == bindparam("userId"),
    "bookId": Checkout.book_id == bindparam("bookId"),
    "open": Checkout.returned_at.is_(None),
    "returned": Checkout.returned_at.is_not(None),
    "overdue": (Checkout.returned_at.is_(None))
    & (Checkout.due_at < bindparam("now", type_=Checkout.due_at.type)),
}


@cache
def checkouts_page(filters: tuple[str, ...], after: bool):
    """A page of loans with these filters: built once per combination, run with values."""
    statement = select(*attribute_columns(Checkout))  # rows, not objects: the read side
    for name in filters:
        statement = statement.where(CHECKOUT_FILTERS[name])
    return keyset_statement(statement, Checkout.id, after)


@api_view(route_name="checkouts", request_method="GET", permission="view")
def list_checkouts(request):
    params = query_params(request)
    values = {"userId": params.get("userId"), "bookId": params.get("bookId"), "now": utcnow()}
    filters = [name for name in ("userId", "bookId") if values[name] is not None]
    if params.get("open") is not None:
        filters.append("open" if params["open"] else "returned")
    if params.get("overdue"):
        filters.append("overdue")
    page = checkouts_page(tuple(filters), params.get("after") is not None)
    rows, next_id = keyset_rows(
        request.dbsession.connection(), page, params["limit"], params.get("after"), values
    )
    return {"items": [serialize_checkout(row) for row in rows], "next": next_id}


@api_view(route_name="checkouts", request_method="POST", permission="checkout")
def create_checkout(request):
    body = request.openapi_validated.body
    override = body.get("override", False)
    if override and not request.has_permission(MANAGE):
        raise ApiError(403, "forbidden", "Only a librarian may lend past the loan rules.")
    checkout = commands.check_out(
        request.dbsession,
        request.authenticated_userid,
        body["userId"],
        body["bookId"],
        branch_id_of(request, body.get("branchId")),
        rules=rules(request),
        days=body.get("days"),
        override=override,
    )
    request.response.status_int = 201
    return serialize_checkout(checkout)


@api_view(route_name="checkout", request_method="GET", permission="view")
def show_checkout(request):
    checkout_id = path_id(request)
    checkout = request.dbsession.execute(
        select(*attribute_columns(Checkout)).where(Checkout.id == checkout_id)
    ).first()
    if checkout is None:
        raise not_found("checkout", checkout_id)
    return serialize_checkout(checkout)


@api_view(route_name="checkout", request_method="DELETE")
def delete_checkout(request):
    commands.delete_checkout(
        request.dbsession, request.authenticated_userid, path_id(request), rules=rules(request)
    )
    return HTTPNoContent()


@api_view(route_name="checkout_return", request_method="POST")
def return_checkout(request):
    """The item back at its loan's branch, routed as the desk's check-in routes it."""
    done = desk.return_loan(
        request.dbsession,
        request.authenticated_userid,
        path_id(request),
        rules=rules(request),
        policy=policy(request),
    )
    return serialize_checkout(done.checkout)


def close_as(request, outcome: str):
    checkout = desk.close_loan_as(
        request.dbsession,
        request.authenticated_userid,
        path_id(request),
        outcome,
        rules=rules(request),
        policy=policy(request),
    )
    return serialize_checkout(checkout)


@api_view(route_name="checkout_lost", request_method="POST")
def declare_lost(request):
    return close_as(request, DECLARED_LOST)


@api_view(route_name="checkout_claimed_returned", request_method="POST")
def claim_returned(request):
    return close_as(request, CLAIMED)


@api_view(route_name="checkout_renew", request_method="POST", permission="renew")
def renew_checkout(request):
    checkout = commands.renew(
        request.dbsession, request.authenticated_userid, path_id(request), rules=rules(request)
    )
    return serialize_checkout(checkout)
