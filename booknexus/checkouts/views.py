from datetime import timedelta

from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import select

from booknexus.api import api_view, keyset_page, path_id, query_params
from booknexus.books.views import get_book, open_loans
from booknexus.checkouts.models import Checkout
from booknexus.errors import ApiError, not_found
from booknexus.log import append as log
from booknexus.meta import isoformat, utcnow
from booknexus.users.views import get_user


def loan_period(request) -> timedelta:
    return timedelta(days=int(request.registry.settings.get("booknexus.loan_days", 14)))


def max_renewals(request) -> int:
    return int(request.registry.settings.get("booknexus.max_renewals", 2))


def serialize_checkout(checkout: Checkout) -> dict:
    return {
        "id": checkout.id,
        "userId": checkout.user_id,
        "bookId": checkout.book_id,
        "checkedOutAt": checkout.checked_out_at,
        "dueAt": checkout.due_at,
        "returnedAt": checkout.returned_at,
        "renewals": checkout.renewals,
        "createdAt": checkout.created_at,
        "updatedAt": checkout.updated_at,
    }


def get_open_checkout(request) -> Checkout:
    """The checkout named in the path, locked for the change about to be made to it."""
    checkout_id = path_id(request)
    checkout = request.dbsession.get(Checkout, checkout_id, with_for_update=True)
    if checkout is None:
        raise not_found("checkout", checkout_id)
    if checkout.returned_at is not None:
        raise ApiError(
            409,
            "already_returned",
            f"Checkout {checkout.id} was returned at {isoformat(checkout.returned_at)}.",
            {"returnedAt": isoformat(checkout.returned_at)},
        )
    return checkout


@api_view(route_name="checkouts", request_method="GET", permission="view")
def list_checkouts(request):
    params = query_params(request)
    statement = select(Checkout)
    if params.get("userId") is not None:
        statement = statement.where(Checkout.user_id == params["userId"])
    if params.get("bookId") is not None:
        statement = statement.where(Checkout.book_id == params["bookId"])
    if params.get("open") is not None:
        statement = statement.where(
            Checkout.returned_at.is_(None) if params["open"] else Checkout.returned_at.is_not(None)
        )
    if params.get("overdue"):
        statement = statement.where(Checkout.returned_at.is_(None), Checkout.due_at < utcnow())
    return keyset_page(
        request.dbsession,
        statement,
        Checkout.id,
        params["limit"],
        params.get("after"),
        serialize_checkout,
    )


@api_view(route_name="checkouts", request_method="POST", permission="checkout")
def create_checkout(request):
    body = request.openapi_validated.body
    # The book row lock serialises checkouts of one book: two requests for its last copy
    # cannot both see it available.
    book = get_book(request, body["bookId"], for_update=True)
    user = get_user(request, body["userId"])
    on_loan = open_loans(request.dbsession, book.id)
    if on_loan >= book.copies:
        raise ApiError(
            409,
            "no_copy_available",
            f"All {book.copies} copies of book {book.id} are on loan.",
            {"bookId": book.id, "copies": book.copies, "onLoan": on_loan},
        )
    now = utcnow()
    days = body.get("days")
    period = timedelta(days=days) if days else loan_period(request)
    checkout = Checkout(user_id=user.id, book_id=book.id, checked_out_at=now, due_at=now + period)
    request.dbsession.add(checkout)
    request.dbsession.flush()
    log.append(request.dbsession, checkout, log.CHECKED_OUT, actor=request.authenticated_userid)
    request.response.status_int = 201
    return serialize_checkout(checkout)


@api_view(route_name="checkout", request_method="GET", permission="view")
def show_checkout(request):
    checkout_id = path_id(request)
    checkout = request.dbsession.get(Checkout, checkout_id)
    if checkout is None:
        raise not_found("checkout", checkout_id)
    return serialize_checkout(checkout)


@api_view(route_name="checkout", request_method="DELETE")
def delete_checkout(request):
    checkout_id = path_id(request)
    deleted = log.delete_and_append(
        request.dbsession,
        Checkout.id == checkout_id,
        log.DELETED,
        reason="checkout_deleted",
        actor=request.authenticated_userid,
    )
    if not deleted:
        raise not_found("checkout", checkout_id)
    return HTTPNoContent()


@api_view(route_name="checkout_return", request_method="POST")
def return_checkout(request):
    checkout = get_open_checkout(request)
    checkout.returned_at = utcnow()
    request.dbsession.flush()
    log.append(request.dbsession, checkout, log.RETURNED, actor=request.authenticated_userid)
    return serialize_checkout(checkout)


@api_view(route_name="checkout_renew", request_method="POST", permission="renew")
def renew_checkout(request):
    checkout = get_open_checkout(request)
    limit = max_renewals(request)
    if checkout.renewals >= limit:
        raise ApiError(
            409,
            "renewal_limit",
            f"Checkout {checkout.id} has been renewed {limit} times already.",
            {"renewals": checkout.renewals, "maxRenewals": limit},
        )
    checkout.due_at = max(utcnow(), checkout.due_at) + loan_period(request)
    checkout.renewals += 1
    request.dbsession.flush()
    log.append(request.dbsession, checkout, log.RENEWED, actor=request.authenticated_userid)
    return serialize_checkout(checkout)
