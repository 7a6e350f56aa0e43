"""Test harness: one PostgreSQL database per run, migrated with alembic; every test in a rolled-back
transaction (application commits only release SAVEPOINTs); two tenants in every module's world."""

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from app import create_app
from app import queue as job_queue
from app.extensions import db, limiter
from tests import factories
from tests.fakes import smtp as fake_smtp
from tests.servers import RedisServer

APP_HOST = "app.termin.test"
TEST_ENCRYPTION_KEY = "q8Wd3C6wXlV2x3m0m7b0bYp2bN9qQH5cZ8s7uTt1k2E="
TEST_DATABASE_URL = os.environ.get(
    "TERMIN_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/termin_test"
)


def config_for_tests(database_url: str) -> dict:
    return {
        "TESTING": True,
        "ENV": "testing",
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "APP_HOST": APP_HOST,
        "SERVER_NAME": None,
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "CALDAV_ALLOW_PRIVATE": True,
        "JOBS_MODE": "eager",
        "PAGE_CACHE_SECONDS": 0,  # the page micro-cache is off; tests/pages/test_page_cache.py turns it on
        # The rate limits keep their production values (tests/web/test_limits.py hammers them); only the
        # counters live in memory, emptied before every test (``fresh_limits``).
        "RATELIMIT_STORAGE_URI": "memory://",
    }


def recreate_database(url: str) -> None:
    """Drop and create the database ``url`` names, through the server's maintenance database."""
    parsed = make_url(url)
    name = parsed.database
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def worker_database(base_url: str, suffix: str = "") -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    parsed = make_url(base_url)
    return parsed.set(database=f"{parsed.database}{suffix}{'_' + worker if worker else ''}").render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def app():
    url = worker_database(TEST_DATABASE_URL)
    recreate_database(url)
    app = create_app(config_for_tests(url))
    with app.app_context():
        upgrade()  # the schema comes from the migrations, so every run tests them too
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def db_connection(request):
    """Run each test inside one outer transaction, rolled back afterwards (STYLE.md's recipe)."""
    if "app" not in request.fixturenames:
        yield None
        return
    app = request.getfixturevalue("app")
    with app.app_context():
        engines = db.engines
        db.session.configure(join_transaction_mode="create_savepoint")
    engine = engines[None]
    connection = engine.connect()
    outer = connection.begin()
    engines[None] = connection
    try:
        yield connection
    finally:
        outer.rollback()
        connection.close()
        engines[None] = engine


@pytest.fixture(autouse=True)
def fresh_limits(request):
    """Every test starts with no rate-limit counters: all test clients share one address, 127.0.0.1."""
    if "app" in request.fixturenames:
        request.getfixturevalue("app")
        limiter.reset()


@pytest.fixture
def raise_limits(app, monkeypatch):
    """For a test that legitimately makes many requests: ``raise_limits(RATELIMIT_BOOKING_IP="1000 per
    hour")``. Only the settings named change, for this test only; tests/web/test_limits.py keeps them all."""

    def raise_(**settings):
        for name, value in settings.items():
            assert name in app.config, name
            monkeypatch.setitem(app.config, name, value)

    return raise_


@pytest.fixture
def app_ctx(app):
    """For service and model tests that use db.session directly."""
    with app.app_context():
        yield


class Client:
    """A test client on a given host that knows how to fetch a CSRF token and sign in."""

    def __init__(self, app, host: str = APP_HOST):
        self.app = app
        self.host = host
        self.http = app.test_client()

    def get(self, url: str, **kwargs):
        return self.http.get(url, base_url=f"http://{self.host}", **kwargs)

    def post(self, url: str, **kwargs):
        return self.http.post(url, base_url=f"http://{self.host}", **kwargs)

    def csrf_token(self) -> str:
        # /login sends a signed-in user on to their contacts; either page carries the token.
        page = self.http.get("/login", base_url=f"http://{APP_HOST}", follow_redirects=True).get_data(
            as_text=True
        )
        return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def post_form(self, url: str, data: dict | None = None, *, htmx: bool = False, **kwargs):
        """POST a form with a valid CSRF token, as the browser would."""
        data = {"csrf_token": self.csrf_token(), **(data or {})}
        headers = {"HX-Request": "true"} if htmx else {}
        return self.post(url, data=data, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)

    def login(self, email: str, password: str = factories.PASSWORD):
        response = self.post_form("/login", {"email": email, "password": password})
        assert response.status_code == 303, response.get_data(as_text=True)
        return response


@pytest.fixture
def client(app):
    return Client(app)


@pytest.fixture
def signed_in(app):
    """A factory of clients each signed in as the given user."""

    def sign_in(email: str) -> Client:
        client = Client(app)
        client.login(email)
        return client

    return sign_in


@pytest.fixture
def make_client(app):
    return lambda host=APP_HOST: Client(app, host)


@dataclass(frozen=True)
class TenantWorld:
    """Plain ids and emails (no ORM objects) for HTTP tests, which run outside the arranging session."""

    tenant_id: int
    admin_email: str
    rep_email: str
    rep_id: int
    contact_id: int
    contact_email: str
    meeting_id: int
    task_id: int
    invitation_id: int


def _build_world(name: str, seed: str) -> TenantWorld:
    from app.tenants import services as tenants

    tenant = factories.make_tenant(name)
    admin = factories.make_user(tenant, role="admin", email=f"admin@{seed}.example.com")
    rep = factories.make_user(tenant, seat="sales", email=f"rep@{seed}.example.com")
    contact = factories.make_contact(tenant, email=f"shared@{seed}.example.org")
    meeting = factories.make_meeting(tenant, rep, [contact])
    task = factories.make_task(tenant, rep, contact)
    issued = tenants.invite(tenant, admin, email=f"new@{seed}.example.com", role="rep", seat="none", days=7)
    return TenantWorld(
        tenant.id,
        admin.email,
        rep.email,
        rep.id,
        contact.id,
        contact.email,
        meeting.id,
        task.id,
        issued.invitation.id,
    )


@pytest.fixture
def world(app):
    """Two tenants, each with an admin, a Sales rep, a contact, a meeting, a task and an invitation."""
    with app.app_context():
        ours = _build_world("Acme", "acme")
        theirs = _build_world("Globex", "globex")
        db.session.commit()
    return ours, theirs


# --- Mail and jobs, for every test that needs them --------------------------------------------------------

smtp_server = fake_smtp.smtp_server  # a real SMTP server (aiosmtpd), started once, only when a test asks


@pytest.fixture
def sink(app, smtp_server, monkeypatch):
    """The session's SMTP sink, emptied, with the app sending to it."""
    return smtp_server.use_in(app, monkeypatch)


@pytest.fixture
def queued(monkeypatch):
    """Jobs handed to the runner instead of run: (queue, function, args, job id). The test is the worker."""
    handed = []
    monkeypatch.setattr(
        job_queue,
        "dispatch",
        lambda _app, queue, func, args, job_id=None: handed.append((queue, func, args, job_id)),
    )
    return handed


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory) -> Iterator[RedisServer]:
    """A redis-server of this test process's own (so of each xdist worker), started on first use."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()
