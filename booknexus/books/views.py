from pyramid.httpexceptions import HTTPNoContent
from pyramid.security import NO_PERMISSION_REQUIRED
from sqlalchemy import bindparam, select

from booknexus.api import api_view, keyset_page, path_id, query_params
from booknexus.books.events import BookDeleted
from booknexus.books.isbn import InvalidIsbn, equivalents, normalise
from booknexus.books.models import Book
from booknexus.books.queries import (
    get_book,
    loans_by_book,
    open_loans_query,
)
from booknexus.books.search import matching_rows, search_page
from booknexus.errors import ApiError, not_found
from booknexus.holds.queue import (
    set_aside_by_book,
    set_aside_query,
    settle_for,
)
from booknexus.security import MAX_ID


def serialize_book(book: Book, on_loan: int, held: int) -> dict:
    return {
        "id": book.id,
        "title": book.title,
        "author": book.author,
        "isbn": book.isbn,
        "copies": book.copies,
        # a copy set aside for a ready hold is not available to anyone else
        "available": max(book.copies - on_loan - held, 0),
        "createdAt": book.created_at,
        "updatedAt": book.updated_at,
    }


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
    params = query_params(request)
    q = (params.get("q") or "").strip()  # empty: no filter
    ranked = bool(q) and params.get("sort", "relevance") == "relevance"
    if params.get("after") is not None and params.get("cursor") is not None:
        raise ApiError(400, "invalid_value", "cursor is an alias of after: give one.", {"field": "cursor"})
    after = params.get("after", params.get("cursor"))
    limit = params["limit"]
    if ranked:
        books, next_cursor = search_page(request.dbsession, select(Book), q, limit, after)
        page = {"items": [book for (book,) in books], "next": next_cursor}
    else:
        after = book_id_after(after)
        if q:
            books = matching_rows(request.dbsession, select(Book), q, limit + 1, after)
            page = {
                "items": [book for (book,) in books[:limit]],
                "next": books[limit - 1][0].id if len(books) > limit else None,
            }
        else:
            page = keyset_page(request.dbsession, select(Book), Book.id, limit, after, lambda b: b)
    ids = [book.id for book in page["items"]]
    on_loan = loans_by_book(request.dbsession, ids)
    held = set_aside_by_book(request.dbsession, ids)
    page["items"] = [
        serialize_book(book, on_loan.get(book.id, 0), held.get(book.id, 0)) for book in page["items"]
    ]
    return page


@api_view(route_name="books", request_method="POST")
def create_book(request):
    body = request.openapi_validated.body
    isbn = valid_isbn(request, body.get("isbn"))
    book = Book(title=body["title"], author=body["author"], isbn=isbn, copies=body["copies"])
    request.dbsession.add(book)
    request.dbsession.flush()
    request.response.status_int = 201
    return serialize_book(book, 0, 0)


# built once: constructing the statement cost more CPU than running it
BOOK_WITH_CIRCULATION = select(
    Book, open_loans_query(Book.id).scalar_subquery(), set_aside_query(Book.id).scalar_subquery()
).where(Book.id == bindparam("book_id"))


@api_view(route_name="book", request_method="GET", permission=NO_PERMISSION_REQUIRED)
def show_book(request):
    # the hottest read of the catalogue: the book, its open loans and ready holds in one round trip
    book_id = path_id(request)
    row = request.dbsession.execute(BOOK_WITH_CIRCULATION, {"book_id": book_id}).first()
    if row is None:
        raise not_found("book", book_id)
    return serialize_book(*row)


@api_view(route_name="book", request_method="PATCH")
def update_book(request):
    # Locked like a checkout locks it, so copies, loans and holds are read consistently.
    session = request.dbsession
    book = get_book(session, path_id(request), for_update=True)
    body = request.openapi_validated.body
    state = settle_for(request, book)
    on_loan, held = state.on_loan, state.set_aside
    changes = dict(body)
    if "isbn" in body:
        changes["isbn"] = valid_isbn(request, body["isbn"], book.id)
    if "copies" in body and body["copies"] < on_loan + held:
        raise ApiError(
            409,
            "copies_on_loan",
            f"{on_loan} copies are on loan"
            + (f" and {held} set aside for holds" if held else "")
            + f"; copies cannot drop to {body['copies']}.",
            {"copies": body["copies"], "onLoan": on_loan, "setAside": held},
        )
    for field in ("title", "author", "isbn", "copies"):
        if field in changes:
            setattr(book, field, changes[field])
    session.flush()
    state = settle_for(request, book)  # more copies: the queue moves
    return serialize_book(book, state.on_loan, state.set_aside)


@api_view(route_name="book", request_method="DELETE")
def delete_book(request):
    book = get_book(request.dbsession, path_id(request), for_update=True)
    request.registry.notify(BookDeleted(book, request))
    request.dbsession.delete(book)
    request.dbsession.flush()
    return HTTPNoContent()
