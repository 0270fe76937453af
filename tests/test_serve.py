"""``booknexus-serve``: real gunicorn processes over PostgreSQL, as an operator starts them.

Each test starts the documented command on a free port over a fresh database, with an ini
written from production.ini (JSON log lines, read back from the process's stderr).
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, librarian_token

from booknexus.db.engines import DATABASE_URL_ENV

pytestmark = pytest.mark.slow

METRICS_TOKEN = "scrape-secret-for-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving_ini(tmp_path: Path, **settings) -> Path:
    """production.ini with test settings added to its [app:main]."""
    text = (ROOT / "production.ini").read_text()
    lines = "".join(f"{key} = {value}\n" for key, value in settings.items())
    ini = tmp_path / "serve.ini"
    ini.write_text(text.replace("[app:main]\n", f"[app:main]\n{lines}", 1))
    return ini


class Workers:
    """``booknexus-serve <ini> --workers N --bind 127.0.0.1:PORT`` in a process group."""

    def __init__(self, url: str, ini: Path, workers: int = 2, code: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.lines: list[dict] = []
        command = [
            str(Path(sys.executable).parent / "booknexus-serve"),
            str(ini),
            "--workers",
            str(workers),
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        environment = {**os.environ, DATABASE_URL_ENV: url}
        environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if code:  # a copy of the package, found before the installed one
            environment["PYTHONPATH"] = str(code)
        self.process = subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            try:
                self.lines.append(json.loads(line))
            except ValueError:
                self.lines.append({"message": line.rstrip(), "unparsed": True})

    def get(
        self, path: str, token: str | None = None, headers: dict | None = None, method: str = "GET", body=None
    ):
        request = urllib.request.Request(
            self.url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            with error:
                return error.code, dict(error.headers), error.read()

    def health(self) -> int | None:
        try:
            return self.get("/health")[0]
        except urllib.error.URLError:
            return None  # not listening (yet, or any more)

    def access_lines(self) -> list[dict]:
        return [line for line in self.lines if line.get("name") == "booknexus.access"]

    def worker_pids(self) -> set[int]:
        return {
            line["process"] for line in self.lines if line.get("message", "").startswith("Booting worker")
        }

    def wait_for(self, predicate, timeout: float = 60, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; log: {self.lines[-20:]}")

    def healthy_from_every_worker(self, workers: int) -> set[int]:
        """Concurrent /health requests until each of ``workers`` live workers has answered 200."""

        def answered() -> set[int]:
            return {
                line["process"]
                for line in self.access_lines()
                if line["route"] == "/health" and line["status"] == 200
            }

        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(16) as pool:
            while len(answered() & self.live_workers()) < workers and time.monotonic() < deadline:
                list(pool.map(lambda _: self.get("/health"), range(64)))
        assert len(answered() & self.live_workers()) >= workers, self.lines[-20:]
        return answered() & self.live_workers()

    def live_workers(self) -> set[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return {int(pid) for pid in children.read_text().split()} if children.exists() else set()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        self.process.stderr.close()
        return code


@pytest.fixture
def workers(fresh_database, tmp_path):
    started: list[Workers] = []

    def start(count: int = 2, code: Path | None = None, **settings) -> tuple[Workers, str]:
        url = fresh_database("postgresql")
        ini = serving_ini(tmp_path, **{"booknexus.metrics.token": METRICS_TOKEN, **settings})
        served = Workers(url, ini, count, code)
        started.append(served)
        served.wait_for(lambda: served.health() == 200, what="the first 200 from /health")
        return served, url

    yield start
    for served in started:
        served.stop()


def test_two_workers_share_one_port_and_each_is_healthy(workers):
    served, _ = workers(2)
    pids = served.healthy_from_every_worker(2)
    assert len(pids) == 2 and pids == served.live_workers()
    # the startup work ran in each worker, and was done: each says so in its log
    done = {
        line["process"] for line in served.lines if line.get("message", "").startswith("startup work done")
    }
    assert pids <= done


def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(workers):
    served, _ = workers(2)
    before = served.healthy_from_every_worker(2)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    answers = [served.get("/health")[0] for _ in range(50)]
    assert answers == [200] * 50  # the surviving worker answers meanwhile
    served.wait_for(
        lambda: len(served.live_workers()) == 2 and victim not in served.live_workers(), what="a new worker"
    )
    after = served.healthy_from_every_worker(2)
    assert victim not in after and len(after) == 2


def test_sigterm_lets_the_request_in_flight_finish(workers):
    served, url = workers(2)
    token = librarian_token(url)
    status, _, body = served.get(
        "/books", token, method="POST", body={"title": "Slow", "author": "A", "copies": 1}
    )
    assert status == 201
    book = json.loads(body)["id"]
    engine = sa.create_engine(url)
    answer = {}
    with engine.connect() as holder:
        # hold the book's row: the PATCH below waits for it, in flight, when SIGTERM arrives
        holder.execute(sa.text('SELECT 1 FROM "Books" WHERE id = :id FOR UPDATE'), {"id": book})
        patching = threading.Thread(
            target=lambda: answer.update(
                result=served.get(f"/books/{book}", token, method="PATCH", body={"title": "Renamed"})
            )
        )
        patching.start()
        served.wait_for(
            lambda: (
                holder.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
                    )
                ).scalar()
                == 1
            ),
            what="the PATCH waiting for the row lock",
        )
        served.process.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        assert served.process.poll() is None  # still finishing the request in flight
        holder.rollback()
    patching.join(timeout=30)
    status, _, body = answer["result"]
    assert status == 200 and json.loads(body)["title"] == "Renamed"
    assert served.process.wait(timeout=30) == 0
    engine.dispose()


def test_metrics_sum_every_worker_by_route_pattern(workers):
    served, url = workers(2)
    token = librarian_token(url)
    status, _, body = served.get(
        "/books", token, method="POST", body={"title": "Counted", "author": "A", "copies": 1}
    )
    book = json.loads(body)["id"]
    reader = json.loads(
        served.get("/users", token, method="POST", body={"name": "R", "email": "r@example.org"})[2]
    )
    loan = served.get("/checkouts", token, method="POST", body={"userId": reader["id"], "bookId": book})
    assert loan[0] == 201
    assert served.get("/books/999999")[0] == 404
    served.healthy_from_every_worker(2)
    known = 40
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: served.get(f"/books/{book}")[0], range(known)))
    assert answers == [200] * known
    readers = {line["process"] for line in served.access_lines() if line["route"] == "/books/{id}"}
    assert len(readers) == 2, "both workers served the book (else the sum proves nothing)"

    status, headers, text = served.get("/metrics", METRICS_TOKEN)
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    text = text.decode()
    line = f'booknexus_http_requests_total{{method="GET",route="/books/{{id}}",status="200"}} {float(known)}'
    assert line in text.splitlines()
    assert f"/books/{book}" not in text  # patterns, never raw paths
    lines = text.splitlines()
    assert (
        f'booknexus_http_request_duration_seconds_count{{method="GET",route="/books/{{id}}",status="200"}} {float(known)}'
        in lines
    )
    # the library's own counters, and the pool's gauges (summed over live workers)
    assert 'booknexus_circulation_events_total{log="checkouts",type="checked_out"} 1.0' in lines
    assert 'booknexus_refusals_total{code="book_not_found"} 1.0' in lines
    assert any(line.startswith("booknexus_db_connections_in_use ") for line in lines)
    assert any(line.startswith("booknexus_db_connections_waiting ") for line in lines)
    # a librarian's token reads them too; a wrong token is refused as any wrong token is
    assert served.get("/metrics", token)[0] == 200
    assert served.get("/metrics", "not-the-token")[0] == 401
    assert served.get("/metrics")[0] == 401


def test_request_id_reaches_the_header_the_error_body_and_the_json_log_line(workers):
    served, _ = workers(1)
    status, headers, body = served.get("/books/999999", headers={"X-Request-ID": "abc-123"})
    assert status == 404
    assert headers["X-Request-ID"] == "abc-123"
    assert json.loads(body)["error"]["requestId"] == "abc-123"
    served.wait_for(
        lambda: any(line.get("request_id") == "abc-123" for line in served.access_lines()), what="the line"
    )
    (line,) = [line for line in served.access_lines() if line.get("request_id") == "abc-123"]
    assert (line["method"], line["route"], line["status"], line["actor"]) == ("GET", "/books/{id}", 404, None)
    assert isinstance(line["duration_ms"], float) and "asctime" in line

    too_long = "a" * 200
    status, headers, body = served.get("/books/999999", headers={"X-Request-ID": too_long})
    replaced = headers["X-Request-ID"]
    assert replaced != too_long and json.loads(body)["error"]["requestId"] == replaced
    served.wait_for(
        lambda: any(line.get("request_id") == replaced for line in served.access_lines()), what="it"
    )
    assert not any(too_long in json.dumps(line) for line in served.lines)
    assert not any(line.get("unparsed") for line in served.lines), "every line is one JSON object"


def test_sighup_replaces_the_workers_and_they_serve(workers):
    served, _ = workers(2)
    before = served.healthy_from_every_worker(2)
    served.process.send_signal(signal.SIGHUP)
    served.wait_for(
        lambda: not (served.live_workers() & before) and len(served.live_workers()) == 2, what="new workers"
    )
    after = served.healthy_from_every_worker(2)
    assert not (after & before)
    # the old workers' exit left the metrics directory to the new ones
    status, _, text = served.get("/metrics", METRICS_TOKEN)
    assert status == 200 and b'route="/health"' in text
    assert served.process.poll() is None


# what the master does before it forks: imports this module, reads the ini, builds gunicorn's
# application; then it prints every module it holds
MASTER = """
import argparse, sys
from booknexus.operations import serve
options = serve.serving_options(sys.argv[1], argparse.Namespace(bind=None, workers=None, threads=None))
serve.BookNexusServer(sys.argv[1], options)
print(" ".join(sys.modules))
"""


def test_the_master_imports_nothing_of_the_app():
    """What the master imports, every worker inherits, SIGHUP's new ones too."""
    loaded = subprocess.run(
        [sys.executable, "-c", MASTER, str(ROOT / "production.ini")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.split()
    ours = {name for name in loaded if name.split(".")[0] == "booknexus"}
    assert ours == {"booknexus", "booknexus.operations", "booknexus.operations.serve"}
    heavy = ("pyramid", "pyramid_openapi3", "openapi_core", "sqlalchemy", "prometheus_client", "transaction")
    assert [name for name in loaded if name.split(".")[0] in heavy] == []


# appended to the copy's error contract: any module that config.scan() reaches can add a
# subscriber, so a new release of it shows in every response's headers
NEW_RELEASE = """

from pyramid.events import NewResponse, subscriber


@subscriber(NewResponse)
def _say_the_release(event):
    event.response.headers["X-Release"] = "new"
"""


def test_sighup_loads_the_code_now_on_disk(workers, tmp_path):
    """A module the master used to import, changed on disk after the start: SIGHUP's workers run it."""
    code = tmp_path / "release"
    shutil.copytree(ROOT / "booknexus", code / "booknexus", ignore=shutil.ignore_patterns("__pycache__"))
    served, _ = workers(2, code=code)
    before = served.healthy_from_every_worker(2)
    assert "X-Release" not in served.get("/health")[1]

    changed = code / "booknexus" / "web" / "errors.py"
    changed.write_text(changed.read_text() + NEW_RELEASE)
    served.process.send_signal(signal.SIGHUP)
    served.wait_for(
        lambda: not (served.live_workers() & before) and len(served.live_workers()) == 2, what="new workers"
    )
    served.healthy_from_every_worker(2)
    answers = [served.get("/health") for _ in range(20)]
    assert [(status, headers.get("X-Release")) for status, headers, _ in answers] == [(200, "new")] * 20
