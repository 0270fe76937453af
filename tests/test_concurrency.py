"""Concurrent requests against a real waitress server and real PostgreSQL."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from booknexus.circulation.eventlog.projection import compare
from booknexus.circulation.eventlog.streams import CHECKOUTS
from booknexus.circulation.privacy import Policy, apply_policy
from booknexus.db.engines import get_session_factory

pytestmark = pytest.mark.slow


def fire_at_once(count: int, call):
    barrier = threading.Barrier(count)

    def run(i):
        barrier.wait()
        return call(i)

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def test_last_copy_goes_to_exactly_one_of_concurrent_checkouts(serve):
    served = serve("postgresql")
    book = served.request("POST", "/books", {"title": "Last", "author": "Copy", "copies": 1})[1]
    users = [
        served.request("POST", "/users", {"name": f"U{i}", "email": f"u{i}@example.org"})[1] for i in range(8)
    ]
    for _ in range(3):  # several rounds, so a lucky ordering cannot pass by chance
        results = fire_at_once(
            len(users),
            lambda i: served.request("POST", "/checkouts", {"userId": users[i]["id"], "bookId": book["id"]}),
        )
        statuses = sorted(status for status, _ in results)
        assert statuses == [201] + [409] * (len(users) - 1), results
        assert {body["error"]["code"] for status, body in results if status == 409} == {"no_copy_available"}
        winner = next(body for status, body in results if status == 201)
        open_loans = served.request("GET", f"/checkouts?bookId={book['id']}&open=true")[1]["items"]
        assert [loan["id"] for loan in open_loans] == [winner["id"]]
        assert served.request("POST", f"/checkouts/{winner['id']}/return")[0] == 200


def test_tailing_the_log_is_gapless_under_concurrent_writers(serve):
    """A reader polling `after=<last position>` while writers append sees every event, in order."""
    served = serve("postgresql", **{"booknexus.max_renewals": "1000"})
    writers, rounds = 6, 15
    book = served.request("POST", "/books", {"title": "Busy", "author": "Book", "copies": writers})[1]
    users = [
        served.request("POST", "/users", {"name": f"W{i}", "email": f"w{i}@example.org"})[1]
        for i in range(writers)
    ]
    done = threading.Event()
    collected: list[dict] = []

    def tail():
        after = 0
        while True:
            finished = done.is_set()  # read before polling: one more full poll after writers stop
            while True:
                page = served.request("GET", f"/checkout-events?after={after}&limit=500")[1]
                collected.extend(page["items"])
                if page["items"]:
                    after = page["items"][-1]["position"]
                if page["next"] is None:
                    break
            if finished:
                return

    def write(i):
        for _ in range(rounds):
            status, loan = served.request(
                "POST", "/checkouts", {"userId": users[i]["id"], "bookId": book["id"]}
            )
            assert status == 201, loan
            assert served.request("POST", f"/checkouts/{loan['id']}/renew")[0] == 200
            assert served.request("POST", f"/checkouts/{loan['id']}/return")[0] == 200

    reader = threading.Thread(target=tail)
    reader.start()
    try:
        fire_at_once(writers, write)
    finally:
        done.set()
        reader.join(timeout=60)

    final, after = [], 0
    while True:
        page = served.request("GET", f"/checkout-events?after={after}&limit=500")[1]
        final.extend(page["items"])
        if page["next"] is None:
            break
        after = page["next"]
    assert len(final) == writers * rounds * 3
    assert [e["position"] for e in collected] == [e["position"] for e in final]
    assert collected == final


def test_returned_copy_goes_to_the_first_hold_not_to_racing_borrowers(serve):
    """One copy on loan, two holds waiting; its return races eight other members borrowing."""
    served = serve("postgresql")
    for round_ in range(3):  # several rounds, so a lucky ordering cannot pass by chance
        book = served.request("POST", "/books", {"title": f"Wanted {round_}", "author": "A", "copies": 1})[1]
        people = [
            served.request(
                "POST", "/users", {"name": f"P{round_}-{i}", "email": f"p{round_}-{i}@example.org"}
            )[1]
            for i in range(11)
        ]
        borrower, first, second, racers = people[0], people[1], people[2], people[3:]
        loan = served.request("POST", "/checkouts", {"userId": borrower["id"], "bookId": book["id"]})[1]
        holds = [
            served.request("POST", "/holds", {"userId": user["id"], "bookId": book["id"]})[1]
            for user in (first, second)
        ]
        assert [h["position"] for h in holds] == [1, 2]

        def act(i, loan=loan, racers=racers, book=book):
            if i == 0:
                return served.request("POST", f"/checkouts/{loan['id']}/return")
            return served.request("POST", "/checkouts", {"userId": racers[i - 1]["id"], "bookId": book["id"]})

        results = fire_at_once(1 + len(racers), act)
        assert results[0][0] == 200, results[0]
        assert [status for status, _ in results[1:]] == [409] * len(racers), results
        assert {body["error"]["code"] for _, body in results[1:]} == {"no_copy_available"}
        after = [served.request("GET", f"/holds/{h['id']}")[1] for h in holds]
        assert [(h["status"], h["position"]) for h in after] == [("ready", None), ("waiting", 1)]
        # handed over exactly once, though the return and every racer each settle the queue
        logged = [
            [e["type"] for e in served.request("GET", f"/holds/{h['id']}/events")[1]["items"]] for h in holds
        ]
        assert logged == [["placed", "ready"], ["placed"]]
        assert served.request("GET", f"/books/{book['id']}")[1]["available"] == 0


def test_concurrent_holds_take_positions_one_to_n(serve):
    """Many members place holds on one book at once: positions 1..n, no duplicate, no gap."""
    served = serve("postgresql")
    members = 12
    for round_ in range(3):
        book = served.request("POST", "/books", {"title": f"Queue {round_}", "author": "A", "copies": 1})[1]
        users = [
            served.request(
                "POST", "/users", {"name": f"Q{round_}-{i}", "email": f"q{round_}-{i}@example.org"}
            )[1]
            for i in range(members + 1)
        ]
        served.request("POST", "/checkouts", {"userId": users[0]["id"], "bookId": book["id"]})
        results = fire_at_once(
            members,
            lambda i, users=users, book=book: served.request(
                "POST", "/holds", {"userId": users[i + 1]["id"], "bookId": book["id"]}
            ),
        )
        assert [status for status, _ in results] == [201] * members, results
        placed = sorted((body["position"], body["id"]) for _, body in results)
        assert [position for position, _ in placed] == list(range(1, members + 1))
        # the order of the queue is the order of the positions answered
        assert [hold_id for _, hold_id in placed] == sorted(hold_id for _, hold_id in placed)
        queue = served.request("GET", f"/holds?bookId={book['id']}&status=waiting&limit=500")[1]["items"]
        assert [(h["id"], h["position"]) for h in queue] == [(hold_id, pos) for pos, hold_id in placed]


def deadlocks(served) -> int:
    """PostgreSQL's count of deadlocks detected in the served database. Each backend reports
    its counts when it ends, so the app's connections are closed first."""
    engine = served.app.registry["dbengine"]
    engine.dispose()
    time.sleep(1.5)  # closed backends flush their statistics as they exit
    with engine.connect() as connection:
        return connection.exec_driver_sql(
            "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).scalar()


def test_loan_limit_holds_when_a_reader_borrows_many_books_at_once(serve):
    """9 open loans of 10 allowed; 8 different books borrowed at the same moment: exactly one."""
    served = serve("postgresql", **{"booknexus.max_loans": "10"})
    reader = served.request("POST", "/users", {"name": "Greedy", "email": "greedy@example.org"})[1]
    for round_ in range(3):
        books = [
            served.request("POST", "/books", {"title": f"B{round_}-{i}", "author": "A", "copies": 1})[1]
            for i in range(17)
        ]
        for book in books[:9]:
            assert (
                served.request("POST", "/checkouts", {"userId": reader["id"], "bookId": book["id"]})[0] == 201
            )
        results = fire_at_once(
            8,
            lambda i, books=books: served.request(
                "POST", "/checkouts", {"userId": reader["id"], "bookId": books[9 + i]["id"]}
            ),
        )
        assert sorted(status for status, _ in results) == [201] + [409] * 7, results
        assert {body["error"]["code"] for status, body in results if status == 409} == {"loan_limit"}
        open_loans = served.request("GET", f"/checkouts?userId={reader['id']}&open=true&limit=500")[1][
            "items"
        ]
        assert len(open_loans) == 10
        for loan in open_loans:
            assert served.request("POST", f"/checkouts/{loan['id']}/return")[0] == 200
    assert deadlocks(served) == 0


def test_hold_limit_holds_when_a_reader_places_many_holds_at_once(serve):
    """4 open holds of 5 allowed; 6 more placed at the same moment on different books: exactly one."""
    served = serve("postgresql", **{"booknexus.max_holds": "5"})
    reader = served.request("POST", "/users", {"name": "Eager", "email": "eager@example.org"})[1]
    other = served.request("POST", "/users", {"name": "Has them", "email": "has@example.org"})[1]
    for round_ in range(3):
        books = [
            served.request("POST", "/books", {"title": f"H{round_}-{i}", "author": "A", "copies": 1})[1]
            for i in range(10)
        ]
        for book in books:  # all on loan, so every hold waits
            assert (
                served.request("POST", "/checkouts", {"userId": other["id"], "bookId": book["id"]})[0] == 201
            )
        for book in books[:4]:
            assert served.request("POST", "/holds", {"userId": reader["id"], "bookId": book["id"]})[0] == 201
        results = fire_at_once(
            6,
            lambda i, books=books: served.request(
                "POST", "/holds", {"userId": reader["id"], "bookId": books[4 + i]["id"]}
            ),
        )
        assert sorted(status for status, _ in results) == [201] + [409] * 5, results
        assert {body["error"]["code"] for status, body in results if status == 409} == {"hold_limit"}
        waiting = served.request("GET", f"/holds?userId={reader['id']}&status=waiting&limit=500")[1]["items"]
        assert len(waiting) == 5
        for hold_ in waiting:
            assert served.request("DELETE", f"/holds/{hold_['id']}")[0] == 204
        for loan in served.request("GET", f"/checkouts?userId={other['id']}&open=true&limit=500")[1]["items"]:
            assert served.request("POST", f"/checkouts/{loan['id']}/return")[0] == 200
    assert deadlocks(served) == 0


def test_deleting_a_reader_races_their_returns_and_the_queues_without_deadlock(serve):
    """A reader with loans and holds is deleted while their loans are returned, their holds
    cancelled and other readers' returns make their holds ready: no deadlock, no 5xx."""
    served = serve("postgresql", **{"retry.attempts": "1"})  # a deadlock must show, not be retried
    for round_ in range(4):
        doomed = served.request("POST", "/users", {"name": "Doomed", "email": f"d{round_}@example.org"})[1]
        others = [
            served.request("POST", "/users", {"name": "O", "email": f"o{round_}-{i}@example.org"})[1]
            for i in range(4)
        ]
        books = [
            served.request("POST", "/books", {"title": f"D{round_}-{i}", "author": "A", "copies": 1})[1]
            for i in range(8)
        ]
        loans = [
            served.request("POST", "/checkouts", {"userId": doomed["id"], "bookId": book["id"]})[1]
            for book in books[:4]
        ]
        others_loans = [
            served.request("POST", "/checkouts", {"userId": reader["id"], "bookId": book["id"]})[1]
            for reader, book in zip(others, books[4:], strict=True)
        ]
        holds = [
            served.request("POST", "/holds", {"userId": doomed["id"], "bookId": book["id"]})[1]
            for book in books[4:]
        ]
        for reader, book in zip(others, books[:4], strict=True):  # others wait for the doomed's loans
            assert served.request("POST", "/holds", {"userId": reader["id"], "bookId": book["id"]})[0] == 201
        actions = (
            [("DELETE", f"/users/{doomed['id']}")]
            + [("POST", f"/checkouts/{loan['id']}/return") for loan in loans + others_loans]
            + [("DELETE", f"/holds/{hold_['id']}") for hold_ in holds]
        )
        results = fire_at_once(len(actions), lambda i, actions=actions: served.request(*actions[i]))
        assert results[0][0] == 204, results[0]
        assert all(status < 500 for status, _ in results), results
        assert {status for status, _ in results[1:]} <= {200, 204, 404, 409}, results
        assert served.request("GET", f"/checkouts?userId={doomed['id']}")[1]["items"] == []
        assert served.request("GET", f"/holds?userId={doomed['id']}")[1]["items"] == []
    assert deadlocks(served) == 0


def test_librarians_removed_at_once_wait_in_one_order(serve):
    """Two librarians deleted at the same moment, each deletion checking the other librarians
    (the last-librarian rule): both go, and neither waits for the other in a circle, because
    every deletion locks the user and all librarians in id order (the lock order's step 1)."""
    served = serve("postgresql", **{"retry.attempts": "1"})  # a deadlock must show, not be retried
    for round_ in range(10):
        pair = [
            served.request(
                "POST",
                "/users",
                {"name": "Colleague", "email": f"c{round_}-{i}@example.org", "role": "librarian"},
            )[1]
            for i in range(2)
        ]
        results = fire_at_once(2, lambda i, pair=pair: served.request("DELETE", f"/users/{pair[i]['id']}"))
        assert [status for status, _ in results] == [204, 204], results
    assert deadlocks(served) == 0


def test_the_retention_job_and_deletions_of_its_records_wait_in_one_order(serve):
    """booknexus-anonymise rewrites closed loans while a librarian deletes the same loans: the
    job locks their books first, as every deletion does, so neither waits for the other in a
    circle, and the logs still replay to the table."""
    served = serve("postgresql", **{"retry.attempts": "1"})  # a deadlock must show, not be retried
    engine = served.app.registry["dbengine"]
    for round_ in range(3):
        reader = served.request("POST", "/users", {"name": "R", "email": f"r{round_}@example.org"})[1]
        loans = []
        for i in range(8):
            book = served.request("POST", "/books", {"title": f"P{round_}-{i}", "author": "A", "copies": 1})[
                1
            ]
            loan = served.request("POST", "/checkouts", {"userId": reader["id"], "bookId": book["id"]})[1]
            assert served.request("POST", f"/checkouts/{loan['id']}/return")[0] == 200
            loans.append(loan)
        with engine.begin() as connection:
            connection.exec_driver_sql(
                'UPDATE "Checkouts" SET "returnedAt" = now() - interval \'40 days\' '
                f'WHERE "userId" = {reader["id"]}'
            )

        def act(i, loans=loans):
            if i == 0:
                return apply_policy(get_session_factory(engine), Policy(30, 30))
            return served.request("DELETE", f"/checkouts/{loans[i - 1]['id']}")

        results = fire_at_once(1 + len(loans), act)
        assert {status for status, _ in results[1:]} == {204}, results
    with sa.orm.Session(engine) as session:
        assert not compare(session, CHECKOUTS)
    assert deadlocks(served) == 0
