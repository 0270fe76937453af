from functools import cache

from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import bindparam, select

from booknexus.accounts.models import User
from booknexus.catalog.queries import get_book
from booknexus.circulation.eventlog import append as eventlog
from booknexus.circulation.eventlog.streams import HOLDS
from booknexus.circulation.locks import lock_borrower
from booknexus.circulation.models import CANCELLED, OPEN, WAITING, Hold
from booknexus.circulation.privacy import anonymise_on_closing
from booknexus.circulation.queries import lock_book_of
from booknexus.circulation.queue import queue_position, settle_for
from booknexus.circulation.rules import ensure_may_hold, rules
from booknexus.circulation.serialize import serialize_hold
from booknexus.db.schema import attribute_columns, utcnow
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params
from booknexus.web.errors import ApiError, not_found


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
    session = request.dbsession
    # booknexus.circulation.locks: the borrower first (their hold count), then the book, whose row lock
    # orders the queue: concurrent holds take positions one after another.
    user = lock_borrower(session, body["userId"])
    book = get_book(session, body["bookId"], for_update=True)
    actor = request.authenticated_userid
    settle_for(request, book)
    ensure_may_hold(session, user.id, book.id, rules(request))
    hold = Hold(user_id=user.id, book_id=book.id, status=WAITING, placed_at=utcnow())
    session.add(hold)
    session.flush()
    eventlog.append(session, hold, eventlog.PLACED, actor=actor)
    # a free copy goes to the first in the queue: this hold, if nobody waits ahead of it
    settle_for(request, book)
    request.response.status_int = 201
    return with_position(request, hold.id)


@api_view(route_name="hold", request_method="GET", permission="view")
def show_hold(request):
    return with_position(request, path_id(request))


@api_view(route_name="hold", request_method="DELETE", permission="cancel")
def cancel_hold(request):
    session = request.dbsession
    hold_id = path_id(request)
    book = lock_book_of(session, Hold, hold_id)
    if book is None:
        raise not_found("hold", hold_id)
    actor = request.authenticated_userid
    settle_for(request, book)  # a lapsed hold is expired, not cancelled
    hold = session.get(Hold, hold_id, with_for_update=True, populate_existing=True)
    if hold is None:  # deleted with its user while we waited for the lock
        raise not_found("hold", hold_id)
    if hold.status not in OPEN:
        raise ApiError(
            409, "hold_ended", f"Hold {hold.id} is {hold.status} already.", {"status": hold.status}
        )
    hold.status = CANCELLED
    hold.ended_at = utcnow()
    session.flush()
    eventlog.append(session, hold, eventlog.CANCELLED, actor=actor)
    settle_for(request, book)  # a ready hold's copy goes to the next in line
    anonymise_on_closing(request, HOLDS, hold.id, session.get(User, hold.user_id))
    return HTTPNoContent()
