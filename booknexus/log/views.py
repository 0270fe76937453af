from sqlalchemy import exists, select

from booknexus.api import api_view, keyset_page, path_id, query_params
from booknexus.checkouts.models import Checkout
from booknexus.errors import not_found
from booknexus.log.models import CheckoutEvent

FILTERS = {
    "checkoutId": CheckoutEvent.checkout_id,
    "userId": CheckoutEvent.user_id,
    "bookId": CheckoutEvent.book_id,
    "type": CheckoutEvent.type,
}


def serialize_event(event: CheckoutEvent) -> dict:
    return {
        "position": event.id,
        "checkoutId": event.checkout_id,
        "userId": event.user_id,
        "bookId": event.book_id,
        "type": event.type,
        "occurredAt": event.occurred_at,
        "data": event.data,
    }


def events_page(request, statement):
    params = query_params(request)
    return keyset_page(
        request.dbsession,
        statement,
        CheckoutEvent.id,
        params["limit"],
        params.get("after"),
        serialize_event,
    )


@api_view(route_name="checkout_events", request_method="GET", permission="view")
def list_events(request):
    params = query_params(request)
    statement = select(CheckoutEvent)
    for name, column in FILTERS.items():
        if params.get(name) is not None:
            statement = statement.where(column == params[name])
    return events_page(request, statement)


@api_view(route_name="checkout_history", request_method="GET", permission="view")
def checkout_history(request):
    checkout_id = path_id(request)
    known = request.dbsession.scalar(
        select(
            exists().where(CheckoutEvent.checkout_id == checkout_id)
            | exists().where(Checkout.id == checkout_id)
        )
    )
    if not known:
        raise not_found("checkout", checkout_id)
    return events_page(request, select(CheckoutEvent).where(CheckoutEvent.checkout_id == checkout_id))
