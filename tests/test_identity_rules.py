"""Who an account is: the anonymous reader stays what it is, and an email is one identity
whatever its case (on a legacy database holding pairs too)."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, app_settings, close_app, issue_token, started
from legacy import insert_checkout
from test_migrations import build_legacy, query

import booknexus.config
from booknexus.accounts import tokens
from booknexus.accounts.models import User
from booknexus.accounts.passwords import hash_password
from booknexus.catalog.models import Book
from booknexus.db.engines import DATABASE_URL_ENV, get_engine

PASSWORD = "s3cret-but-long"
ANONYMOUS_EMAIL = "anonymous@booknexus.invalid"


def create_librarian(url: str, email: str, password: str = PASSWORD) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "booknexus.operations.scripts.create_librarian",
            str(ROOT / "development.ini"),
            email,
            "--password-stdin",
        ],
        input=password + "\n",
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=300,  # Argon2 on a busy machine
    )


def one(url: str, sql: str, **params):
    engine = get_engine({"sqlalchemy.url": url})
    with engine.connect() as connection:
        row = connection.execute(sa.text(sql), params).one()
    engine.dispose()
    return tuple(row)


def anonymous_reader(url: str) -> tuple:
    return one(url, """SELECT id, email, role, "passwordHash" FROM "Users" WHERE role = 'anonymous'""")


# -- the anonymous reader ---------------------------------------------------------------------


def test_create_librarian_refuses_the_anonymous_reader(backend, fresh_database):
    url = fresh_database(backend)
    before = anonymous_reader(url)
    for email in (ANONYMOUS_EMAIL, "Anonymous@BookNexus.invalid"):
        refused = create_librarian(url, email)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "anonymous_reader" in refused.stderr and "cannot be changed" in refused.stderr
        assert "is ready" not in refused.stdout
    assert anonymous_reader(url) == before  # still the anonymous reader, still without a password
    assert before[2:] == ("anonymous", None)


def test_the_database_keeps_the_anonymous_reader(backend, fresh_database):
    """By hand, past the API and the command: no DELETE (its ON DELETE CASCADE would take the
    anonymised history with it), no new role, email, id or password; nobody else becomes it."""
    url = fresh_database(backend)
    anonymous_id = anonymous_reader(url)[0]
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        book = connection.execute(sa.insert(Book).values(title="Kept", author="Someone").returning(Book.id))
        book = book.scalar_one()
        loan = insert_checkout(connection, anonymous_id, book, returned=True)  # an anonymised loan
        member = connection.execute(
            sa.insert(User).values(name="M", email="m@example.org", role="member").returning(User.id)
        ).scalar_one()
    refused = [
        f'DELETE FROM "Users" WHERE id = {anonymous_id}',
        "DELETE FROM \"Users\" WHERE role = 'anonymous'",
        f"UPDATE \"Users\" SET role = 'librarian' WHERE id = {anonymous_id}",
        f"UPDATE \"Users\" SET role = 'member' WHERE id = {anonymous_id}",
        f"UPDATE \"Users\" SET email = 'someone@example.org' WHERE id = {anonymous_id}",
        f'UPDATE "Users" SET "passwordHash" = \'x\' WHERE id = {anonymous_id}',
        f'UPDATE "Users" SET id = 999 WHERE id = {anonymous_id}',
        f"UPDATE \"Users\" SET role = 'anonymous' WHERE id = {member}",
        'INSERT INTO "Users" (name, email, role, "keepHistory", "createdAt", "updatedAt") '
        "VALUES ('Another', 'another@example.org', 'anonymous', false, "
        "'2026-01-01 10:00:00', '2026-01-01 10:00:00')",
    ]
    for statement in refused:
        with pytest.raises(sa.exc.IntegrityError, match="anonymous reader"), engine.begin() as connection:
            connection.exec_driver_sql(statement)
    with engine.begin() as connection:  # what it may still have changed; and anyone else's row
        connection.exec_driver_sql(f"UPDATE \"Users\" SET name = 'Anonymous' WHERE id = {anonymous_id}")
        connection.exec_driver_sql(f"UPDATE \"Users\" SET role = 'librarian' WHERE id = {member}")
        connection.exec_driver_sql(f'DELETE FROM "Users" WHERE id = {member}')
    with engine.connect() as connection:
        kept = connection.exec_driver_sql(f'SELECT id, "userId" FROM "Checkouts" WHERE id = {loan}').all()
        roles = connection.exec_driver_sql("SELECT count(*) FROM \"Users\" WHERE role = 'anonymous'").scalar()
    engine.dispose()
    assert [tuple(row) for row in kept] == [(loan, anonymous_id)]  # nothing cascaded away
    assert roles == 1
    assert anonymous_reader(url) == (anonymous_id, ANONYMOUS_EMAIL, "anonymous", None)


def test_resetting_a_password_with_the_command_revokes_the_accounts_tokens(backend, fresh_database):
    url = fresh_database(backend)
    engine = get_engine({"sqlalchemy.url": url})
    with sa.orm.Session(engine) as session, session.begin():
        user, token = issue_token(session, role="member", email="Reset@example.org")
        _, other_token = issue_token(session, role="member")
        user_id = user.id
    made = create_librarian(url, "Reset@example.org")
    assert made.returncode == 0, made.stderr
    assert f"(user {user_id})" in made.stdout
    with sa.orm.Session(engine) as session, session.begin():
        assert tokens.find(session, token) is None  # taken before the reset: no longer accepted
        assert tokens.find(session, other_token) is not None  # another account's: untouched
        assert session.get(User, user_id).role == "librarian"
        token, _ = tokens.issue(session, session.get(User, user_id), timedelta(hours=1))
    again = create_librarian(url, "RESET@example.org", "another long one")  # the account, in any case
    assert again.returncode == 0, again.stderr
    assert f"(user {user_id})" in again.stdout
    with sa.orm.Session(engine) as session:
        assert tokens.find(session, token) is None
        assert tokens.find(session, other_token) is not None
        assert (
            session.scalar(sa.select(sa.func.count()).select_from(User).where(User.email.ilike("reset@%")))
            == 1
        )
    engine.dispose()


# -- one email, whatever its case -------------------------------------------------------------


def test_emails_are_unique_whatever_their_case_and_log_in_in_any_case(testapp, anonymous):
    ada = testapp.post_json("/users", {"name": "Ada", "email": "Ada@x.org", "password": PASSWORD}).json
    for email in ("ada@x.org", "ADA@X.ORG"):
        response = testapp.post_json("/users", {"name": "Other Ada", "email": email}, status=409)
        error = response.json["error"]
        assert (error["code"], error["message"], error["details"]) == (
            "email_taken",
            f"{email} is already registered.",
            {"email": email},
        )
    bob = testapp.post_json("/users", {"name": "Bob", "email": "bob@x.org"}).json
    response = testapp.patch_json(f"/users/{bob['id']}", {"email": "aDa@x.org"}, status=409)
    assert response.json["error"]["code"] == "email_taken"
    # an account may change the case of its own email
    assert testapp.patch_json(f"/users/{bob['id']}", {"email": "Bob@X.org"}).json["email"] == "Bob@X.org"
    for email in ("Ada@x.org", "ada@x.org", "ADA@X.ORG"):
        issued = anonymous.post_json("/auth/tokens", {"email": email, "password": PASSWORD}, status=201)
        assert issued.json["userId"] == ada["id"]


def test_the_database_refuses_an_email_taken_in_another_case(backend, fresh_database):
    url = fresh_database(backend)
    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        connection.execute(sa.insert(User).values(name="Ada", email="Ada@x.org"))
    for email in ("ada@x.org", "ADA@X.ORG"):
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
            connection.execute(sa.insert(User).values(name="Other", email=email))
    engine.dispose()


# -- a legacy database holding pairs ----------------------------------------------------------

LEGACY_EMAILS = {  # id -> email; users 1-3 are build_legacy's own
    4: "Ada@x.org",
    5: "ada@x.org",
    6: "bob@x.org",
    7: "BOB@x.org",
    8: "Bob@X.org",
}


def logged(output: str) -> list[str]:
    """The messages of production.ini's log lines (one JSON object each)."""
    messages = []
    for line in output.splitlines():
        try:
            messages.append(json.loads(line)["message"])
        except (ValueError, KeyError, TypeError):
            messages.append(line)
    return messages


def upgrade_with_alembic(url: str) -> subprocess.CompletedProcess:
    """The design card's command, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "alembic", "-c", str(ROOT / "production.ini"), "upgrade", "head"],
        env={**os.environ, DATABASE_URL_ENV: url},
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


def test_a_legacy_database_with_emails_differing_only_in_case_upgrades(backend, empty_database):
    url = empty_database(backend)
    build_legacy(url, "sequelize")
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for user_id, email in LEGACY_EMAILS.items():
            connection.exec_driver_sql(
                'INSERT INTO "Users" (id, name, email, "createdAt", "updatedAt") VALUES '
                f"({user_id}, 'User {user_id}', '{email}', '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
            )
        if backend == "postgresql":
            connection.exec_driver_sql("SELECT setval('\"Users_id_seq\"', 8)")
    engine.dispose()

    upgraded = upgrade_with_alembic(url)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    output = upgraded.stdout + upgraded.stderr
    reports = [message for message in logged(output) if "differ only in case" in message]
    assert len(reports) == 2, output
    assert reports[0].startswith("users 4, 5 have") and reports[1].startswith("users 6, 7, 8 have"), reports
    aggregate = "array_agg" if backend == "postgresql" else "group_concat"
    find = f'SELECT lower(email), {aggregate}(id) FROM "Users" GROUP BY 1 HAVING count(*) > 1'
    assert all(report.endswith(find) for report in reports), reports
    for email in LEGACY_EMAILS.values():
        assert email not in output  # ids only: no email in a log line
    found = dict(query(url, find))  # the operator's query, as logged, finds them
    assert {key: sorted(map(int, str(ids).strip("{}[]").split(","))) for key, ids in found.items()} == {
        "ada@x.org": [4, 5],
        "bob@x.org": [6, 7, 8],
    }

    engine = get_engine({"sqlalchemy.url": url})
    with engine.begin() as connection:
        for user_id in LEGACY_EMAILS:
            connection.execute(
                sa.update(User).where(User.id == user_id).values(password_hash=hash_password(PASSWORD))
            )
        with sa.orm.Session(bind=connection) as session:
            _, librarian = issue_token(session)
            session.flush()
    app = started(booknexus.config.main({}, **app_settings(url)))
    try:
        client = webtest.TestApp(app)
        for user_id, email in LEGACY_EMAILS.items():  # each account of a pair, by its exact email
            issued = client.post_json("/auth/tokens", {"email": email, "password": PASSWORD}, status=201)
            assert issued.json["userId"] == user_id
        # a case that matches no account exactly names none of them: no guessing between two people
        client.post_json("/auth/tokens", {"email": "ADA@X.ORG", "password": PASSWORD}, status=401)
        desk = webtest.TestApp(app, extra_environ={"HTTP_AUTHORIZATION": f"Bearer {librarian}"})
        # the accounts keep working until a librarian resolves them
        assert (
            desk.patch_json("/users/5", {"name": "Ada Two", "email": "ada@x.org"}).json["name"] == "Ada Two"
        )
        for email in ("ADA@X.ORG", "bob@X.ORG"):  # a new collision is refused by the API
            response = desk.post_json("/users", {"name": "New", "email": email}, status=409)
            assert response.json["error"]["code"] == "email_taken"
        response = desk.patch_json("/users/1", {"email": "aDA@x.org"}, status=409)
        assert response.json["error"]["code"] == "email_taken"
        # resolving a pair: one of them takes another address
        assert desk.patch_json("/users/5", {"email": "ada.two@x.org"}).json["email"] == "ada.two@x.org"
        issued = client.post_json("/auth/tokens", {"email": "ADA@X.ORG", "password": PASSWORD}, status=201)
        assert issued.json["userId"] == 4
    finally:
        close_app(app)
    with engine.connect() as connection:
        for email in ("ADA@X.ORG", "bOb@x.org", "user1@EXAMPLE.org"):  # and by the database
            with pytest.raises(sa.exc.IntegrityError):
                with connection.begin():
                    connection.execute(sa.insert(User).values(name="New", email=email))
        with connection.begin():  # a new address is still welcome
            connection.execute(sa.insert(User).values(name="New", email="new@x.org"))
    engine.dispose()
