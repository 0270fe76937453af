"""Reader privacy: the retention policy hands closed loans and ended holds to the anonymous
reader, in the tables and in both logs, and the logs still refuse every other change."""

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import sqlalchemy as sa
import webtest
from conftest import ROOT, app_settings, bearer, close_app, issue_token, started
from helpers import checkout, hold, make_book, make_user

import booknexus.config
from booknexus.accounts import tokens
from booknexus.accounts.models import User
from booknexus.circulation.eventlog.projection import compare
from booknexus.circulation.eventlog.streams import CHECKOUTS, HOLDS
from booknexus.circulation.privacy import Policy, anonymous_reader, apply_policy
from booknexus.db.engines import DATABASE_URL_ENV, get_engine, get_session_factory
from booknexus.db.schema import utcnow
from booknexus.operations.repair import reasons_to_repair


@pytest.fixture
def library(backend, fresh_database):
    """A served app over a committed database, a librarian client, a hand on the database."""
    url = fresh_database(backend)
    app = started(booknexus.config.main({}, **app_settings(url)))
    hand = get_engine({"sqlalchemy.url": url})
    with sa.orm.Session(hand) as session, session.begin():
        _, token = issue_token(session)
    client = webtest.TestApp(app, extra_environ=bearer(token))
    yield url, app, client, hand
    hand.dispose()
    close_app(app)


def as_reader(app, hand, user_id: int):
    with sa.orm.Session(hand) as session, session.begin():
        token, _ = tokens.issue(session, session.get(User, user_id), timedelta(hours=1))
    return webtest.TestApp(app, extra_environ=bearer(token))


def events(hand, log: str, key: str, record_id: int) -> list[tuple[int, str, dict]]:
    with hand.connect() as connection:
        rows = connection.exec_driver_sql(
            f'SELECT "userId", type, data FROM "{log}" WHERE "{key}" = {record_id} ORDER BY id'
        ).all()
    return [(user, type_, data if isinstance(data, dict) else json.loads(data)) for user, type_, data in rows]


def by_hand(hand, statement: str) -> None:
    with hand.begin() as connection:
        connection.exec_driver_sql(statement)


def ago(hand, days: int) -> str:
    stamp = (utcnow() - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S.%f")
    return stamp + ("+00" if hand.dialect.name == "postgresql" else "")


def drift_free(hand) -> bool:
    with sa.orm.Session(hand) as session:
        return not compare(session, CHECKOUTS) and not compare(session, HOLDS)


def run_policy(hand, days=30, now=None):
    return apply_policy(get_session_factory(hand), Policy(days, days), now)


def test_closed_history_older_than_the_policy_is_anonymised_everywhere(library):
    url, app, client, hand = library
    reader, other = make_user(client), make_user(client)
    me = as_reader(app, hand, reader["id"])
    books = [make_book(client, copies=2) for _ in range(4)]
    old, recent, still_open = (checkout(client, reader, book) for book in books[:3])
    me.post(f"/checkouts/{old['id']}/renew", status=200)  # the reader acting themselves
    for loan in (old, recent):
        client.post(f"/checkouts/{loan['id']}/return", status=200)
    by_hand(hand, f'UPDATE "Checkouts" SET "returnedAt" = \'{ago(hand, 31)}\' WHERE id = {old["id"]}')
    by_hand(hand, f'UPDATE "Checkouts" SET "returnedAt" = \'{ago(hand, 29)}\' WHERE id = {recent["id"]}')
    client.post_json("/checkouts", {"userId": other["id"], "bookId": books[3]["id"]}, status=201)
    client.post_json("/checkouts", {"userId": other["id"], "bookId": books[3]["id"]}, status=201)
    ended = hold(client, reader, books[3])
    waiting = hold(client, other, books[0])  # open: never touched
    client.delete(f"/holds/{ended['id']}", status=204)
    by_hand(hand, f'UPDATE "Holds" SET "endedAt" = \'{ago(hand, 40)}\' WHERE id = {ended["id"]}')
    tail_from = client.get("/checkout-events", {"limit": 500}).json["items"][-1]["position"]

    counts = run_policy(hand)
    assert (counts["checkouts"], counts["holds"]) == (1, 1)
    with sa.orm.Session(hand) as session:
        anonymous = anonymous_reader(session)
    assert client.get(f"/checkouts/{old['id']}").json["userId"] == anonymous
    assert client.get(f"/checkouts/{recent['id']}").json["userId"] == reader["id"]
    assert client.get(f"/checkouts/{still_open['id']}").json["userId"] == reader["id"]
    assert client.get(f"/holds/{ended['id']}").json["userId"] == anonymous
    assert client.get(f"/holds/{waiting['id']}").json["userId"] == other["id"]
    history = events(hand, "CheckoutEvents", "checkoutId", old["id"])
    assert [type_ for _, type_, _ in history][-1] == "anonymised"
    assert {user for user, _, _ in history} == {anonymous}
    actors = [data["actor"] for _, _, data in history]
    assert reader["id"] not in actors and anonymous in actors  # the renewal the reader made
    assert history[-1][2]["reason"] == "policy" and history[-1][2]["actor"] is None
    assert {data["renewals"] for _, type_, data in history if type_ != "checked_out"} == {1}
    hold_history = events(hand, "HoldEvents", "holdId", ended["id"])
    assert [type_ for _, type_, _ in hold_history] == ["placed", "cancelled", "updated", "anonymised"]
    assert {user for user, _, _ in hold_history} == {anonymous}
    assert drift_free(hand)
    tail = client.get("/checkout-events", {"after": tail_from, "limit": 500}).json["items"]
    assert [(e["checkoutId"], e["type"]) for e in tail] == [(old["id"], "anonymised")]
    assert run_policy(hand) == {"checkouts": 0, "checkouts_gone": 0, "holds": 0, "holds_gone": 0}
    with sa.orm.Session(hand) as session:
        assert reasons_to_repair(session) == []


def test_the_readers_choice_and_never(library):
    url, app, client, hand = library
    keeper = make_user(client)
    loan = checkout(client, keeper, make_book(client))
    client.post(f"/checkouts/{loan['id']}/return", status=200)
    by_hand(hand, f'UPDATE "Checkouts" SET "returnedAt" = \'{ago(hand, 60)}\' WHERE id = {loan["id"]}')
    me = as_reader(app, hand, keeper["id"])
    assert me.patch_json(f"/users/{keeper['id']}", {"keepHistory": True}).json["keepHistory"] is True
    assert apply_policy(get_session_factory(hand), Policy(None, None))["checkouts"] == 0
    assert run_policy(hand)["checkouts"] == 0  # kept by choice
    me.patch_json(f"/users/{keeper['id']}", {"keepHistory": False})
    assert run_policy(hand)["checkouts"] == 1  # the policy applies again at the next run
    assert drift_free(hand)


def test_a_deleted_readers_history_falls_under_the_policy(library):
    url, app, client, hand = library
    reader = make_user(client)
    loans = [checkout(client, reader, make_book(client)) for _ in range(2)]
    client.delete(f"/users/{reader['id']}", status=204)
    assert run_policy(hand)["checkouts_gone"] == 0  # deleted today: not due yet
    counts = run_policy(hand, now=utcnow() + timedelta(days=31))
    assert counts["checkouts_gone"] == 2
    with sa.orm.Session(hand) as session:
        anonymous = anonymous_reader(session)
        assert reasons_to_repair(session) == []  # the O(1) sign reads a gone record's event as ended
    for loan in loans:
        history = events(hand, "CheckoutEvents", "checkoutId", loan["id"])
        assert [type_ for _, type_, _ in history] == ["checked_out", "deleted", "anonymised"]
        assert {user for user, _, _ in history} == {anonymous}
        assert history[-1][2] == {"gone": True, "reason": "policy", "actor": None}
    assert drift_free(hand)


def anonymising(connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SELECT set_config('booknexus.anonymising', 'on', true)")
    else:
        connection.exec_driver_sql('INSERT INTO "Anonymising" (id) VALUES (1)')


def test_the_logs_refuse_every_other_change_even_on_the_anonymising_path(library):
    url, app, client, hand = library
    reader = make_user(client)
    closed = checkout(client, reader, make_book(client))
    client.post(f"/checkouts/{closed['id']}/return", status=200)
    still_open = checkout(client, reader, make_book(client))
    with sa.orm.Session(hand) as session:
        anonymous = anonymous_reader(session)
    where = f'WHERE "checkoutId" = {closed["id"]}'
    refused = [
        (True, f'UPDATE "CheckoutEvents" SET "bookId" = "bookId" + 1, "userId" = {anonymous} {where}'),
        (True, f'UPDATE "CheckoutEvents" SET type = \'returned\', "userId" = {anonymous} {where}'),
        (
            True,
            f'UPDATE "CheckoutEvents" SET "occurredAt" = \'{ago(hand, 1)}\', "userId" = {anonymous} {where}',
        ),
        (True, f'UPDATE "CheckoutEvents" SET "userId" = {reader["id"] + 1000} {where}'),
        (True, f'UPDATE "CheckoutEvents" SET "userId" = {anonymous} WHERE "checkoutId" = {still_open["id"]}'),
        (False, f'UPDATE "CheckoutEvents" SET "userId" = {anonymous} {where}'),  # not anonymising
        (True, f'DELETE FROM "CheckoutEvents" {where}'),
    ]
    data_change = (
        "data = (data::jsonb || '{\"renewals\": 9}')::json"
        if hand.dialect.name == "postgresql"
        else "data = json_set(data, '$.renewals', 9)"
    )
    refused.append((True, f'UPDATE "CheckoutEvents" SET "userId" = {anonymous}, {data_change} {where}'))
    for marked, statement in refused:
        with pytest.raises(sa.exc.DatabaseError, match="append-only"):
            with hand.begin() as connection:
                if marked:
                    anonymising(connection)
                connection.exec_driver_sql(statement)
    with hand.begin() as connection:  # the sanctioned change itself goes through
        anonymising(connection)
        connection.exec_driver_sql(f'UPDATE "CheckoutEvents" SET "userId" = {anonymous} {where}')
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql('DELETE FROM "Anonymising"')
    assert {user for user, _, _ in events(hand, "CheckoutEvents", "checkoutId", closed["id"])} == {anonymous}


@pytest.mark.slow
def test_the_job_run_twice_at_once_anonymises_each_record_once(fresh_database):
    url = fresh_database("postgresql")
    engine = get_engine({"sqlalchemy.url": url})
    app = started(booknexus.config.main({}, **app_settings(url)))
    with sa.orm.Session(engine) as session, session.begin():
        _, token = issue_token(session)
    client = webtest.TestApp(app, extra_environ=bearer(token))
    reader = make_user(client)
    book = make_book(client, copies=50)
    loans = [checkout(client, reader, book) for _ in range(10)]
    close_app(app)
    with engine.begin() as connection:  # returned 40 days ago (by hand: the triggers log it)
        connection.exec_driver_sql('UPDATE "Checkouts" SET "returnedAt" = now() - interval \'40 days\'')
    command = [sys.executable, "-m", "booknexus.operations.scripts.anonymise", str(ROOT / "production.ini")]
    env = {**os.environ, DATABASE_URL_ENV: url}
    dry = subprocess.run([*command, "--dry-run"], env=env, capture_output=True, text=True, timeout=120)
    assert dry.returncode == 0 and '"checkouts": 10' in dry.stdout, dry
    with engine.connect() as connection:
        anonymised = "SELECT count(*) FROM \"CheckoutEvents\" WHERE type = 'anonymised'"
        assert connection.exec_driver_sql(anonymised).scalar() == 0  # nothing changed
    runs = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    done = [json.loads(out.split("anonymised: ", 1)[1].split(" (policy")[0]) for out, _ in outputs]
    assert sum(d["checkouts"] for d in done) == 10
    with engine.connect() as connection:
        per_loan = connection.exec_driver_sql(
            'SELECT "checkoutId", count(*) FROM "CheckoutEvents" WHERE type = \'anonymised\' GROUP BY 1'
        ).all()
    assert sorted(per_loan) == sorted((loan["id"], 1) for loan in loans)
    with sa.orm.Session(engine) as session:
        assert not compare(session, CHECKOUTS)
    engine.dispose()


def test_a_readers_history_newest_first_and_paged(library):
    url, app, client, hand = library
    reader = make_user(client)
    titles = [f"Title {n}" for n in range(3)]
    books = [make_book(client, title=title, copies=1) for title in titles]
    loans = [checkout(client, reader, book) for book in books[:2]]
    client.post(f"/checkouts/{loans[0]['id']}/return", status=200)
    placed = hold(client, reader, books[2])
    me = as_reader(app, hand, reader["id"])
    seen, after = [], None
    while True:
        page = me.get(
            f"/users/{reader['id']}/history", {"limit": 2, **({"after": after} if after else {})}
        ).json
        seen += page["items"]
        after = page["next"]
        if after is None:
            break
    assert [(item["kind"], item["id"], item["title"]) for item in seen] == [
        ("hold", placed["id"], "Title 2"),
        ("loan", loans[1]["id"], "Title 1"),
        ("loan", loans[0]["id"], "Title 0"),
    ]
    # a hold on a copy on the shelf waits for the desk to pull it (issue 27)
    assert [item["status"] for item in seen] == ["waiting", "open", "returned"]
    bad = me.get(f"/users/{reader['id']}/history", {"after": "bm9wZQ"}, status=400).json["error"]
    assert (bad["code"], bad["details"]) == ("invalid_value", {"field": "after"})


def test_erasure_is_refused_with_books_out_and_erases_without(library):
    url, app, client, hand = library
    reader, other = make_user(client), make_user(client)
    book, wanted = make_book(client, copies=1), make_book(client, copies=1)
    out = checkout(client, reader, book)
    checkout(client, other, wanted)
    waiting = hold(client, reader, wanted)
    refused = client.post(f"/users/{reader['id']}/erasure", status=409).json["error"]
    assert refused["code"] == "open_loans"
    assert [loan["id"] for loan in refused["details"]["loans"]] == [out["id"]]
    exported = as_reader(app, hand, reader["id"]).get(f"/users/{reader['id']}/export").json
    assert exported["user"]["email"] == reader["email"]
    assert [c["id"] for c in exported["checkouts"]] == [out["id"]]
    assert [h["id"] for h in exported["holds"]] == [waiting["id"]]
    assert {e["type"] for e in exported["checkoutEvents"]} == {"checked_out"}
    client.post(f"/checkouts/{out['id']}/return", status=200)
    client.post(f"/users/{reader['id']}/erasure", status=204)
    client.get(f"/users/{reader['id']}", status=404)
    with sa.orm.Session(hand) as session:
        anonymous = anonymous_reader(session)
    assert client.get(f"/checkouts/{out['id']}").json["userId"] == anonymous  # the loan stays, anonymised
    for log, key, record in (("CheckoutEvents", "checkoutId", out), ("HoldEvents", "holdId", waiting)):
        history = events(hand, log, key, record["id"])
        assert {user for user, _, _ in history} == {anonymous}
        assert history[-1][1] == "anonymised" and history[-1][2]["reason"] == "erasure"
        assert reader["id"] not in [data.get("actor") for _, _, data in history]
    with hand.connect() as connection:
        assert (
            connection.exec_driver_sql(
                f"SELECT count(*) FROM \"Users\" WHERE email = '{reader['email']}'"
            ).scalar()
            == 0
        )
    assert drift_free(hand)


def test_at_zero_days_a_return_anonymises_its_loan(backend, fresh_database):
    url = fresh_database(backend)
    app = started(
        booknexus.config.main({}, **app_settings(url, **{"booknexus.privacy.loan_history_days": "0"}))
    )
    hand = get_engine({"sqlalchemy.url": url})
    with sa.orm.Session(hand) as session, session.begin():
        _, token = issue_token(session)
    client = webtest.TestApp(app, extra_environ=bearer(token))
    try:
        reader = make_user(client)
        loan = checkout(client, reader, make_book(client))
        returned = client.post(f"/checkouts/{loan['id']}/return").json
        with sa.orm.Session(hand) as session:
            anonymous = anonymous_reader(session)
        assert returned["userId"] == anonymous
        history = events(hand, "CheckoutEvents", "checkoutId", loan["id"])
        assert [type_ for _, type_, _ in history] == ["checked_out", "returned", "anonymised"]
        assert {user for user, _, _ in history} == {anonymous}
        assert drift_free(hand)
    finally:
        hand.dispose()
        close_app(app)


def test_the_anonymous_reader_is_listed_only_when_asked_and_cannot_be_changed(testapp, anonymous):
    listed = testapp.get("/users", {"limit": 500}).json["items"]
    assert "anonymous" not in {user["role"] for user in listed}
    everyone = testapp.get("/users", {"limit": 500, "anonymous": "true"}).json["items"]
    (reader,) = [user for user in everyone if user["role"] == "anonymous"]
    assert reader["email"] == "anonymous@booknexus.invalid" and reader["keepHistory"] is False
    for response in (
        testapp.patch_json(f"/users/{reader['id']}", {"name": "Someone"}, status=409),
        testapp.delete(f"/users/{reader['id']}", status=409),
        testapp.post(f"/users/{reader['id']}/erasure", status=409),
    ):
        assert response.json["error"]["code"] == "anonymous_reader"
    login = {"email": reader["email"], "password": "any password at all"}
    assert (
        anonymous.post_json("/auth/tokens", login, status=401).json["error"]["code"] == "invalid_credentials"
    )
