"""Concurrent requests against a real waitress server and real PostgreSQL."""

import threading
from concurrent.futures import ThreadPoolExecutor


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
