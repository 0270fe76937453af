"""Items as the JSON API shows and changes them. Anyone reads them (no item names a reader);
librarians add them and change them by hand (missing, withdrawn, found, moved, relabelled)."""

from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import bindparam, select

from booknexus.branches.queries import get_branch
from booknexus.catalog.queries import get_book
from booknexus.circulation import inventory, locks
from booknexus.circulation.models import ITEM_TYPE, Item
from booknexus.circulation.serialize import serialize_item
from booknexus.circulation.views.places import branch_id_of
from booknexus.db.schema import attribute_columns
from booknexus.refusals import Invalid
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params

ITEMS_OF_BOOK = keyset_statement(
    select(*attribute_columns(Item)).where(Item.book_id == bindparam("bookId")), Item.id, False
)
ITEMS_OF_BOOK_AFTER = keyset_statement(
    select(*attribute_columns(Item)).where(Item.book_id == bindparam("bookId")), Item.id, True
)


def valid_item_type(value: str) -> str:
    item_type = value.strip().lower()
    if not ITEM_TYPE.fullmatch(item_type):
        raise Invalid(
            "invalid_value",
            f"{value!r} is not an item type: give 1-16 letters, digits, _ or -.",
            {"field": "itemType", "value": value},
        )
    return item_type


@api_view(route_name="items", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def find_by_barcode(request):
    """``?barcode=``: the item a scan names, in any case (a page of one, or none)."""
    barcode = inventory.valid_barcode(query_params(request)["barcode"])
    item = request.dbsession.scalars(select(Item).where(Item.barcode == barcode)).first()
    return {"items": [serialize_item(item)] if item else [], "next": None}


@api_view(route_name="items", request_method="POST")
def create_item(request):
    body = request.openapi_validated.body
    barcode = inventory.valid_barcode(body["barcode"])
    home = branch_id_of(request, body.get("homeBranchId"))
    session = request.dbsession
    book = locks.lock_book(session, body["bookId"])
    item = inventory.add_item(
        session,
        book,
        home,
        barcode,
        item_type=valid_item_type(body.get("itemType", "book")),
        call_number=body.get("callNumber"),
    )
    book.copies += 1
    session.flush()
    request.response.status_int = 201
    return serialize_item(item)


@api_view(route_name="item", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def show_item(request):
    return serialize_item(inventory.get_item(request.dbsession, path_id(request)))


@api_view(route_name="item", request_method="PATCH")
def update_item(request):
    body = request.openapi_validated.body
    session = request.dbsession
    book, item = inventory.lock_item_and_book(session, path_id(request))
    label = {}
    if "barcode" in body:
        label["barcode"] = inventory.valid_barcode(body["barcode"])
        inventory.ensure_barcode_free(session, label["barcode"], item.id)
    if "itemType" in body:
        label["item_type"] = valid_item_type(body["itemType"])
    if "callNumber" in body:
        label["call_number"] = body["callNumber"]
    inventory.relabel(session, item, **label)
    branches = {
        name: get_branch(session, body[name]).id
        for name in ("homeBranchId", "currentBranchId")
        if name in body
    }
    inventory.move(session, item, branches.get("homeBranchId"), branches.get("currentBranchId"))
    if "status" in body:
        inventory.set_status_by_hand(session, book, item, body["status"])
    session.flush()
    return serialize_item(item)


@api_view(route_name="book_items", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def items_of_book(request):
    params = query_params(request)
    book_id = path_id(request)
    get_book(request.dbsession, book_id)  # 404 for a book that is not there
    after = params.get("after")
    statement = ITEMS_OF_BOOK_AFTER if after is not None else ITEMS_OF_BOOK
    rows, next_id = keyset_rows(
        request.dbsession.connection(), statement, params["limit"], after, {"bookId": book_id}
    )
    return {"items": [serialize_item(row) for row in rows], "next": next_id}
