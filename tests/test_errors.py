"""One error contract: every failure is JSON with the right 4xx/5xx, never HTML or a 500."""

import threading

import pyramid.testing
import pytest
import sqlalchemy as sa
import webtest
from conftest import app_settings, bearer, close_app, librarian_token, started
from helpers import make_book, make_user

import booknexus.config
from booknexus.web.errors import database_unavailable


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_int == status
    assert response.content_type == "application/json"
    assert set(response.json) == {"error"}
    error = response.json["error"]
    assert (error["status"], error["code"]) == (status, code)
    assert isinstance(error["message"], str) and error["message"]
    # every error names its request, as the response header and the log lines do
    assert error["requestId"] == response.headers["X-Request-ID"]
    return error


def fields(error) -> set:
    return {detail.get("field") for detail in error["details"]}


@pytest.mark.parametrize(
    "path", ["/users/abc", "/users/0", "/books/-3", "/checkouts/99999999999", "/checkouts/1.5"]
)
def test_bad_path_id_is_400(testapp, path):
    error = assert_error(testapp.get(path, status=400), 400, "invalid_request")
    assert fields(error) == {"id"}


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=ten", "after=-1"])
def test_bad_pagination_is_400(testapp, query):
    error = assert_error(testapp.get(f"/users?{query}", status=400), 400, "invalid_request")
    assert fields(error) <= {"limit", "after"} and fields(error)


def test_missing_and_mistyped_fields_are_400_with_the_fields_named(testapp):
    error = assert_error(testapp.post_json("/users", {"name": "x"}, status=400), 400, "invalid_request")
    assert error["details"] == [{"field": "email", "message": "'email' is a required property"}]
    error = assert_error(
        testapp.post_json("/checkouts", {"userId": "one", "bookId": 1}, status=400), 400, "invalid_request"
    )
    assert fields(error) == {"userId"}
    error = assert_error(
        testapp.post_json("/books", {"title": "", "author": "A"}, status=400), 400, "invalid_request"
    )
    assert fields(error) == {"title"}


def test_unknown_fields_are_400(testapp):
    response = testapp.post_json(
        "/users", {"name": "x", "email": "x@example.org", "nickname": "x"}, status=400
    )
    error = assert_error(response, 400, "invalid_request")
    assert error["details"] == [
        {"field": "nickname", "message": "Additional properties are not allowed ('nickname' was unexpected)"}
    ]


def test_malformed_json_is_400(testapp):
    response = testapp.post("/users", "{not json", content_type="application/json", status=400)
    assert_error(response, 400, "invalid_request")


def test_empty_patch_is_400(testapp):
    user = make_user(testapp)
    assert_error(testapp.patch_json(f"/users/{user['id']}", {}, status=400), 400, "invalid_request")


@pytest.mark.parametrize("value", ["nul\x00byte", "lone \ud800 surrogate"])
def test_unstorable_text_is_400_and_nothing_is_written(testapp, value):
    response = testapp.post_json("/books", {"title": value, "author": "Nobody"}, status=400)
    assert response.json["error"]["status"] == 400
    assert testapp.get("/books", {"q": "Nobody"}).json["items"] == []


@pytest.mark.parametrize("field", ["email", "password"])
def test_a_nul_in_credentials_is_refused_by_the_document(testapp, field):
    # the document says what the database can hold: a NUL is refused as invalid input,
    # not accepted by the document and then refused by the database (invalid_value)
    credentials = {"email": "reader@example.org", "password": "long enough", field: "a\x00b"}
    response = testapp.post_json("/auth/tokens", credentials, status=400)
    details = assert_error(response, 400, "invalid_request")["details"]
    assert [d["field"] for d in details] == [field]


def test_unknown_route_is_json_404_and_wrong_method_405(testapp):
    assert_error(testapp.get("/nowhere", status=404), 404, "not_found")
    book = make_book(testapp)
    response = testapp.put_json(f"/books/{book['id']}", {}, status=405)
    assert assert_error(response, 405, "method_not_allowed")["details"] == {
        "allowed": ["DELETE", "GET", "PATCH"]
    }
    assert response.headers["Allow"] == "DELETE, GET, PATCH"


def test_unreachable_database_is_json_503():
    # port 1 on loopback: nothing listens there, the connection is refused at once
    url = "postgresql+psycopg://postgres@127.0.0.1:1/booknexus?connect_timeout=2"
    application = booknexus.config.main({}, **app_settings(url))
    # a bearer token must be looked up: that is what finds the database gone
    app = webtest.TestApp(application, extra_environ=bearer("some-token"))
    response = app.get("/users", status=503)
    assert_error(response, 503, "database_unavailable")
    assert response.headers["Retry-After"].isdigit()
    response = app.post_json("/users", {"name": "a", "email": "a@example.org"}, status=503)
    assert_error(response, 503, "database_unavailable")
    # a token that cannot be checked learns the status only; nothing of the database
    assert app.get("/health", status=503).json == {"status": "degraded"}
    close_app(application)


def test_failed_requests_return_their_connections(backend, fresh_database):
    url = fresh_database(backend)
    app = started(booknexus.config.main({}, **app_settings(url)))
    client = webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))
    try:
        for response, code in (
            (client.delete("/checkouts/5", status=404), "checkout_not_found"),
            (client.post("/checkouts/5/return", status=404), "checkout_not_found"),
            (client.post_json("/checkouts", {"userId": 1, "bookId": 1}, status=404), "book_not_found"),
            (client.delete("/users/5", status=404), "user_not_found"),
        ):
            assert response.json["error"]["code"] == code, response.json
        assert app.registry["dbengine"].pool.checkedout() == 0
    finally:
        close_app(app)


def test_a_conflict_that_outlives_its_retries_is_a_409_not_an_outage(fresh_database):
    """A real deadlock between two PostgreSQL transactions, as pyramid_retry hands it over
    once its attempts are spent: the database is up, so the answer is 409 conflict."""
    engine = sa.create_engine(fresh_database("postgresql"))
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE pair (id int PRIMARY KEY)")
        connection.exec_driver_sql("INSERT INTO pair VALUES (1), (2)")
    both_hold_one = threading.Barrier(2)
    lost = []

    def take(first: int, second: int) -> None:
        with engine.connect() as connection, connection.begin():
            connection.exec_driver_sql(f"SELECT * FROM pair WHERE id = {first} FOR UPDATE")
            both_hold_one.wait()
            try:
                connection.exec_driver_sql(f"SELECT * FROM pair WHERE id = {second} FOR UPDATE")
            except sa.exc.OperationalError as exc:
                lost.append(exc)

    threads = [threading.Thread(target=take, args=pair) for pair in ((1, 2), (2, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    engine.dispose()
    assert len(lost) == 1 and lost[0].orig.sqlstate == "40P01"  # deadlock detected
    response = database_unavailable(lost[0], pyramid.testing.DummyRequest(request_id="r1"))
    assert response.status_int == 409 and response.headers["Retry-After"] == "1"
    assert response.json_body["error"]["code"] == "conflict"
