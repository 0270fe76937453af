"""The public catalogue as web pages: search at ``/``, a book at ``/catalogue/books/{id}``.
Read-only and public, served from the read side like the JSON catalogue, whose statements
(the books with their items by branch, the ranked search) they reuse."""

from pyramid.security import NO_PERMISSION_REQUIRED
from pyramid.view import view_config
from sqlalchemy import select

from booknexus.branches.models import Branch
from booknexus.catalog.listing import book_with_stock, books_with_stock, serialize_book
from booknexus.catalog.search import search_page
from booknexus.refusals import Invalid
from booknexus.web.reads import read_connection, snapshot

PAGE_SIZE = 20
MAX_QUERY = 200


def branch_names(session) -> dict[int, str]:
    """A library has a handful of branches: read them whole."""
    return dict(session.execute(select(Branch.id, Branch.name)).all())


def availability_in_words(book: dict, names: dict[int, str]) -> list[str]:
    """ "2 of 3 available at Main library", a line per branch: never a colour alone."""
    if not book["branches"]:
        return ["No copies in the library"]
    return [
        f"{branch['available']} of {branch['items']} available at {names.get(branch['branchId'], 'a branch')}"
        for branch in book["branches"]
    ]


@view_config(
    route_name="catalogue_home",
    request_method="GET",
    renderer="catalogue/search.html",
    permission=NO_PERMISSION_REQUIRED,
)
def search(request):
    # what a search box may hold: no control characters (PostgreSQL stores no NUL)
    q = "".join(c for c in request.GET.get("q", "") if c.isprintable()).strip()[:MAX_QUERY]
    after = request.GET.get("after") or None
    books, next_cursor, problem = [], None, None
    with snapshot(request) as session:
        names = branch_names(session)
        if q:
            try:
                rows, next_cursor = search_page(
                    session, books_with_stock(request.registry), q, PAGE_SIZE, after
                )
            except Invalid:  # a cursor that is not one of ours
                rows, problem = [], "That page of results no longer exists: search again."
            books = [serialize_book(row, row[-1]) for row in rows]
    for book in books:
        book["words"] = availability_in_words(book, names)
    return {"q": q, "books": books, "next": next_cursor, "problem": problem}


@view_config(
    route_name="catalogue_book",
    request_method="GET",
    renderer="catalogue/book.html",
    permission=NO_PERMISSION_REQUIRED,
)
def book(request):
    raw = request.matchdict["id"]
    found = None
    if raw.isdigit() and int(raw) < 2**31:
        with read_connection(request) as connection:
            found = connection.execute(book_with_stock(request.registry), {"book_id": int(raw)}).first()
    if found is None:
        request.response.status_int = 404
        return {"book": None, "words": []}
    shown = serialize_book(found, found[-1])
    with snapshot(request) as session:
        names = branch_names(session)
    return {"book": shown, "words": availability_in_words(shown, names)}


@view_config(
    route_name="accessibility",
    request_method="GET",
    renderer="accessibility.html",
    permission=NO_PERMISSION_REQUIRED,
)
def accessibility(request):
    """The accessibility statement: the target, how it is checked, the known gaps."""
    return {}
