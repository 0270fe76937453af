"""The desk: check-out, check-in and renewal by barcode, as a scanner drives them. Each is one
call to ``circulation.commands``; the answer says what the desk must do next."""

from datetime import datetime

from booknexus.accounts.models import User
from booknexus.accounts.queries import find_by_card
from booknexus.circulation import desk
from booknexus.circulation.models import Item
from booknexus.circulation.privacy import policy
from booknexus.circulation.rules import rules
from booknexus.circulation.serialize import serialize_checkout, serialize_item
from booknexus.circulation.views.places import branch_id_of
from booknexus.db.schema import timestamp
from booknexus.refusals import NotFound
from booknexus.web.api import api_view
from booknexus.web.errors import ApiError


def reader_id(request, body: dict) -> int:
    """The reader a check-out names: by the card the desk scanned, or by id; exactly one."""
    card, user_id = body.get("cardNumber"), body.get("userId")
    if (card is None) == (user_id is None):
        raise ApiError(
            400,
            "invalid_value",
            "Name the reader by cardNumber or by userId: one of them.",
            {"field": "cardNumber"},
        )
    if user_id is not None:
        return user_id
    user = find_by_card(request.dbsession, card)
    if user is None:
        raise NotFound("card", card, key="cardNumber")
    return user.id


def loan_with_item(checkout, item) -> dict:
    return {**serialize_checkout(checkout), "item": serialize_item(item)}


@api_view(route_name="desk_check_out", request_method="POST")
def check_out(request):
    body = request.openapi_validated.body
    checkout = desk.check_out_item(
        request.dbsession,
        request.authenticated_userid,
        reader_id(request, body),
        body["itemBarcode"],
        branch_id_of(request, body.get("branchId")),
        rules=rules(request),
        days=body.get("days"),
        override=body.get("override", False),
    )
    request.response.status_int = 201
    return loan_with_item(checkout, request.dbsession.get(Item, checkout.item_id))


def serialize_route(request, route) -> dict:
    """The hold on the slip (its reader's name and card number), the destination of a transit."""
    hold = route.hold
    slip = None
    if hold is not None:
        reader = request.dbsession.get(User, hold.user_id)
        slip = {
            "id": hold.id,
            "status": hold.status,
            "userId": hold.user_id,
            "name": reader.name if reader else None,
            "cardNumber": reader.card_number if reader else None,
            "pickupBranchId": hold.pickup_branch_id,
            "expiresAt": timestamp(hold.expires_at),
        }
    return {"action": route.action, "hold": slip, "destinationBranchId": route.destination}


def serialize_check_in(request, done) -> dict:
    return {
        **serialize_route(request, done.route),
        "item": serialize_item(done.item) if done.item is not None else None,
        "checkout": serialize_checkout(done.checkout) if done.checkout is not None else None,
        "found": done.found,
    }


def returned_at(value: str | None):
    """A book drop's time, as the document's pattern admits it (RFC 3339, with an offset)."""
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:  # a pattern-shaped impossible date: 2026-02-30
        raise ApiError(
            400, "invalid_value", f"returnedAt {value!r} is not a time.", {"field": "returnedAt"}
        ) from None


@api_view(route_name="desk_check_in", request_method="POST")
def check_in(request):
    body = request.openapi_validated.body
    done = desk.check_in(
        request.dbsession,
        request.authenticated_userid,
        body["itemBarcode"],
        branch_id_of(request, body.get("branchId")),
        rules=rules(request),
        policy=policy(request),
        returned_at=returned_at(body.get("returnedAt")),
    )
    return serialize_check_in(request, done)


@api_view(route_name="desk_renew", request_method="POST")
def renew(request):
    body = request.openapi_validated.body
    checkout = desk.renew_item(
        request.dbsession, request.authenticated_userid, body["itemBarcode"], rules=rules(request)
    )
    return serialize_checkout(checkout)
