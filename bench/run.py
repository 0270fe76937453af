"""make bench: BookNexus against its own baselines, measured side by side on PostgreSQL.

Every figure is a ratio to a baseline measured in the same run; medians of several runs,
with the raw numbers beside them. Prints one table and writes bench/results.json.
Cleans up every database it creates.
"""

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
ADMIN_URL = os.environ.get("BOOKNEXUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RUNS = int(os.environ.get("BENCH_RUNS", 3))
WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", 8))
SHORT = max(WRK_SECONDS * 5 // 8, 1)  # the serving benches' runs: make bench stays under 20 minutes
ONLY = (
    os.environ.get("BENCH_ONLY", "").split(",") if os.environ.get("BENCH_ONLY") else []
)  # e.g. bench_startup
BIG = 1_000_000
ORPHANS = 100_000

created: list[str] = []


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def admin():
    return psycopg.connect(libpq(ADMIN_URL), autocommit=True)


def url_of(name: str) -> str:
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


def create_database(template: str | None = None) -> str:
    name = f"booknexus_bench_{uuid.uuid4().hex[:10]}"
    with admin() as conn:
        # FILE_COPY: a copy of a template of millions of rows in seconds (WAL_LOG writes it all to the WAL)
        conn.execute(
            f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else "")
        )
    created.append(name)
    return name


filled_templates: dict[int, str] = {}


def filled_copy(checkouts: int) -> str:
    """A fresh copy of a migrated database holding ``fill(name, checkouts)``: the fill (minutes
    at 5,000,000) is done once per make bench and shared by the benches that need it."""
    if checkouts not in filled_templates:
        template = create_database()
        migrate(template)
        fill(template, checkouts)
        filled_templates[checkouts] = template
    return create_database(filled_templates[checkouts])


def drop_database(name: str) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    created.remove(name)


def sql(name: str, *statements: str):
    with psycopg.connect(libpq(url_of(name)), autocommit=True) as conn:
        result = None
        for statement in statements:
            result = conn.execute(statement)
        return result.fetchall() if result is not None and result.description else None


def timed_sql(name: str, *statements: str) -> float:
    with psycopg.connect(libpq(url_of(name)), autocommit=True) as conn:
        start = time.perf_counter()
        for statement in statements:
            conn.execute(statement)
        return time.perf_counter() - start


def env_for(name: str) -> dict:
    return {**os.environ, "BOOKNEXUS_DATABASE_URL": url_of(name)}


def migrate(name: str, revision: str = "head") -> None:
    subprocess.run(
        [PYTHON, "-m", "alembic", "-c", str(ROOT / "production.ini"), "upgrade", revision],
        env=env_for(name),
        check=True,
        capture_output=True,
        cwd=ROOT,
    )


def librarian_token(name: str) -> str:
    out = subprocess.run(
        [PYTHON, str(HERE / "probe.py"), "token"],
        env=env_for(name),
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


# --- data, set-based ----------------------------------------------------------------

STATE_JSON = """json_build_object(
    'checkedOutAt', to_char("checkedOutAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
    'dueAt', to_char("dueAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
    'returnedAt', to_char("returnedAt" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
    'renewals', renewals, 'actor', NULL)"""


def fill(
    name: str, checkouts: int, orphans: int = 0, log: bool = True, returned_days_ago: int | None = None
) -> None:
    """Users, books, `checkouts` loans (every tenth-ish an orphan if asked), and their log;
    every third loan returned now, or every loan returned ``returned_days_ago`` days ago."""
    users = max(checkouts // 10, 10)
    every = checkouts // orphans if orphans else 0
    orphan_case = (
        f"CASE WHEN n % {every} = 0 THEN {users} + n ELSE 1 + n % {users} END"
        if every
        else f"1 + n % {users}"
    )
    statements = [
        "SET session_replication_role = replica",  # orphans need the FK triggers off
        'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
        f"SELECT 'User ' || n, 'user' || n || '@example.org', now(), now() FROM generate_series(1, {users}) n",
        'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") '
        "SELECT 'Book ' || n, 'Author ' || n, 100000, now(), now() FROM generate_series(1, 1000) n",
        'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", "returnedAt", renewals, '
        f'"createdAt", "updatedAt") SELECT {orphan_case}, 1 + n % 1000, now(), now() + interval \'14 days\', '
        + (
            "CASE WHEN n % 3 = 0 THEN now() END"
            if returned_days_ago is None
            else f"now() - interval '{returned_days_ago} days'"
        )
        + ", 0, now(), now() "
        f"FROM generate_series(1, {checkouts}) n",
    ]
    if log:
        statements.append(
            'INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data) '
            f"""SELECT id, "userId", "bookId", 'imported', now(), {STATE_JSON} FROM "Checkouts" ORDER BY id"""
        )
    statements += ["RESET session_replication_role", "VACUUM ANALYZE"]
    sql(name, *statements)


# --- servers and load -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


OLD_BACKEND = HERE / "old-backend"  # Express + Sequelize, as the old back end served a book


def install_old_backend() -> None:
    if not (OLD_BACKEND / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=OLD_BACKEND, check=True)


SERVER_LOG = HERE / "server.log"  # the served processes' stderr: production.ini logs a JSON line per request


@contextmanager
def server(which: str, name: str | None = None, settings: dict | None = None, workers: int | None = None):
    """``which`` served on a free port: the baseline or BookNexus by bench/serve.py (waitress,
    production.ini's threads), or BookNexus by ``booknexus-serve --workers N``."""
    port = free_port()
    env = env_for(name) if name else dict(os.environ)
    if settings:
        env["BENCH_APP_SETTINGS"] = json.dumps(settings)
    if workers:
        command = [
            str(Path(PYTHON).parent / "booknexus-serve"),
            str(ROOT / "production.ini"),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{port}",
        ]
    elif which == "old":
        command = ["node", str(OLD_BACKEND / "server.js")]
        env |= {"PORT": str(port), "DATABASE_URL": libpq(url_of(name))}
    else:
        command = [PYTHON, str(HERE / "serve.py"), which, str(port)]
    log = SERVER_LOG.open("a")
    process = subprocess.Popen(command, env=env, cwd=ROOT, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = {"booknexus": "/health", "lean": "/books/1", "old": "/books/1"}.get(
                    which, "/constant/1"
                )
                with urllib.request.urlopen(url + probe, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()


READERS = 100  # checkout + return runs spread over them: no reader meets the loan limit
READERS_SQL = (
    'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
    f"SELECT 'Bench ' || n, 'bench' || n || '@example.org', now(), now() FROM generate_series(1, {READERS}) n"
)


def wrk(
    url: str,
    script: str | None = None,
    connections: int = 8,
    env: dict | None = None,
    seconds: int | None = None,
) -> dict:
    """One wrk run; one with errors (non-2xx answers, socket errors) is no measurement: it fails."""
    command = [
        "wrk",
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{seconds or WRK_SECONDS}s",
        "--latency",
        url,
    ]
    if script:
        command[1:1] = ["-s", str(HERE / script)]
    out = subprocess.run(
        command, capture_output=True, text=True, check=True, env={**os.environ, **(env or {})}
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, sockets.groups())) if sockets else 0)
    if errors:
        raise RuntimeError(f"wrk on {url} met {errors} errors; no measurement:\n{out}")
    return {"rps": rps, "p50_ms": latency(out, "50%"), "p99_ms": latency(out, "99%"), "errors": 0}


def latency(out: str, label: str) -> float:
    value, unit = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out).groups()
    return float(value) * {"us": 0.001, "ms": 1, "s": 1000}[unit]


def median_of(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


# --- the five measurements ----------------------------------------------------------------


# production.ini's tweens without web.observe: no request ids, access lines or request metrics
WITHOUT_OBSERVING = {
    "pyramid.tweens": "\n".join(
        (
            "pyramid_tm.tm_tween_factory",
            "pyramid_openapi3.tween.response_tween_factory",
            "pyramid.tweens.excview_tween_factory",
        )
    )
}


def bench_http() -> list[dict]:
    """The constant view, the lean floor and BookNexus with and without its observing tween
    (access log + request metrics), interleaved on one database, so drift hits all alike."""
    name, env = http_database()
    runs = {key: [] for key in ("baseline", "lean", "book", "loans", "book_unobserved", "loans_unobserved")}
    with (
        server("baseline") as base_url,
        server("booknexus", name) as app_url,
        server("lean", name) as lean_url,
        server("booknexus", name, WITHOUT_OBSERVING) as unobserved_url,
    ):
        for _ in range(RUNS):
            runs["baseline"].append(wrk(base_url + "/constant/1"))
            runs["lean"].append(wrk(lean_url + "/books/1", "bearer.lua", env=env))
            for suffix, url in (("", app_url), ("_unobserved", unobserved_url)):
                runs[f"book{suffix}"].append(wrk(url + "/books/1", "bearer.lua", env=env))
                runs[f"loans{suffix}"].append(wrk(url + "/checkouts", "checkout_return.lua", env=env))
    drop_database(name)

    def ratio(measured: str, baseline: str) -> float:
        return median_of(runs[measured], "rps") / median_of(runs[baseline], "rps")

    return [
        # the read side's target: the lean floor is the same read in a bare Pyramid view
        row(
            "HTTP GET /books/{id} (req/s vs the lean floor: one Core statement, autocommit, nothing else)",
            ratio("book", "lean"),
            ">= 0.85",
            lambda r: r >= 0.85,
            {"lean": runs["lean"], "measured": runs["book"]},
        ),
        # must: 0.20 and 0.10; aims: 0.45 (the old Node stack's standing) and 0.20
        row(
            "HTTP GET /books/{id} (req/s vs constant JSON view)",
            ratio("book", "baseline"),
            ">= 0.20",
            lambda r: r >= 0.20,
            {"baseline": runs["baseline"], "measured": runs["book"]},
        ),
        row(
            "HTTP POST /checkouts + return (req/s vs constant JSON view)",
            ratio("loans", "baseline"),
            ">= 0.10",
            lambda r: r >= 0.10,
            {"baseline": runs["baseline"], "measured": runs["loans"]},
        ),
    ] + [
        row(
            f"HTTP {what}, access log + metrics on vs off (req/s)",
            ratio(kind, f"{kind}_unobserved"),
            ">= 0.95",
            lambda r: r >= 0.95,
            {"on": runs[kind], "off": runs[f"{kind}_unobserved"]},
        )
        for kind, what in (("book", "GET /books/{id}"), ("loans", "POST /checkouts + return"))
    ]


PURGE_FLOOR = f"""
    WITH gone AS (
        DELETE FROM "Checkouts" c
        WHERE NOT EXISTS (SELECT 1 FROM "Users" u WHERE u.id = c."userId")
           OR NOT EXISTS (SELECT 1 FROM "Books" b WHERE b.id = c."bookId")
        RETURNING *)
    INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data)
    SELECT id, "userId", "bookId", 'purged', now(), {STATE_JSON} FROM gone ORDER BY id"""


# the rest of the repair's work, by hand: one pass comparing the table with each checkout's
# latest event (what reconcile, import and resync must each find); nothing differs here
CATCH_UP_FLOOR = """
    SELECT count(*) FROM "Checkouts" r FULL JOIN (
        SELECT e."checkoutId" AS key, e."userId", e."bookId", d.*
        FROM "CheckoutEvents" e
        JOIN (SELECT max(id) AS id FROM "CheckoutEvents" GROUP BY "checkoutId") m ON m.id = e.id
        CROSS JOIN LATERAL json_to_record(e.data)
            AS d("checkedOutAt" timestamptz, "dueAt" timestamptz, "returnedAt" timestamptz, renewals int)
        WHERE e.type NOT IN ('deleted', 'purged')) l ON l.key = r.id
    WHERE r.id IS NULL OR l.key IS NULL
       OR (l."userId", l."bookId", l."checkedOutAt", l."dueAt", l."returnedAt", l.renewals)
          IS DISTINCT FROM (r."userId", r."bookId", r."checkedOutAt", r."dueAt", r."returnedAt", r.renewals)"""


def anonymise_floor(name: str) -> list[str]:
    """What booknexus-anonymise does to loans returned 30+ days ago, by bare SQL in one transaction."""
    anonymous = sql(name, "SELECT id FROM \"Users\" WHERE role = 'anonymous'")[0][0]
    due = f'SELECT id FROM "Checkouts" WHERE "returnedAt" < now() - interval \'30 days\' AND "userId" <> {anonymous}'
    return [
        "BEGIN",
        "SELECT set_config('booknexus.app_write', 'on', true), set_config('booknexus.anonymising', 'on', true)",
        'LOCK TABLE "CheckoutEvents" IN EXCLUSIVE MODE',
        f"CREATE TEMP TABLE due ON COMMIT DROP AS {due}",
        f'UPDATE "CheckoutEvents" SET "userId" = {anonymous}, data = CASE WHEN data->>\'actor\' = "userId"::text '
        f"THEN (data::jsonb || jsonb_build_object('actor', {anonymous}))::json ELSE data END "
        f'WHERE "checkoutId" IN (SELECT id FROM due)',
        f'UPDATE "Checkouts" SET "userId" = {anonymous} WHERE id IN (SELECT id FROM due)',
        'INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data) '
        f'SELECT id, "userId", "bookId", \'anonymised\', now(), {STATE_JSON} FROM "Checkouts" '
        "WHERE id IN (SELECT id FROM due) ORDER BY id",
        "COMMIT",
    ]


def bench_privacy() -> list[dict]:
    """booknexus-anonymise on 1,000,000 loans returned 60 days ago (with their log) against the
    same rows rewritten by bare SQL in one transaction; and a run with nothing due on a
    5,000,000-event log against one on a 1,000-event log (it must not scan)."""
    template = create_database()
    migrate(template)
    fill(template, BIG, returned_days_ago=60)
    app, floor = [], []
    for _ in range(1):  # one run: each arm rewrites 2,000,000 events (about 100 s); make bench stays < 20 min
        copy = create_database(template)
        floor.append(timed_sql(copy, *anonymise_floor(copy)))
        drop_database(copy)
        copy = create_database(template)
        app.append(probe(copy, "anonymise")[0])
        drop_database(copy)
    drop_database(template)
    small, huge = filled_copy(1000), filled_copy(HUGE)  # every third loan returned today: nothing is due
    quiet = {"small": [], "huge": []}
    for _ in range(RUNS):
        for label, name in (("small", small), ("huge", huge)):
            quiet[label].append(probe(name, "anonymise")[0])
    drop_database(small)
    drop_database(huge)
    return [
        row(
            f"booknexus-anonymise, {BIG:,} loans due with their log (vs the same rewrite by bare SQL, one transaction)",
            statistics.median(app) / statistics.median(floor),
            "<= 1.5",
            lambda r: r <= 1.5,
            {"job_s": app, "bare_sql_s": floor},
        ),
        row(
            f"booknexus-anonymise with nothing due, {HUGE:,} vs 1,000 loans and events",
            statistics.median(quiet["huge"]) / statistics.median(quiet["small"]),
            "<= 1.5",
            lambda r: r <= 1.5,
            {"huge_s": quiet["huge"], "small_s": quiet["small"]},
        ),
    ]


def bench_privacy_writes() -> list[dict]:
    """Checkout + return throughput with loans anonymised as they are returned (policy 0 days)
    against the policy off (never), same code, interleaved."""
    names = {}
    for label in ("zero", "never"):
        name = names[label] = create_database()
        migrate(name)
        sql(
            name,
            READERS_SQL,
            'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") '
            "VALUES ('Dune', 'Frank Herbert', 1000000, now(), now())",
        )
    runs = {"zero": [], "never": []}
    policy = {
        label: {"booknexus.privacy.loan_history_days": "0" if label == "zero" else "never"} for label in names
    }
    with (
        server("booknexus", names["zero"], policy["zero"]) as zero_url,
        server("booknexus", names["never"], policy["never"]) as never_url,
    ):
        for _ in range(RUNS):
            for label, url in (("zero", zero_url), ("never", never_url)):
                env = {"BENCH_TOKEN": librarian_token(names[label]), "BENCH_READERS": str(READERS)}
                runs[label].append(wrk(url + "/checkouts", "checkout_return.lua", env=env))
    for name in names.values():
        drop_database(name)
    return [
        row(
            "HTTP POST /checkouts + return, policy at 0 days vs off (req/s)",
            median_of(runs["zero"], "rps") / median_of(runs["never"], "rps"),
            "report",
            lambda r: True,
            {"zero_days": runs["zero"], "never": runs["never"]},
        )
    ]


def bench_cleanup() -> list[dict]:
    """The full repair (booknexus-cleanup --full: purge, reconcile, import, resync) against
    the floor of the same work done by bare SQL in one transaction: delete the orphans and
    log one purged event each, then one pass comparing the table with the log (marked as the
    app's, as the repair is, so the capture triggers stand aside for both)."""
    template = create_database()
    migrate(template)
    fill(template, BIG, ORPHANS)
    empty = create_database()
    migrate(empty)
    full, floor, peak, empty_peak = [], [], [], []
    for _ in range(RUNS):
        copy = create_database(template)
        floor.append(
            timed_sql(
                copy,
                "BEGIN",
                "SELECT set_config('booknexus.app_write', 'on', true)",
                PURGE_FLOOR,
                CATCH_UP_FLOOR,
                "COMMIT",
            )
        )
        drop_database(copy)
        copy = create_database(template)
        seconds, rss = probe(copy, "cleanup")
        full.append(seconds)
        peak.append(rss)
        drop_database(copy)
        empty_peak.append(probe(empty, "cleanup")[1])
    drop_database(template)
    drop_database(empty)
    return [
        row(
            f"full repair, {BIG:,} checkouts / {ORPHANS:,} orphans (time vs bare SQL: purge + events, one pass)",
            statistics.median(full) / statistics.median(floor),
            "<= 1.5",
            lambda r: r <= 1.5,
            {"repair_s": full, "bare_sql_s": floor},
        ),
        row(
            "full repair peak RSS (vs same process on an empty database)",
            statistics.median(peak) / statistics.median(empty_peak),
            "<= 1.2",
            lambda r: r <= 1.2,
            {"peak_kib": peak, "empty_peak_kib": empty_peak},
        ),
    ]


HUGE = int(os.environ.get("BENCH_HUGE", 5_000_000))


def time_pserve(name: str) -> tuple[float, float]:
    """Seconds from spawning `pserve production.ini` until its port accepts, and until /health is 200."""
    port = free_port()
    ini = HERE / f".bench-{port}.ini"
    ini.write_text(
        re.sub(r"listen = .*", f"listen = 127.0.0.1:{port}", (ROOT / "production.ini").read_text())
    )
    start = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, "-m", "pyramid.scripts.pserve", str(ini)],
        env=env_for(name),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        to_port = to_health = None
        while to_health is None:
            if time.perf_counter() - start > 600:
                raise RuntimeError("pserve did not become healthy in 10 minutes")
            if to_port is None:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    to_port = time.perf_counter() - start
                except OSError:
                    time.sleep(0.01)
                    continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    to_health = time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        return to_port, to_health
    finally:
        process.terminate()
        process.wait(timeout=30)
        ini.unlink()


def bench_startup() -> list[dict]:
    """pserve start to port and to /health 200, on healthy databases of 1,000 and HUGE checkouts."""
    small, huge = filled_copy(1000), filled_copy(HUGE)
    times = {"small": [], "huge": []}
    for _ in range(RUNS):
        for label, name in (("small", small), ("huge", huge)):
            times[label].append(time_pserve(name))
    drop_database(small)
    drop_database(huge)

    def ratio(index: int) -> float:
        return statistics.median(t[index] for t in times["huge"]) / statistics.median(
            t[index] for t in times["small"]
        )

    raw = {
        f"{label}_{what}_s": [t[i] for t in times[label]]
        for label in times
        for i, what in enumerate(("port", "health"))
    }
    return [
        row(
            f"pserve start -> port answers, healthy {HUGE:,} vs 1,000 checkouts",
            ratio(0),
            "<= 1.5",
            lambda r: r <= 1.5,
            {k: v for k, v in raw.items() if "port" in k},
        ),
        row(
            f"pserve start -> /health 200, healthy {HUGE:,} vs 1,000 checkouts",
            ratio(1),
            "<= 1.5",
            lambda r: r <= 1.5,
            {k: v for k, v in raw.items() if "health" in k},
        ),
    ]


def http_database() -> tuple[str, dict]:
    """A migrated database with the bench readers and one book of many copies; wrk's env."""
    name = create_database()
    migrate(name)
    sql(
        name,
        READERS_SQL,
        'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") VALUES (\'Dune\', \'Frank Herbert\', 1000000, now(), now())',
    )
    return name, {"BENCH_TOKEN": librarian_token(name), "BENCH_READERS": str(READERS)}


def bench_workers() -> list[dict]:
    """booknexus-serve with 2 workers vs 1 on the same database: reads and writes apart,
    with 16 connections so that both workers' 8 threads have work."""
    name, env = http_database()
    install_old_backend()
    runs = {f"{kind}_{n}": [] for kind in ("read", "write") for n in (1, 2)} | {"old": []}
    with (
        server("booknexus", name, workers=1) as one,
        server("booknexus", name, workers=2) as two,
        server("old", name) as old,
    ):
        for url, path in ((one, "/books/1"), (two, "/books/1"), (old, "/books/1")):
            wrk(url + path, connections=16, seconds=1)  # warm: pools full, Node's JIT done
        for _ in range(RUNS):  # interleaved; the idle servers' workers wait in accept()
            for n, url in ((1, one), (2, two)):
                runs[f"read_{n}"].append(
                    wrk(url + "/books/1", "bearer.lua", connections=16, env=env, seconds=SHORT)
                )
                runs[f"write_{n}"].append(
                    wrk(url + "/checkouts", "checkout_return.lua", connections=16, env=env, seconds=SHORT)
                )
            runs["old"].append(wrk(old + "/books/1", connections=16, seconds=SHORT))
    out = subprocess.run(
        [PYTHON, str(HERE / "lock_hold.py")],
        env=env_for(name),
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    hold = json.loads(out.stdout)
    drop_database(name)
    writes_per_second = median_of(runs["write_2"], "rps")
    return [
        row(
            "HTTP GET /books/{id}, 2 workers vs 1 (req/s, 2 cores)",
            median_of(runs["read_2"], "rps") / median_of(runs["read_1"], "rps"),
            "report",
            lambda r: True,
            {"one_worker": runs["read_1"], "two_workers": runs["read_2"]},
        ),
        row(
            "HTTP GET /books/{id}, booknexus-serve on every core (2 workers) vs the old back end (Express + Sequelize)",
            median_of(runs["read_2"], "rps") / median_of(runs["old"], "rps"),
            "report",
            lambda r: True,
            {"old_backend": runs["old"], "two_workers": runs["read_2"]},
        ),
        row(
            "HTTP POST /checkouts + return, 2 workers vs 1 (req/s, 2 cores)",
            writes_per_second / median_of(runs["write_1"], "rps"),
            "report",
            lambda r: True,
            {"one_worker": runs["write_1"], "two_workers": runs["write_2"]},
        ),
        # the log's lock is the one serial point: held from LOCK TABLE to COMMIT of each write
        row(
            "log lock held per write, ms (median; share of a second at 2 workers' write rate)",
            hold["median_ms"],
            "report",
            lambda r: True,
            {
                "median_ms": [hold["median_ms"]],
                "p99_ms": [hold["p99_ms"]],
                "share_of_time_at_2_workers": [round(hold["median_ms"] * writes_per_second / 1000, 3)],
            },
        ),
    ]


def bench_capture_overhead() -> list[dict]:
    """Checkout + return throughput with the capture triggers installed vs dropped (same code)."""
    names = {}
    for label in ("with", "without"):
        name = names[label] = create_database()
        migrate(name)
        sql(
            name,
            READERS_SQL,
            'INSERT INTO "Books" (title, author, copies, "createdAt", "updatedAt") VALUES (\'Dune\', \'Frank Herbert\', 1000000, now(), now())',
        )
    runs = {"with": [], "without": []}
    with server("booknexus", names["with"]) as with_url, server("booknexus", names["without"]) as without_url:
        # dropped once the server is up: its startup would put them back (as it should)
        sql(
            names["without"],
            *(
                f'DROP TRIGGER "Checkouts_capture_{op}" ON "Checkouts"'
                for op in ("insert", "update", "delete", "truncate")
            ),
        )
        for _ in range(RUNS):
            for label, url in (("with", with_url), ("without", without_url)):
                token = librarian_token(names[label])
                env = {"BENCH_TOKEN": token, "BENCH_READERS": str(READERS)}
                runs[label].append(wrk(url + "/checkouts", "checkout_return.lua", env=env))
    for name in names.values():
        drop_database(name)
    return [
        row(
            "HTTP POST /checkouts + return, capture triggers on vs off (req/s)",
            median_of(runs["with"], "rps") / median_of(runs["without"], "rps"),
            ">= 0.95",
            lambda r: r >= 0.95,
            {"with_triggers": runs["with"], "without_triggers": runs["without"]},
        )
    ]


TITLE_WORDS = (
    "the of and a in to night house war peace river garden winter summer city stone fire water "
    "dream shadow light dark king queen road sea mountain forest child time world heart blood "
    "song storm silver golden empire last first secret lost return journey island star moon "
    "sun wind iron glass ghost memory letter promise midnight morning autumn spring bridge "
    "tower castle wolf raven rose crown sword field harbor valley desert ocean"
).split()
FIRST_NAMES = "Anna Ben Clara David Elena Frank Grace Henry Isaac Julia Karl Laura Maria Nina Omar Paul Rosa Sam".split()
SURNAMES = (
    "Smith Jones Herbert Asimov Garcia Marquez Le-Guin Tolkien Austen Bronte Dickens Eliot Hardy "
    "Orwell Woolf Morrison Ishiguro Murakami Borges Calvino Eco Pamuk Achebe Rushdie Mann Hesse"
).split()
SEARCHES = {
    "rare word": "zanzibar",
    "common word": "the",
    "no match": "qwxzyv",
    "prefix": "asim",
    "misspelling": "herbrt",
}


def choose(words, salt: int) -> str:
    """SQL picking one of ``words`` for row ``n``, spread by a hash (the same on every run)."""
    listed = ", ".join(f"'{w}'" for w in words)
    return f"(ARRAY[{listed}])[1 + abs(hashint8(n::bigint * 7919 + {salt})::bigint) % {len(words)}]"


def fill_catalogue(name: str, books: int) -> None:
    """``books`` titles of 2-4 words and authors drawn from word lists; ten hold a rare word."""
    sql(
        name,
        f"""INSERT INTO "Books" (title, author, isbn, copies, "createdAt", "updatedAt")
        SELECT concat_ws(' ', {choose(TITLE_WORDS, 1)}, {choose(TITLE_WORDS, 2)},
                         CASE WHEN n % 2 = 0 THEN {choose(TITLE_WORDS, 3)} END,
                         CASE WHEN n % ({books} / 10) = 7 THEN 'Zanzibar' END),
               {choose(FIRST_NAMES, 4)} || ' ' || {choose(SURNAMES, 5)}, NULL, 3, now(), now()
        FROM generate_series(1, {books}) AS n""",
        "VACUUM ANALYZE",
    )


def request_ms(
    url: str, path: str, method: str = "GET", body: dict | None = None, headers: dict | None = None
) -> float:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    start = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()
    return (time.perf_counter() - start) * 1000


def bench_search() -> list[dict]:
    """GET /books?q= on 1,000 vs 1,000,000 books, sequentially on a warm server: the first
    request, and the median of requests 31-60, when psycopg has long prepared every statement
    on every pooled connection (a plan that holds only for the first five is no plan).
    Then the write side: POST /books + PATCH with the search index vs with it dropped."""
    small, big = create_database(), create_database()
    for name, size in ((small, 1000), (big, BIG)):
        migrate(name)
        fill_catalogue(name, size)
    first: dict[str, dict[str, float]] = {}
    steady: dict[str, dict[str, float]] = {}
    with server("booknexus", small) as small_url, server("booknexus", big) as big_url:
        for label, url in (("small", small_url), ("big", big_url)):
            first[label], steady[label] = {}, {}
            for what, q in SEARCHES.items():
                path = "/books?" + urllib.parse.urlencode({"q": q, "limit": 20})
                times = [request_ms(url, path) for _ in range(60)]
                first[label][what] = times[0]
                steady[label][what] = statistics.median(times[30:])
    rows = [
        row(
            f"GET /books?q= ({what}: {q!r}), 1,000,000 vs 1,000 books, requests 31-60 (median ms)",
            steady["big"][what] / steady["small"][what],
            "<= 2.0 and < 50 ms",
            lambda r, w=what: r <= 2.0 and steady["big"][w] < 50,
            {
                "1k_ms": [round(steady["small"][what], 2)],
                "1m_ms": [round(steady["big"][what], 2)],
                "1k_first_ms": [round(first["small"][what], 2)],
                "1m_first_ms": [round(first["big"][what], 2)],
            },
        )
        for what, q in SEARCHES.items()
    ]
    bare = create_database(big)
    sql(
        bare,
        'DROP TRIGGER "Books_lexicon_insert" ON "Books"',
        'DROP TRIGGER "Books_lexicon_update" ON "Books"',
        'DROP INDEX "ix_Books_searchWords"',
        'DROP INDEX "ix_Books_titleWords"',
        'ALTER TABLE "Books" DROP COLUMN "searchWords"',
    )
    writes = {}
    for label, name in (("indexed", big), ("bare", bare)):
        headers = {"Authorization": f"Bearer {librarian_token(name)}"}
        with server("booknexus", name) as url:

            def write(url=url, headers=headers):
                book = json.loads(
                    urllib.request.urlopen(
                        urllib.request.Request(
                            url + "/books",
                            data=json.dumps(
                                {"title": f"Zanzibar Nights {uuid.uuid4().hex[:6]}", "author": "Omar Calvino"}
                            ).encode(),
                            method="POST",
                            headers={"Content-Type": "application/json", **headers},
                        )
                    ).read()
                )
                return request_ms(
                    url, f"/books/{book['id']}", "PATCH", {"title": "Zanzibar Mornings"}, headers
                )

            write()
            writes[label] = statistics.median(write() for _ in range(50))
    drop_database(bare)
    drop_database(small)
    drop_database(big)
    rows.append(
        row(
            "PATCH /books/{id} (title) with the search index vs without, 1,000,000 books (median ms)",
            writes["indexed"] / writes["bare"],
            "report",
            lambda r: True,
            {"indexed_ms": [round(writes["indexed"], 2)], "bare_ms": [round(writes["bare"], 2)]},
        )
    )
    return rows


def probe(name: str, what: str) -> tuple[float, int]:
    """Run bench/probe.py in a child; its own timing, and its peak RSS from wait4."""
    process = subprocess.Popen(
        [PYTHON, str(HERE / "probe.py"), what], env=env_for(name), stdout=subprocess.PIPE, text=True
    )
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.stdout.close()
    if status != 0:
        raise RuntimeError(f"probe {what} failed: {output}")
    return float(output.strip()), usage.ru_maxrss


def bench_delete_user() -> list[dict]:
    name = create_database()
    migrate(name)
    fill(name, 1000)
    token = librarian_token(name)
    app_times, bare_times = [], []
    with server("booknexus", name) as app_url:
        for _ in range(RUNS + 2):
            for kind in ("app", "bare"):
                user = sql(
                    name,
                    'INSERT INTO "Users" (name, email, "createdAt", "updatedAt") '
                    f"VALUES ('Heavy', 'heavy-{uuid.uuid4().hex}@example.org', now(), now()) RETURNING id",
                )[0][0]
                sql(
                    name,
                    'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", renewals, "createdAt", "updatedAt") '
                    f"SELECT {user}, 1 + n % 1000, now(), now(), 0, now(), now() FROM generate_series(1, 10000) n",
                    'INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data) '
                    f"""SELECT id, "userId", "bookId", 'imported', now(), {STATE_JSON} FROM "Checkouts" WHERE "userId" = {user}""",
                    'ANALYZE "Checkouts"',
                )
                if kind == "app":
                    request = urllib.request.Request(
                        f"{app_url}/users/{user}",
                        method="DELETE",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    start = time.perf_counter()
                    with urllib.request.urlopen(request, timeout=60) as response:
                        assert response.status == 204
                    app_times.append(time.perf_counter() - start)
                else:  # the floor: the cascade plus writing the same events, one transaction
                    bare_times.append(
                        timed_sql(
                            name,
                            "BEGIN",
                            "SELECT set_config('booknexus.app_write', 'on', true)",
                            'INSERT INTO "CheckoutEvents" ("checkoutId", "userId", "bookId", type, "occurredAt", data) '
                            f"""SELECT id, "userId", "bookId", 'deleted', now(), {STATE_JSON} FROM "Checkouts" """
                            f'WHERE "userId" = {user} ORDER BY id',
                            f'DELETE FROM "Users" WHERE id = {user}',
                            "COMMIT",
                        )
                    )
    logged = sql(name, "SELECT count(*) FROM \"CheckoutEvents\" WHERE type = 'deleted'")[0][0]
    drop_database(name)
    assert logged == 10000 * (len(app_times) + len(bare_times)), logged  # the floor logs them too
    return [
        row(
            "DELETE /users/{id} with 10,000 checkouts, logged (vs the cascade + INSERT ... SELECT of the events)",
            statistics.median(app_times) / statistics.median(bare_times),
            "<= 1.3",
            lambda r: r <= 1.3,
            {"api_s": app_times, "bare_floor_s": bare_times},
        )
    ]


def bench_listing() -> list[dict]:
    results = {}
    for size in (1_000, BIG):
        name = create_database()
        migrate(name)
        fill(name, size)
        token = librarian_token(name)
        deep = sql(name, 'SELECT max(id) - 500 FROM "Checkouts"')[0][0]
        with server("booknexus", name) as url:
            results[size] = [
                wrk(
                    f"{url}/checkouts?limit=50&after={deep}",
                    "bearer.lua",
                    connections=1,
                    env={"BENCH_TOKEN": token},
                )
                for _ in range(RUNS)
            ]
        drop_database(name)
    small, large = median_of(results[1_000], "p50_ms"), median_of(results[BIG], "p50_ms")
    return [
        row(
            f"GET /checkouts?limit=50&after=<deep> on {BIG:,} vs 1,000 checkouts (median latency)",
            large / small,
            "<= 1.3",
            lambda r: r <= 1.3,
            {"small": results[1_000], "large": results[BIG]},
        )
    ]


def bench_fk_rebuild() -> list[dict]:
    """The card's command, `alembic -c production.ini upgrade head`, on a legacy database of BIG
    checkouts with production.ini's limits in place (a request's statement_timeout, 10 s, is
    shorter than 0002's import alone), against bare SQL doing 0002's import; and the FK revision
    (0002 -> 0003) against bare SQL doing that revision's work."""
    legacy = create_database()
    sql(legacy, *LEGACY_DDL)
    fill(legacy, BIG, log=False)
    template = create_database(legacy)
    migrate(template, "0002")  # adopt + import: the database as it stands before the FK revision
    sql(template, "VACUUM ANALYZE")
    upgrade, import_floor, migration, bare = [], [], [], []
    for _ in range(RUNS):
        copy = create_database(legacy)
        import_floor.append(timed_sql(copy, *IMPORT_FLOOR))
        drop_database(copy)
        copy = create_database(legacy)
        upgrade.append(timed_upgrade(copy))
        drop_database(copy)
        copy = create_database(template)
        # the floor does all of the revision's work in bare SQL: purge with events, the two
        # indexes, the two constraints
        keys = (("userId", "Users"), ("bookId", "Books"))
        bare.append(
            timed_sql(
                copy,
                "BEGIN",
                "SELECT set_config('booknexus.app_write', 'on', true)",
                PURGE_FLOOR,
                "COMMIT",
                *(f'CREATE INDEX IF NOT EXISTS "ix_floor_{c}" ON "Checkouts" ("{c}")' for c, _ in keys),
                *(
                    f'ALTER TABLE "Checkouts" ADD CONSTRAINT "fk_{c}" FOREIGN KEY ("{c}") REFERENCES '
                    f'"{t}" (id) ON DELETE CASCADE ON UPDATE CASCADE'
                    for c, t in keys
                ),
            )
        )
        drop_database(copy)
        copy = create_database(template)
        migration.append(probe(copy, "fk-rebuild")[0])
        drop_database(copy)
    drop_database(template)
    drop_database(legacy)
    return [
        row(
            f"alembic -c production.ini upgrade head, legacy database of {BIG:,} checkouts "
            "(vs bare SQL: 0002's import)",
            statistics.median(upgrade) / statistics.median(import_floor),
            "report",
            lambda r: True,
            {"upgrade_head_s": upgrade, "import_floor_s": import_floor},
        ),
        row(
            f"FK-rebuild migration on a legacy database of {BIG:,} checkouts (vs bare SQL doing its work)",
            statistics.median(migration) / statistics.median(bare),
            "<= 1.5",
            lambda r: r <= 1.5,
            {"migration_s": migration, "bare_floor_s": bare},
        ),
    ]


def timed_upgrade(name: str) -> float:
    """`alembic -c production.ini upgrade head`, timed; its log in the error if it fails."""
    start = time.perf_counter()
    done = subprocess.run(
        [PYTHON, "-m", "alembic", "-c", str(ROOT / "production.ini"), "upgrade", "head"],
        env=env_for(name),
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    if done.returncode != 0:
        raise RuntimeError(f"upgrade head failed:\n{done.stderr[-4000:]}")
    return time.perf_counter() - start


# 0002's work in bare SQL: the log's table and its three indexes, then one event per loan
IMPORT_FLOOR = [
    'CREATE TABLE "ImportFloor" (id bigserial PRIMARY KEY, "checkoutId" integer NOT NULL, '
    '"userId" integer NOT NULL, "bookId" integer NOT NULL, type varchar(32) NOT NULL, '
    '"occurredAt" timestamptz NOT NULL, data json NOT NULL)',
    *(
        f'CREATE INDEX "ix_ImportFloor_{c}_id" ON "ImportFloor" ("{c}", id)'
        for c in ("checkoutId", "userId", "bookId")
    ),
    'INSERT INTO "ImportFloor" ("checkoutId", "userId", "bookId", type, "occurredAt", data) '
    f"""SELECT id, "userId", "bookId", 'imported', now(), {STATE_JSON} FROM "Checkouts" ORDER BY id""",
]


LEGACY_DDL = [
    'CREATE TABLE "Users" (id SERIAL PRIMARY KEY, name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL UNIQUE, '
    '"createdAt" TIMESTAMPTZ NOT NULL, "updatedAt" TIMESTAMPTZ NOT NULL)',
    'CREATE TABLE "Books" (id SERIAL PRIMARY KEY, title VARCHAR(255) NOT NULL, author VARCHAR(255) NOT NULL, '
    'isbn VARCHAR(255) UNIQUE, copies INTEGER DEFAULT 1, "createdAt" TIMESTAMPTZ NOT NULL, "updatedAt" TIMESTAMPTZ NOT NULL)',
    'CREATE TABLE "Checkouts" (id SERIAL PRIMARY KEY, "userId" INTEGER NOT NULL, "bookId" INTEGER NOT NULL, '
    '"checkedOutAt" TIMESTAMPTZ, "dueAt" TIMESTAMPTZ, "returnedAt" TIMESTAMPTZ, renewals INTEGER NOT NULL DEFAULT 0, '
    '"createdAt" TIMESTAMPTZ NOT NULL, "updatedAt" TIMESTAMPTZ NOT NULL)',
]


def bench_cpu() -> list[dict]:
    """In-process CPU per request (bench/cpu.py), against the constant view in the same process.

    BENCH_BEFORE=<path of an older checkout> adds the same figures for that code, run
    interleaved, and a before/after ratio for each request.
    """
    trees = [("now", ROOT)] + (
        [("before", Path(os.environ["BENCH_BEFORE"]))] if "BENCH_BEFORE" in os.environ else []
    )
    figures: dict[str, list[dict]] = {label: [] for label, _ in trees}
    for _ in range(RUNS):
        for label, tree in trees:
            name = create_database()
            subprocess.run(
                [PYTHON, "-m", "alembic", "-c", "production.ini", "upgrade", "head"],
                env=env_for(name),
                check=True,
                capture_output=True,
                cwd=tree,
            )
            out = subprocess.run(
                [PYTHON, str(HERE / "cpu.py")],
                env=env_for(name),
                check=True,
                capture_output=True,
                text=True,
                cwd=tree,
            )
            figures[label].append(json.loads(out.stdout))
            drop_database(name)

    def med(label: str, key: str) -> float:
        return statistics.median(run[key] for run in figures[label])

    reads = ("GET /books/{id}", "GET /books?q=", "GET /checkouts?userId=", "GET /checkout-events")
    writes = ("POST /checkouts", "POST /checkouts/{id}/return", "POST /holds")
    rows = [
        row(
            f"CPU per request in-process, {key}, vs the constant view",
            med("now", key) / med("now", "constant view"),
            f"<= {limit}",
            lambda r, limit=limit: r <= limit,
            {
                "us": [run[key] for run in figures["now"]],
                "constant_us": [run["constant view"] for run in figures["now"]],
            },
        )
        for keys, limit in ((reads, 6), (writes, 10))
        for key in keys
    ]
    # the read side: each read within 2x of the same read in the lean floor (bench/serve.py)
    rows += [
        row(
            f"CPU per request in-process, {key}, vs the lean floor's same read",
            med("now", key) / med("now", f"lean {key}"),
            "<= 2",
            lambda r: r <= 2,
            {
                "us": [run[key] for run in figures["now"]],
                "lean_us": [run[f"lean {key}"] for run in figures["now"]],
            },
        )
        for key in reads
    ]
    if "before" in figures:
        rows += [
            row(
                f"CPU per request, {key}, now vs {os.environ['BENCH_BEFORE']}",
                med("now", key) / med("before", key),
                "report",
                lambda r: True,
                {
                    "now_us": [r[key] for r in figures["now"]],
                    "before_us": [r[key] for r in figures["before"]],
                },
            )
            for key in reads + writes
            if key in figures["before"][0]
        ]
    return rows


def row(what, ratio, target, met, raw) -> dict:
    return {"measure": what, "ratio": round(ratio, 3), "target": target, "met": bool(met(ratio)), "raw": raw}


def summary(raw: dict) -> str:
    parts = []
    for key, runs in raw.items():
        if runs and isinstance(runs[0], dict):
            parts.append(
                f"{key}: " + ", ".join(f"{r['rps']:.0f} req/s p99 {r['p99_ms']:.1f} ms" for r in runs)
            )
        else:
            parts.append(f"{key}: " + ", ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in runs))
    return "; ".join(parts)


def main() -> int:
    sys.modules.setdefault("run", sys.modules[__name__])  # bench/items.py: these helpers, this cleanup
    import items

    started = time.monotonic()
    rows = []
    try:
        for bench in (
            bench_startup,
            bench_capture_overhead,
            bench_search,
            bench_cpu,
            bench_http,
            bench_cleanup,
            bench_delete_user,
            bench_listing,
            bench_fk_rebuild,
            bench_privacy,
            bench_privacy_writes,
            bench_workers,
            *items.BENCHES,
            *(items.SCALE_BENCHES if ONLY else ()),  # make bench-scale names them
        ):
            if ONLY and bench.__name__ not in ONLY:
                continue
            print(f"running {bench.__name__} ...", flush=True)
            began = time.monotonic()
            found = bench()
            print(f"{bench.__name__}: {time.monotonic() - began:.0f} s", flush=True)
            print(json.dumps(found), flush=True)  # kept even if a later bench fails
            rows += found
    finally:
        for name in list(created):
            drop_database(name)
    print(f"\n{'measure':<92} {'ratio':>7} {'target':>8}  met")
    for r in rows:
        print(f"{r['measure']:<92} {r['ratio']:>7.3f} {r['target']:>8}  {'yes' if r['met'] else 'NO'}")
        print(f"    raw: {summary(r['raw'])}")
    print(f"\n{RUNS} runs each; ratios are medians; finished in {time.monotonic() - started:.0f} s")
    (HERE / "results.json").write_text(json.dumps({"runs": RUNS, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
