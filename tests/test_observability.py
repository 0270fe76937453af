"""Request ids, the JSON access log, /metrics and the database time limits, in one process.

(Several workers: tests/test_serve.py.)
"""

import io
import json
import logging
import re
import urllib.error
import urllib.request
from configparser import ConfigParser

import pytest
import sqlalchemy as sa
from conftest import ROOT, bearer, librarian_token
from helpers import make_book, make_user

GENERATED = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def json_log():
    """Log records as production.ini formats them (its [formatter_json]), into a buffer."""
    ini = ConfigParser(interpolation=None)
    ini.read(ROOT / "production.ini")
    section = ini["formatter_json"]
    module, _, name = section["class"].rpartition(".")
    formatter_class = getattr(__import__(module, fromlist=[name]), name)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter_class(section["format"]))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


@pytest.mark.parametrize("offered", ["abc-123", "7f3e2c1a-0b9d-4c5e-8f00-1234567890ab", "trace:1/2+3=4.5_6"])
def test_a_sane_request_id_is_echoed(anonymous, offered):
    response = anonymous.get("/books/999999", headers={"X-Request-ID": offered}, status=404)
    assert response.headers["X-Request-ID"] == offered
    assert response.json["error"]["requestId"] == offered


@pytest.mark.parametrize(
    "offered",
    ["a" * 129, "abc\x01def", "abc\ndef: injected", "abc\r\nSet-Cookie: x=1", "two words", "é-accent", ""],
)
def test_an_insane_request_id_is_replaced_and_never_logged(anonymous, json_log, offered):
    response = anonymous.get("/books/999999", extra_environ={"HTTP_X_REQUEST_ID": offered}, status=404)
    replaced = response.headers["X-Request-ID"]
    assert GENERATED.fullmatch(replaced) and response.json["error"]["requestId"] == replaced
    lines = json_log()
    (line,) = [line for line in lines if line["name"] == "booknexus.access"]
    assert line["request_id"] == replaced
    if offered:
        assert not any(offered in json.dumps(line, ensure_ascii=False) for line in lines)


def test_without_a_request_id_one_is_made_for_each_request(anonymous):
    first = anonymous.get("/health").headers["X-Request-ID"]
    second = anonymous.get("/health").headers["X-Request-ID"]
    assert GENERATED.fullmatch(first) and GENERATED.fullmatch(second) and first != second


def test_one_json_access_line_per_request_with_route_pattern_and_actor(testapp, json_log):
    user = make_user(testapp)
    json_log()  # the user's creation logged its own line
    testapp.get(f"/users/{user['id']}", headers={"X-Request-ID": "read-1"})
    (line,) = [line for line in json_log() if line.get("request_id") == "read-1"]
    assert line["name"] == "booknexus.access"
    assert (line["method"], line["route"], line["status"], line["actor"]) == (
        "GET",
        "/users/{id}",
        200,
        testapp.user_id,
    )
    assert line["duration_ms"] >= 0 and line["asctime"]


def test_a_public_read_logs_no_actor_rather_than_look_the_token_up(testapp, json_log):
    book = make_book(testapp)
    testapp.get(f"/books/{book['id']}", headers={"X-Request-ID": "public-1"})
    (line,) = [line for line in json_log() if line.get("request_id") == "public-1"]
    assert (line["route"], line["actor"]) == ("/books/{id}", None)


def test_no_password_or_token_reaches_a_log_line(anonymous, testapp, json_log):
    user = make_user(testapp, email="secret@example.org", password="correct horse battery")
    token = anonymous.post_json(
        "/auth/tokens", {"email": "secret@example.org", "password": "correct horse battery"}, status=201
    ).json["token"]
    anonymous.post_json(
        "/auth/tokens", {"email": "secret@example.org", "password": "wrong horse battery"}, status=401
    )
    anonymous.get(f"/users/{user['id']}", extra_environ=bearer(token), status=200)
    text = json.dumps(json_log())
    assert "horse battery" not in text and token not in text


def test_an_error_line_carries_the_request_id(app, testapp, json_log, monkeypatch):
    def broken(request):
        raise RuntimeError("boom")

    # the health view's details (a librarian's) fail in a way nothing expects: the
    # last-resort 500 view logs it
    monkeypatch.setattr(app.registry["booknexus.startup"], "as_json", lambda: broken(None))
    response = testapp.get("/health", headers={"X-Request-ID": "broken-1"}, status=500)
    assert response.json["error"]["requestId"] == "broken-1"
    errors = [line for line in json_log() if line["levelname"] == "ERROR"]
    assert errors and all(line["request_id"] == "broken-1" for line in errors)
    assert "broken-1" in errors[0]["message"]  # development's plain lines show it too


def metric(text: str, name: str, **labels) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    for line in text.splitlines():
        if line.startswith(f"{name}{{{wanted}}} ") or (not labels and line.startswith(f"{name} ")):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_each_request_once_by_route_pattern(testapp):
    book = make_book(testapp)
    before = testapp.get("/metrics").text
    for _ in range(7):
        testapp.get(f"/books/{book['id']}")
    testapp.get("/books/999999", status=404)
    after = testapp.get("/metrics").text
    labels = {"method": "GET", "route": "/books/{id}", "status": "200"}
    assert (
        metric(after, "booknexus_http_requests_total", **labels)
        - metric(before, "booknexus_http_requests_total", **labels)
        == 7
    )
    assert (
        metric(after, "booknexus_refusals_total", code="book_not_found")
        - metric(before, "booknexus_refusals_total", code="book_not_found")
        == 1
    )
    assert f"/books/{book['id']}" not in after


def test_circulation_events_are_counted_once_committed(testapp):
    user, book = make_user(testapp), make_book(testapp, copies=1)
    before = testapp.get("/metrics").text
    loan = testapp.post_json("/checkouts", {"userId": user["id"], "bookId": book["id"]}, status=201).json
    testapp.post_json(
        "/checkouts", {"userId": user["id"], "bookId": book["id"]}, status=409
    )  # refused: no event
    testapp.post(f"/checkouts/{loan['id']}/renew", status=200)
    testapp.post(f"/checkouts/{loan['id']}/return", status=200)
    after = testapp.get("/metrics").text

    def delta(type_):
        labels = {"log": "checkouts", "type": type_}
        return metric(after, "booknexus_circulation_events_total", **labels) - metric(
            before, "booknexus_circulation_events_total", **labels
        )

    assert (delta("checked_out"), delta("renewed"), delta("returned")) == (1, 1, 1)


def test_logins_are_counted_by_outcome(anonymous, testapp):
    make_user(testapp, email="counted@example.org", password="correct horse battery")
    before = testapp.get("/metrics").text
    anonymous.post_json(
        "/auth/tokens", {"email": "counted@example.org", "password": "correct horse battery"}, status=201
    )
    anonymous.post_json(
        "/auth/tokens", {"email": "counted@example.org", "password": "not the password"}, status=401
    )
    after = testapp.get("/metrics").text
    for outcome in ("succeeded", "failed"):
        assert (
            metric(after, "booknexus_logins_total", outcome=outcome)
            - metric(before, "booknexus_logins_total", outcome=outcome)
            == 1
        )


def test_metrics_token_reads_metrics_and_nothing_else(serve):
    served = serve("postgresql", **{"booknexus.metrics.token": "scrape-me"})
    served.headers["Authorization"] = "Bearer scrape-me"
    status, _ = served.request("GET", "/users")
    assert status == 401  # the scrape token is no account
    request = urllib.request.Request(served.url + "/metrics", headers=served.headers)
    with urllib.request.urlopen(request) as response:
        assert response.status == 200 and b"booknexus_http_requests_total" in response.read()


def row_lock_holder(url: str, table: str, id_: int):
    engine = sa.create_engine(url)
    connection = engine.connect()
    connection.execute(sa.text(f'SELECT 1 FROM "{table}" WHERE id = :id FOR UPDATE'), {"id": id_})
    return engine, connection


@pytest.mark.slow
@pytest.mark.parametrize(
    "limits",
    [
        {"booknexus.db.lock_timeout": "300ms", "booknexus.db.statement_timeout": "30s"},
        {"booknexus.db.lock_timeout": "0", "booknexus.db.statement_timeout": "300ms"},
    ],
    ids=["lock_timeout", "statement_timeout"],
)
def test_a_request_over_its_time_limit_is_a_503_and_releases_its_locks(fresh_database, serve_url, limits):
    url = fresh_database("postgresql")
    served = serve_url(url, librarian_token(url), **limits)
    status, reader = served.request("POST", "/users", {"name": "Reader", "email": "reader@example.org"})
    status, book = served.request("POST", "/books", {"title": "Held", "author": "A", "copies": 1})
    engine, holder = row_lock_holder(url, "Books", book["id"])
    try:
        # the checkout locks the reader first (step 1 of the lock order), then waits for the book
        status, body = served.request("POST", "/checkouts", {"userId": reader["id"], "bookId": book["id"]})
        assert status == 503 and body["error"]["code"] == "database_timeout"
        assert body["error"]["requestId"]
        # its transaction is gone: the reader's row is free at once
        with engine.connect() as probe:
            probe.execute(sa.text("SET lock_timeout = '100ms'"))
            probe.execute(sa.text('SELECT 1 FROM "Users" WHERE id = :id FOR UPDATE'), {"id": reader["id"]})
            probe.rollback()
    finally:
        holder.rollback()
        holder.close()
    # nothing half-written: no loan, no event; and with the lock gone the same request succeeds
    status, loans = served.request("GET", f"/checkouts?userId={reader['id']}")
    assert loans["items"] == []
    status, _ = served.request("POST", "/checkouts", {"userId": reader["id"], "bookId": book["id"]})
    assert status == 201
    engine.dispose()


def test_the_time_limit_answer_has_retry_after(fresh_database, serve_url):
    url = fresh_database("postgresql")
    served = serve_url(url, librarian_token(url), **{"booknexus.db.lock_timeout": "200ms"})
    status, book = served.request("POST", "/books", {"title": "Held", "author": "A", "copies": 1})
    engine, holder = row_lock_holder(url, "Books", book["id"])
    try:
        request = urllib.request.Request(
            f"{served.url}/books/{book['id']}",
            data=json.dumps({"title": "New"}).encode(),
            method="PATCH",
            headers=served.headers,
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 503 and refused.value.headers["Retry-After"] == "1"
        refused.value.close()
    finally:
        holder.rollback()
        holder.close()
        engine.dispose()


def test_bulk_work_raises_the_limits_for_its_own_transaction_only(fresh_database):
    from booknexus.db.engines import get_engine
    from booknexus.db.timeouts import raise_for_bulk_work

    url = fresh_database("postgresql")
    settings = {
        "sqlalchemy.url": url,
        "booknexus.db.statement_timeout": "2s",
        "booknexus.db.bulk_statement_timeout": "7min",
    }
    engine = get_engine(settings)
    with engine.connect() as connection:
        assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "2s"
        connection.rollback()
        with connection.begin():
            raise_for_bulk_work(connection, settings)
            assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "7min"
        assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "2s"
    engine.dispose()
    bulk = get_engine(settings, bulk=True)
    with bulk.connect() as connection:
        assert connection.execute(sa.text("SHOW statement_timeout")).scalar() == "7min"
    bulk.dispose()
