"""A branch's working lists, for librarians: the items to pull for holds, the hold shelf and
the items travelling to and from it. Each is one statement whose cost follows the list, not
the library: the pull list starts from the waiting holds (a partial index), the hold shelf
from the ready holds by expiry, the transits from the items in transit."""

from sqlalchemy import and_, bindparam, func, or_, select

from booknexus.accounts.models import User
from booknexus.branches.queries import get_branch
from booknexus.catalog.models import Book
from booknexus.circulation.models import (
    AVAILABLE,
    IN_TRANSIT,
    IN_TRANSIT_TO_PICKUP,
    READY,
    WAITING,
    Hold,
    Item,
)
from booknexus.db.schema import timestamp, utcnow
from booknexus.web.api import api_view, path_id, query_params

BRANCH = bindparam("branch")

waiting_count = (
    select(func.count())
    .where(Hold.book_id == Book.id, Hold.status == WAITING)
    .correlate(Book)
    .scalar_subquery()
)
PULL_LIST = (
    select(
        Book.id,
        Book.title,
        Book.author,
        waiting_count.label("waiting"),
        Item.id,
        Item.barcode,
        Item.call_number,
    )
    .join(Item, and_(Item.book_id == Book.id, Item.status == AVAILABLE, Item.current_branch_id == BRANCH))
    .where(Book.id.in_(select(Hold.book_id).where(Hold.status == WAITING)))
    .order_by(Book.id, Item.id)
)

HOLD_SHELF = (
    select(Hold, Item.barcode, User.name, User.card_number, Book.title)
    .join(Item, Item.id == Hold.item_id)
    .join(User, User.id == Hold.user_id)
    .join(Book, Book.id == Hold.book_id)
    .where(Hold.status == READY, Hold.pickup_branch_id == BRANCH)
    .order_by(Hold.expires_at, Hold.id)  # the lapsed ones first: clear them off the shelf
    .limit(bindparam("limit"))
)

bound_hold = (
    select(Hold.id)
    .where(Hold.item_id == Item.id, Hold.status == IN_TRANSIT_TO_PICKUP)
    .correlate(Item)
    .limit(1)
    .scalar_subquery()
)
TRANSITS = (
    select(Item, Book.title, bound_hold.label("holdId"))
    .join(Book, Book.id == Item.book_id)
    .where(
        Item.status == IN_TRANSIT,
        or_(Item.transit_to_branch_id == BRANCH, Item.current_branch_id == BRANCH),
    )
    .order_by(Item.transit_sent_at, Item.id)
    .limit(bindparam("limit"))
)


@api_view(route_name="branch_pull_list", request_method="GET")
def pull_list(request):
    """Books readers wait for with a copy on this branch's shelves: fetch it, scan it."""
    branch = get_branch(request.dbsession, path_id(request))
    limit = query_params(request)["limit"]
    books: dict[int, dict] = {}
    rows = request.dbsession.execute(
        PULL_LIST.limit(bindparam("limit")), {"branch": branch.id, "limit": limit}
    )
    for book_id, title, author, waiting, item_id, barcode, call_number in rows:
        entry = books.setdefault(
            book_id, {"bookId": book_id, "title": title, "author": author, "waiting": waiting, "items": []}
        )
        entry["items"].append({"id": item_id, "barcode": barcode, "callNumber": call_number})
    return {"branchId": branch.id, "items": list(books.values())}


@api_view(route_name="branch_hold_shelf", request_method="GET")
def hold_shelf(request):
    """The items set aside here, the lapsed ones first (their holds expire at the next change
    to their book, or by booknexus-expire-holds)."""
    branch = get_branch(request.dbsession, path_id(request))
    limit = query_params(request)["limit"]
    now = utcnow()
    rows = request.dbsession.execute(HOLD_SHELF, {"branch": branch.id, "limit": limit})
    return {
        "branchId": branch.id,
        "items": [
            {
                "holdId": hold.id,
                "bookId": hold.book_id,
                "title": title,
                "itemId": hold.item_id,
                "barcode": barcode,
                "userId": hold.user_id,
                "name": name,
                "cardNumber": card,
                "readyAt": timestamp(hold.ready_at),
                "expiresAt": timestamp(hold.expires_at),
                "expired": hold.expires_at <= now,
            }
            for hold, barcode, name, card, title in rows
        ],
    }


@api_view(route_name="branch_transits", request_method="GET")
def transits(request):
    """Items on their way here (incoming) and from here (outgoing), the longest-travelling first."""
    branch = get_branch(request.dbsession, path_id(request))
    limit = query_params(request)["limit"]
    incoming, outgoing = [], []
    for item, title, hold_id in request.dbsession.execute(TRANSITS, {"branch": branch.id, "limit": limit}):
        entry = {
            "itemId": item.id,
            "barcode": item.barcode,
            "bookId": item.book_id,
            "title": title,
            "fromBranchId": item.current_branch_id,
            "toBranchId": item.transit_to_branch_id,
            "sentAt": timestamp(item.transit_sent_at),
            "holdId": hold_id,
        }
        (incoming if item.transit_to_branch_id == branch.id else outgoing).append(entry)
    return {"branchId": branch.id, "incoming": incoming, "outgoing": outgoing}
