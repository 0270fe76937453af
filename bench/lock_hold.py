"""How long each write holds the log's lock: from its LOCK TABLE to its COMMIT.

    BOOKNEXUS_DATABASE_URL=<a migrated database with book 1 and readers> python bench/lock_hold.py

The log's EXCLUSIVE lock is the one point every write passes through one at a time, so
this hold time bounds how much more writing throughput more workers can buy. Measured in
process (WebTest, production.ini's settings), checkout + return, one after the other.
Prints JSON: median and p99 in ms.
"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import transaction
import webtest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cpu import librarian, production_settings  # noqa: E402

import booknexus.config  # noqa: E402
from booknexus.circulation.eventlog import append  # noqa: E402

PAIRS = int(os.environ.get("BENCH_LOCK_PAIRS", 300))


def main() -> int:
    url = os.environ["BOOKNEXUS_DATABASE_URL"]
    app = booknexus.config.main({}, **production_settings(url))
    app.registry["booknexus.startup"].wait(120)
    client = webtest.TestApp(app, extra_environ={"HTTP_AUTHORIZATION": f"Bearer {librarian(url)}"})
    held: list[float] = []
    taking = append.lock_logs

    def timed_lock_logs(session, stream=append.CHECKOUTS):
        current = transaction.get()
        if not getattr(current, "bench_locked_at", None):
            taking(session, stream)
            current.bench_locked_at = time.perf_counter()
            current.addAfterCommitHook(lambda ok: held.append(time.perf_counter() - current.bench_locked_at))
        else:
            taking(session, stream)

    append.lock_logs = timed_lock_logs
    for _ in range(PAIRS):
        loan = client.post_json("/checkouts", {"userId": 1 + len(held) % 50, "bookId": 1}).json
        client.post(f"/checkouts/{loan['id']}/return")
    app.registry["dbengine"].dispose()
    held_ms = sorted(seconds * 1000 for seconds in held[20:])  # warm connections only
    print(
        json.dumps(
            {
                "median_ms": round(statistics.median(held_ms), 3),
                "p99_ms": round(held_ms[int(len(held_ms) * 0.99) - 1], 3),
                "writes": len(held_ms),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
