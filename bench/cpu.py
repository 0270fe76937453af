"""In-process CPU per request through WebTest: steadier than req/s on a shared machine.

    BOOKNEXUS_DATABASE_URL=<a migrated, empty database> python bench/cpu.py

Prints JSON: microseconds of this process's CPU (time.process_time) per request, best of
BATCHES batches, for a constant-JSON Pyramid view and for BookNexus requests. Only the
public API is used, so the same script measures an older checkout of the code too.
"""

import json
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
import webtest

sys.path.insert(0, str(Path.cwd()))  # the tree being measured

import booknexus  # noqa: E402
from booknexus.accounts import tokens  # noqa: E402
from booknexus.users.models import User  # noqa: E402
from serve import baseline_app  # noqa: E402  (bench/, this script's folder)

BATCHES = int(os.environ.get("BENCH_CPU_BATCHES", 7))
PER_BATCH = int(os.environ.get("BENCH_CPU_REQUESTS", 200))


def cpu_per_call(call, calls_per_step: int = 1) -> float:
    """Best batch's mean CPU per request, in microseconds."""
    call()  # warm up
    best = float("inf")
    for _ in range(BATCHES):
        start = time.process_time()
        for _ in range(PER_BATCH):
            call()
        best = min(best, (time.process_time() - start) / (PER_BATCH * calls_per_step))
    return round(best * 1e6, 1)


def main() -> int:
    url = os.environ["BOOKNEXUS_DATABASE_URL"]
    app = booknexus.main({}, **{"sqlalchemy.url": url, "booknexus.max_renewals": "1000000"})
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session, session.begin():
        librarian = User(name="Bench", email="bench-librarian@example.org", role="librarian")
        session.add(librarian)
        session.flush()
        token, _ = tokens.issue(session, librarian, timedelta(hours=2))
    engine.dispose()
    client = webtest.TestApp(app, extra_environ={"HTTP_AUTHORIZATION": f"Bearer {token}"})
    reader = client.post_json("/users", {"name": "Reader", "email": "reader@example.org"}).json
    book = client.post_json("/books", {"title": "Dune", "author": "Frank Herbert", "copies": 100000}).json
    wanted = client.post_json("/books", {"title": "Wanted", "author": "W", "copies": 1}).json
    body = {"userId": reader["id"], "bookId": book["id"]}

    def checkout_and_return():
        loan = client.post_json("/checkouts", body).json
        client.post(f"/checkouts/{loan['id']}/return")

    def hold_and_cancel():
        hold = client.post_json("/holds", {"userId": reader["id"], "bookId": wanted["id"]}).json
        client.delete(f"/holds/{hold['id']}")

    constant = webtest.TestApp(baseline_app())
    results = {
        "constant view": cpu_per_call(lambda: constant.get("/constant/1")),
        "GET /books/{id}": cpu_per_call(lambda: client.get(f"/books/{book['id']}")),
        "POST /checkouts + return": cpu_per_call(checkout_and_return, calls_per_step=2),
    }
    if "holds" in {route.name for route in app.routes_mapper.get_routes()}:
        results["POST /holds + DELETE"] = cpu_per_call(hold_and_cancel, calls_per_step=2)
    app.registry["dbengine"].dispose()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
