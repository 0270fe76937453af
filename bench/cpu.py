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
from pyramid.paster import get_appsettings

sys.path.insert(0, str(Path.cwd()))  # the tree being measured

from serve import baseline_app, lean_app  # noqa: E402  (bench/, this script's folder)

from booknexus.accounts import tokens  # noqa: E402

try:
    from booknexus.config import main as app_factory
except ImportError:  # a checkout from before the factory left the package's __init__
    from booknexus import main as app_factory

try:
    from booknexus.accounts.models import User
except ImportError:  # a checkout from before the packages followed the library's boundaries
    from booknexus.users.models import User

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


def cpu_per_step(*steps) -> list[float]:
    """Like cpu_per_call for requests that come in a cycle (a checkout, then its return): each
    step's best batch mean, timed on its own; ``steps`` take and return what links them."""

    def cycle(timings=None):
        carried = None
        for i, step in enumerate(steps):
            start = time.process_time()
            carried = step(carried)
            if timings is not None:
                timings[i] += time.process_time() - start

    cycle()  # warm up
    best = [float("inf")] * len(steps)
    for _ in range(BATCHES):
        timings = [0.0] * len(steps)
        for _ in range(PER_BATCH):
            cycle(timings)
        best = [min(b, t / PER_BATCH) for b, t in zip(best, timings, strict=True)]
    return [round(b * 1e6, 1) for b in best]


def production_settings(url: str) -> dict:
    """production.ini's settings (responses unvalidated, as served), on the bench database."""
    ini = Path.cwd() / "production.ini"
    settings = dict(get_appsettings(str(ini))) if ini.exists() else {}  # an older tree: defaults
    return {
        **settings,
        "sqlalchemy.url": url,
        "booknexus.max_renewals": "1000000",
        "booknexus.max_loans": "1000000",
    }


def librarian(url: str) -> str:
    """A new librarian's bearer token."""
    engine = sa.create_engine(url)
    with sa.orm.Session(engine) as session, session.begin():
        user = User(name="Bench", email=f"bench-librarian-{os.getpid()}@example.org", role="librarian")
        session.add(user)
        session.flush()
        token, _ = tokens.issue(session, user, timedelta(hours=2))
    engine.dispose()
    return token


def main() -> int:
    url = os.environ["BOOKNEXUS_DATABASE_URL"]
    app = app_factory({}, **production_settings(url))
    if "booknexus.startup" in app.registry:
        app.registry["booknexus.startup"].wait(120)
    client = webtest.TestApp(app, extra_environ={"HTTP_AUTHORIZATION": f"Bearer {librarian(url)}"})
    reader = client.post_json("/users", {"name": "Reader", "email": "reader@example.org"}).json
    book = client.post_json("/books", {"title": "Dune", "author": "Frank Herbert", "copies": 100000}).json
    wanted = client.post_json("/books", {"title": "Wanted", "author": "W", "copies": 1}).json
    for i in range(50):  # a catalogue and a history to read
        client.post_json("/books", {"title": f"Dune part {i}", "author": "Frank Herbert"})
        loan = client.post_json("/checkouts", {"userId": reader["id"], "bookId": book["id"]}).json
        client.post(f"/checkouts/{loan['id']}/return")
    body = {"userId": reader["id"], "bookId": book["id"]}
    constant = webtest.TestApp(baseline_app())
    lean = webtest.TestApp(lean_app(url))

    def read(path):
        return cpu_per_call(lambda: client.get(path))

    results = {
        "constant view": cpu_per_call(lambda: constant.get("/constant/1")),
        "GET /books/{id}": read(f"/books/{book['id']}"),
        "GET /books?q=": read("/books?q=dune%20herb&limit=20"),
        "GET /checkouts?userId=": read(f"/checkouts?userId={reader['id']}&limit=20"),
        "GET /checkout-events": read("/checkout-events?limit=20"),
        # the lean floor: each read as one statement in a bare Pyramid view (bench/serve.py)
        "lean GET /books/{id}": cpu_per_call(lambda: lean.get(f"/books/{book['id']}")),
        "lean GET /books?q=": cpu_per_call(lambda: lean.get("/search?q=dune%20herb")),
        "lean GET /checkouts?userId=": cpu_per_call(lambda: lean.get(f"/checkouts?userId={reader['id']}")),
        "lean GET /checkout-events": cpu_per_call(lambda: lean.get("/checkout-events")),
    }
    checkout, checkin = cpu_per_step(
        lambda _: client.post_json("/checkouts", body).json["id"],
        lambda loan_id: client.post(f"/checkouts/{loan_id}/return"),
    )
    results |= {"POST /checkouts": checkout, "POST /checkouts/{id}/return": checkin}
    if "holds" in {route.name for route in app.routes_mapper.get_routes()}:
        place, _ = cpu_per_step(
            lambda _: client.post_json("/holds", {"userId": reader["id"], "bookId": wanted["id"]}).json["id"],
            lambda hold_id: client.delete(f"/holds/{hold_id}"),
        )
        results["POST /holds"] = place
    app.registry["dbengine"].dispose()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
