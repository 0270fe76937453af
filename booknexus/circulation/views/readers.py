"""A reader's own data: their reading history, its export, and its erasure on request."""

import base64
import binascii
from datetime import datetime

from pyramid.httpexceptions import HTTPNoContent
from sqlalchemy import case, literal, select, union_all

from booknexus.accounts.models import Token
from booknexus.accounts.queries import get_user
from booknexus.accounts.serialize import serialize_user
from booknexus.catalog.models import Book
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS
from booknexus.circulation.models import Checkout, Hold
from booknexus.circulation.privacy import erase_reader
from booknexus.circulation.serialize import SERIALIZERS, serialize_checkout
from booknexus.db.schema import isoformat
from booknexus.web.api import api_view, path_id, query_params
from booknexus.web.errors import ApiError
from booknexus.web.reads import snapshot


def _cursor(at: datetime, kind: str, record_id: int) -> str:
    return base64.urlsafe_b64encode(f"{isoformat(at)}|{kind}|{record_id}".encode()).decode().rstrip("=")


def _position(after: str) -> tuple[datetime, str, int]:
    try:
        at, kind, record_id = base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)).decode().split("|")
        moment = datetime.fromisoformat(at)
        if moment.utcoffset() is None:  # _cursor always writes the offset: this cursor was made up
            raise ValueError("no offset")
        return moment, kind, int(record_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ApiError(
            400, "invalid_value", "after must be the next of the previous page.", {"field": "after"}
        ) from None


@api_view(route_name="user_history", request_method="GET", permission="view")
def reading_history(request):
    with snapshot(request) as session:  # the reader, then their records: one state of both
        return history_page(request, session)


def history_page(request, session):
    """Loans and holds, newest first (by when they began), keyset-paged on (time, kind, id)."""
    params = query_params(request)
    user = get_user(session, path_id(request))
    loans = select(
        literal("loan").label("kind"),
        Checkout.id,
        Checkout.book_id,
        Checkout.checked_out_at.label("at"),
        Checkout.returned_at,
        case((Checkout.returned_at.is_(None), "open"), else_="returned").label("status"),
    ).where(Checkout.user_id == user.id)
    holds = select(
        literal("hold").label("kind"),
        Hold.id,
        Hold.book_id,
        Hold.placed_at.label("at"),
        Hold.ended_at,
        Hold.status,
    ).where(Hold.user_id == user.id)
    both = union_all(loans, holds).subquery()
    order = (both.c.at.desc(), both.c.kind.desc(), both.c.id.desc())
    statement = select(both, Book.title).outerjoin(Book, Book.id == both.c.book_id)
    if params.get("after"):
        at, kind, record_id = _position(params["after"])
        statement = statement.where(
            (both.c.at < at)
            | ((both.c.at == at) & ((both.c.kind < kind) | ((both.c.kind == kind) & (both.c.id < record_id))))
        )
    limit = params["limit"]
    rows = session.execute(statement.order_by(*order).limit(limit + 1)).all()
    items = [
        {
            "kind": row.kind,
            "id": row.id,
            "bookId": row.book_id,
            "title": row.title,
            "at": row.at,
            "returnedAt": row.returned_at if row.kind == "loan" else None,
            "status": row.status,
        }
        for row in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return {"items": items, "next": _cursor(last.at, last.kind, last.id) if last else None}


@api_view(route_name="user_export", request_method="GET", permission="view")
def export(request):
    with snapshot(request) as session:  # six statements, one state of the reader's records
        return everything_about(request, session)


def everything_about(request, session):
    """Everything held about a reader, for a subject access request."""
    user = get_user(session, path_id(request))
    checkouts = session.scalars(select(Checkout).where(Checkout.user_id == user.id).order_by(Checkout.id))
    holds = session.scalars(select(Hold).where(Hold.user_id == user.id).order_by(Hold.id))
    logs = {
        name: [
            SERIALIZERS[stream](event)
            for event in session.scalars(
                select(stream.event).where(stream.events.c.userId == user.id).order_by(stream.events.c.id)
            )
        ]
        for name, stream in (("checkoutEvents", CHECKOUTS), ("holdEvents", HOLDS))
    }
    return {
        "user": serialize_user(user),
        "checkouts": [serialize_checkout(checkout) for checkout in checkouts],
        "holds": [
            {
                "id": hold.id,
                "bookId": hold.book_id,
                "status": hold.status,
                "placedAt": hold.placed_at,
                "endedAt": hold.ended_at,
            }
            for hold in holds
        ],
        **logs,
        # when they logged in, and until when each login held; never a token or its hash
        "tokens": [
            {
                "id": token.id,
                "createdAt": token.created_at,
                "expiresAt": token.expires_at,
                "revokedAt": token.revoked_at,
            }
            for token in session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.id))
        ],
    }


@api_view(route_name="user_erasure", request_method="POST")
def erase(request):
    """Erasure on request (librarians): ``privacy.erase_reader``."""
    erase_reader(request.dbsession, request.authenticated_userid, path_id(request), registry=request.registry)
    return HTTPNoContent()
