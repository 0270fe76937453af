"""Logging in, bearer tokens, roles; and that secrets never leak."""

import hashlib
import logging
import os
import subprocess
import sys
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, Client, app_settings, bearer, close_app, issue_token
from helpers import checkout, make_book

import booknexus.accounts.views.tokens
import booknexus.config
from booknexus.accounts.models import Token
from booknexus.db.engines import DATABASE_URL_ENV
from booknexus.db.schema import utcnow

PASSWORD = "s3cret-but-long"


@pytest.fixture
def member(testapp):
    """A member with a password, created by the (librarian) test client."""
    return testapp.post_json(
        "/users", {"name": "Mia", "email": "mia@example.org", "password": PASSWORD}, status=201
    ).json


def log_in(anonymous, email="mia@example.org", password=PASSWORD, status=201):
    return anonymous.post_json("/auth/tokens", {"email": email, "password": password}, status=status)


def as_token(app, dbconnection, token):
    return Client(app, dbconnection, token)


def test_log_in_and_use_the_token(app, dbconnection, anonymous, member):
    issued = log_in(anonymous).json
    assert set(issued) == {"token", "tokenType", "expiresAt", "userId", "role"}
    assert (issued["tokenType"], issued["userId"], issued["role"]) == ("Bearer", member["id"], "member")
    assert len(issued["token"]) >= 43  # 32 random bytes, base64url
    ttl = datetime.fromisoformat(issued["expiresAt"]) - utcnow()
    assert timedelta(hours=23, minutes=59) < ttl <= timedelta(hours=24)
    me = as_token(app, dbconnection, issued["token"])
    assert me.get(f"/users/{member['id']}").json["email"] == "mia@example.org"


def test_wrong_email_wrong_password_and_no_password_answer_alike(testapp, anonymous, member):
    testapp.post_json("/users", {"name": "Legacy", "email": "legacy@example.org"}, status=201)
    answers = [
        log_in(anonymous, email="nobody@example.org", status=401).json,
        log_in(anonymous, password="wrong password", status=401).json,
        log_in(anonymous, email="legacy@example.org", password="anything at all", status=401).json,
    ]
    for answer in answers:
        del answer["error"]["requestId"]  # each request's own
    assert answers[0] == answers[1] == answers[2]
    assert answers[0]["error"]["code"] == "invalid_credentials"


def test_tokens_are_stored_only_as_their_hash(anonymous, member, dbsession):
    token = log_in(anonymous).json["token"]
    stored = dbsession.scalars(sa.select(Token).where(Token.user_id == member["id"])).one()
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in {stored.token_hash, str(stored.id)}


def test_revoked_token_is_rejected(app, dbconnection, anonymous, member):
    me = as_token(app, dbconnection, log_in(anonymous).json["token"])
    me.delete("/auth/tokens/current", status=204)
    response = me.get(f"/users/{member['id']}", status=401)
    assert response.json["error"]["code"] == "invalid_token"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_rejected(app, dbconnection, anonymous, member, dbsession):
    token = log_in(anonymous).json["token"]
    dbsession.execute(
        sa.update(Token)
        .where(Token.user_id == member["id"])
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    dbsession.commit()
    as_token(app, dbconnection, token).get(f"/users/{member['id']}", status=401)


def test_deleted_users_token_is_rejected(app, dbconnection, testapp, anonymous, member):
    me = as_token(app, dbconnection, log_in(anonymous).json["token"])
    testapp.delete(f"/users/{member['id']}", status=204)
    assert me.get("/checkout-events", {"userId": member["id"]}, status=401).json["error"]["code"] == (
        "invalid_token"
    )


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer ", "Basic bWlhOnNlY3JldA==", "Bearer two words", "bearer-token", "Token abc"]
)
def test_malformed_authorization_headers_are_401(app, dbconnection, member, header):
    client = Client(app, dbconnection, HTTP_AUTHORIZATION=header)
    response = client.get(f"/users/{member['id']}", status=401)
    assert response.json["error"]["status"] == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="booknexus"'


def test_members_cannot_set_their_role(app, dbconnection, anonymous, member):
    me = as_token(app, dbconnection, log_in(anonymous).json["token"])
    response = me.patch_json(f"/users/{member['id']}", {"role": "librarian"}, status=403)
    assert response.json["error"] == {
        "status": 403,
        "code": "forbidden",
        "message": "Only a librarian may set a role.",
        "details": None,
        "requestId": response.headers["X-Request-ID"],
    }
    assert me.get(f"/users/{member['id']}").json["role"] == "member"


def test_a_reader_changes_their_own_password_and_their_other_tokens_die(app, dbconnection, anonymous, member):
    this_device = as_token(app, dbconnection, log_in(anonymous).json["token"])
    stolen = as_token(app, dbconnection, log_in(anonymous).json["token"])
    path = f"/users/{member['id']}"
    missing = this_device.patch_json(path, {"password": "a new password"}, status=400).json["error"]
    assert (missing["code"], missing["details"]) == (
        "current_password_required",
        {"field": "currentPassword"},
    )
    wrong = {"password": "a new password", "currentPassword": "not it at all"}
    assert this_device.patch_json(path, wrong, status=403).json["error"]["code"] == "wrong_password"
    stolen.get(path, status=200)  # nothing changed yet
    changed = this_device.patch_json(path, {"password": "a new password", "currentPassword": PASSWORD})
    assert changed.json == {**member, "updatedAt": changed.json["updatedAt"]}
    this_device.get(path, status=200)  # the token that made the change stays
    assert stolen.get(path, status=401).json["error"]["code"] == "invalid_token"
    log_in(anonymous, status=401)
    log_in(anonymous, password="a new password", status=201)


def test_a_librarian_setting_a_password_revokes_every_token_of_that_account(
    app, dbconnection, testapp, anonymous, member
):
    readers_token = as_token(app, dbconnection, log_in(anonymous).json["token"])
    testapp.patch_json(f"/users/{member['id']}", {"password": "set by the desk"}, status=200)
    assert readers_token.get(f"/users/{member['id']}", status=401).json["error"]["code"] == "invalid_token"
    testapp.get(f"/users/{member['id']}", status=200)  # the librarian's own token is untouched
    log_in(anonymous, password="set by the desk", status=201)


def test_librarian_sets_role_and_password(testapp, anonymous, member):
    testapp.patch_json(f"/users/{member['id']}", {"role": "librarian", "password": "another password"})
    log_in(anonymous, status=401)
    assert log_in(anonymous, password="another password").json["role"] == "librarian"


def test_events_record_the_acting_user(app, dbconnection, testapp, anonymous, member):
    me = as_token(app, dbconnection, log_in(anonymous).json["token"])
    book = make_book(testapp, copies=2)
    loan = me.post_json("/checkouts", {"userId": member["id"], "bookId": book["id"]}, status=201).json
    me.post(f"/checkouts/{loan['id']}/renew")
    testapp.post(f"/checkouts/{loan['id']}/return")
    other = checkout(testapp, member, book)
    testapp.delete(f"/users/{member['id']}", status=204)
    history = testapp.get("/checkout-events", {"userId": member["id"]}).json["items"]
    actors = [(e["checkoutId"], e["type"], e["data"]["actor"]) for e in history]
    assert actors == [
        (loan["id"], "checked_out", member["id"]),
        (loan["id"], "renewed", member["id"]),
        (loan["id"], "returned", testapp.user_id),
        (other["id"], "checked_out", testapp.user_id),
        (loan["id"], "deleted", testapp.user_id),
        (other["id"], "deleted", testapp.user_id),
    ]


def test_no_password_or_token_hash_in_any_response_or_log(app, dbconnection, testapp, anonymous, caplog):
    secrets = ["Pa55word-never-shown", "short1"]
    bodies = []
    with caplog.at_level(logging.DEBUG):
        created = testapp.post_json(
            "/users", {"name": "S", "email": "s@example.org", "password": secrets[0]}, status=201
        )
        bodies.append(created.body)
        for attempt in (
            testapp.post_json(
                "/users", {"name": "T", "email": "t@example.org", "password": secrets[1]}, status=400
            ),
            testapp.post_json(
                "/users", {"name": "T", "email": "t@example.org", "password": 12345678}, status=400
            ),
            testapp.post(
                "/users",
                f'{{"name": "T", "password": "{secrets[0]}"',
                content_type="application/json",
                status=400,
            ),
            anonymous.post_json(
                "/auth/tokens", {"email": "s@example.org", "password": secrets[1]}, status=401
            ),
            anonymous.post_json("/auth/tokens", {"email": "s@example.org", "password": 42}, status=400),
        ):
            bodies.append(attempt.body)
        issued = anonymous.post_json("/auth/tokens", {"email": "s@example.org", "password": secrets[0]}).json
        me = as_token(app, dbconnection, issued["token"])
        bodies += [me.get(f"/users/{created.json['id']}").body, me.get("/users", status=403).body]
        bodies.append(me.delete("/auth/tokens/current", status=204).body)
        bodies.append(me.get(f"/users/{created.json['id']}", status=401).body)
    token_hash = hashlib.sha256(issued["token"].encode()).hexdigest()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    text = b"\n".join(bodies).decode()
    for secret in [*secrets, token_hash, "12345678", "$argon2"]:
        assert secret not in text, secret
        assert secret not in logged, secret


def test_create_librarian_command(fresh_database):
    url = fresh_database("sqlite")
    command = [
        sys.executable,
        "-m",
        "booknexus.operations.scripts.create_librarian",
        str(ROOT / "development.ini"),
    ]
    env = {**os.environ, DATABASE_URL_ENV: url}

    def run(*args, password):
        return subprocess.run(
            [*command, *args], input=password + "\n", env=env, capture_output=True, text=True, timeout=60
        )

    assert run("head@example.org", "--password-stdin", password="short").returncode == 2
    made = run("head@example.org", "--name", "Head Librarian", "--password-stdin", password=PASSWORD)
    assert made.returncode == 0, made.stderr
    assert "librarian head@example.org" in made.stdout
    app = booknexus.config.main({}, **app_settings(url))
    try:
        issued = webtest.TestApp(app).post_json(
            "/auth/tokens", {"email": "head@example.org", "password": PASSWORD}
        )
        assert issued.json["role"] == "librarian"
        again = run("head@example.org", "--password-stdin", password="a different one")  # promote/reset
        assert again.returncode == 0
        webtest.TestApp(app).post_json(
            "/auth/tokens", {"email": "head@example.org", "password": "a different one"}, status=201
        )
    finally:
        close_app(app)


@pytest.fixture
def throttled(fresh_database, monkeypatch):
    """An app with tight login limits, and a count of the password checks it makes."""
    settings = {
        "booknexus.login_limit.per_account": "3 per 15 minutes",
        "booknexus.login_limit.per_address": "5 per 15 minutes",
    }
    application = booknexus.config.main({}, **app_settings(fresh_database("sqlite"), **settings))
    verified = []
    real = booknexus.accounts.views.tokens.verify_password
    monkeypatch.setattr(
        booknexus.accounts.views.tokens, "verify_password", lambda *args: verified.append(1) or real(*args)
    )
    librarian = webtest.TestApp(application, extra_environ=bearer(librarian_token_for(application)))
    for name in ("ann", "bob"):
        librarian.post_json("/users", {"name": name, "email": f"{name}@example.org", "password": PASSWORD})
    yield application, verified
    close_app(application)


def librarian_token_for(application) -> str:
    engine = application.registry["dbengine"]
    with sa.orm.Session(engine) as session, session.begin():
        return issue_token(session)[1]


def attempt(application, email, password, address="192.0.2.1", status=201):
    client = webtest.TestApp(application, extra_environ={"REMOTE_ADDR": address})
    return client.post_json("/auth/tokens", {"email": email, "password": password}, status=status)


def test_failed_logins_are_limited_per_account_without_hashing(throttled):
    application, verified = throttled
    for _ in range(2):
        attempt(application, "ann@example.org", "wrong guess", status=401)
    attempt(application, "ann@example.org", PASSWORD)  # a success clears the account's failures
    for _ in range(3):
        attempt(application, "ANN@example.org", "wrong guess", status=401)  # the email in any case
    checks = len(verified)
    refused = attempt(application, "ann@example.org", PASSWORD, status=429)
    error = refused.json["error"]
    assert (error["code"], error["details"]["limit"]) == ("too_many_attempts", "account")
    assert 0 < int(refused.headers["Retry-After"]) <= 15 * 60
    assert error["details"]["retryAfter"] == int(refused.headers["Retry-After"])
    assert len(verified) == checks  # refused before any password was hashed
    attempt(application, "bob@example.org", PASSWORD, address="192.0.2.9")  # others are unaffected


def test_failed_logins_are_limited_per_client_address(throttled):
    application, verified = throttled
    for email in ("ann", "bob", "nobody", "nobody2", "nobody3"):
        attempt(application, f"{email}@example.org", "wrong guess", address="198.51.100.7", status=401)
    refused = attempt(application, "bob@example.org", PASSWORD, address="198.51.100.7", status=429)
    assert refused.json["error"]["details"]["limit"] == "address"
    attempt(application, "bob@example.org", PASSWORD, address="198.51.100.8")  # another address
    assert len(verified) == 6


def test_wrong_current_passwords_count_as_failed_logins(throttled):
    application, _ = throttled
    token = attempt(application, "ann@example.org", PASSWORD).json
    me = webtest.TestApp(application, extra_environ={**bearer(token["token"]), "REMOTE_ADDR": "203.0.113.5"})
    change = {"password": "a new password", "currentPassword": "guessing"}
    for _ in range(3):
        me.patch_json(f"/users/{token['userId']}", change, status=403)
    refused = me.patch_json(f"/users/{token['userId']}", {**change, "currentPassword": PASSWORD}, status=429)
    assert refused.json["error"]["code"] == "too_many_attempts"
    attempt(application, "ann@example.org", PASSWORD, status=429)
