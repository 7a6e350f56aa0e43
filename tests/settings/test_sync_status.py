"""The account's sync status block on the settings page: last and next sync, errors, Sync now, polling."""

import re
from dataclasses import dataclass
from datetime import timedelta

import pytest

from app import queue
from app.db import utcnow
from app.extensions import db
from app.sync import services as sync
from app.sync.models import Calendar
from app.sync.providers.base import Account, RemoteCalendar
from tests import factories

REMOTE = [
    RemoteCalendar("main", "Work", "owner", is_primary=True),
    RemoteCalendar("team", "Team", "writer"),
    RemoteCalendar("boss", "Boss (shared)", "reader"),
]


@dataclass(frozen=True)
class Arranged:
    rep: str
    colleague: str
    stranger: str
    connection_id: int
    work_id: int
    team_id: int
    boss_id: int


@pytest.fixture
def arranged(app):
    with app.app_context():
        acme, globex = factories.make_tenant("Acme"), factories.make_tenant("Globex")
        rep = factories.make_user(acme, seat="sales")
        colleague = factories.make_user(acme, seat="sales")
        stranger = factories.make_user(globex, seat="sales")
        connection = sync.connect(
            acme,
            rep,
            provider="caldav",
            account=Account(id="acct-1", email="rep@work.example.com"),
            calendars=REMOTE,
            secret={"password": "app-password"},
            server_url="https://caldav.example.com/dav/",
            username="rep",
        )
        calendars = {c.external_id: c for c in connection.calendars}
        calendars["team"].checks_availability = True
        # The colleague and the stranger have accounts of their own, so their 404s are not "no account".
        for other, tenant in ((colleague, acme), (stranger, globex)):
            sync.connect(
                tenant,
                other,
                provider="caldav",
                account=Account(id=f"acct-{other.id}", email=other.email),
                calendars=REMOTE,
                secret={"password": "other"},
            )
        db.session.commit()
        return Arranged(
            rep.email,
            colleague.email,
            stranger.email,
            connection.id,
            calendars["main"].id,
            calendars["team"].id,
            calendars["boss"].id,
        )


def set_calendar(app, calendar_id: int, **values) -> None:
    with app.app_context():
        calendar = db.session.get(Calendar, calendar_id)
        for name, value in values.items():
            setattr(calendar, name, value)
        db.session.commit()


def calendar_values(app, calendar_id: int, *names):
    with app.app_context():
        calendar = db.session.get(Calendar, calendar_id)
        return tuple(getattr(calendar, name) for name in names)


@pytest.fixture
def dispatched(monkeypatch):
    """Jobs handed to the runner (after the commit), instead of running them."""
    calls = []
    monkeypatch.setattr(
        queue, "dispatch", lambda app, q, func, args, job_id=None: calls.append((q, func, args))
    )
    return calls


def status_url(arranged) -> str:
    return f"/settings/calendars/{arranged.connection_id}/status"


def sync_url(arranged) -> str:
    return f"/settings/calendars/{arranged.connection_id}/sync"


def item(page: str, calendar_id: int) -> str:
    match = re.search(rf'<li data-calendar="{calendar_id}">(.*?)</li>', page, re.S)
    assert match, f"calendar {calendar_id} is not in the status block"
    return " ".join(match.group(1).split())


def test_status_shows_last_and_next_sync_and_the_last_error(app, client, arranged):
    now = utcnow()
    set_calendar(
        app,
        arranged.work_id,
        last_synced_at=now - timedelta(minutes=3),
        next_sync_at=now + timedelta(minutes=5),
    )
    set_calendar(
        app,
        arranged.team_id,
        last_synced_at=now - timedelta(hours=2),
        next_sync_at=now + timedelta(minutes=1),
        last_error="Google Calendar: Backend Error",
        last_error_at=now - timedelta(minutes=1),
    )
    client.login(arranged.rep)
    response = client.get(status_url(arranged), headers={"HX-Request": "true"})
    assert response.status_code == 286  # idle: htmx stops polling
    page = response.get_data(as_text=True)
    assert "hx-trigger" not in page
    work = item(page, arranged.work_id)
    assert "synced 3 minutes ago" in work
    assert "next sync in 5 minutes" in work
    assert "Last error" not in work
    team = item(page, arranged.team_id)
    assert "synced 2 hours ago" in team
    assert "Last error" in team
    assert "Google Calendar: Backend Error" in team
    # A calendar that feeds neither bookings nor availability is not synced, so it has no status.
    assert f'data-calendar="{arranged.boss_id}"' not in page


def test_a_calendar_never_synced_says_so(app, client, arranged):
    client.login(arranged.rep)
    page = client.get(status_url(arranged)).get_data(as_text=True)
    assert "not synced yet" in item(page, arranged.work_id)


def test_status_block_polls_while_a_sync_runs_or_is_due_and_stops_when_idle(app, client, arranged):
    client.login(arranged.rep)
    now = utcnow()
    set_calendar(app, arranged.work_id, sync_started_at=now - timedelta(seconds=5))
    running = client.get(status_url(arranged), headers={"HX-Request": "true"})
    assert running.status_code == 200
    page = running.get_data(as_text=True)
    assert 'hx-trigger="load delay:2s"' in page
    assert f'hx-get="{status_url(arranged)}"' in page
    assert "syncing now" in item(page, arranged.work_id)

    set_calendar(app, arranged.work_id, sync_started_at=None, next_sync_at=now - timedelta(seconds=1))
    due = client.get(status_url(arranged), headers={"HX-Request": "true"})
    assert due.status_code == 200
    assert "next sync: queued now" in item(due.get_data(as_text=True), arranged.work_id)

    set_calendar(app, arranged.work_id, last_synced_at=utcnow(), next_sync_at=now + timedelta(minutes=15))
    idle = client.get(status_url(arranged), headers={"HX-Request": "true"})
    assert idle.status_code == 286
    assert "hx-trigger" not in idle.get_data(as_text=True)


def test_the_settings_page_includes_the_status_block(app, client, arranged):
    set_calendar(app, arranged.work_id, next_sync_at=utcnow() - timedelta(seconds=1))
    set_calendar(app, arranged.team_id, next_sync_at=utcnow() + timedelta(minutes=10))
    client.login(arranged.rep)
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert "next sync: queued now" in item(page, arranged.work_id)
    assert "next sync in 10 minutes" in item(page, arranged.team_id)
    block = re.search(rf'<section id="sync-status-{arranged.connection_id}"[^>]*>', page)
    assert block, "no status block on the settings page"
    assert 'hx-trigger="load delay:2s"' in block.group(0)
    assert f"/settings/calendars/{arranged.connection_id}/sync" in page


def test_sync_now_sets_next_sync_and_queues_every_synced_calendar(app, client, arranged, dispatched):
    client.login(arranged.rep)
    before = utcnow()
    response = client.post_form(sync_url(arranged), htmx=True)
    assert response.status_code == 200  # the block now follows the sync it started
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith(f'<section id="sync-status-{arranged.connection_id}"')
    assert 'hx-trigger="load delay:2s"' in page
    for calendar_id in (arranged.work_id, arranged.team_id):
        (next_sync_at,) = calendar_values(app, calendar_id, "next_sync_at")
        assert before <= next_sync_at <= utcnow()
    assert calendar_values(app, arranged.boss_id, "next_sync_at") == (None,)
    assert sorted(dispatched) == sorted(
        [
            ("sync", "app.sync.jobs.sync_calendar", (arranged.work_id,)),
            ("sync", "app.sync.jobs.sync_calendar", (arranged.team_id,)),
        ]
    )


def test_sync_now_without_javascript_redirects_back(app, client, arranged, dispatched):
    client.login(arranged.rep)
    response = client.post_form(sync_url(arranged))
    assert response.status_code == 303
    assert response.location.endswith("/settings/calendars")
    assert len(dispatched) == 2


def test_sync_now_refuses_an_inactive_account(app, client, arranged, dispatched):
    with app.app_context():
        connection = db.session.get(Calendar, arranged.work_id).connection
        sync.mark_connection_inactive(connection, "invalid_grant")
        db.session.commit()
    client.login(arranged.rep)
    assert client.post_form(sync_url(arranged), htmx=True).status_code == 409
    assert dispatched == []
    page = client.get(status_url(arranged)).get_data(as_text=True)
    assert "Nothing is synced while the account is inactive" in page
    assert "Sync now" not in page


def test_availability_calendars_still_sync_with_calendar_sync_off(app, client, arranged, dispatched):
    with app.app_context():
        connection = db.session.get(Calendar, arranged.work_id).connection
        connection.calendar_sync = False
        db.session.commit()
    client.login(arranged.rep)
    assert client.post_form(sync_url(arranged), htmx=True).status_code == 200
    assert len(dispatched) == 2  # both feed availability, which scheduling pages still need


@pytest.mark.parametrize("who", ["colleague", "stranger"])
def test_other_reps_and_tenants_get_404(app, make_client, arranged, dispatched, who):
    other = make_client()
    other.login(getattr(arranged, who))
    assert other.get(status_url(arranged)).status_code == 404
    assert other.post_form(sync_url(arranged), htmx=True).status_code == 404
    assert dispatched == []
    assert calendar_values(app, arranged.work_id, "next_sync_at") == (None,)


def test_sync_now_with_a_forged_csrf_token_is_refused(app, client, arranged, dispatched):
    client.login(arranged.rep)
    forged = client.post(sync_url(arranged), data={"csrf_token": "forged"}, headers={"HX-Request": "true"})
    assert forged.status_code == 400
    missing = client.post(sync_url(arranged), data={})
    assert missing.status_code == 400
    assert dispatched == []
    assert calendar_values(app, arranged.work_id, "next_sync_at") == (None,)


def test_signed_out_visitors_are_sent_to_sign_in(app, client, arranged):
    assert client.get(status_url(arranged)).status_code == 302


def test_the_task_sub_calendar_is_explained_and_never_offered_for_availability(app, client, arranged):
    with app.app_context():
        connection = db.session.get(Calendar, arranged.work_id).connection
        tasks_calendar = Calendar(
            tenant_id=connection.tenant_id,
            external_id="termin-tasks",
            name="Termin tasks",
            access="owner",
            is_task_calendar=True,
        )
        connection.calendars.append(tasks_calendar)
        db.session.commit()
        tasks_id = tasks_calendar.id
    client.login(arranged.rep)
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert "left in your account, empty and unused" in page  # task sync is off
    assert f'value="{tasks_id}"' not in page  # neither default nor availability
    assert f'data-calendar="{tasks_id}"' not in page  # and never synced
