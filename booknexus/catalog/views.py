from pyramid.httpexceptions import HTTPNoContent
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import select

from booknexus.accounts.roles import MAX_ID
from booknexus.catalog import commands
from booknexus.catalog.interfaces import stock
from booknexus.catalog.isbn import InvalidIsbn, equivalents, normalise
from booknexus.catalog.listing import BOOKS_WITH_STOCK, book_with_stock, books_with_stock, serialize_book
from booknexus.catalog.models import Book
from booknexus.catalog.search import matching_rows, search_page
from booknexus.web.api import api_view, keyset_rows, keyset_statement, path_id, query_params
from booknexus.web.errors import ApiError, not_found
from booknexus.web.reads import read_connection, snapshot


def valid_isbn(request, entered: str | None, book_id: int | None = None) -> str | None:
    """The ISBN in its normalised form, verified and not in the catalogue yet (in either form)."""
    if entered is None:
        return None
    try:
        isbn = normalise(entered)
    except InvalidIsbn as exc:
        raise ApiError(400, "invalid_isbn", str(exc), {"field": "isbn", "value": entered}) from None
    owner = request.dbsession.scalar(select(Book.id).where(Book.isbn.in_(equivalents(isbn))))
    if owner is not None and owner != book_id:
        raise ApiError(409, "isbn_taken", f"ISBN {isbn} is already in the catalogue.", {"isbn": isbn})
    return isbn


def book_id_after(after: str | None) -> int | None:
    """Pages by id go on after a book id (the ``next`` they answered)."""
    if after is None:
        return None
    if not after.isdigit() or int(after) > MAX_ID:
        raise ApiError(
            400, "invalid_value", "after must be the next of the previous page.", {"field": "after"}
        )
    return int(after)


@api_view(route_name="books", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def list_books(request):
    """One statement for a page in id order; a search's several statements in one snapshot."""
    params = query_params(request)
    q = (params.get("q") or "").strip()  # empty: no filter
    ranked = bool(q) and params.get("sort", "relevance") == "relevance"
    if params.get("after") is not None and params.get("cursor") is not None:
        raise ApiError(400, "invalid_value", "cursor is an alias of after: give one.", {"field": "cursor"})
    after = params.get("after", params.get("cursor"))
    limit = params["limit"]
    statement = books_with_stock(request.registry)
    if ranked:
        with snapshot(request) as session:
            rows, next_cursor = search_page(session, statement, q, limit, after)
        page = {"items": rows, "next": next_cursor}
    elif q:
        with snapshot(request) as session:
            rows = matching_rows(session, statement, q, limit + 1, book_id_after(after))
        page = {"items": rows[:limit], "next": rows[limit - 1][0] if len(rows) > limit else None}
    else:
        after = book_id_after(after)
        page_statement = books_page(request.registry, after is not None)
        rows, next_id = keyset_rows(request.dbsession.connection(), page_statement, limit, after)
        page = {"items": rows, "next": next_id}
    page["items"] = [serialize_book(row, row[-1]) for row in page["items"]]
    return page


def availability_of(request, book_id: int) -> list[dict] | None:
    """A book's items by branch, as the write side sees them after its change."""
    column = stock(request.registry).availability_column(Book.id)
    return request.dbsession.scalar(select(column).where(Book.id == book_id))


@api_view(route_name="books", request_method="POST")
def create_book(request):
    body = request.openapi_validated.body
    fields = {"title": body["title"], "author": body["author"], "copies": body["copies"]}
    fields["isbn"] = valid_isbn(request, body.get("isbn"))
    book = commands.create_book(
        request.dbsession, request.authenticated_userid, fields, registry=request.registry
    )
    request.response.status_int = 201
    return serialize_book(book, availability_of(request, book.id))


def books_page(registry, after: bool):
    key = (BOOKS_WITH_STOCK, "page", after)
    if key not in registry:
        registry[key] = keyset_statement(books_with_stock(registry), Book.id, after)
    return registry[key]


@api_view(route_name="book", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def show_book(request):
    # the hottest read of the catalogue: one Core statement on the read side's connection
    book_id = path_id(request)
    with read_connection(request) as connection:
        row = connection.execute(book_with_stock(request.registry), {"book_id": book_id}).first()
    if row is None:
        raise not_found("book", book_id)
    return serialize_book(row, row[-1])


@api_view(route_name="book", request_method="PATCH")
def update_book(request):
    book_id = path_id(request)
    changes = dict(request.openapi_validated.body)
    if "isbn" in changes:
        changes["isbn"] = valid_isbn(request, changes["isbn"], book_id)
    book = commands.update_book(
        request.dbsession, request.authenticated_userid, book_id, changes, registry=request.registry
    )
    return serialize_book(book, availability_of(request, book.id))


@api_view(route_name="book", request_method="DELETE")
def delete_book(request):
    commands.delete_book(
        request.dbsession, request.authenticated_userid, path_id(request), registry=request.registry
    )
    return HTTPNoContent()
