"""Browser journeys: the app served by a real HTTP server on loopback, driven in Debian's Chromium.

The live server has its own database (committed data, truncated after each journey), because the
per-test savepoint connection of the other tests cannot be shared with a server thread.
"""

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from tests.conftest import APP_HOST, TEST_DATABASE_URL, config_for_tests, recreate_database, worker_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # Every host name resolves to loopback, so a journey can visit app.termin.test or a tenant's
    # custom domain on the live server; nothing leaves the machine.
    "--host-resolver-rules=MAP * 127.0.0.1",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class LiveServer:
    app: object
    port: int

    def url(self, path: str = "/", host: str = APP_HOST) -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    url = worker_database(TEST_DATABASE_URL, "_live")
    recreate_database(url)
    app = create_app(config_for_tests(url))
    with app.app_context():
        upgrade()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield LiveServer(app, server.server_port)
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def live(live_server) -> Iterator[LiveServer]:
    """The live server, with every table emptied after the journey."""
    yield live_server
    with live_server.app.app_context():
        tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
        db.session.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        db.session.commit()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install chromium` (make test installs it)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, request) -> Iterator[Page]:
    context = browser.new_context(locale="en-GB", timezone_id="Europe/Warsaw")
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The Content-Security-Policy must not block anything the pages use (no inline script or style).
    page.on(
        "console",
        lambda message: errors.append(message.text) if "Content Security Policy" in message.text else None,
    )
    yield page
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    assert not errors, f"JavaScript errors or CSP violations on the page: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report


from tests.fakes.radicale import radicale_server  # noqa: E402, F401  (journeys connect real CalDAV accounts)
