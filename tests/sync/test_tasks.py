"""Task sync (C6) against real peers: the Google Calendar emulator and Radicale (CalDAV).

Every write goes through the outbox; with JOBS_MODE "eager" a row is delivered right after the commit that
added it, so each step below commits and then looks at what the calendar server holds.
"""

import time
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import sqlalchemy as sa

from app.crm import services as crm
from app.extensions import db
from app.mail.models import OutboxMessage
from app.sync import health, tasks
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from app.tenants import services as tenant_services
from tests import factories
from tests.conftest import APP_HOST
from tests.fakes import google_calendar, radicale

DUE = datetime(2030, 5, 6, 7, 0, tzinfo=UTC)


class GoogleAccount:
    """Ada's Google account on the emulator, connected with a token the emulator accepts."""

    name = "google"

    def __init__(self, harness, app, monkeypatch):
        self.harness = harness
        monkeypatch.setitem(app.config, "GOOGLE_API_URL", harness.emulator.api_url)
        monkeypatch.setitem(app.config, "GOOGLE_USERINFO_URL", harness.emulator.userinfo_url)

    def connect(self, tenant, user) -> CalendarConnection:
        provider = self.harness.provider
        return sync.connect(
            tenant,
            user,
            provider="google",
            account=provider.account(),
            calendars=provider.list_calendars(),
            secret={
                "access_token": google_calendar.ACCOUNT_TOKEN,
                "token_type": "Bearer",
                "expires_at": int(time.time()) + 24 * 3600,
            },
        )

    def events(self, calendar_id: str) -> list[dict]:
        found = []
        for event in self.harness.server_events(calendar_id):
            private = (event["resource"].get("extendedProperties") or {}).get("private") or {}
            found.append(
                {
                    "uid": private.get("terminUid") or event["uid"],
                    "summary": event["summary"],
                    "start": event["start"],
                    "end": event["end"],
                    "description": event["resource"].get("description", ""),
                }
            )
        return found

    def calendar_names(self) -> list[str]:
        return [c.name for c in self.harness.provider.list_calendars()]

    def revoke(self) -> None:
        self.harness.revoke_grant()

    def reshare(self, calendar_id: str) -> None:
        self.harness.emulator.share(calendar_id, google_calendar.ACCOUNT_EMAIL, "reader")

    def delete_by_hand(self, calendar_id: str, event_id: str) -> None:
        self.harness.emulator.delete(calendar_id, event_id)


class CalDAVAccount:
    """REP's account on Radicale, connected as the settings page does (discovery included)."""

    name = "caldav"

    def __init__(self, harness):
        self.harness = harness

    def connect(self, tenant, user) -> CalendarConnection:
        return sync.connect_caldav(
            tenant,
            user,
            server_url=self.harness.server.url,
            username=radicale.REP,
            password=radicale.PASSWORDS[radicale.REP],
            shared_urls=[self.harness.shared_readonly_id, self.harness.freebusy_id],
        )

    def events(self, calendar_id: str) -> list[dict]:
        found = []
        for _, text in self.harness.server.objects(calendar_id):
            for event in icalendar.Calendar.from_ical(text).walk("VEVENT"):
                found.append(
                    {
                        "uid": str(event.get("UID")),
                        "summary": str(event.get("SUMMARY") or ""),
                        "start": event.get("DTSTART").dt.astimezone(UTC),
                        "end": event.get("DTEND").dt.astimezone(UTC),
                        "description": str(event.get("DESCRIPTION") or ""),
                    }
                )
        return found

    def calendar_names(self) -> list[str]:
        return [c.name for c in self.harness.provider.list_calendars()]

    def revoke(self) -> None:
        self.harness.revoke_grant()

    def restore(self) -> None:
        """The rep changes the app password back (a revoked Google token never comes back)."""
        self.harness.server.set_password(radicale.REP, radicale.PASSWORDS[radicale.REP])

    def reshare(self, calendar_id: str) -> None:
        self.harness.server.set_shares(dict(radicale.DEFAULT_SHARES))

    def delete_by_hand(self, calendar_id: str, event_id: str) -> None:
        assert self.harness.server.delete(radicale.REP, event_id) in (200, 204)


@pytest.fixture(params=["google", "caldav"])
def account(request, app, monkeypatch):
    if request.param == "google":
        return GoogleAccount(request.getfixturevalue("google_harness"), app, monkeypatch)
    return CalDAVAccount(request.getfixturevalue("caldav_harness"))


@pytest.fixture
def world(app_ctx):
    """A Sales rep of Acme with a contact, a colleague, and Globex with a rep and a task of its own."""
    acme = factories.make_tenant("Acme")
    globex = factories.make_tenant("Globex")
    rep = factories.make_user(acme, seat="sales", time_zone="Europe/Warsaw")
    colleague = factories.make_user(acme, seat="sales")
    contact = factories.make_contact(acme, email="ada@client.example", first_name="Ada", last_name="Lovelace")
    stranger = factories.make_user(globex, seat="service")
    theirs = factories.make_task(globex, stranger, title="Globex secret", due_at=DUE)
    db.session.commit()
    return {
        "acme": acme,
        "globex": globex,
        "rep": rep,
        "colleague": colleague,
        "contact": contact,
        "theirs": theirs,
    }


def choose(user, connection, *, task_sync: bool, calendar_sync: bool = True) -> None:
    """Save the account's choices as the settings form does, changing only the two sync options."""
    sync.save_choices(
        user.tenant,
        user,
        connection,
        sync.ConnectionChoices(
            calendar_sync=calendar_sync,
            scheduling_pages=True,
            task_sync=task_sync,
            default_calendar_id=connection.default_calendar.id,
            availability_calendar_ids=frozenset(
                c.id for c in connection.calendars if c.checks_availability and not c.is_default
            ),
        ),
    )
    db.session.commit()


def connected_with_task_sync(account, world) -> CalendarConnection:
    connection = account.connect(world["acme"], world["rep"])
    db.session.commit()
    choose(world["rep"], connection, task_sync=True)
    return connection


def task_calendars(connection_id: int) -> list[Calendar]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            sa.select(Calendar).where(Calendar.connection_id == connection_id, Calendar.is_task_calendar)
        )
    )


def the_task_calendar(connection: CalendarConnection) -> Calendar:
    [calendar] = task_calendars(connection.id)
    return calendar


def outbox(kind: str) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == kind)))


def uid(task, generation: int = 1) -> str:
    return f"task-{task.id}@{APP_HOST}" if generation == 1 else f"task-{task.id}-{generation}@{APP_HOST}"


def test_turning_task_sync_on_creates_the_sub_calendar_once(account, world):
    connection = connected_with_task_sync(account, world)
    calendar = the_task_calendar(connection)
    assert calendar.name == "Termin tasks"
    assert calendar.is_active
    assert calendar.access == "owner"
    assert not calendar.is_default
    assert not calendar.checks_availability
    assert account.calendar_names().count("Termin tasks") == 1
    assert [m.status for m in outbox("tasks.sync_all")] == ["delivered"]

    # Off and on again, and a fresh look at the account's calendars: still the one sub-calendar.
    choose(world["rep"], connection, task_sync=False)
    choose(world["rep"], connection, task_sync=True)
    sync.refresh_calendars(world["acme"], world["rep"], connection)
    db.session.commit()
    assert the_task_calendar(connection).id == calendar.id
    assert account.calendar_names().count("Termin tasks") == 1
    assert [m.status for m in outbox("tasks.sync_all")] == ["delivered"] * 3


def test_reconnecting_the_account_takes_its_sub_calendar_over_instead_of_making_another(account, world):
    connection = connected_with_task_sync(account, world)
    external_id = the_task_calendar(connection).external_id
    sync.disconnect(world["acme"], world["rep"], connection)
    db.session.commit()

    again = connected_with_task_sync(account, world)
    adopted = the_task_calendar(again)
    assert adopted.external_id == external_id
    assert not adopted.checks_availability
    assert account.calendar_names().count("Termin tasks") == 1


def test_an_open_task_with_a_due_date_is_an_event_that_follows_the_task(account, world):
    connection = connected_with_task_sync(account, world)
    calendar_id = the_task_calendar(connection).external_id
    task = crm.create_task(
        world["acme"], world["rep"], title="Send the offer", contact=world["contact"], due_at=DUE
    )
    db.session.commit()
    [event] = account.events(calendar_id)
    assert event["uid"] == uid(task)
    assert event["summary"] == "Send the offer"
    assert (event["start"], event["end"]) == (DUE, DUE + timedelta(minutes=15))
    assert "Ada Lovelace" in event["description"]
    assert f"http://{APP_HOST}/crm/contacts/{world['contact'].id}" in event["description"]
    assert task.calendar_id == the_task_calendar(connection).id
    assert task.provider_event_id

    # An edit (whatever service makes it calls the same hook) updates the event in place.
    task.title, task.due_at = "Send the revised offer", DUE + timedelta(days=1, hours=2)
    tasks.task_changed(task)
    db.session.commit()
    [event] = account.events(calendar_id)
    assert (event["uid"], event["summary"]) == (uid(task), "Send the revised offer")
    assert event["start"] == DUE + timedelta(days=1, hours=2)

    crm.complete_task(world["acme"], task)
    db.session.commit()
    assert account.events(calendar_id) == []
    assert task.calendar_id is None
    assert task.provider_event_id is None

    crm.reopen_task(world["acme"], task)
    db.session.commit()
    [event] = account.events(calendar_id)
    assert event["summary"] == "Send the revised offer"
    # Google keeps deleted event ids, so the reopened task's event needs a fresh uid; CalDAV reuses it.
    assert event["uid"] == (uid(task, 2) if account.name == "google" else uid(task))

    crm.complete_task(world["acme"], task)
    db.session.commit()
    crm.reopen_task(world["acme"], task)
    db.session.commit()
    assert [e["uid"] for e in account.events(calendar_id)] == [
        uid(task, 3) if account.name == "google" else uid(task)
    ]
    assert {m.status for m in outbox("tasks.sync")} == {"delivered"}


def test_delivering_a_row_twice_writes_one_event(account, world):
    connection = connected_with_task_sync(account, world)
    task = crm.create_task(world["acme"], world["rep"], title="Call back", due_at=DUE)
    db.session.commit()
    event_id = task.provider_event_id
    tasks.deliver_task_sync(world["acme"].id, {"task_id": task.id})
    db.session.commit()
    assert len(account.events(the_task_calendar(connection).external_id)) == 1
    assert task.provider_event_id == event_id

    # A write whose outcome was lost (the job died before its commit) is redone without a duplicate.
    task.calendar_id = task.provider_event_id = None
    db.session.commit()
    tasks.deliver_task_sync(world["acme"].id, {"task_id": task.id})
    db.session.commit()
    assert [e["uid"] for e in account.events(the_task_calendar(connection).external_id)] == [uid(task)]
    assert task.provider_event_id == event_id


def test_an_event_deleted_by_hand_comes_back_with_the_next_change(account, world):
    connection = connected_with_task_sync(account, world)
    calendar_id = the_task_calendar(connection).external_id
    task = crm.create_task(world["acme"], world["rep"], title="Prepare demo", due_at=DUE)
    db.session.commit()
    account.delete_by_hand(calendar_id, task.provider_event_id)
    assert account.events(calendar_id) == []
    task.title = "Prepare the demo"
    tasks.task_changed(task)
    db.session.commit()
    assert [e["summary"] for e in account.events(calendar_id)] == ["Prepare the demo"]


def test_tasks_without_a_due_date_or_of_other_reps_stay_out(account, world):
    connection = connected_with_task_sync(account, world)
    crm.create_task(world["acme"], world["rep"], title="Someday", contact=world["contact"])
    crm.create_task(world["acme"], world["colleague"], title="Colleague's", due_at=DUE)
    db.session.commit()
    assert account.events(the_task_calendar(connection).external_id) == []
    assert outbox("tasks.sync") == []  # nothing to do, so nothing queued


def test_a_deleted_task_loses_its_event(account, world):
    connection = connected_with_task_sync(account, world)
    task = crm.create_task(world["acme"], world["rep"], title="Obsolete", due_at=DUE)
    db.session.commit()
    tasks.task_deleted(task)
    db.session.delete(task)
    db.session.commit()
    assert account.events(the_task_calendar(connection).external_id) == []


def test_turning_task_sync_off_removes_the_events_and_keeps_the_sub_calendar(account, world, app):
    connection = connected_with_task_sync(account, world)
    calendar = the_task_calendar(connection)
    first = crm.create_task(world["acme"], world["rep"], title="One", due_at=DUE)
    second = crm.create_task(world["acme"], world["rep"], title="Two", due_at=DUE + timedelta(hours=1))
    db.session.commit()
    assert len(account.events(calendar.external_id)) == 2

    choose(world["rep"], connection, task_sync=False)
    assert account.events(calendar.external_id) == []
    assert (first.calendar_id, second.calendar_id) == (None, None)
    assert task_calendars(connection.id) == [calendar]  # kept, unused
    assert "Termin tasks" in account.calendar_names()
    # While it is off, task changes write nothing.
    crm.create_task(world["acme"], world["rep"], title="Three", due_at=DUE)
    db.session.commit()
    assert account.events(calendar.external_id) == []

    # Turning calendar sync off takes task sync with it; turning both on brings every open task back.
    choose(world["rep"], connection, task_sync=True)
    assert sorted(e["summary"] for e in account.events(calendar.external_id)) == ["One", "Three", "Two"]
    choose(world["rep"], connection, task_sync=True, calendar_sync=False)
    assert not connection.task_sync
    assert account.events(calendar.external_id) == []


def test_a_rep_without_a_seat_cannot_sync_tasks(account, world):
    seatless = factories.make_user(world["acme"], seat="none")
    connection = account.connect(world["acme"], seatless)
    db.session.commit()
    with pytest.raises(sync.SettingsRefused) as refused:
        choose(seatless, connection, task_sync=True)
    assert refused.value.field == "task_sync"
    db.session.rollback()
    crm.create_task(world["acme"], seatless, title="Mine", due_at=DUE)
    db.session.commit()
    assert task_calendars(connection.id) == []
    assert outbox("tasks.sync") == []
    assert outbox("tasks.sync_all") == []
    assert "Termin tasks" not in account.calendar_names()


def test_losing_the_seat_takes_the_events_out(account, world):
    connection = connected_with_task_sync(account, world)
    task = crm.create_task(world["acme"], world["rep"], title="Mine", due_at=DUE)
    admin = factories.make_user(world["acme"], role="admin")
    db.session.commit()
    calendar_id = the_task_calendar(connection).external_id
    assert len(account.events(calendar_id)) == 1

    # The admin's seat change alone queues the clean-up, in its own commit: no probe, no call by hand.
    tenant_services.set_seat(world["acme"], admin, world["rep"], "none")
    db.session.commit()
    assert account.events(calendar_id) == []
    assert task.calendar_id is None
    assert connection.task_sync  # the rep's choice is kept for when the seat comes back

    # A seat again (Service this time): the events come back the same way.
    tenant_services.set_seat(world["acme"], admin, world["rep"], "service")
    db.session.commit()
    assert [e["summary"] for e in account.events(calendar_id)] == ["Mine"]
    # Sales to Service changes nothing to sync; neither does another rep's seat.
    before = len(outbox("tasks.sync_all"))
    tenant_services.set_seat(world["acme"], admin, world["rep"], "sales")
    tenant_services.set_seat(world["acme"], admin, world["colleague"], "none")
    db.session.commit()
    assert len(outbox("tasks.sync_all")) == before


def test_the_sub_calendar_is_never_offered_for_bookings_or_availability(account, world):
    connection = connected_with_task_sync(account, world)
    calendar = the_task_calendar(connection)
    for overrides in (
        {"default_calendar_id": calendar.id},
        {"availability_calendar_ids": frozenset({calendar.id})},
    ):
        choices = {
            "calendar_sync": True,
            "scheduling_pages": True,
            "task_sync": True,
            "default_calendar_id": connection.default_calendar.id,
            "availability_calendar_ids": frozenset(),
            **overrides,
        }
        with pytest.raises(sync.SettingsRefused):
            sync.save_choices(world["acme"], world["rep"], connection, sync.ConnectionChoices(**choices))
        db.session.rollback()
    assert calendar not in health.synced_calendars(connection)


def test_other_tenants_tasks_and_ids_never_reach_the_calendar(account, world):
    connection = connected_with_task_sync(account, world)
    calendar = the_task_calendar(connection)
    ours = crm.create_task(world["acme"], world["rep"], title="Ours", due_at=DUE)
    db.session.commit()
    globex = world["globex"]
    # Rows naming the other tenant do nothing to our task, our account or our calendar.
    tasks.deliver_task_sync(globex.id, {"task_id": ours.id})
    tasks.deliver_task_sync(
        globex.id, {"task_id": ours.id, "calendar_id": calendar.id, "provider_event_id": "x"}
    )
    tasks.deliver_task_sync_all(globex.id, {"connection_id": connection.id})
    tasks.deliver_task_sync(world["acme"].id, {"task_id": world["theirs"].id})
    db.session.commit()
    assert [e["summary"] for e in account.events(calendar.external_id)] == ["Ours"]
    assert world["theirs"].calendar_id is None


def test_a_revoked_grant_puts_the_account_inactive_and_fails_the_row(account, world):
    connection = connected_with_task_sync(account, world)
    account.revoke()
    crm.create_task(world["acme"], world["rep"], title="Lost", due_at=DUE)
    db.session.commit()
    db.session.expire_all()
    assert connection.status == "inactive"
    assert connection.inactive_reason
    [row] = outbox("tasks.sync")
    assert row.status == "failed"
    assert row.last_error
