"""The page never waits on a provider: serving it, slots.json and a booking read and write PostgreSQL only.

Every way to reach a provider (the factory, each provider class, the OAuth session) is made to record
the call and raise. Background jobs are collected instead of run: the calendar write of a booking is a
job of the outbox, delivered after the request by a worker, never by the request itself.
"""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app import queue
from app.extensions import db
from app.mail import outbox
from app.mail.models import OutboxMessage
from app.sync import factory, oauth
from app.sync import services as sync
from app.sync.providers import caldav, google, microsoft
from app.tenants.models import User
from tests.pages.helpers import ACME_HOST, connect_caldav, slot_starts, synced_busy


@pytest.fixture
def connected(app, site):
    """Acme's rep with a CalDAV account: its default calendar is written to and checked for busy time,
    and a synced event keeps 10:00-11:00 on Monday busy."""
    with app.app_context():
        rep = db.session.get(User, site.acme_rep_id)
        connection = connect_caldav(rep)
        start, end = datetime(2030, 1, 7, 9, tzinfo=UTC), datetime(2030, 1, 7, 10, tzinfo=UTC)
        synced_busy(connection, "busy-1", start, end)
        db.session.commit()
    return site


@pytest.fixture
def providers_forbidden(monkeypatch):
    calls: list[str] = []

    def forbid(name):
        def refuse(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called while serving a scheduling page")

        return refuse

    monkeypatch.setattr(factory, "build_provider", forbid("factory.build_provider"))
    monkeypatch.setattr(sync, "build_provider", forbid("services.build_provider"))
    monkeypatch.setattr(oauth, "authorized_session", forbid("oauth.authorized_session"))
    for module, name in (
        (caldav, "CalDAVProvider"),
        (google, "GoogleCalendarProvider"),
        (microsoft, "GraphCalendarProvider"),
    ):
        monkeypatch.setattr(getattr(module, name), "__init__", forbid(f"{name}()"))
    jobs: list[tuple] = []
    monkeypatch.setattr(
        queue, "dispatch", lambda app, q, func, args, job_id=None: jobs.append((q, func, args))
    )
    return calls, jobs


def test_page_slots_and_booking_never_call_a_provider(app, connected, providers_forbidden, make_client):
    calls, jobs = providers_forbidden
    client = make_client(ACME_HOST)
    path = connected.demo_path

    page = client.get(f"{path}?day=2030-01-07&tz=Europe/Warsaw")
    assert page.status_code == 200
    # The synced busy time is read from the database: 10:00 and 10:30 are not offered.
    assert "2030-01-07T09:30:00+01:00" in slot_starts(page)
    assert "2030-01-07T10:00:00+01:00" not in slot_starts(page)
    assert "2030-01-07T10:30:00+01:00" not in slot_starts(page)

    slots = client.get(f"{path}/slots.json?start=2030-01-07&days=1&tz=Europe/Warsaw")
    assert slots.status_code == 200
    assert "2030-01-07T10:00:00+01:00" not in slots.get_json()["slots"]
    assert "2030-01-07T11:00:00+01:00" in slots.get_json()["slots"]

    booked = client.post(
        f"{path}/book",
        json={
            "start": "2030-01-07T11:00:00+01:00",
            "first_name": "Vera",
            "last_name": "Visitor",
            "email": "vera@example.org",
            "tz": "Europe/Warsaw",
            "q_q1": "Initech",
            "q_q2": "1-10",
            "consent": True,
        },
    )
    assert booked.status_code == 201, booked.get_json()
    manage = "/" + booked.get_json()["booking"]["manage_url"].split("/", 3)[3]
    assert client.get(manage).status_code == 200
    assert client.get(f"{manage}/reschedule").status_code == 200

    assert calls == []
    with app.app_context():
        kinds = db.session.scalars(sa.select(OutboxMessage.kind)).all()
    # The event goes to the default calendar through the outbox, for a worker to deliver later.
    assert "calendar.write_meeting" in kinds
    assert any(func == outbox.DELIVER_JOB for _, func, _ in jobs)
