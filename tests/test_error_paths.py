"""What failures tell whom: /health's details, a failed statement's values, crafted cursors."""

import base64
import logging
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import webtest
import yaml
from conftest import Client, app_settings, bearer, close_app, issue_token, librarian_token, started
from helpers import checkout, make_book, make_user
from openapi_schema_validator import OAS30Validator

import booknexus.config
from booknexus.accounts.roles import MEMBER
from booknexus.db.engines import get_engine

SCRAPE_TOKEN = "scrape-secret-for-tests"
OPENAPI = Path(booknexus.config.__file__).parent / "openapi.yaml"


def health_schema() -> OAS30Validator:
    return OAS30Validator(yaml.safe_load(OPENAPI.read_text())["components"]["schemas"]["Health"])


@pytest.fixture
def own_app(backend, fresh_database):
    """An app of the test's own over a fresh database of ``backend``, with a scrape token;
    made before the test runs, so that the template's migration (Alembic's fileConfig resets
    the root logger's handlers) is over before ``caplog`` starts listening."""
    url = fresh_database(backend)
    settings = app_settings(url, **{"booknexus.metrics.token": SCRAPE_TOKEN})
    app = started(booknexus.config.main({}, **settings))
    yield url, app
    close_app(app)


def member_token(url: str) -> str:
    engine = get_engine({"sqlalchemy.url": url})
    with sa.orm.Session(engine) as session, session.begin():
        _, token = issue_token(session, role=MEMBER)
    engine.dispose()
    return token


def test_health_details_only_for_librarians_and_the_scrape_token(backend, own_app):
    url, app = own_app
    validator = health_schema()
    anonymous = webtest.TestApp(app).get("/health", status=200).json
    member = webtest.TestApp(app, extra_environ=bearer(member_token(url))).get("/health", status=200).json
    assert anonymous == member == {"status": "ok"}
    librarian = webtest.TestApp(app, extra_environ=bearer(librarian_token(url))).get("/health").json
    scraper = webtest.TestApp(app, extra_environ=bearer(SCRAPE_TOKEN)).get("/health", status=200).json
    for details in (librarian, scraper):
        assert details["status"] == "ok" and details["database"] == "ok"
        assert details["constraints"] == {"ok": True, "problems": []}
        assert details["startup"] == {"completed": True, "attempts": 1, "lastError": None}
    for body in (anonymous, librarian, scraper):
        validator.validate(body)


def test_unreachable_database_tells_anonymous_only_the_status():
    # port 1 on loopback: nothing listens there; the startup error names host, port and user
    url = "postgresql+psycopg://postgres@127.0.0.1:1/booknexus?connect_timeout=2"
    application = booknexus.config.main({}, **app_settings(url, **{"booknexus.metrics.token": SCRAPE_TOKEN}))
    state = application.registry["booknexus.startup"]
    deadline = time.monotonic() + 10
    while state.last_error is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state.last_error and "127.0.0.1" in state.last_error
    try:
        validator = health_schema()
        # a bearer token that cannot be checked (the database is down) earns no details either
        for client in (webtest.TestApp(application), webtest.TestApp(application, extra_environ=bearer("x"))):
            response = client.get("/health", status=503)
            assert response.json == {"status": "degraded"}
            assert "127.0.0.1" not in response.text and "postgres" not in response.text
            validator.validate(response.json)
        scraper = webtest.TestApp(application, extra_environ=bearer(SCRAPE_TOKEN))
        details = scraper.get("/health", status=503).json
        assert details["database"] == "unreachable" and "127.0.0.1" in details["startup"]["lastError"]
        validator.validate(details)
    finally:
        close_app(application)


BREAK_USER_UPDATES = {
    # a failure in the middle of the request, after the hash was computed and sent
    "postgresql": [
        "CREATE FUNCTION booknexus_test_fail() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'the disk is on fire'; END $$",
        'CREATE TRIGGER booknexus_test_fail BEFORE UPDATE ON "Users" '
        "FOR EACH ROW EXECUTE FUNCTION booknexus_test_fail()",
    ],
    # a table the trigger needs has gone: an OperationalError, as a broken database gives
    "sqlite": [
        'CREATE TABLE "Doomed" (id INTEGER)',
        'CREATE TRIGGER booknexus_test_fail BEFORE UPDATE ON "Users" '
        'BEGIN INSERT INTO "Doomed" (id) VALUES (NEW.id); END',
        'DROP TABLE "Doomed"',
    ],
}


def test_a_failed_password_change_logs_neither_hash_nor_email(backend, own_app, caplog):
    url, app = own_app
    client = webtest.TestApp(app, extra_environ=bearer(librarian_token(url)))
    user = make_user(client, email="ada.secret@example.org")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in BREAK_USER_UPDATES[backend]:
            connection.exec_driver_sql(statement)
    engine.dispose()
    caplog.set_level(logging.DEBUG)  # every logger, SQLAlchemy's statements included
    body = {"password": "correct horse battery staple", "email": "ada.new@example.org"}
    response = client.patch_json(f"/users/{user['id']}", body, expect_errors=True)
    assert response.status_int >= 500, response.text
    lines = [record.getMessage() for record in caplog.records]
    lines += [caplog.text]  # tracebacks included
    failures = [line for line in lines if "the disk is on fire" in line or "Doomed" in line]
    assert failures, "the failure itself is logged"
    for line in lines:
        assert "$argon2" not in line
        assert "ada.new@example.org" not in line and "ada.secret@example.org" not in line
    assert "$argon2" not in response.text and "ada.new" not in response.text


def cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def test_a_crafted_history_cursor_with_a_naive_time_is_invalid(testapp):
    reader = make_user(testapp)
    book = make_book(testapp)
    checkout(testapp, reader, book)
    path = f"/users/{reader['id']}/history"
    for naive in ("2030-01-01T00:00:00|loan|1", "2030-01-01|hold|1", "2030-01-01 10:00:00.5|loan|7"):
        response = testapp.get(path, {"after": cursor(naive)}, status=400)
        assert response.json["error"]["code"] == "invalid_value"
        assert response.json["error"]["details"] == {"field": "after"}
    # an aware time is a position like any other: everything before 2030 follows it
    page = testapp.get(path, {"after": cursor("2030-01-01T00:00:00+00:00|loan|1")}, status=200).json
    assert [item["bookId"] for item in page["items"]] == [book["id"]]


def test_a_deleted_loan_belongs_to_its_last_reader(app, dbconnection, dbsession, testapp):
    """The log says whose a deleted loan was: the reader of its latest event, as the row
    itself said while it lived, not whichever event the database happens to find first."""
    first, first_token = issue_token(dbsession, role=MEMBER)
    last, last_token = issue_token(dbsession, role=MEMBER)
    dbsession.commit()
    book = make_book(testapp)
    loan = checkout(testapp, {"id": first.id}, book)
    # moved to another reader, then deleted, by hand: the capture triggers log both
    dbsession.execute(sa.text(f'UPDATE "Checkouts" SET "userId" = {last.id} WHERE id = {loan["id"]}'))
    dbsession.execute(
        sa.text(f'DELETE FROM "Checkouts" WHERE id = {loan["id"]}')
    )  # committed by the next request
    events = testapp.get(f"/checkouts/{loan['id']}/events").json["items"]
    assert [event["userId"] for event in events] == [first.id, last.id, last.id]
    Client(app, dbconnection, last_token).get(f"/checkouts/{loan['id']}/events", status=200)
    Client(app, dbconnection, first_token).get(f"/checkouts/{loan['id']}/events", status=403)
