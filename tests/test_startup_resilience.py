"""A server that survives its database: outage at startup, recovery, several processes."""

import contextlib
import os
import re
import socket
import subprocess
import sys
import urllib.request

import pytest
import sqlalchemy as sa
from conftest import ROOT, librarian_token
from helpers import wait_for
from legacy import unchecked
from proxy import Proxy
from sqlalchemy.engine import make_url

from booknexus.circulation.locks import REPAIR_LOCK_KEY
from booknexus.db.engines import DATABASE_URL_ENV

pytestmark = pytest.mark.slow


@pytest.fixture
def proxy(postgres):
    admin = postgres.admin_url
    running = Proxy(admin.host or "127.0.0.1", admin.port or 5432)
    yield running
    running.stop()


def through(url: str, proxy: Proxy) -> str:
    return make_url(url).set(port=proxy.port).render_as_string(hide_password=False)


SCRAPE_TOKEN = "scrape-token-of-the-test"


def test_starts_without_its_database_and_recovers_without_restart(fresh_database, proxy, serve_url):
    url = fresh_database("postgresql")
    with unchecked(url) as connection:
        connection.exec_driver_sql(
            'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", renewals, '
            '"createdAt", "updatedAt") VALUES (404, 404, now(), now(), 0, now(), now())'
        )
    token = librarian_token(url)
    # the proxy is closed: the database is "down"; /health's details are the scrape token's
    # (a librarian's token cannot be checked without the database)
    served = serve_url(through(url, proxy), token, wait=False, **{"booknexus.metrics.token": SCRAPE_TOKEN})

    def health():
        return served.request("GET", "/health", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})

    status, body = health()
    assert status == 503
    assert (body["status"], body["database"]) == ("degraded", "unreachable")
    assert body["startup"]["completed"] is False and body["startup"]["lastError"]
    status, body = served.request("GET", "/users")
    assert status == 503 and body["error"]["code"] == "database_unavailable"
    status, body = served.request("POST", "/users", {"name": "A", "email": "a@example.org"})
    assert status == 503 and body["error"]["code"] == "database_unavailable"
    attempts = health()[1]["startup"]["attempts"]
    wait_for(lambda: health()[1]["startup"]["attempts"] > attempts)

    proxy.open()  # the database is back: no restart
    healthy = wait_for(lambda: (lambda r: r[0] == 200 and r[1])(health()))
    assert healthy["status"] == "ok" and healthy["startup"]["completed"] is True
    assert healthy["startup"]["attempts"] > attempts
    assert healthy["cleanup"]["purged_missing_user"] == 1  # the deferred cleanup ran
    status, user = served.request("POST", "/users", {"name": "A", "email": "a@example.org"})
    assert status == 201

    # lost mid-life (a database restart): requests fail with 503, then recover by themselves
    proxy.close()
    status, body = served.request("GET", f"/users/{user['id']}")
    assert status == 503 and body["error"]["code"] == "database_unavailable"
    proxy.open()
    assert wait_for(lambda: served.request("GET", f"/users/{user['id']}")[0] == 200)


def test_serves_while_the_startup_work_waits(fresh_database, serve_url):
    """The port answers and every endpoint serves; /health says "starting" until the work is done."""
    url = fresh_database("postgresql")
    token = librarian_token(url)
    engine = sa.create_engine(url)
    with engine.connect() as holder:  # another process holding the repair: startup must wait for it
        holder.exec_driver_sql(f"SELECT pg_advisory_lock({REPAIR_LOCK_KEY})")
        served = serve_url(url, token, wait=False)
        status, body = served.request("GET", "/health")
        assert (status, body["status"], body["database"]) == (503, "starting", "ok")
        assert body["startup"]["completed"] is False
        status, book = served.request("POST", "/books", {"title": "Dune", "author": "Frank Herbert"})
        assert status == 201
        assert served.request("GET", f"/books/{book['id']}")[0] == 200
        holder.exec_driver_sql(f"SELECT pg_advisory_unlock({REPAIR_LOCK_KEY})")
    engine.dispose()
    health = wait_for(lambda: (lambda r: r[0] == 200 and r[1])(served.request("GET", "/health")))
    assert health["status"] == "ok" and health["cleanup"]["full"] is False


def start_process(url: str, port: int, log_path, stack: contextlib.ExitStack) -> subprocess.Popen:
    """``pserve`` on a copy of development.ini listening on ``port``, logging to ``log_path``."""
    ini = log_path.with_suffix(".ini")
    text = (ROOT / "development.ini").read_text()
    ini.write_text(re.sub(r"listen = .*", f"listen = 127.0.0.1:{port}", text))
    return subprocess.Popen(
        [sys.executable, "-m", "pyramid.scripts.pserve", str(ini)],
        env={**os.environ, DATABASE_URL_ENV: url},
        stdout=stack.enter_context(log_path.open("w")),
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )


def wait_until_healthy(processes, ports) -> None:
    try:
        for port in ports:

            def healthy(port=port):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as r:
                        return r.status == 200
                except OSError:
                    return False

            wait_for(healthy, timeout=120, interval=0.25)
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_starting_at_once_clean_up_once(fresh_database, tmp_path):
    url = fresh_database("postgresql")
    orphans = 200_000  # enough work that the two startups overlap
    with unchecked(url) as connection:
        connection.exec_driver_sql(
            'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", renewals, '
            '"createdAt", "updatedAt") SELECT 1000000 + n, 1, now(), now(), 0, now(), now() '
            f"FROM generate_series(1, {orphans}) AS n"
        )
    ports = [free_port(), free_port()]
    logs = [tmp_path / "first.log", tmp_path / "second.log"]
    with contextlib.ExitStack() as stack:
        processes = [start_process(url, port, log, stack) for port, log in zip(ports, logs, strict=True)]
        wait_until_healthy(processes, ports)
    outputs = [log.read_text() for log in logs]
    ran = [out for out in outputs if f"purged {orphans} checkouts of missing users" in out]
    # the second waited for the first's lock, then found the repair done
    found_done = [out for out in outputs if "cleanup: nothing to repair" in out]
    assert len(ran) == 1, outputs
    assert len(found_done) == 1, outputs
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        purged = connection.exec_driver_sql(
            'SELECT count(*), count(DISTINCT "checkoutId") FROM "CheckoutEvents" WHERE type = \'purged\''
        ).one()
        left = connection.exec_driver_sql('SELECT count(*) FROM "Checkouts"').scalar_one()
    engine.dispose()
    assert tuple(purged) == (orphans, orphans)
    assert left == 0
