"""The read side (booknexus.web.reads): GETs outside pyramid_tm, no pre-ping, one snapshot
per response, and a dead connection costing the reader nothing. PostgreSQL, real commits."""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import psycopg.pq
import pytest
import sqlalchemy as sa
import transaction
import webtest
from conftest import app_settings, bearer, close_app, librarian_token, migrate, started

import booknexus.config

pytestmark = pytest.mark.slow


class TransactionsBegun:
    """A synchronizer on the thread's transaction manager (the one pyramid_tm uses): counts
    the transactions begun while registered."""

    def __init__(self):
        self.count = 0

    def newTransaction(self, txn):  # noqa: N802  (transaction's ISynchronizer)
        self.count += 1

    def beforeCompletion(self, txn):  # noqa: N802
        pass

    def afterCompletion(self, txn):  # noqa: N802
        pass


@pytest.fixture
def pg_app(fresh_database):
    url = fresh_database("postgresql")
    token = librarian_token(url)
    app = started(booknexus.config.main({}, **app_settings(url)))
    yield app, url, webtest.TestApp(app, extra_environ=bearer(token))
    close_app(app)


def test_a_read_runs_outside_the_transaction_manager_without_pre_ping(pg_app, monkeypatch):
    app, _, client = pg_app
    book = client.post_json("/books", {"title": "Dune", "author": "Frank Herbert"}).json
    reader, writer = app.registry["read_engine"], app.registry["dbengine"]
    pings = {"read": 0, "write": 0}
    for name, engine in (("read", reader), ("write", writer)):
        real_ping = engine.dialect.do_ping

        def counting_ping(dbapi_connection, name=name, real_ping=real_ping):
            pings[name] += 1
            return real_ping(dbapi_connection)

        monkeypatch.setattr(engine.dialect, "do_ping", counting_ping)
    seen = []  # (engine, the connection's transaction status after each statement)
    for name, engine in (("read", reader), ("write", writer)):
        sa.event.listen(
            engine,
            "after_cursor_execute",
            lambda conn, *args, name=name: seen.append(
                (name, conn.connection.dbapi_connection.info.transaction_status)
            ),
        )
    begun = TransactionsBegun()
    transaction.manager.registerSynch(begun)
    try:
        for _ in range(3):
            assert client.get(f"/books/{book['id']}").json["title"] == "Dune"
        reads = list(seen)
        assert begun.count == 0 and pings["read"] == 0  # no transaction of pyramid_tm's, no pre-ping
        # one statement a read, on the read engine, outside any database transaction
        assert reads == [("read", psycopg.pq.TransactionStatus.IDLE)] * 3
        client.patch_json(f"/books/{book['id']}", {"title": "Dune Messiah"})
        assert begun.count == 1 and pings["write"] >= 1  # commands keep both: the spies work
        assert ("write", psycopg.pq.TransactionStatus.INTRANS) in seen[len(reads) :]
    finally:
        transaction.manager.unregisterSynch(begun)


def test_a_ranked_search_reads_one_snapshot(pg_app):
    app, _, client = pg_app
    client.post_json("/books", {"title": "Dune", "author": "Frank Herbert"})
    seen = []
    sa.event.listen(
        app.registry["read_engine"],
        "after_cursor_execute",
        lambda conn, *args: seen.append(conn.connection.dbapi_connection.info.transaction_status),
    )
    assert [item["title"] for item in client.get("/books", {"q": "dune"}).json["items"]] == ["Dune"]
    # several statements (its tiers), every one inside one transaction
    assert len(seen) > 1 and set(seen) == {psycopg.pq.TransactionStatus.INTRANS}


def test_a_page_of_books_never_mixes_two_states(pg_app):
    """A writer moves a book between two states in which no copy is available (1 copy, 1 loan
    / 2 copies, 2 loans); a page of books read while it does must always say 0 available.
    Its copies and its loans are read in one statement: two would mix the states."""
    app, url, client = pg_app
    book = client.post_json("/books", {"title": "Contested", "author": "A", "copies": 1}).json
    readers = [
        client.post_json("/users", {"name": f"R{i}", "email": f"r{i}@example.org"}).json for i in (1, 2)
    ]
    client.post_json("/checkouts", {"userId": readers[0]["id"], "bookId": book["id"]}, status=201)
    engine = sa.create_engine(url)
    stop = threading.Event()

    def write():
        with engine.connect() as connection:
            while not stop.is_set():
                with connection.begin():
                    connection.execute(
                        sa.text('UPDATE "Books" SET copies = 2 WHERE id = :id'), {"id": book["id"]}
                    )
                    connection.execute(
                        sa.text(
                            'INSERT INTO "Checkouts" ("userId", "bookId", "checkedOutAt", "dueAt", renewals, '
                            '"createdAt", "updatedAt") VALUES (:user, :book, now(), now() + interval \'1 day\', 0, now(), now())'
                        ),
                        {"user": readers[1]["id"], "book": book["id"]},
                    )
                with connection.begin():
                    connection.execute(
                        sa.text('DELETE FROM "Checkouts" WHERE "userId" = :user'), {"user": readers[1]["id"]}
                    )
                    connection.execute(
                        sa.text('UPDATE "Books" SET copies = 1 WHERE id = :id'), {"id": book["id"]}
                    )

    writer = threading.Thread(target=write)
    writer.start()
    try:
        seen = {client.get("/books", {"limit": 5}).json["items"][0]["available"] for _ in range(300)}
    finally:
        stop.set()
        writer.join(timeout=30)
        engine.dispose()
    assert seen == {0}


def test_a_read_after_the_database_dropped_every_connection_answers_200(pg_app):
    """What a PostgreSQL restart does to a pool: every connection it holds is dead. The
    read that meets one is run again on a fresh connection (and sees no error)."""
    app, url, client = pg_app
    book = client.post_json("/books", {"title": "Dune", "author": "Frank Herbert"}).json
    assert client.get(f"/books/{book['id']}").status_int == 200  # a pooled read connection
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        killed = connection.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    admin.dispose()
    assert killed >= 1
    assert client.get(f"/books/{book['id']}").json["title"] == "Dune"
    assert client.get("/books").status_int == 200


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivatePostgres:
    """A PostgreSQL server of this test's own (initdb in a temporary directory, a free port),
    so that restarting it disturbs no other test."""

    def __init__(self):
        self.bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))[-1]).parent
        self.directory = Path(tempfile.mkdtemp(prefix="booknexus-pg-"))
        self.data = self.directory / "data"
        self.port = free_port()
        # PostgreSQL refuses to run as root: as its own user, as an operator would
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.directory, "postgres", "postgres")
        self.run("initdb", "-D", str(self.data), "--auth=trust", "-U", "postgres", "--no-sync")
        self.pg_ctl("start")

    def run(self, program: str, *args: str) -> None:
        # no pipes: the server pg_ctl starts would hold them open, and this would never return
        subprocess.run(
            [*self.as_owner, str(self.bindir / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=120,
        )

    def pg_ctl(self, action: str) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.directory / "server.log")
        self.run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-m", "fast", "-w", action)

    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def close(self) -> None:
        self.pg_ctl("stop")
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres(postgres):  # needs what the suite needs: PostgreSQL's programs
    server = PrivatePostgres()
    yield server
    server.close()


def test_reads_answer_across_a_real_postgresql_restart(private_postgres, serve_url):
    url = private_postgres.url()
    migrate(url)
    served = serve_url(url, librarian_token(url))
    status, book = served.request("POST", "/books", {"title": "Dune", "author": "Frank Herbert"})
    assert status == 201
    reads = [f"/books/{book['id']}", "/books?limit=5", "/books?q=dune", "/checkout-events"]
    assert [served.request("GET", path)[0] for path in reads] == [200] * len(reads)  # pooled connections

    private_postgres.pg_ctl("restart")  # every pooled connection is now dead

    assert [served.request("GET", path)[0] for path in reads] == [200] * len(reads)
    assert served.request("PATCH", f"/books/{book['id']}", {"title": "Dune Messiah"})[0] == 200  # pre-ping
