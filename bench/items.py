"""make bench's measurements of items (revision 0017, the desk, per-branch availability).

bench/run.py calls ``BENCHES``; each returns rows as its own benches do. As a child process:

    items.py record PATH   run `alembic upgrade head` (production.ini) on BOOKNEXUS_DATABASE_URL,
                           pickling every statement and its parameters sent to the database
    items.py desk          in-process CPU of the desk's check-out and check-in by barcode and of
                           the old POST /checkouts and its return, in the same process; prints JSON
    items.py plan ID       GET /books/ID in process; prints its statement's EXPLAIN ANALYZE

BENCH_ITEMS_BOOKS sets the upgrade's size (make bench: 100,000 books; make bench-scale:
1,000,000), five loans a book, a tenth of them open.
"""

import json
import os
import pickle
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from run import (
    BIG,
    HERE,
    PYTHON,
    RUNS,
    STATE_JSON,
    create_database,
    drop_database,
    env_for,
    libpq,
    migrate,
    request_ms,
    row,
    server,
    sql,
    timed_upgrade,
    url_of,
)

INI = str(HERE.parent / "production.ini")
UPGRADE_BOOKS = int(os.environ.get("BENCH_ITEMS_BOOKS", 100_000))
CATALOGUE = int(os.environ.get("BENCH_ITEMS_CATALOGUE", BIG))  # GET /books/{id}'s large catalogue
LOANS_PER_BOOK = 5
# what the migration's machinery sends, not the revision's work: the bare floor leaves it out
FRAMEWORK = re.compile(
    r"alembic_version|pg_advisory|pg_try_advisory|pg_catalog\.version\(\)|current_schema\(\)|"
    r"standard_conforming_strings|^\s*show\s",
    re.IGNORECASE,
)


def iso(column: str) -> str:
    return f"""to_char("{column}" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""


HOLD_STATE_JSON = (
    "json_build_object("
    + ", ".join(f"'{c}', {iso(c)}" for c in ("placedAt", "readyAt", "expiresAt", "endedAt"))
    + ", 'status', status, 'actor', NULL)"
)


def fill_library(name: str, books: int, loans_per_book: int = LOANS_PER_BOOK) -> None:
    """A library at revision 0016, set-based: ``books`` books of 3 copies (every 10,000th of one),
    ``loans_per_book`` loans a book of which one in ten open (one on every even book), a ready
    hold on every 100th book (so every 10,000th has more open loans and ready holds than
    copies: the anomaly), a waiting hold on every 50th, and both logs' imported events."""
    users = max(books // 10, 1000)
    loans = books * loans_per_book
    statements = [
        "SET session_replication_role = replica",  # the capture triggers: the log is written below
        'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
        f"SELECT 'User ' || n, 'user' || n || '@example.org', now(), now() FROM generate_series(1, {users}) n",
        'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") '
        "SELECT 'Book ' || n, 'Author ' || n % 1000, CASE WHEN n % 10000 = 0 THEN 1 ELSE 3 END, now(), now() "
        f"FROM generate_series(1, {books}) n",
    ]
    if loans:
        statements += [
            'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", renewals, '
            '"createdAt", "updatedAt") '
            f"SELECT 1 + n % {users}, 1 + (n - 1) % {books}, now() - interval '20 days', now() - interval '6 days', "
            f"CASE WHEN n <= {books} AND n % 2 = 0 THEN NULL ELSE now() - interval '1 day' END, 0, now(), now() "
            f"FROM generate_series(1, {loans}) n",
            'INSERT INTO "Holds" ("userId", "bookId", status, "placedAt", "readyAt", "expiresAt", '
            '"createdAt", "updatedAt") '
            f"SELECT 1 + (b * 7) % {users}, b, 'ready', now() - interval '3 days', now() - interval '1 day', "
            f"now() + interval '6 days', now(), now() FROM generate_series(100, {books}, 100) b "
            f"UNION ALL SELECT 1 + (b * 13) % {users}, b, 'waiting', now() - interval '2 days', NULL, NULL, "
            f"now(), now() FROM generate_series(25, {books}, 50) b",
            'INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data) '
            f"""SELECT id, "userId", "bookId", 'imported', now(), {STATE_JSON} FROM "Checkouts" ORDER BY id""",
            'INSERT INTO "HoldEvents" ("holdId", "userId", "bookId", type, "occurredAt", data) '
            f"""SELECT id, "userId", "bookId", 'imported', now(), {HOLD_STATE_JSON} FROM "Holds" ORDER BY id""",
        ]
    statements += ["RESET session_replication_role", "VACUUM ANALYZE"]
    sql(name, *statements)


def library_at_0016(books: int, loans_per_book: int = LOANS_PER_BOOK) -> str:
    name = create_database()
    migrate(name, "0016")
    fill_library(name, books, loans_per_book)
    return name


# the desk's CPU: 5 batches of 100 cycles a kind (bench/cpu.py's 7 x 200 made make bench too long)
DESK_CPU = {"BENCH_CPU_BATCHES": os.environ.get("BENCH_CPU_BATCHES", "5"), "BENCH_CPU_REQUESTS": "100"}


def child(*args: str, name: str, extra_env: dict | None = None) -> str:
    done = subprocess.run(
        [PYTHON, str(HERE / "items.py"), *args],
        env={**env_for(name), **(extra_env or {})},
        capture_output=True,
        text=True,
        cwd=HERE.parent,
    )
    if done.returncode != 0:
        raise RuntimeError(f"items.py {' '.join(args)} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def recorded_statements(template: str) -> list[tuple[str, object]]:
    """The revision's statements as Alembic sends them, recorded on a small library of the
    same shape (what they do does not depend on the size), framework statements left out."""
    small = library_at_0016(1000)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "statements.pickle"
        child("record", str(path), name=small)
        statements = pickle.loads(path.read_bytes())
    drop_database(small)
    return statements


def timed_replay(name: str, statements: list[tuple[str, object]]) -> float:
    """The recorded statements, run directly, in one transaction."""
    with psycopg.connect(libpq(url_of(name))) as conn:
        start = time.perf_counter()
        with conn.cursor() as cursor:
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
        conn.commit()
        return time.perf_counter() - start


def upgrade_outcome(name: str) -> tuple:
    return tuple(
        sql(
            name,
            'SELECT (SELECT count(*) FROM "Items"), (SELECT count(*) FROM "Items" WHERE status = \'checked_out\'), '
            '(SELECT count(*) FROM "Checkouts" WHERE "itemId" IS NOT NULL), '
            '(SELECT count(*) FROM "Holds" WHERE "itemId" IS NOT NULL), (SELECT sum(copies) FROM "Books"), '
            '(SELECT count(*) FROM "ItemEvents"), (SELECT count(*) FROM "CheckoutEvents"), '
            '(SELECT count(*) FROM "HoldEvents")',
        )[0]
    )


def bench_items_upgrade() -> list[dict]:
    """`alembic -c production.ini upgrade head` from 0016 (revision 0017: copies into items, open
    loans and ready holds given theirs, the logs) with production.ini's limits, against the same
    statements run directly in one transaction; both on copies of one template, interleaved."""
    books = UPGRADE_BOOKS
    template = library_at_0016(books)
    statements = recorded_statements(template)
    upgrade, bare, outcomes = [], [], set()
    arms = [(upgrade, timed_upgrade), (bare, lambda name: timed_replay(name, statements))]
    for run_number in range(RUNS):
        # at 1,000,000 books the arm run first was the slower, whichever it was: the order
        # alternates, and each arm starts after a checkpoint
        for times, timed in arms if run_number % 2 == 0 else arms[::-1]:
            copy = create_database(template)
            sql(copy, "CHECKPOINT")
            times.append(timed(copy))
            outcomes.add(upgrade_outcome(copy))
            drop_database(copy)
    drop_database(template)
    assert len(outcomes) == 1, outcomes  # both arms did the same work
    items, on_loan, loans, holds, copies, *_ = outcomes.pop()
    assert items == copies and on_loan == loans == books // 2, (items, copies, on_loan, loans)
    return [
        row(
            f"alembic upgrade 0016 -> head (items), {books:,} books / {books * LOANS_PER_BOOK:,} loans "
            f"(10% open), production.ini's limits (vs its statements as bare SQL, one transaction)",
            statistics.median(upgrade) / statistics.median(bare),
            "<= 1.5",
            lambda r: r <= 1.5,
            {"upgrade_s": upgrade, "bare_sql_s": bare, "items": [items], "ready_holds_given": [holds]},
        )
    ]


DESK_KEYS = (
    ("POST /circulation/check-out (barcode + card)", "POST /checkouts"),
    ("POST /circulation/check-in (barcode)", "POST /checkouts/{id}/return"),
)


def bench_desk_cpu() -> list[dict]:
    """In-process CPU per request (bench/cpu.py's method) of the desk by barcode against the old
    API, in the same process; a fresh database per run."""
    figures = []
    for _ in range(RUNS):
        name = create_database()
        migrate(name)
        figures.append(json.loads(child("desk", name=name, extra_env=DESK_CPU)))
        drop_database(name)
    rows = []
    for desk, old in DESK_KEYS:
        rows.append(
            row(
                f"CPU per request in-process, {desk} vs {old}",
                statistics.median(f[desk] for f in figures) / statistics.median(f[old] for f in figures),
                "<= 1.1",
                lambda r: r <= 1.1,
                {"desk_us": [f[desk] for f in figures], "old_us": [f[old] for f in figures]},
            )
        )
    by_id = "POST /circulation/check-out (barcode + userId)"
    rows.append(
        row(
            f"CPU per request in-process, {by_id} vs POST /checkouts",
            statistics.median(f[by_id] for f in figures)
            / statistics.median(f["POST /checkouts"] for f in figures),
            "report",
            lambda r: True,
            {"desk_us": [f[by_id] for f in figures], "old_us": [f["POST /checkouts"] for f in figures]},
        )
    )
    return rows


def catalogue_with_items(books: int) -> str:
    """``books`` books of 3 copies at head, their items made by the upgrade itself."""
    name = create_database()
    migrate(name, "0016")
    sql(
        name,
        "SET session_replication_role = replica",
        'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") '
        f"SELECT 'Book ' || n, 'Author ' || n % 1000, 3, now(), now() FROM generate_series(1, {books}) n",
        "RESET session_replication_role",
        "VACUUM ANALYZE",
    )
    migrate(name)
    sql(name, "VACUUM ANALYZE")
    return name


BOOK_REQUESTS = 300


def bench_book_availability() -> list[dict]:
    """GET /books/{id} (its items by branch) on CATALOGUE books x 3 items vs 1,000 books x 3, both served
    at once, requests alternating between them, sequential on warm servers (median ms); and
    the plan of its statement at CATALOGUE, printed."""
    small, big = catalogue_with_items(1000), catalogue_with_items(CATALOGUE)
    shuffle = random.Random(27)
    results = {1000: [], CATALOGUE: []}
    with server("booknexus", small) as small_url, server("booknexus", big) as big_url:
        urls = {1000: small_url, CATALOGUE: big_url}
        for size, url in urls.items():  # warm: every pooled connection has prepared the statement
            for _ in range(50):
                request_ms(url, f"/books/{shuffle.randint(1, size)}")
        for _ in range(RUNS):
            times = {size: [] for size in urls}
            for _ in range(BOOK_REQUESTS):
                for size, url in urls.items():
                    times[size].append(request_ms(url, f"/books/{shuffle.randint(1, size)}"))
            for size in urls:
                results[size].append(round(statistics.median(times[size]), 3))
    print(child("plan", str(CATALOGUE // 2 + 1), name=big), flush=True)  # in make bench's output
    drop_database(small)
    drop_database(big)
    return [
        row(
            f"GET /books/{{id}} with items by branch, {CATALOGUE:,} vs 1,000 books x 3 items (median ms, "
            f"{BOOK_REQUESTS} sequential requests a run; its plan printed above)",
            statistics.median(results[CATALOGUE]) / statistics.median(results[1000]),
            "<= 1.1",
            lambda r: r <= 1.1,
            {"1k_ms": results[1000], "large_ms": results[CATALOGUE]},
        )
    ]


BENCHES = (bench_items_upgrade, bench_desk_cpu)
# a million books: make bench-scale's, with the upgrade at 1,000,000 / 5,000,000
SCALE_BENCHES = (bench_book_availability,)


# --- the child processes ------------------------------------------------------------------


def record(path: str) -> None:
    from alembic.config import Config
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from alembic import command

    statements = []

    @event.listens_for(Engine, "before_cursor_execute")
    def keep(connection, cursor, statement, parameters, context, executemany):
        if not FRAMEWORK.search(statement):
            statements.append((statement, parameters))

    command.upgrade(Config(INI), "head")
    Path(path).write_bytes(pickle.dumps(statements))


def desk() -> None:
    sys.path.insert(0, str(HERE))
    import webtest
    from cpu import app_factory, cpu_per_step, librarian, production_settings

    url = os.environ["BOOKNEXUS_DATABASE_URL"]
    app = app_factory({}, **production_settings(url))
    app.registry["booknexus.startup"].wait(120)
    client = webtest.TestApp(app, extra_environ={"HTTP_AUTHORIZATION": f"Bearer {librarian(url)}"})
    body = {"name": "Reader", "email": "reader@example.org", "cardNumber": "C-1001"}
    reader = client.post_json("/users", body).json
    old_book = client.post_json("/books", {"title": "Dune", "author": "Frank Herbert", "copies": 3}).json
    desk_book = client.post_json("/books", {"title": "Emma", "author": "Jane Austen", "copies": 3}).json
    barcode = client.get(f"/books/{desk_book['id']}/items").json["items"][0]["barcode"]
    old = (
        lambda _: client.post_json("/checkouts", {"userId": reader["id"], "bookId": old_book["id"]}).json[
            "id"
        ],
        lambda loan_id: client.post(f"/checkouts/{loan_id}/return"),
    )

    def desk_steps(reader_field: dict):
        return (
            lambda _: client.post_json("/circulation/check-out", {"itemBarcode": barcode, **reader_field}),
            lambda _: client.post_json("/circulation/check-in", {"itemBarcode": barcode}),
        )

    by_card, by_id = desk_steps({"cardNumber": "c-1001"}), desk_steps({"userId": reader["id"]})
    best: dict[str, float] = {}
    for _ in range(2):  # interleaved rounds, the best of each: drift hits both alike
        for keys, steps in (
            (("POST /checkouts", "POST /checkouts/{id}/return"), old),
            (
                ("POST /circulation/check-out (barcode + card)", "POST /circulation/check-in (barcode)"),
                by_card,
            ),
            (
                (
                    "POST /circulation/check-out (barcode + userId)",
                    "POST /circulation/check-in (after the userId check-out)",
                ),
                by_id,
            ),
        ):
            for key, value in zip(keys, cpu_per_step(*steps), strict=True):
                best[key] = min(best.get(key, float("inf")), value)
    app.registry["dbengine"].dispose()
    print(json.dumps(best))


def plan(book_id: str) -> None:
    """The statements GET /books/{id} sends, each EXPLAIN (ANALYZE, BUFFERS)-ed with its parameters."""
    sys.path.insert(0, str(HERE))
    import webtest
    from cpu import app_factory, production_settings
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    url = os.environ["BOOKNEXUS_DATABASE_URL"]
    app = app_factory({}, **production_settings(url))
    app.registry["booknexus.startup"].wait(120)
    client = webtest.TestApp(app)
    for _ in range(10):  # past psycopg's prepare threshold: the plan the server keeps using
        client.get(f"/books/{book_id}")
    sent = []

    @event.listens_for(Engine, "before_cursor_execute")
    def keep(connection, cursor, statement, parameters, context, executemany):
        sent.append((statement, parameters))

    body = client.get(f"/books/{book_id}").json
    event.remove(Engine, "before_cursor_execute", keep)
    with psycopg.connect(libpq(url)) as conn:
        for statement, parameters in sent:
            print(statement.strip(), "\n-- parameters:", parameters, "\n")
            for (line,) in conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters):
                print(line)
            print()
    print("-- branches:", json.dumps(body["branches"]))
    app.registry["dbengine"].dispose()
    app.registry["read_engine"].dispose()


if __name__ == "__main__":
    what = sys.argv[1]
    if what == "record":
        record(sys.argv[2])
    elif what == "desk":
        desk()
    elif what == "plan":
        plan(sys.argv[2])
    else:
        sys.exit(f"unknown: {what}")
