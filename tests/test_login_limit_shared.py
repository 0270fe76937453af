"""The README's ``redis://`` advice, for real: two ``booknexus-serve`` workers over one Redis
count a client's failed logins once, whichever worker each attempt reaches.

Redis is the one on 127.0.0.1:6379 (``BOOKNEXUS_TEST_REDIS_URL``), shared with whatever else
uses it: the test's keys have a prefix of their own and only those are deleted. Unreachable,
the test is skipped, or fails under ``BOOKNEXUS_REQUIRE_PG=1`` (CI), as PostgreSQL's do.
"""

import os
import signal
import uuid

import pytest
import redis
import webtest
from conftest import REQUIRE_PG, app_settings, close_app, librarian_token
from test_serve import Workers, serving_ini

import booknexus.config

pytestmark = pytest.mark.slow

REDIS_URL = os.environ.get("BOOKNEXUS_TEST_REDIS_URL", "redis://127.0.0.1:6379")
PASSWORD = "correct horse battery"


@pytest.fixture
def redis_prefix():
    """A key prefix no one else uses, on a Redis that answers; its keys deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        client.close()
        message = f"Redis unreachable at {REDIS_URL}: {exc}"
        if REQUIRE_PG:
            pytest.fail(f"BOOKNEXUS_REQUIRE_PG=1 and {message}")
        pytest.skip(message)
    prefix = f"booknexus-test-{uuid.uuid4().hex[:12]}"
    yield client, prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def healthy(served: Workers) -> bool:
    """A 200 from /health; a port whose workers are still booting (slowly, on a busy machine)
    may hold the connection past the client's timeout: not yet."""
    try:
        return served.get("/health")[0] == 200
    except OSError:  # refused, reset or timed out
        return False


@pytest.fixture
def two_workers(fresh_database, tmp_path, redis_prefix):
    """``booknexus-serve`` with two workers over PostgreSQL, counting failed logins in Redis,
    behind production.ini's trusted proxies (the test connects from 127.0.0.1, as nginx does)."""
    _, prefix = redis_prefix
    url = fresh_database("postgresql")
    ini = serving_ini(
        tmp_path,
        **{
            "booknexus.login_limit.storage": REDIS_URL,
            "booknexus.login_limit.key_prefix": prefix,
            "booknexus.login_limit.per_account": "100 per 15 minutes",
            "booknexus.login_limit.per_address": "4 per 15 minutes",
        },
    )
    served = Workers(url, ini, 2)
    try:
        served.wait_for(lambda: healthy(served), timeout=180, what="the first 200 from /health")
        served.healthy_from_every_worker(2)
        yield served, url
    finally:
        served.stop()


def test_failures_on_both_workers_add_up_to_one_limit(two_workers, redis_prefix):
    served, url = two_workers
    client, prefix = redis_prefix
    status, _, _ = served.get(
        "/users",
        librarian_token(url),
        method="POST",
        body={"name": "Ann", "email": "ann@example.org", "password": PASSWORD},
    )
    assert status == 201
    first, second = sorted(served.live_workers())

    def log_in(worker: int, forwarded_for: str, password: str) -> int:
        """An attempt answered by ``worker``: the other is paused (SIGSTOP) while it is made,
        so the port's one listener can only hand the connection to this one."""
        other = second if worker == first else first
        request_id = f"attempt-{uuid.uuid4().hex}"
        os.kill(other, signal.SIGSTOP)
        try:
            status, _, _ = served.get(
                "/auth/tokens",
                method="POST",
                body={"email": "ann@example.org", "password": password},
                headers={"X-Forwarded-For": forwarded_for, "X-Request-ID": request_id},
            )
        finally:
            os.kill(other, signal.SIGCONT)
        served.wait_for(
            lambda: any(line.get("request_id") == request_id for line in served.access_lines()),
            what=f"the access line of {request_id}",
        )
        (line,) = [line for line in served.access_lines() if line.get("request_id") == request_id]
        assert line["process"] == worker and line["client"] == forwarded_for.split(",")[-1].strip()
        return status

    # the limit is 4 per address: two failures on each worker, the client's own entry on the left
    attempts = [(first, "10.0.0.1, 198.51.100.7"), (second, "198.51.100.7")] * 2
    assert [log_in(worker, address, "wrong guess") for worker, address in attempts] == [401] * 4
    # each worker has seen only two of them, yet both refuse the fifth, right password or not
    assert log_in(second, "198.51.100.7", PASSWORD) == 429
    assert log_in(first, "192.0.2.1, 198.51.100.7", PASSWORD) == 429
    # another reader behind the same proxy logs in on either worker
    assert log_in(first, "198.51.100.8", PASSWORD) == 201
    assert log_in(second, "198.51.100.8", PASSWORD) == 201
    assert list(client.scan_iter(match=f"{prefix}:*"))  # the counts are in Redis, under our prefix


def test_an_unreachable_login_limit_store_is_a_json_503(anonymous, app, app_database):
    """The counts' store down (nothing listens on port 1) must not answer a 500: logging in
    is unavailable for a moment, as with an unreachable database; nothing else is."""
    application = booknexus.config.main(
        {}, **app_settings(app_database.url, **{"booknexus.login_limit.storage": "redis://127.0.0.1:1"})
    )
    try:
        client = webtest.TestApp(application)
        response = client.post_json(
            "/auth/tokens", {"email": "ann@example.org", "password": "whatever-it-is"}, status=503
        )
        assert response.json["error"]["code"] == "login_limit_unavailable"
        assert response.headers["Retry-After"] == "5"
        assert client.get("/books", status=200).json["items"] == []
    finally:
        close_app(application)
