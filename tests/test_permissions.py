"""Who may do what: every route x {anonymous, member on self, member on another, librarian}.

The table below is the access policy, written out. The test walks the application's
registered views and fails if any (method, route) is missing from it, so a new route cannot
ship without a rule.
"""

import functools
import json
from datetime import timedelta

import pytest
import sqlalchemy as sa
from conftest import Client, issue_token

from booknexus.accounts import tokens
from booknexus.accounts.passwords import hash_password
from booknexus.catalog.models import Book
from booknexus.circulation.inventory import add_copies
from booknexus.circulation.models import WAITING, Checkout, Hold, Item
from booknexus.db.schema import utcnow

ANON, SELF, OTHER, LIB = "anonymous", "member on self", "member on another", "librarian"
PASSWORD = "correct horse battery"
LOAN = timedelta(days=14)

# (method, route pattern): (path/body template, {actor: expected status})
# In templates {user} is the member's own id for SELF and ANON, the other member's for OTHER and
# LIB; likewise {checkout}, {hold} (a hold on a book on loan) and {wanted} (a book nobody has
# borrowed or held). {book} is a book with copies to spare.
MATRIX = {
    ("GET", "/health"): (("/health", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    # the public catalogue's pages and their static files
    ("GET", "/"): (("/?q=spare", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("GET", "/catalogue/books/{id}"): (
        ("/catalogue/books/{book}", None),
        {ANON: 200, SELF: 200, OTHER: 200, LIB: 200},
    ),
    ("GET", "/accessibility"): (("/accessibility", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("GET", "static/*subpath"): (
        ("/static/booknexus.css", None),
        {ANON: 200, SELF: 200, OTHER: 200, LIB: 200},
    ),
    # also readable with booknexus.metrics.token (tests/test_observability.py)
    ("GET", "/metrics"): (("/metrics", None), {ANON: 401, SELF: 403, OTHER: 403, LIB: 200}),
    ("GET", "/openapi.yaml"): (("/openapi.yaml", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("GET", "/docs/"): (("/docs/", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("GET", "/docs/oauth2-redirect"): (
        ("/docs/oauth2-redirect", None),
        {ANON: 200, SELF: 200, OTHER: 200, LIB: 200},
    ),
    ("POST", "/auth/tokens"): (
        ("/auth/tokens", {"email": "{email}", "password": PASSWORD}),
        {ANON: 201, SELF: 201, OTHER: 201, LIB: 201},
    ),
    ("DELETE", "/auth/tokens/current"): (
        ("/auth/tokens/current", None),
        {ANON: 401, SELF: 204, OTHER: 204, LIB: 204},
    ),
    ("GET", "/users"): (("/users", None), {ANON: 401, SELF: 403, OTHER: 403, LIB: 200}),
    ("POST", "/users"): (
        ("/users", {"name": "New", "email": "new@example.org", "role": "librarian", "password": PASSWORD}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 201},
    ),
    ("GET", "/users/{id}"): (("/users/{user}", None), {ANON: 401, SELF: 200, OTHER: 403, LIB: 200}),
    ("PATCH", "/users/{id}"): (
        ("/users/{user}", {"name": "Renamed"}),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("DELETE", "/users/{id}"): (("/users/{user}", None), {ANON: 401, SELF: 403, OTHER: 403, LIB: 204}),
    ("GET", "/users/{id}/history"): (
        ("/users/{user}/history", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("GET", "/users/{id}/export"): (
        ("/users/{user}/export", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    # the member has a book out: a librarian is let in, and refused by the rule (409 open_loans)
    ("POST", "/users/{id}/erasure"): (
        ("/users/{user}/erasure", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 409},
    ),
    ("GET", "/books"): (("/books", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("POST", "/books"): (
        ("/books", {"title": "T", "author": "A"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 201},
    ),
    ("GET", "/books/{id}"): (("/books/{book}", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("PATCH", "/books/{id}"): (
        ("/books/{book}", {"copies": 9}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("DELETE", "/books/{id}"): (("/books/{book}", None), {ANON: 401, SELF: 403, OTHER: 403, LIB: 204}),
    # branch 1 is the default branch the upgrade creates
    ("GET", "/branches"): (("/branches", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("POST", "/branches"): (
        ("/branches", {"code": "EAST", "name": "East"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 201},
    ),
    ("GET", "/branches/{id}"): (("/branches/1", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("PATCH", "/branches/{id}"): (
        ("/branches/1", {"name": "Renamed"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("GET", "/checkouts"): (
        ("/checkouts?userId={user}", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("POST", "/checkouts"): (
        ("/checkouts", {"userId": "{user}", "bookId": "{book}"}),
        {ANON: 401, SELF: 201, OTHER: 403, LIB: 201},
    ),
    ("GET", "/checkouts/{id}"): (
        ("/checkouts/{checkout}", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("DELETE", "/checkouts/{id}"): (
        ("/checkouts/{checkout}", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 204},
    ),
    ("POST", "/checkouts/{id}/return"): (
        ("/checkouts/{checkout}/return", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("POST", "/checkouts/{id}/renew"): (
        ("/checkouts/{checkout}/renew", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("GET", "/checkouts/{id}/events"): (
        ("/checkouts/{checkout}/events", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("GET", "/checkout-events"): (
        ("/checkout-events?userId={user}", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("GET", "/holds"): (("/holds?userId={user}", None), {ANON: 401, SELF: 200, OTHER: 403, LIB: 200}),
    ("POST", "/holds"): (
        ("/holds", {"userId": "{user}", "bookId": "{wanted}"}),
        {ANON: 401, SELF: 201, OTHER: 403, LIB: 201},
    ),
    ("GET", "/holds/{id}"): (("/holds/{hold}", None), {ANON: 401, SELF: 200, OTHER: 403, LIB: 200}),
    ("DELETE", "/holds/{id}"): (("/holds/{hold}", None), {ANON: 401, SELF: 204, OTHER: 403, LIB: 204}),
    ("GET", "/holds/{id}/events"): (
        ("/holds/{hold}/events", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    ("GET", "/hold-events"): (
        ("/hold-events?userId={user}", None),
        {ANON: 401, SELF: 200, OTHER: 403, LIB: 200},
    ),
    # a hold's capture of an item on loan: a librarian is let in, and refused by the rule
    ("POST", "/holds/{id}/capture"): (
        ("/holds/{hold}/capture", {"itemBarcode": "{out}"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 409},
    ),
    # items name no reader: anyone reads them; librarians change them and read their log
    ("GET", "/items"): (("/items?barcode={shelved}", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("POST", "/items"): (
        ("/items", {"bookId": "{book}", "barcode": "NEW-1"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 201},
    ),
    ("GET", "/items/{id}"): (("/items/{item}", None), {ANON: 200, SELF: 200, OTHER: 200, LIB: 200}),
    ("PATCH", "/items/{id}"): (
        ("/items/{item}", {"callNumber": "823 AUS"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("GET", "/items/{id}/events"): (
        ("/items/{item}/events", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("GET", "/item-events"): (("/item-events", None), {ANON: 401, SELF: 403, OTHER: 403, LIB: 200}),
    ("GET", "/books/{id}/items"): (
        ("/books/{book}/items", None),
        {ANON: 200, SELF: 200, OTHER: 200, LIB: 200},
    ),
    # the desk, and a branch's working lists, are the librarians'
    ("POST", "/circulation/check-out"): (
        ("/circulation/check-out", {"itemBarcode": "{shelved}", "userId": "{user}"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 201},
    ),
    ("POST", "/circulation/check-in"): (
        ("/circulation/check-in", {"itemBarcode": "{lent}"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("POST", "/circulation/renew"): (
        ("/circulation/renew", {"itemBarcode": "{lent}"}),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("POST", "/checkouts/{id}/lost"): (
        ("/checkouts/{checkout}/lost", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("POST", "/checkouts/{id}/claimed-returned"): (
        ("/checkouts/{checkout}/claimed-returned", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("GET", "/branches/{id}/pull-list"): (
        ("/branches/1/pull-list", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("GET", "/branches/{id}/hold-shelf"): (
        ("/branches/1/hold-shelf", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
    ("GET", "/branches/{id}/transits"): (
        ("/branches/1/transits", None),
        {ANON: 401, SELF: 403, OTHER: 403, LIB: 200},
    ),
}


def registered_views(app) -> set[tuple[str, str]]:
    """(method, pattern) of every view the application registered on a route."""
    routes = {route.name: route.pattern for route in app.routes_mapper.get_routes()}
    found = set()
    for item in app.registry.introspector.get_category("views"):
        view = item["introspectable"]
        if view["route_name"] is None or view["context"] is not None and view["exception_only"]:
            continue
        methods = view["request_methods"] or ("GET",)
        for method in [methods] if isinstance(methods, str) else methods:
            if method != "HEAD":
                found.add((method, routes[view["route_name"]]))
    return found


def test_every_route_has_a_rule(app):
    assert registered_views(app) == set(MATRIX), (
        f"routes without a rule: {registered_views(app) - set(MATRIX)}; "
        f"rules without a route: {set(MATRIX) - registered_views(app)}"
    )


@functools.cache
def password_hash() -> str:
    """PASSWORD's hash, made once: Argon2 costs about a second, and any salt will do."""
    return hash_password(PASSWORD)


@pytest.fixture
def world(app, dbconnection, dbsession):
    """Two members with a loan and a hold each (and a password), a librarian, a spare book, a
    book each that nobody has borrowed or held; the book held is on loan to a third reader.
    Each actor has a token of its own (the member has two: revoking one leaves the other)."""
    member, self_token = issue_token(dbsession, role="member")
    other, _ = issue_token(dbsession, role="member")
    holder, _ = issue_token(dbsession, role="member")
    other_token, _ = tokens.issue(dbsession, member, timedelta(hours=1))
    _, librarian_token = issue_token(dbsession)
    member.password_hash = other.password_hash = password_hash()
    book, out = Book(title="Spare", author="Copies", copies=10), Book(title="Out", author="On loan", copies=1)
    wanted = {user.id: Book(title=f"Wanted by {user.id}", author="W", copies=1) for user in (member, other)}
    dbsession.add_all([book, out, *wanted.values()])
    dbsession.flush()
    shelves = {b.id: add_copies(dbsession, b, b.copies, 1, "W") for b in (book, out, *wanted.values())}

    def lend(user, lent_book) -> Checkout:
        item = next(item for item in shelves[lent_book.id] if item.status == "available")
        item.status = "checked_out"
        return Checkout(
            user_id=user.id,
            book_id=lent_book.id,
            item_id=item.id,
            branch_id=1,
            checked_out_at=utcnow(),
            due_at=utcnow() + LOAN,
        )

    dbsession.add(lend(holder, out))
    loans, holds, lent = {}, {}, {}
    for user in (member, other):
        loan = lend(user, book)
        hold = Hold(user_id=user.id, book_id=out.id, status=WAITING, placed_at=utcnow(), pickup_branch_id=1)
        dbsession.add_all([loan, hold])
        dbsession.flush()
        loans[user.id], holds[user.id] = loan.id, hold.id
        lent[user.id] = dbsession.get(Item, loan.item_id).barcode
    shelved = next(item for item in shelves[book.id] if item.status == "available")
    dbsession.commit()
    clients = {
        ANON: Client(app, dbconnection),
        **{
            actor: Client(app, dbconnection, token)
            for actor, token in ((SELF, self_token), (OTHER, other_token), (LIB, librarian_token))
        },
    }
    # the member acts on the other member's things in the OTHER column; the librarian too, so
    # that what the member did to their own things on success is not in the librarian's way
    target = {ANON: member, SELF: member, OTHER: other, LIB: other}
    return {
        "clients": clients,
        "target": target,
        "loans": loans,
        "holds": holds,
        "book": book.id,
        "lent": lent,
        "shelved": shelved.barcode,
        "item": shelved.id,
        "out": shelves[out.id][0].barcode,
        "wanted": {user_id: wanted_book.id for user_id, wanted_book in wanted.items()},
        "tables": sa.inspect(dbconnection).get_table_names(),
    }


def rows(connection, tables) -> dict[str, list]:
    """Every row of every table, in an order of their own."""
    return {
        table: sorted(connection.exec_driver_sql(f'SELECT * FROM "{table}"').all(), key=repr)
        for table in tables
    }


def fill(template, values):
    if isinstance(template, str):
        text = template.format(**values)
        return int(text) if template in ("{user}", "{book}", "{wanted}") else text
    if isinstance(template, dict):
        return {key: fill(value, values) for key, value in template.items()}
    return template


@pytest.mark.parametrize("rule", sorted(MATRIX), ids=lambda rule: f"{rule[0]} {rule[1]}")
def test_permission_matrix(world, dbconnection, rule):
    """Each call sees the world as it was made: the refused calls come first, and each must
    leave every row as it found it; the calls let through act on targets of their own."""
    method, _ = rule
    (path, body), expected = MATRIX[rule]
    seen, bodies = {}, {}
    before = rows(dbconnection, world["tables"])
    for actor in sorted(expected, key=lambda actor: expected[actor] < 400):
        user = world["target"][actor]
        values = {
            "user": user.id,
            "email": user.email,
            "checkout": world["loans"][user.id],
            "hold": world["holds"][user.id],
            "book": world["book"],
            "wanted": world["wanted"][user.id],
            "lent": world["lent"][user.id],
            "shelved": world["shelved"],
            "item": world["item"],
            "out": world["out"],
        }
        response = world["clients"][actor].request(
            fill(path, values),
            method=method,
            expect_errors=True,
            **(
                {"body": json.dumps(fill(body, values)).encode(), "content_type": "application/json"}
                if body is not None
                else {}
            ),
        )
        seen[actor] = response.status_int
        bodies[actor] = response.body[:300]
        if response.status_int >= 400:
            assert rows(dbconnection, world["tables"]) == before, f"{actor}'s refused call changed the world"
    assert seen == expected, bodies
