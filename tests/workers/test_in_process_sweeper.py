"""The embedded demo (JOBS_MODE "thread") sweeps in a thread of the process that serves it."""

import threading
import time

import pytest
from flask_migrate import upgrade

from app import create_app
from app.db import utcnow
from app.extensions import db
from app.mail.models import OutboxMessage
from tests import factories
from tests.conftest import APP_HOST, TEST_ENCRYPTION_KEY, config_for_tests


def sweeper_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "termin-sweeper"]


@pytest.fixture
def demo_app(tmp_path):
    config = {
        **config_for_tests(f"sqlite:///{tmp_path / 'demo.db'}"),
        "TESTING": False,  # the demo's sweeper is only armed outside tests
        "JOBS_MODE": "thread",
        "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "MAIL_DIR": str(tmp_path / "mail"),
        "SWEEP_INTERVAL_SECONDS": 0.05,
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
    yield app
    app.extensions["termin_sweeper_stop"].set()
    for thread in sweeper_threads():
        thread.join(timeout=5)
    with app.app_context():
        db.engine.dispose()


def test_the_first_request_starts_one_sweeper_thread_that_delivers_what_is_due(demo_app, tmp_path):
    with demo_app.app_context():
        tenant = factories.make_tenant("Demo")
        # A row no job was queued for (as after a restart): only a sweep can find it.
        message = OutboxMessage(
            tenant_id=tenant.id,
            kind="mail.send",
            payload={
                "to": ["someone@example.org"],
                "subject": "Hello",
                "text": "Hi.\n",
                "message_id": "<swept@termin.test>",
                "date": "Mon, 01 Jan 2030 09:00:00 +0000",
            },
            next_attempt_at=utcnow(),
        )
        db.session.add(message)
        db.session.commit()
        message_id = message.id
    assert sweeper_threads() == []  # creating the app (or running a flask command) starts nothing

    client = demo_app.test_client()
    for _ in range(3):
        client.get("/login", base_url=f"http://{APP_HOST}")
    assert len(sweeper_threads()) == 1

    deadline = time.monotonic() + 10
    while True:
        with demo_app.app_context():
            if db.session.get(OutboxMessage, message_id).status == "delivered":
                break
        assert time.monotonic() < deadline, "the sweeper thread did not deliver the due row"
        time.sleep(0.05)
    assert [path.name for path in (tmp_path / "mail").glob("*.eml")] == ["swept@termin.test.eml"]
