"""The health probe (C11) against real peers: lost calendars and revoked grants go inactive and the rep is
told once per outage; stuck syncs are flagged. Mail is read where it ends up: the outbox's "mail.send" rows,
delivered to the SMTP sink."""

import socket
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app import transaction
from app.crm import services as crm
from app.db import utcnow
from app.extensions import db
from app.mail.models import OutboxMessage
from app.sync import health, jobs
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from app.sync.providers import caldav as caldav_provider
from app.sync.providers.base import Account, AuthRevoked, RemoteCalendar
from tests import factories
from tests.conftest import APP_HOST
from tests.fakes.smtp import smtp_server  # noqa: F401
from tests.sync.test_tasks import CalDAVAccount, GoogleAccount, choose

SETTINGS_URL = f"http://{APP_HOST}/settings/calendars"


@pytest.fixture(params=["google", "caldav"])
def account(request, app, monkeypatch):
    if request.param == "google":
        return GoogleAccount(request.getfixturevalue("google_harness"), app, monkeypatch)
    return CalDAVAccount(request.getfixturevalue("caldav_harness"))


@pytest.fixture
def mail_dir(app, monkeypatch, smtp_server):  # noqa: F811
    """Where the rep's mail arrives: the SMTP sink's ``messages``."""
    return smtp_server.use_in(app, monkeypatch)


@pytest.fixture
def world(app_ctx, mail_dir):
    acme, globex = factories.make_tenant("Acme"), factories.make_tenant("Globex")
    rep = factories.make_user(acme, seat="sales", email="rita.rep@acme.example")
    stranger = factories.make_user(globex, seat="sales", email="sam@globex.example")
    db.session.commit()
    return {"acme": acme, "globex": globex, "rep": rep, "stranger": stranger}


def connect(account, world) -> CalendarConnection:
    """The rep's account with the shared calendar checked for availability (so losing it matters)."""
    connection = account.connect(world["acme"], world["rep"])
    db.session.commit()
    shared = calendar(connection, account.harness.shared_readonly_id)
    choose_availability(world["rep"], connection, {shared.id})
    return connection


def choose_availability(rep, connection, ids) -> None:
    sync.save_choices(
        rep.tenant,
        rep,
        connection,
        sync.ConnectionChoices(
            calendar_sync=True,
            scheduling_pages=True,
            task_sync=connection.task_sync,
            default_calendar_id=connection.default_calendar.id,
            availability_calendar_ids=frozenset(ids),
        ),
    )
    db.session.commit()


def calendar(connection, external_id: str) -> Calendar:
    db.session.expire_all()
    return next(c for c in connection.calendars if c.external_id == external_id)


def mails() -> list[OutboxMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send").order_by(OutboxMessage.id)
        )
    )


def sent(sink) -> list:
    return list(sink.messages)


def probe(connection, times: int = 1) -> None:
    for _ in range(times):
        with transaction.job():  # as the worker runs it: one commit at its end
            health.probe_connection(connection.id)
    db.session.expire_all()


def test_a_withdrawn_calendar_goes_inactive_and_the_rep_is_told_once(account, world, mail_dir):
    connection = connect(account, world)
    shared_id = account.harness.shared_readonly_id
    probe(connection)
    assert mails() == []
    assert connection.health_checked_at is not None

    account.harness.withdraw_access(shared_id)
    probe(connection, times=3)
    shared = calendar(connection, shared_id)
    assert shared.status == "inactive"
    assert shared.inactive_reason
    assert shared.inactive_notified_at is not None
    assert connection.is_active

    [row] = mails()
    assert row.tenant_id == world["acme"].id
    assert row.status == "delivered"
    [message] = sent(mail_dir)
    assert message["To"] == world["rep"].email
    assert shared.name in message["Subject"]
    assert "inactive" in message["Subject"]
    text = message.get_content()
    assert shared.inactive_reason in text
    assert SETTINGS_URL in text
    assert "remove the inactive calendar" in text
    assert "share it with you again" in text
    assert world["stranger"].email not in text


def test_a_re_shared_calendar_is_active_again_and_a_later_outage_is_told_again(account, world, mail_dir):
    connection = connect(account, world)
    shared_id = account.harness.shared_readonly_id
    account.harness.withdraw_access(shared_id)
    probe(connection)
    assert len(mails()) == 1

    account.reshare(shared_id)
    probe(connection, times=2)
    shared = calendar(connection, shared_id)
    assert shared.status == "active"
    assert shared.inactive_reason is None
    assert shared.inactive_notified_at is None
    assert shared.checks_availability  # its choice survived the outage
    # The rep, told of the outage, is told once that it is over.
    assert len(mails()) == 2
    back = sent(mail_dir)[-1]
    assert back["Subject"] == f"Your calendar works again in Termin: “{shared.name}”"
    assert f"Termin can reach “{shared.name}”" in back.get_content()
    assert SETTINGS_URL in back.get_content()

    account.harness.withdraw_access(shared_id)
    probe(connection, times=2)
    assert len(mails()) == 3
    assert len(sent(mail_dir)) == 3


def test_a_revoked_grant_puts_the_account_inactive_with_one_email(account, world, mail_dir):
    connection = connect(account, world)
    account.revoke()
    probe(connection, times=3)
    assert connection.status == "inactive"
    assert connection.inactive_reason
    assert connection.inactive_notified_at is not None
    [message] = sent(mail_dir)
    assert connection.account_email in message["Subject"]
    text = message.get_content()
    assert connection.inactive_reason in text
    assert "reconnect" in text
    assert SETTINGS_URL in text
    assert len(mails()) == 1


def test_a_lost_calendar_that_feeds_nothing_goes_inactive_without_email(account, world, mail_dir):
    connection = account.connect(world["acme"], world["rep"])  # the shared calendar is not used
    db.session.commit()
    account.harness.withdraw_access(account.harness.shared_readonly_id)
    probe(connection, times=2)
    assert calendar(connection, account.harness.shared_readonly_id).status == "inactive"
    assert mails() == []


def test_an_unreachable_provider_changes_nothing_and_tells_nobody(account, world, mail_dir):
    connection = connect(account, world)
    account.harness.fail_next_requests(503, count=10)
    probe(connection)
    assert connection.is_active
    assert all(c.is_active for c in connection.calendars)
    assert connection.health_checked_at is not None
    assert mails() == []


def test_a_sync_that_never_finished_is_flagged(account, world, app):
    connection = connect(account, world)
    default = connection.default_calendar
    shared = calendar(connection, account.harness.shared_readonly_id)
    stale = app.config["SYNC_STALE_SECONDS"]
    default.sync_started_at = utcnow() - timedelta(seconds=stale + 60)
    shared.sync_started_at = utcnow() - timedelta(seconds=10)
    db.session.commit()
    probe(connection, times=2)
    assert default.last_error == "sync did not finish"
    assert default.last_error_at is not None
    assert shared.last_error is None
    assert mails() == []


def test_only_the_probed_account_changes(account, world, mail_dir):
    ours = connect(account, world)
    theirs = sync.connect(
        world["globex"],
        world["stranger"],
        provider="caldav",
        account=Account(id="globex-1", email="sam@globex.example"),
        calendars=[RemoteCalendar("main", "Main", "owner", is_primary=True)],
        secret={"password": "not used"},
    )
    db.session.commit()
    account.revoke()
    probe(ours)
    assert theirs.health_checked_at is None
    assert theirs.is_active
    assert [row.payload["to"] for row in mails()] == [[world["rep"].email]]
    assert {row.tenant_id for row in mails()} == {world["acme"].id}


def test_an_account_working_again_gets_its_task_events_back(world, mail_dir, request, app):
    """CalDAV: the rep changes the app password back, and what was skipped meanwhile is written."""
    account = CalDAVAccount(request.getfixturevalue("caldav_harness"))
    connection = account.connect(world["acme"], world["rep"])
    db.session.commit()
    choose(world["rep"], connection, task_sync=True)
    task_calendar = next(c for c in connection.calendars if c.is_task_calendar)
    account.revoke()
    probe(connection)
    assert not connection.is_active
    task = crm.create_task(
        world["acme"], world["rep"], title="During the outage", due_at=datetime(2030, 1, 2, tzinfo=UTC)
    )
    db.session.commit()
    assert account.events(task_calendar.external_id) == []

    account.restore()
    probe(connection)
    assert connection.is_active
    assert connection.inactive_notified_at is None
    assert "works again" in sent(mail_dir)[-1]["Subject"]
    assert [e["summary"] for e in account.events(task_calendar.external_id)] == ["During the outage"]
    assert task.calendar_id == task_calendar.id
    probe(connection)  # nothing drifted: no further reconciliation is queued
    db.session.expire_all()
    kinds = db.session.scalars(sa.select(OutboxMessage.kind).where(OutboxMessage.kind == "tasks.sync_all"))
    assert len(list(kinds)) == 2  # the toggle, and the one after the outage


def test_a_caldav_server_now_at_a_refused_address_is_inactive_and_told_once(
    world, mail_dir, request, app, monkeypatch
):
    """The account's server now answers from an address Termin refuses (here the deployment stops allowing
    private ones; a DNS change does the same): the probe and the sync put the account inactive with that
    reason and tell the rep once, instead of raising on every sweep."""
    account = CalDAVAccount(request.getfixturevalue("caldav_harness"))
    connection = connect(account, world)
    calendar_id = connection.default_calendar.id
    monkeypatch.setitem(app.config, "CALDAV_ALLOW_PRIVATE", False)

    report = jobs.sync_calendar(calendar_id)
    db.session.commit()
    db.session.expire_all()
    assert report.outcome == "auth_revoked"
    assert connection.status == "inactive"
    assert "loopback address" in connection.inactive_reason
    assert sync.booking_paused_reason(world["acme"], world["rep"])

    probe(connection, times=3)
    assert connection.status == "inactive"
    [message] = sent(mail_dir)
    assert connection.account_email in message["Subject"]
    assert "loopback address" in message.get_content()
    assert len(mails()) == 1
    assert jobs.sync_calendar(calendar_id) is None  # an inactive account is not synced, and nothing raises

    # Allowed again (or back on a public address): the next probe makes it active again.
    monkeypatch.setitem(app.config, "CALDAV_ALLOW_PRIVATE", True)
    probe(connection)
    assert connection.is_active


def test_a_refused_address_behind_a_server_name_is_named_in_the_reason(monkeypatch):
    """What the probe stores: the name and the refused address it resolves to."""
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", 443))],
    )
    with pytest.raises(
        caldav_provider.RefusedAddress, match=r"caldav\.example\.com \(10\.1\.2\.3\) is a private"
    ):
        caldav_provider.check_server_url("https://caldav.example.com/dav/", allow_private=False)
    typed = caldav_provider._typed(caldav_provider.RefusedAddress("x is a private address"), "PROPFIND")
    assert isinstance(typed, AuthRevoked)
