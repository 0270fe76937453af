"""Fixtures: real SQLite and real PostgreSQL, migrated by Alembic, behind the real WSGI app.

Every functional test runs once per backend (ids ``[sqlite]`` / ``[postgresql]``), through the
engines production uses (the command engine, the read engine and its snapshots) with no
test hook in the app: the app is built once per backend and its database is put back to a
copy of the migrated template before each test. Tests that need a database of their own
(concurrency, startup, migrations) take a fresh copy too.
"""

import contextlib
import json
import os
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import webtest
from alembic.config import Config
from sqlalchemy.engine import make_url
from webtest.http import StopableWSGIServer

import booknexus.config
from alembic import command
from booknexus.accounts import tokens
from booknexus.accounts.models import User
from booknexus.accounts.roles import LIBRARIAN
from booknexus.db.engines import DATABASE_URL_ENV, get_engine

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "BOOKNEXUS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_PG = os.environ.get("BOOKNEXUS_REQUIRE_PG") == "1"
BACKENDS = ["sqlite", "postgresql"]


@contextlib.contextmanager
def database_url_env(url: str):
    """BOOKNEXUS_DATABASE_URL set for the duration, as an operator would set it."""
    previous = os.environ.get(DATABASE_URL_ENV)
    os.environ[DATABASE_URL_ENV] = url
    try:
        yield
    finally:
        if previous is None:
            del os.environ[DATABASE_URL_ENV]
        else:
            os.environ[DATABASE_URL_ENV] = previous


def alembic_config() -> Config:
    return Config(str(ROOT / "development.ini"))


def migrate(url: str, revision: str = "head") -> None:
    with database_url_env(url):
        command.upgrade(alembic_config(), revision)


def downgrade(url: str, revision: str) -> None:
    with database_url_env(url):
        command.downgrade(alembic_config(), revision)


def app_settings(url: str, **overrides) -> dict:
    return {
        "sqlalchemy.url": url,
        "retry.attempts": "3",
        "booknexus.loan_days": "14",
        "booknexus.max_renewals": "2",
        "booknexus.max_loans": "10",
        "booknexus.max_holds": "5",
        "booknexus.hold_pickup_days": "7",
        "booknexus.startup_retry_initial_seconds": "0.1",
        "booknexus.startup_retry_max_seconds": "0.5",
        # every request the compiled checks accept is judged by openapi-core too
        "booknexus.validation_crosscheck": "true",
        # the session-wide apps see every test's failed logins: the limit is tested on its own
        "booknexus.login_limit.per_account": "10000 per 15 minutes",
        "booknexus.login_limit.per_address": "10000 per 15 minutes",
        **overrides,
    }


def issue_token(session, role: str = LIBRARIAN, email: str | None = None) -> tuple[User, str]:
    """A user of ``role`` with a live bearer token (no password: tests skip Argon2's cost)."""
    user = User(name=f"Test {role}", email=email or f"{role}-{uuid.uuid4().hex[:10]}@example.org", role=role)
    session.add(user)
    session.flush()
    token, _ = tokens.issue(session, user, timedelta(hours=1))
    return user, token


def librarian_token(url: str) -> str:
    """A committed librarian and token in the database at ``url``."""
    engine = get_engine({"sqlalchemy.url": url})
    with sa.orm.Session(engine) as session, session.begin():
        _, token = issue_token(session)
    engine.dispose()
    return token


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def started(app, timeout: float = 120):
    """The app once its startup work is done: it runs in the background, behind the open port."""
    assert app.registry["booknexus.startup"].wait(timeout), "startup work not done"
    return app


def close_app(app) -> None:
    """Stop the app's background startup retries and close its connections."""
    app.registry["booknexus.startup"].stop()
    app.registry["dbengine"].dispose()
    app.registry["read_engine"].dispose()


class PostgresServer:
    """Throwaway databases on the PostgreSQL server named by BOOKNEXUS_TEST_PG_URL."""

    def __init__(self, admin_url: str):
        self.admin_url = make_url(admin_url)
        self.engine = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []

    def url_for(self, name: str) -> str:
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def create(self, template: str | None = None) -> str:
        name = f"booknexus_test_{uuid.uuid4().hex[:12]}"
        clause = f' TEMPLATE "{template}"' if template else ""
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return self.url_for(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self.engine.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            self.drop(self.url_for(name))
        self.engine.dispose()


@pytest.fixture(scope="session")
def postgres():
    server = PostgresServer(PG_ADMIN_URL)
    try:
        with server.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        message = f"PostgreSQL unreachable at {PG_ADMIN_URL}: {exc.orig}"
        if REQUIRE_PG:
            pytest.fail(f"BOOKNEXUS_REQUIRE_PG=1 and {message}")
        print(f"\n{'!' * 70}\nSKIPPING POSTGRESQL TESTS: {message}\n{'!' * 70}")
        pytest.skip(message)
    yield server
    server.drop_all()


@pytest.fixture(scope="session")
def pg_template(postgres):
    """A database migrated to head once, copied for every test that needs its own."""
    url = postgres.create()
    migrate(url)
    return make_url(url).database


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def fresh_database(request, tmp_path):
    """Make an empty, migrated database of the given backend that the test may commit to."""

    def make(backend: str) -> str:
        if backend == "postgresql":
            server = request.getfixturevalue("postgres")
            return server.create(template=request.getfixturevalue("pg_template"))
        path = tmp_path / f"{uuid.uuid4().hex[:8]}.sqlite"
        path.write_bytes(request.getfixturevalue("sqlite_template").read_bytes())
        return f"sqlite:///{path}"

    return make


@pytest.fixture
def empty_database(request, tmp_path):
    """Make a database with nothing in it (for migrations and legacy schemas)."""

    def make(backend: str) -> str:
        if backend == "postgresql":
            return request.getfixturevalue("postgres").create()
        return f"sqlite:///{tmp_path / uuid.uuid4().hex[:8]}.sqlite"

    return make


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request):
    return request.param


class AppDatabase:
    """The session-wide app's own database, put back to a copy of the migrated template
    before each test: the app keeps its engines (command, read, snapshot) and builds nothing
    again; only their pools are emptied, as a database restart would empty them."""

    def __init__(self, backend: str, request, tmp_path_factory):
        self.backend = backend
        if backend == "postgresql":
            self.server = request.getfixturevalue("postgres")
            self.template = request.getfixturevalue("pg_template")
            self.url = self.server.create(template=self.template)
        else:
            self.template_path = request.getfixturevalue("sqlite_template")
            self.path = tmp_path_factory.mktemp("app") / "app.sqlite"
            self.path.write_bytes(self.template_path.read_bytes())
            self.url = f"sqlite:///{self.path}"

    def reset(self, app) -> None:
        for engine in ("dbengine", "read_engine"):
            app.registry[engine].dispose()
        if self.backend == "postgresql":
            name = make_url(self.url).database
            with self.server.engine.connect() as connection:
                connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
                connection.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        else:
            self.path.write_bytes(self.template_path.read_bytes())


@pytest.fixture(scope="session")
def app_database(backend, request, tmp_path_factory):
    return AppDatabase(backend, request, tmp_path_factory)


@pytest.fixture(scope="session")
def app(app_database):
    """The WSGI app over a database of its own, built once per backend; each test that
    uses it (through ``dbconnection``) starts from a fresh copy of the migrated template."""
    application = started(booknexus.config.main({}, **app_settings(app_database.url)))
    yield application
    close_app(application)


@pytest.fixture
def dbconnection(app, app_database):
    """A connection to the app's database, freshly copied from the template, for arranging
    and inspecting data behind the API's back. ``Client`` commits it before each request,
    so the app sees what the test arranged, and the next statement sees what the app did."""
    app_database.reset(app)
    with app.registry["dbengine"].connect() as connection:
        yield connection
        connection.rollback()


@pytest.fixture
def dbsession(dbconnection):
    """A session on the test's connection, for arranging data directly (committed before
    each request, as ``dbconnection`` is)."""
    with sa.orm.Session(bind=dbconnection) as session:
        dbconnection.info[TEST_SESSION] = session
        yield session


TEST_SESSION = "booknexus.test_session"  # dbsession, on its connection's info


class Client(webtest.TestApp):
    """WebTest's client over the real app, committing what the test arranged first (the
    test's session and connection): the app reads the database as any client would."""

    def __init__(self, app, dbconnection, token: str | None = None, **extra_environ):
        super().__init__(app, extra_environ={**(bearer(token) if token else {}), **extra_environ})
        self.dbconnection = dbconnection

    def do_request(self, *args, **kwargs):
        session = self.dbconnection.info.get(TEST_SESSION)
        if session is not None and session.in_transaction():
            session.commit()  # its flushes, and its part in the connection's transaction
        if self.dbconnection.in_transaction():
            self.dbconnection.commit()
        return super().do_request(*args, **kwargs)


@pytest.fixture
def anonymous(app, dbconnection):
    """The app, as someone who has not logged in."""
    return Client(app, dbconnection)


@pytest.fixture
def testapp(app, dbconnection, dbsession):
    """The app, as a librarian (allowed everything): for tests of behaviour, not of access."""
    librarian, token = issue_token(dbsession)
    dbsession.commit()
    client = Client(app, dbconnection, token)
    client.user_id = librarian.id  # the actor the log must record
    return client


class Served:
    """A real waitress server on 127.0.0.1 in a thread, over its own database (WebTest's
    StopableWSGIServer: a waitress server that shuts down without racing its own loop)."""

    def __init__(self, app, token: str | None = None, threads: int = 8):
        self.app = app
        self.server = StopableWSGIServer.create(
            app, host="127.0.0.1", threads=threads, expose_tracebacks=False
        )
        self.url = self.server.application_url.rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def request(
        self, method: str, path: str, body=None, headers: dict | None = None
    ) -> tuple[int, dict | None]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={**self.headers, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                payload = response.read()
                return response.status, json.loads(payload) if payload else None
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.loads(error.read())

    def close(self) -> None:
        self.server.shutdown()
        self.server.runner.join(timeout=5)
        close_app(self.app)


@pytest.fixture
def serve_url():
    """Start a waitress server over the database at ``url``; closed after the test."""
    servers: list[Served] = []

    def start(url: str, token: str | None = None, wait: bool = True, **settings) -> Served:
        """``token``: sent as the bearer token (the tests that need one make a librarian's);
        ``wait``: for the startup work to be done before the first request."""
        app = booknexus.config.main({}, **app_settings(url, **settings))
        served = Served(started(app) if wait else app, token)
        servers.append(served)
        return served

    yield start
    for served in servers:
        served.close()


@pytest.fixture
def serve(fresh_database, serve_url):
    """Start a waitress server for ``backend`` over a fresh database."""

    def start(backend: str, **settings) -> Served:
        url = fresh_database(backend)
        return serve_url(url, librarian_token(url), **settings)

    return start
