from datetime import timedelta
from functools import cache

from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import bindparam, func, select

from booknexus.accounts.models import User
from booknexus.accounts.roles import MANAGE
from booknexus.catalog.queries import get_book
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.streams import CHECKOUTS
from booknexus.circulation.locks import lock_borrower
from booknexus.circulation.models import FULFILLED, READY, WAITING, Checkout, Hold
from booknexus.circulation.privacy import anonymise_on_closing
from booknexus.circulation.queries import lock_book_of
from booknexus.circulation.queue import settle_for
from booknexus.circulation.rules import ensure_may_borrow, rules
from booknexus.circulation.serialize import serialize_checkout
from booknexus.db.schema import attribute_columns, isoformat, utcnow
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params
from booknexus.web.errors import ApiError, not_found


def lock_open_checkout(request):
    """The checkout named in the path and its book, both locked for the change about to be
    made: the book first, as every change to a book's loans and holds locks it."""
    session = request.dbsession
    checkout_id = path_id(request)
    book = lock_book_of(session, Checkout, checkout_id)
    if book is None:
        raise not_found("checkout", checkout_id)
    checkout = session.get(Checkout, checkout_id, with_for_update=True, populate_existing=True)
    if checkout is None:  # deleted while we waited for the book
        raise not_found("checkout", checkout_id)
    if checkout.returned_at is not None:
        raise ApiError(
            409,
            "already_returned",
            f"Checkout {checkout.id} was returned at {isoformat(checkout.returned_at)}.",
            {"returnedAt": isoformat(checkout.returned_at)},
        )
    return book, checkout


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
    session = request.dbsession
    override = body.get("override", False)
    if override and not request.has_permission(MANAGE):
        raise ApiError(403, "forbidden", "Only a librarian may lend past the loan rules.")
    # booknexus.circulation.locks: the borrower first (their loan count), then the book (its copies):
    # neither a reader's limit nor a book's last copy can be taken twice by racing requests.
    user = lock_borrower(session, body["userId"])
    book = get_book(session, body["bookId"], for_update=True)
    actor = request.authenticated_userid
    state = settle_for(request, book)
    hold_id = ensure_may_borrow(session, user.id, book.id, rules(request), override)
    own_hold = session.get(Hold, hold_id) if hold_id is not None else None
    # copies set aside for other readers' ready holds are theirs, override or not
    held_for_others = state.set_aside - (1 if own_hold is not None and own_hold.status == READY else 0)
    on_loan = state.on_loan
    if on_loan + held_for_others >= book.copies:
        raise ApiError(
            409,
            "no_copy_available",
            f"All {book.copies} copies of book {book.id} are on loan"
            + (f" or set aside for {held_for_others} holds." if held_for_others else "."),
            {"bookId": book.id, "copies": book.copies, "onLoan": on_loan, "setAside": held_for_others},
        )
    now = utcnow()
    days = body.get("days")
    period = rules(request).loan_period if not days else timedelta(days=days)
    checkout = Checkout(user_id=user.id, book_id=book.id, checked_out_at=now, due_at=now + period)
    session.add(checkout)
    session.flush()
    eventlog.append(
        session, checkout, eventlog.CHECKED_OUT, actor=actor, **({"override": True} if override else {})
    )
    if own_hold is not None:
        own_hold.status = FULFILLED
        own_hold.ended_at = now
        session.flush()
        eventlog.append(session, own_hold, eventlog.FULFILLED, actor=actor, checkoutId=checkout.id)
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
    session = request.dbsession
    checkout_id = path_id(request)
    book = lock_book_of(session, Checkout, checkout_id)
    if book is None:
        raise not_found("checkout", checkout_id)
    deleted = eventlog.delete_and_append(
        session,
        Checkout.id == checkout_id,
        eventlog.DELETED,
        actor=request.authenticated_userid,
        reason="checkout_deleted",
    )
    if not deleted:
        raise not_found("checkout", checkout_id)
    settle_for(request, book)  # an open loan's copy is free
    return HTTPNoContent()


@api_view(route_name="checkout_return", request_method="POST")
def return_checkout(request):
    book, checkout = lock_open_checkout(request)
    checkout.returned_at = utcnow()
    request.dbsession.flush()
    eventlog.append(request.dbsession, checkout, eventlog.RETURNED, actor=request.authenticated_userid)
    # the copy goes to the first waiting hold, in this same transaction
    settle_for(request, book)
    anonymise_on_closing(request, CHECKOUTS, checkout.id, request.dbsession.get(User, checkout.user_id))
    return serialize_checkout(checkout)


@api_view(route_name="checkout_renew", request_method="POST", permission="renew")
def renew_checkout(request):
    session = request.dbsession
    book, checkout = lock_open_checkout(request)
    limits = rules(request)
    settle_for(request, book)
    waiting = session.scalar(select(func.count()).where(Hold.book_id == book.id, Hold.status == WAITING))
    if waiting:
        raise ApiError(
            409,
            "on_hold",
            f"{waiting} readers are waiting for book {book.id}; it cannot be renewed.",
            {"bookId": book.id, "waiting": waiting},
        )
    if checkout.renewals >= limits.max_renewals:
        raise ApiError(
            409,
            "renewal_limit",
            f"Checkout {checkout.id} has been renewed {limits.max_renewals} times already.",
            {"renewals": checkout.renewals, "maxRenewals": limits.max_renewals},
        )
    checkout.due_at = max(utcnow(), checkout.due_at) + limits.loan_period
    checkout.renewals += 1
    session.flush()
    eventlog.append(session, checkout, eventlog.RENEWED, actor=request.authenticated_userid)
    return serialize_checkout(checkout)
