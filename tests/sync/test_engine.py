"""The calendar → CRM sync engine (C3, C4, C8, C11) against Google (emulator), Graph (emulator) and CalDAV
(Radicale), plus the jobs around it and the embedded demo's SQLite."""

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from app.crm.models import Contact, Meeting, MeetingContact
from app.extensions import db
from app.sync import engine, jobs
from app.sync import services as sync
from app.sync.models import BusyBlock, Calendar, CalendarConnection, SyncedEvent
from app.sync.providers.base import (
    MAX_RETRY_AFTER_SECONDS,
    Account,
    Attendee,
    Changes,
    EventDraft,
    RemoteCalendar,
    RemoteEvent,
)
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import TEST_ENCRYPTION_KEY, config_for_tests
from tests.fakes import radicale
from tests.sync.harness import SeedAttendee

NOW = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)  # the Graph harness's clock says 2030-05-01 too
T0 = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
WEEK = timedelta(days=7)
CLIENT = "client@example.org"
WRITES = ("synced_events", "busy_blocks", "meetings", "meeting_contacts")


@pytest.fixture(params=["google_harness", "graph_harness", "caldav_harness"])
def harness(request):
    return request.getfixturevalue(request.param)


@dataclass
class World:
    tenant: Tenant
    rep: User
    contact: Contact
    other_tenant: Tenant
    other_contact: Contact
    connection: CalendarConnection

    def calendar(self, external_id: str) -> Calendar:
        return next(c for c in self.connection.calendars if c.external_id == external_id)


def build_world(provider_name: str, account: Account, calendars: list[RemoteCalendar]) -> World:
    tenant = factories.make_tenant("Acme")
    rep = factories.make_user(tenant, seat="sales", email="rep@acme.example.com")
    contact = factories.make_contact(tenant, email=CLIENT)
    # The same address is a contact of another tenant too: only the calendar's tenant may see the meeting.
    other_tenant = factories.make_tenant("Globex")
    factories.make_user(other_tenant, email="rep@globex.example.com")
    other_contact = factories.make_contact(other_tenant, email=CLIENT)
    connection = sync.connect(
        tenant, rep, provider=provider_name, account=account, calendars=calendars, secret={"token": "t"}
    )
    return World(tenant, rep, contact, other_tenant, other_contact, connection)


@pytest.fixture
def world(app_ctx, harness) -> World:
    provider = harness.provider
    return build_world(provider.name, provider.account(), provider.list_calendars())


def run(world: World, harness, external_id: str | None = None, now: datetime = NOW) -> engine.SyncReport:
    calendar = world.calendar(external_id or harness.primary_id)
    return engine.sync_calendar(calendar, harness.provider, now=now)


def meetings_of(tenant: Tenant) -> list[Meeting]:
    return list(
        db.session.scalars(
            sa.select(Meeting)
            .where(Meeting.tenant_id == tenant.id, Meeting.source == "calendar")
            .order_by(Meeting.start_at, Meeting.id)
        )
    )


def blocks_of(calendar: Calendar) -> list[tuple[datetime, datetime]]:
    rows = db.session.execute(
        sa.select(BusyBlock.start_at, BusyBlock.end_at)
        .where(BusyBlock.calendar_id == calendar.id)
        .order_by(BusyBlock.start_at)
    )
    return [tuple(row) for row in rows]


def snapshot(calendar: Calendar) -> dict:
    """Every row the engine owns for ``calendar`` (ids included: an unchanged row is never rewritten)."""
    events = db.session.execute(
        sa.select(SyncedEvent.__table__)
        .where(SyncedEvent.calendar_id == calendar.id)
        .order_by(SyncedEvent.id)
    ).all()
    blocks = db.session.execute(
        sa.select(BusyBlock.__table__).where(BusyBlock.calendar_id == calendar.id).order_by(BusyBlock.id)
    ).all()
    meetings = db.session.execute(
        sa.select(Meeting.id, Meeting.uid, Meeting.title, Meeting.start_at, Meeting.end_at, Meeting.status)
        .where(Meeting.tenant_id == calendar.tenant_id, Meeting.source == "calendar")
        .order_by(Meeting.id)
    ).all()
    links = db.session.execute(sa.select(MeetingContact.__table__).order_by("meeting_id", "contact_id")).all()
    return {"events": events, "blocks": blocks, "meetings": meetings, "links": links}


@pytest.fixture
def count_writes(db_connection):
    """How many INSERT/UPDATE/DELETE statements reach the engine's tables while the test runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):
        text = statement.lstrip().lower()
        if text.startswith(("insert", "update", "delete")) and any(t in text for t in WRITES):
            seen.append(statement)

    sa.event.listen(db_connection, "before_cursor_execute", record)
    yield seen
    sa.event.remove(db_connection, "before_cursor_execute", record)


# --- Meetings (C3, C4) -------------------------------------------------------------------------------------


def test_an_event_with_a_contact_becomes_a_meeting_that_follows_the_event(harness, world):
    harness.seed_event(
        harness.primary_id,
        uid="demo-1@test",
        summary="Demo",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"), SeedAttendee("stranger@elsewhere.example")),
    )
    report = run(world, harness)
    assert report.outcome == "synced"
    assert report.meetings_created == 1
    [meeting] = meetings_of(world.tenant)
    primary = world.calendar(harness.primary_id)
    assert (meeting.uid, meeting.title, meeting.start_at, meeting.end_at) == (
        "demo-1@test",
        "Demo",
        T0,
        T0 + HOUR,
    )
    assert (meeting.owner_id, meeting.calendar_id, meeting.status) == (world.rep.id, primary.id, "scheduled")
    assert meeting.provider_event_id
    assert meeting.contacts == [world.contact]
    # Tenant isolation: the other tenant's contact with the same address got nothing.
    assert meetings_of(world.other_tenant) == []
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(MeetingContact.contact_id == world.other_contact.id)
        )
        == 0
    )

    harness.move_event(harness.primary_id, "demo-1@test", T0 + DAY, T0 + DAY + HOUR)
    report = run(world, harness)
    assert (report.meetings_created, report.meetings_updated) == (0, 1)
    assert meetings_of(world.tenant) == [meeting]
    assert (meeting.start_at, meeting.end_at, meeting.status) == (T0 + DAY, T0 + DAY + HOUR, "scheduled")
    assert blocks_of(primary) == [(T0 + DAY, T0 + DAY + HOUR)]

    harness.delete_event(harness.primary_id, "demo-1@test")
    report = run(world, harness)
    assert report.meetings_cancelled == 1
    assert meeting.status == "cancelled"
    assert blocks_of(primary) == []
    assert db.session.scalar(sa.select(sa.func.count()).where(SyncedEvent.calendar_id == primary.id)) == 0


def test_events_termin_or_other_integrations_wrote_are_no_meetings_but_still_busy(harness, world):
    draft = EventDraft(
        uid="termin-booking-1@termin.test",
        summary="Booked intro",
        start=T0,
        end=T0 + timedelta(minutes=30),
        attendees=(Attendee(CLIENT, "Client"),),
        organizer_email=harness.account_email,
    )
    harness.provider.create_event(harness.primary_id, draft)
    harness.seed_event(
        harness.primary_id,
        uid="zoom-1@test",
        summary="Webinar",
        start=T0 + 2 * HOUR,
        end=T0 + 3 * HOUR,
        attendees=(SeedAttendee(CLIENT),),
        by_integration=True,
    )
    report = run(world, harness)
    assert report.meetings_created == 0
    assert meetings_of(world.tenant) == []
    assert blocks_of(world.calendar(harness.primary_id)) == [
        (T0, T0 + timedelta(minutes=30)),
        (T0 + 2 * HOUR, T0 + 3 * HOUR),
    ]


def test_the_same_event_in_two_of_the_reps_calendars_is_one_meeting(harness, world):
    for calendar_id in (harness.primary_id, harness.second_id):
        harness.seed_event(
            calendar_id,
            uid="shared-1@test",
            summary="Kick-off",
            start=T0,
            end=T0 + HOUR,
            attendees=(SeedAttendee(CLIENT, "accepted"),),
        )
    primary, second = world.calendar(harness.primary_id), world.calendar(harness.second_id)
    assert run(world, harness).meetings_created == 1
    assert run(world, harness, harness.second_id).meetings_created == 0
    [meeting] = meetings_of(world.tenant)
    assert meeting.calendar_id == primary.id

    # Gone from the calendar that made it, still in the other one: the other one takes it over.
    harness.delete_event(harness.primary_id, "shared-1@test")
    report = run(world, harness)
    assert report.meetings_cancelled == 0
    assert (meeting.status, meeting.calendar_id) == ("scheduled", second.id)
    harness.move_event(harness.second_id, "shared-1@test", T0 + HOUR, T0 + 2 * HOUR)
    run(world, harness, harness.second_id)
    assert meeting.start_at == T0 + HOUR


# --- Idempotency --------------------------------------------------------------------------------------------


def seed_mixture(harness) -> None:
    harness.seed_event(
        harness.primary_id,
        uid="one@test",
        summary="One-off",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
    )
    harness.seed_event(
        harness.primary_id,
        uid="weekly@test",
        summary="Weekly check-in",
        start=T0 + DAY,
        end=T0 + DAY + timedelta(minutes=30),
        attendees=(SeedAttendee(CLIENT, "accepted"),),
        rrule="FREQ=WEEKLY;COUNT=3",
    )
    harness.seed_event(
        harness.primary_id,
        uid="offsite@test",
        summary="Offsite",
        start=datetime(2030, 5, 8, tzinfo=UTC),
        end=datetime(2030, 5, 9, tzinfo=UTC),
        all_day=True,
    )
    harness.seed_event(
        harness.primary_id,
        uid="focus@test",
        summary="Focus time",
        start=T0 + 3 * HOUR,
        end=T0 + 4 * HOUR,
        transparent=True,
    )


def test_an_incremental_sync_without_changes_is_one_request_and_writes_nothing(harness, world, count_writes):
    seed_mixture(harness)
    first = run(world, harness)
    assert first.full
    assert first.rows_written > 0
    count_writes.clear()
    again = run(world, harness)
    assert not again.full
    assert again.requests == 1
    assert (again.rows_written, again.blocks_written) == (0, 0)
    assert count_writes == []


def test_syncing_again_from_scratch_leaves_the_same_rows(harness, world, count_writes):
    seed_mixture(harness)
    run(world, harness)
    primary = world.calendar(harness.primary_id)
    before = snapshot(primary)
    assert len(before["meetings"]) == 4  # the one-off and three weekly occurrences
    primary.sync_state = None
    count_writes.clear()
    report = run(world, harness)
    assert report.full
    assert report.rows_written == 0
    assert count_writes == []
    assert snapshot(primary) == before


def test_a_run_killed_half_way_leaves_nothing_and_the_next_run_does_it_all(harness, world, monkeypatch):
    seed_mixture(harness)
    primary = world.calendar(harness.primary_id)
    original = engine._Applier._blocks

    def dies_after_blocks(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise RuntimeError("worker killed")

    monkeypatch.setattr(engine._Applier, "_blocks", dies_after_blocks)
    savepoint = db.session.begin_nested()
    with pytest.raises(RuntimeError):
        run(world, harness)
    savepoint.rollback()
    monkeypatch.undo()
    empty = snapshot(primary)
    assert (empty["events"], empty["blocks"], empty["meetings"]) == ([], [], [])
    assert primary.sync_state is None

    report = run(world, harness)
    assert report.outcome == "synced"
    after = snapshot(primary)
    assert len(after["meetings"]) == 4
    assert len(after["blocks"]) == 5  # one-off, three weekly, the all-day offsite


# --- Full listings ------------------------------------------------------------------------------------------


def test_an_expired_cursor_lists_everything_and_drops_what_is_gone(harness, world):
    harness.seed_event(
        harness.primary_id,
        uid="keep@test",
        summary="Keep",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
    )
    run(world, harness)
    primary = world.calendar(harness.primary_id)
    [kept] = meetings_of(world.tenant)
    # Rows for events that vanished while we could not see the changes: a future one and a past one.
    ghosts = {}
    for uid, start in (("ghost-future@test", T0 + 3 * DAY), ("ghost-past@test", NOW - 3 * DAY)):
        meeting = factories.make_meeting(
            world.tenant, world.rep, [world.contact], start_at=start, source="calendar"
        )
        meeting.uid, meeting.calendar_id = uid, primary.id
        row = SyncedEvent(
            tenant_id=world.tenant.id,
            calendar_id=primary.id,
            uid=uid,
            recurrence_id="",
            provider_event_id=f"id-{uid}",
            meeting_id=meeting.id,
            start_at=start,
            end_at=start + HOUR,
            digest=engine.RULES_VERSION + "0" * 63,
        )
        db.session.add(row)
        db.session.flush()
        db.session.add(
            BusyBlock(
                tenant_id=world.tenant.id,
                user_id=world.rep.id,
                calendar_id=primary.id,
                synced_event_id=row.id,
                start_at=start,
                end_at=start + HOUR,
            )
        )
        ghosts[uid] = meeting
    db.session.flush()

    harness.expire_sync_state(harness.primary_id)
    report = run(world, harness)
    assert report.full
    assert report.outcome == "synced"
    uids = set(db.session.scalars(sa.select(SyncedEvent.uid).where(SyncedEvent.calendar_id == primary.id)))
    assert uids == {"keep@test"}
    assert blocks_of(primary) == [(T0, T0 + HOUR)]
    assert ghosts["ghost-future@test"].status == "cancelled"
    assert ghosts["ghost-past@test"].status == "scheduled"  # it happened: history stays
    assert kept.status == "scheduled"


def test_an_expired_cursor_is_retried_as_a_full_listing(harness, world):
    harness.seed_event(harness.primary_id, uid="a@test", summary="A", start=T0, end=T0 + HOUR)
    run(world, harness)
    harness.expire_sync_state(harness.primary_id)
    harness.seed_event(harness.primary_id, uid="b@test", summary="B", start=T0 + DAY, end=T0 + DAY + HOUR)
    report = run(world, harness)
    assert (report.expired, report.full, report.outcome) == (True, True, "synced")
    assert blocks_of(world.calendar(harness.primary_id)) == [(T0, T0 + HOUR), (T0 + DAY, T0 + DAY + HOUR)]


# --- Busy blocks (C8) ---------------------------------------------------------------------------------------


def test_busy_blocks_skip_free_cancelled_and_declined_and_expand_series_and_days(harness, world):
    harness.seed_event(harness.primary_id, uid="busy@test", summary="Busy", start=T0, end=T0 + HOUR)
    harness.seed_event(
        harness.primary_id,
        uid="free@test",
        summary="Reminder",
        start=T0 + 2 * HOUR,
        end=T0 + 3 * HOUR,
        transparent=True,
    )
    harness.seed_event(
        harness.primary_id,
        uid="declined@test",
        summary="Their pitch",
        start=T0 + 4 * HOUR,
        end=T0 + 5 * HOUR,
        attendees=(SeedAttendee(harness.account_email, "declined"), SeedAttendee(CLIENT, "accepted")),
    )
    harness.seed_event(
        harness.primary_id,
        uid="weekly@test",
        summary="Team sync",
        start=T0 + DAY + HOUR,
        end=T0 + DAY + 90 * timedelta(minutes=1),
        rrule="FREQ=WEEKLY;COUNT=3",
    )
    harness.seed_event(
        harness.primary_id,
        uid="holiday@test",
        summary="Holiday",
        start=datetime(2030, 5, 8, tzinfo=UTC),
        end=datetime(2030, 5, 9, tzinfo=UTC),
        all_day=True,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
    )
    report = run(world, harness)
    weekly = [(T0 + DAY + HOUR + n * WEEK, T0 + DAY + 90 * timedelta(minutes=1) + n * WEEK) for n in range(3)]
    # The all-day 8 May is the rep's whole day in Warsaw (CEST, UTC+2).
    holiday = (datetime(2030, 5, 7, 22, 0, tzinfo=UTC), datetime(2030, 5, 8, 22, 0, tzinfo=UTC))
    assert blocks_of(world.calendar(harness.primary_id)) == sorted([(T0, T0 + HOUR), *weekly, holiday])
    # Neither the declined event nor the all-day one is a meeting, though the contact is invited to both.
    assert report.meetings_created == 0


def test_a_calendar_that_does_not_check_availability_has_no_blocks_but_gives_meetings(harness, world):
    harness.seed_event(
        harness.second_id,
        uid="side@test",
        summary="Side project call",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
    )
    second = world.calendar(harness.second_id)
    assert not second.checks_availability
    report = run(world, harness, harness.second_id)
    assert report.meetings_created == 1
    assert blocks_of(second) == []

    # Ticked for availability: the next run lists everything again and blocks the time.
    second.checks_availability = True
    report = run(world, harness, harness.second_id)
    assert report.full
    assert blocks_of(second) == [(T0, T0 + HOUR)]
    assert report.meetings_created == 0


@pytest.fixture(params=["google_harness", "caldav_harness"])
def series_harness(request):
    return request.getfixturevalue(request.param)


@pytest.fixture
def series_world(app_ctx, series_harness) -> World:
    provider = series_harness.provider
    return build_world(provider.name, provider.account(), provider.list_calendars())


def seed_series_with_exceptions(harness, uid: str) -> None:
    """Weekly at 11:00 Warsaw from T0, four times; the second moved two hours later, the third cancelled."""
    if isinstance(harness, radicale.CalDAVHarness):
        rep, client = harness.account_email, CLIENT
        ics = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 14.4//EN\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n"
            "DTSTART;TZID=Europe/Warsaw:20300506T110000\r\nDTEND;TZID=Europe/Warsaw:20300506T120000\r\n"
            "RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=Europe/Warsaw:20300520T110000\r\n"
            f"SUMMARY:Weekly demo\r\nORGANIZER:mailto:{rep}\r\nATTENDEE;PARTSTAT=ACCEPTED:mailto:{client}\r\n"
            "END:VEVENT\r\n"
            f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n"
            "RECURRENCE-ID;TZID=Europe/Warsaw:20300513T110000\r\n"
            "DTSTART;TZID=Europe/Warsaw:20300513T130000\r\nDTEND;TZID=Europe/Warsaw:20300513T140000\r\n"
            f"SUMMARY:Weekly demo (moved)\r\nORGANIZER:mailto:{rep}\r\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{client}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        harness.server.put_event(harness.primary_id, ics, name="weekly-demo.ics")
        return
    harness.seed_event(
        harness.primary_id,
        uid=uid,
        summary="Weekly demo",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
        rrule="FREQ=WEEKLY;COUNT=4",
    )
    harness.seed_exception(
        harness.primary_id, uid, T0 + WEEK, start=T0 + WEEK + 2 * HOUR, summary="Weekly demo (moved)"
    )
    harness.seed_exception(harness.primary_id, uid, T0 + 2 * WEEK, cancelled=True)


def test_series_leave_out_moved_and_cancelled_occurrences(series_harness, series_world):
    harness, world = series_harness, series_world
    seed_series_with_exceptions(harness, "weekly-demo@test")
    report = run(world, harness)
    primary = world.calendar(harness.primary_id)
    moved = (T0 + WEEK + 2 * HOUR, T0 + WEEK + 3 * HOUR)
    assert blocks_of(primary) == [(T0, T0 + HOUR), moved, (T0 + 3 * WEEK, T0 + 3 * WEEK + HOUR)]
    assert report.meetings_created == 3
    meetings = meetings_of(world.tenant)
    assert [(m.start_at, m.title) for m in meetings] == [
        (T0, "Weekly demo"),
        (moved[0], "Weekly demo (moved)"),
        (T0 + 3 * WEEK, "Weekly demo"),
    ]
    # The real UID on every occurrence; the moved one keeps its original start as its recurrence id.
    assert [(m.uid, m.recurrence_id) for m in meetings] == [
        ("weekly-demo@test", T0),
        ("weekly-demo@test", T0 + WEEK),
        ("weekly-demo@test", T0 + 3 * WEEK),
    ]
    assert (meetings[1].uid, meetings[1].recurrence_id) == engine.meeting_key(
        "weekly-demo@test", (T0 + WEEK).isoformat()
    )
    assert all(m.contacts == [world.contact] for m in meetings)

    # The last occurrence is cancelled too, and nothing else about the series changes.
    if isinstance(harness, radicale.CalDAVHarness):
        path = f"{harness.primary_id}weekly-demo.ics"
        href, parsed = harness.server.find(harness.primary_id, "weekly-demo@test")
        master = next(e for e in parsed.walk("VEVENT") if e.get("RECURRENCE-ID") is None)
        master.add("exdate", datetime(2030, 5, 27, 9, 0, tzinfo=UTC))
        status, _, _ = harness.server.request(
            radicale.REP, "PUT", href, parsed.to_ical(), {"Content-Type": "text/calendar; charset=utf-8"}
        )
        assert status in (201, 204), path
    else:
        harness.seed_exception(harness.primary_id, "weekly-demo@test", T0 + 3 * WEEK, cancelled=True)
    report = run(world, harness)
    assert blocks_of(primary) == [(T0, T0 + HOUR), moved]
    assert report.meetings_cancelled == 1
    assert [m.status for m in meetings_of(world.tenant)] == ["scheduled", "scheduled", "cancelled"]


def test_deleting_a_series_cancels_its_meetings_and_frees_its_time(harness, world):
    harness.seed_event(
        harness.primary_id,
        uid="weekly@test",
        summary="Weekly check-in",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
        rrule="FREQ=WEEKLY;COUNT=3",
    )
    primary = world.calendar(harness.primary_id)
    assert run(world, harness).meetings_created == 3
    assert len(blocks_of(primary)) == 3
    harness.delete_event(harness.primary_id, "weekly@test")
    report = run(world, harness)
    assert report.meetings_cancelled == 3
    assert {m.status for m in meetings_of(world.tenant)} == {"cancelled"}
    assert blocks_of(primary) == []
    assert db.session.scalar(sa.select(sa.func.count()).where(SyncedEvent.calendar_id == primary.id)) == 0


def test_an_override_removed_from_its_calendar_object_puts_the_occurrence_back(caldav_harness, caldav_world):
    harness, world = caldav_harness, caldav_world
    seed_series_with_exceptions(harness, "weekly-demo@test")
    run(world, harness)
    primary = world.calendar(harness.primary_id)
    href, parsed = harness.server.find(harness.primary_id, "weekly-demo@test")
    for override in [e for e in parsed.subcomponents if e.get("RECURRENCE-ID") is not None]:
        parsed.subcomponents.remove(override)
    status, _, _ = harness.server.request(
        radicale.REP, "PUT", href, parsed.to_ical(), {"Content-Type": "text/calendar; charset=utf-8"}
    )
    assert status in (201, 204)
    report = run(world, harness)
    assert not report.full
    week_two = (T0 + WEEK, T0 + WEEK + HOUR)
    assert blocks_of(primary) == [(T0, T0 + HOUR), week_two, (T0 + 3 * WEEK, T0 + 3 * WEEK + HOUR)]
    [moved_back] = [m for m in meetings_of(world.tenant) if m.recurrence_id == T0 + WEEK]
    assert (moved_back.start_at, moved_back.title, moved_back.status) == (
        T0 + WEEK,
        "Weekly demo",
        "scheduled",
    )


def test_a_weekly_series_keeps_its_local_time_across_the_dst_change(series_harness, series_world):
    harness, world = series_harness, series_world
    march = datetime(2030, 3, 1, tzinfo=UTC)
    if isinstance(harness, radicale.CalDAVHarness):
        ics = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 14.4//EN\r\n"
            "BEGIN:VEVENT\r\nUID:standup@test\r\nDTSTAMP:20300101T000000Z\r\n"
            "DTSTART;TZID=Europe/Warsaw:20300318T090000\r\nDTEND;TZID=Europe/Warsaw:20300318T091500\r\n"
            "RRULE:FREQ=WEEKLY;COUNT=4\r\nSUMMARY:Stand-up\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        harness.server.put_event(harness.primary_id, ics)
    else:
        start = datetime(2030, 3, 18, 8, 0, tzinfo=UTC)  # 09:00 in Warsaw, before the clocks go forward
        harness.seed_event(
            harness.primary_id,
            uid="standup@test",
            summary="Stand-up",
            start=start,
            end=start + timedelta(minutes=15),
            rrule="FREQ=WEEKLY;COUNT=4",
        )
    run(world, harness, now=march)
    starts = [start for start, _ in blocks_of(world.calendar(harness.primary_id))]
    assert starts == [
        datetime(2030, 3, 18, 8, 0, tzinfo=UTC),
        datetime(2030, 3, 25, 8, 0, tzinfo=UTC),
        datetime(2030, 4, 1, 7, 0, tzinfo=UTC),  # still 09:00 in Warsaw, now CEST
        datetime(2030, 4, 8, 7, 0, tzinfo=UTC),
    ]


# --- Provider failures (C11) --------------------------------------------------------------------------------


def test_lost_access_makes_the_calendar_inactive_and_pauses_booking(harness, world):
    shared = world.calendar(harness.shared_readonly_id)
    shared.checks_availability = True
    harness.seed_event(harness.shared_readonly_id, uid="boss@test", summary="Board", start=T0, end=T0 + HOUR)
    assert run(world, harness, harness.shared_readonly_id).outcome == "synced"
    assert sync.booking_paused_reason(world.tenant, world.rep) is None

    harness.withdraw_access(harness.shared_readonly_id)
    report = run(world, harness, harness.shared_readonly_id)
    assert report.outcome == "access_lost"
    assert shared.status == "inactive"
    assert shared.inactive_reason
    assert sync.booking_paused_reason(world.tenant, world.rep) == shared.inactive_reason
    assert (shared.sync_state, shared.next_sync_at) == (None, None)
    assert world.connection.is_active  # the rest of the account still works
    assert run(world, harness).outcome == "synced"


def test_a_revoked_grant_makes_the_connection_inactive(harness, world):
    run(world, harness)
    harness.revoke_grant()
    report = run(world, harness)
    assert report.outcome == "auth_revoked"
    assert world.connection.status == "inactive"
    assert sync.booking_paused_reason(world.tenant, world.rep)


def test_an_endless_retry_after_waits_the_longest_back_off(harness, world):
    primary = world.calendar(harness.primary_id)
    harness.fail_next_requests(429, retry_after="inf")
    report = run(world, harness)
    assert report.outcome == "retry_later"  # not an OverflowError from timedelta(seconds=inf)
    assert primary.next_sync_at == NOW + timedelta(seconds=MAX_RETRY_AFTER_SECONDS)


def test_rate_limits_and_outages_wait_and_finish_cleanly(harness, world):
    primary = world.calendar(harness.primary_id)
    run(world, harness)
    state = primary.sync_state
    later = NOW + HOUR
    harness.fail_next_requests(429, retry_after=7)
    report = run(world, harness, now=later)
    assert report.outcome == "retry_later"
    assert primary.next_sync_at == later + timedelta(seconds=7)
    assert primary.last_error
    assert primary.sync_state == state

    harness.fail_next_requests(503, count=2)
    run(world, harness, now=later)
    assert primary.next_sync_at == later + engine.MIN_BACKOFF
    run(world, harness, now=later)
    assert primary.next_sync_at == later + 2 * engine.MIN_BACKOFF  # doubling while it keeps failing

    report = run(world, harness, now=later)
    assert report.outcome == "synced"
    assert primary.last_error is None
    assert primary.next_sync_at == later + timedelta(seconds=300)


# --- Bad input ----------------------------------------------------------------------------------------------


def ics(uid: str, body: str, prodid: str = radicale.PERSON_PRODID) -> str:
    return (
        f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{prodid}\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
        f"DTSTAMP:20300101T000000Z\r\n{body}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def serve_raw(server, calendar: str, text: str) -> None:
    stored = ics(f"placeholder-{uuid.uuid4()}@test", "DTSTART:20300101T090000Z\r\n")
    placeholder = server.put_event(calendar, stored)
    server.proxy.served_instead[placeholder] = text


@pytest.fixture
def caldav_world(app_ctx, caldav_harness) -> World:
    provider = caldav_harness.provider
    return build_world(provider.name, provider.account(), provider.list_calendars())


def test_bad_events_are_logged_and_skipped_and_the_rest_syncs(caldav_harness, caldav_world, caplog):
    harness, world = caldav_harness, caldav_world
    server = harness.server
    calendar = harness.primary_id
    garbled = server.put_event(
        calendar, ics("garbled@test", "DTSTART:20300506T090000Z\r\nDTEND:20300506T100000Z\r\n")
    )
    server.proxy.served_instead[garbled] = "BEGIN:VCALENDAR\r\nthis is not iCalendar at all\r\n"
    server.put_event(calendar, ics("no-end@test", "DTSTART:20300506T120000Z\r\nSUMMARY:No end\r\n"))
    crowd = "".join(f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:guest{n}@crowd.example\r\n" for n in range(4999))
    server.put_event(
        calendar,
        ics(
            "webinar@test",
            "DTSTART:20300507T090000Z\r\nDTEND:20300507T100000Z\r\nSUMMARY:Webinar\r\n"
            f"ORGANIZER:mailto:{harness.account_email}\r\n{crowd}ATTENDEE;PARTSTAT=ACCEPTED:mailto:{CLIENT}\r\n",
        ),
    )
    server.put_event(
        calendar,
        ics(
            "mars@test",
            "DTSTART;TZID=Mars/Olympus_Mons:20300508T090000\r\nDTEND;TZID=Mars/Olympus_Mons:20300508T100000\r\n"
            "SUMMARY:Unknown zone\r\n",
        ),
    )
    # Radicale refuses to store these two; a server that stores anything it is sent serves them.
    serve_raw(
        server,
        calendar,
        ics(
            "mars-series@test",
            "DTSTART:20300509T090000Z\r\nDTEND:20300509T100000Z\r\nRRULE:FREQ=DAILY;COUNT=3\r\n"
            "EXDATE;TZID=Mars/Olympus_Mons:20300510T090000\r\nSUMMARY:Series in an unknown zone\r\n",
        ),
    )
    serve_raw(
        server,
        calendar,
        ics(
            "bad-rule@test", "DTSTART:20300509T120000Z\r\nDTEND:20300509T130000Z\r\nRRULE:FREQ=SOMETIMES\r\n"
        ),
    )
    server.put_event(
        calendar,
        ics(
            "good@test",
            "DTSTART:20300510T090000Z\r\nDTEND:20300510T100000Z\r\nSUMMARY:Fine\r\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{CLIENT}\r\n",
        ),
    )
    with caplog.at_level(logging.WARNING, logger="app.sync"):
        report = run(world, harness)
    primary = world.calendar(calendar)
    assert report.outcome == "synced"
    assert dict(report.skipped) == {"no_duration": 1, "unknown_time_zone": 1, "bad_recurrence": 1}
    skipped_lines = [r.getMessage() for r in caplog.records if "skipping event" in r.getMessage()]
    assert len(skipped_lines) == 3
    assert all(f"calendar {primary.id} (tenant {world.tenant.id})" in line for line in skipped_lines)
    uids = set(db.session.scalars(sa.select(SyncedEvent.uid).where(SyncedEvent.calendar_id == primary.id)))
    # The provider reads a time in an unknown zone as UTC (floating); it is stored like any other.
    assert uids == {"webinar@test", "mars@test", "good@test"}
    meetings = {m.uid: m for m in meetings_of(world.tenant)}
    assert set(meetings) == {"webinar@test", "good@test"}
    assert meetings["webinar@test"].contacts == [world.contact]
    assert meetings_of(world.other_tenant) == []


class ListingProvider:
    """A provider that answers ``changes`` with whatever the test put in ``events``."""

    name = "caldav"

    def __init__(self, events: list[RemoteEvent]):
        self.events = events
        self.calls = 0

    def changes(self, calendar_id: str, state: str | None) -> Changes:
        self.calls += 1
        return Changes(events=list(self.events), next_state=f"state-{self.calls}", full=state is None)


ACCOUNT = Account(id="acct", email="rep@acme.example.com")
CALENDARS = [RemoteCalendar("main", "Main", "owner", is_primary=True, time_zone="Europe/Warsaw")]


def event(uid: str, start: datetime = T0, minutes: int = 60, **fields) -> RemoteEvent:
    values = {
        "id": f"id-{uid}",
        "uid": uid,
        "start": start,
        "end": start + timedelta(minutes=minutes),
        "summary": uid,
        "attendees": (Attendee(CLIENT, response="accepted"),),
        **fields,
    }
    return RemoteEvent(**values)


def test_events_the_engine_cannot_use_are_counted_by_reason(app_ctx):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    provider = ListingProvider(
        [
            event("fine@test"),
            event("", id="no-uid"),
            event("x" * 1100 + "@test"),
            event("backwards@test", minutes=-30),
            event("ancient@test", start=datetime(1, 1, 1, tzinfo=UTC)),
            event("odd-occurrence@test", recurrence_id="next tuesday"),
            event("rule@test", recurrence=("RRULE:FREQ=WEEKLY;UNTIL=whenever",)),
            event("period@test", recurrence=("RDATE;VALUE=PERIOD:20300506T090000Z/PT1H",)),
        ]
    )
    report = engine.sync_calendar(world.calendar("main"), provider, now=NOW)
    assert report.outcome == "synced"
    assert report.events_seen == 8
    assert dict(report.skipped) == {
        "no_uid": 1,
        "too_long": 1,
        "no_duration": 1,
        "bad_time": 1,
        "bad_recurrence_id": 1,
        "bad_recurrence": 2,
    }
    assert [m.uid for m in meetings_of(world.tenant)] == ["fine@test"]


def test_contacts_are_matched_in_bulk_and_capped_on_the_meeting(app_ctx, count_writes, db_connection):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    contacts = [factories.make_contact(world.tenant, email=f"buyer{n}@example.org") for n in range(60)]
    guests = tuple(Attendee(f"guest{n}@crowd.example") for n in range(5000))
    buyers = tuple(Attendee(c.email, response="accepted") for c in contacts)
    queries: list[str] = []

    def record(conn, cursor, statement, *args):
        if "from contacts" in statement.lower():
            queries.append(statement)

    sa.event.listen(db_connection, "before_cursor_execute", record)
    try:
        report = engine.sync_calendar(
            world.calendar("main"), ListingProvider([event("big@test", attendees=guests + buyers)]), now=NOW
        )
    finally:
        sa.event.remove(db_connection, "before_cursor_execute", record)
    assert report.meetings_created == 1
    assert len(queries) == 6  # 5,061 addresses, 900 to a query
    [meeting] = meetings_of(world.tenant)
    assert len(meeting.contacts) == engine.MAX_MEETING_CONTACTS


def test_meetings_for_the_recent_past_and_the_next_weeks_only(app_ctx):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    provider = ListingProvider(
        [
            event("last-year@test", start=NOW - timedelta(days=365)),
            event("last-week@test", start=NOW - WEEK),
            event("next-year@test", start=NOW + timedelta(days=365)),
            event(
                "monthly@test",
                start=T0,
                recurrence=("RRULE:FREQ=MONTHLY;COUNT=12",),
            ),
        ]
    )
    engine.sync_calendar(world.calendar("main"), provider, now=NOW)
    meetings = meetings_of(world.tenant)
    uids = [m.uid for m in meetings]
    assert uids[:1] == ["last-week@test"]
    assert "last-year@test" not in uids
    assert "next-year@test" in uids  # a single event is one meeting however far ahead
    monthly = [m.recurrence_id for m in meetings if m.uid == "monthly@test"]
    # May, June and July 2030 start within the next 90 days
    assert monthly == [T0, T0.replace(month=6, day=6), T0.replace(month=7, day=6)]

    # A week later the next full listing reaches August's occurrence... not yet: still 90 days out only.
    calendar = world.calendar("main")
    calendar.sync_state = None
    engine.sync_calendar(calendar, provider, now=NOW + timedelta(days=10))
    assert len([m for m in meetings_of(world.tenant) if m.uid == "monthly@test"]) == 4


def test_the_other_tenants_contact_is_never_touched(app_ctx):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    before = (world.other_contact.updated_at, world.other_contact.email)
    engine.sync_calendar(world.calendar("main"), ListingProvider([event("iso@test")]), now=NOW)
    assert [m.contacts for m in meetings_of(world.tenant)] == [[world.contact]]
    assert meetings_of(world.other_tenant) == []
    db.session.refresh(world.other_contact)
    assert (world.other_contact.updated_at, world.other_contact.email) == before


def test_a_listing_larger_than_one_batch_is_written_whole(app_ctx):
    """Rows go to PostgreSQL in batches of PG_CHUNK; every event still gets its own row, block and meeting."""
    world = build_world("caldav", ACCOUNT, CALENDARS)
    calendar = world.calendar("main")
    count = engine.PG_CHUNK + 10
    provider = ListingProvider([event(f"bulk-{n}@test", start=T0 + n * HOUR) for n in range(count)])
    report = engine.sync_calendar(calendar, provider, now=NOW)
    assert (report.outcome, report.meetings_created, report.blocks_written) == ("synced", count, count)
    pairs = db.session.execute(
        sa.select(SyncedEvent.uid, SyncedEvent.start_at, Meeting.uid, Meeting.start_at)
        .join(Meeting, SyncedEvent.meeting_id == Meeting.id)
        .where(SyncedEvent.calendar_id == calendar.id)
    ).all()
    assert len(pairs) == count
    assert all(
        (uid, start) == (meeting_uid, meeting_start) for uid, start, meeting_uid, meeting_start in pairs
    )
    linked = sa.select(sa.func.count()).select_from(MeetingContact).join(Meeting)
    assert db.session.scalar(linked.where(Meeting.tenant_id == world.tenant.id)) == count
    assert len(blocks_of(calendar)) == count

    calendar.sync_state = None
    assert engine.sync_calendar(calendar, provider, now=NOW).rows_written == 0


# --- Jobs ---------------------------------------------------------------------------------------------------


def test_the_jobs_sync_a_caldav_account_through_the_stored_connection(app_ctx, caldav_harness):
    server = caldav_harness.server
    tenant = factories.make_tenant("Acme")
    rep = factories.make_user(tenant, seat="sales")
    contact = factories.make_contact(tenant, email=CLIENT)
    connection = sync.connect_caldav(
        tenant, rep, server_url=server.url, username=radicale.REP, password=radicale.PASSWORDS[radicale.REP]
    )
    db.session.commit()
    primary = connection.default_calendar
    caldav_harness.seed_event(
        caldav_harness.primary_id,
        uid="job@test",
        summary="Call",
        start=T0,
        end=T0 + HOUR,
        attendees=(SeedAttendee(CLIENT, "accepted"),),
    )

    report = jobs.sync_calendar(primary.id)
    assert report is not None
    assert report.meetings_created == 1
    primary = db.session.get(Calendar, primary.id)
    assert primary.sync_started_at is None
    assert primary.last_synced_at is not None
    assert primary.next_sync_at == primary.last_synced_at + timedelta(seconds=300)
    [meeting] = meetings_of(tenant)
    assert meeting.contacts == [contact]

    # Asked from the settings page: due now, run once the request commits (JOBS_MODE=eager in tests).
    synced_before = primary.last_synced_at
    jobs.request_sync(primary)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(Calendar, primary.id).last_synced_at > synced_before

    reports = jobs.sync_connection(connection.id)
    synced = {r.calendar_id for r in reports}
    expected = {c.id for c in connection.calendars if engine.needs_sync(c)}
    assert synced == expected
    assert primary.id in synced
    assert len(meetings_of(tenant)) == 1


def test_a_claimed_calendar_is_left_to_the_worker_that_holds_it(app_ctx, caldav_harness):
    tenant = factories.make_tenant("Acme")
    rep = factories.make_user(tenant)
    connection = sync.connect_caldav(
        tenant,
        rep,
        server_url=caldav_harness.server.url,
        username=radicale.REP,
        password=radicale.PASSWORDS[radicale.REP],
    )
    primary = connection.default_calendar
    primary.sync_started_at = datetime.now(UTC) - timedelta(seconds=5)
    db.session.commit()
    assert jobs.sync_calendar(primary.id) is None
    assert db.session.get(Calendar, primary.id).last_synced_at is None


def test_a_calendar_no_longer_used_drops_its_busy_blocks(app_ctx):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    calendar = world.calendar("main")
    engine.sync_calendar(calendar, ListingProvider([event("busy@test")]), now=NOW)
    assert blocks_of(calendar) == [(T0, T0 + HOUR)]
    world.connection.calendar_sync = False
    calendar.checks_availability = False
    db.session.commit()
    assert jobs.sync_calendar(calendar.id) is None
    assert blocks_of(calendar) == []
    assert calendar.sync_state is None
    assert [m.status for m in meetings_of(world.tenant)] == ["scheduled"]  # CRM history stays


# --- The embedded demo's SQLite -----------------------------------------------------------------------------


@pytest.fixture
def sqlite_app(tmp_path):
    config = config_for_tests(f"sqlite:///{tmp_path / 'demo.db'}")
    app = create_app({**config, "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY})
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


def test_the_engine_works_on_sqlite(sqlite_app):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    calendar = world.calendar("main")
    provider = ListingProvider(
        [
            event("one@test"),
            event("weekly@test", start=T0 + DAY, recurrence=("RRULE:FREQ=WEEKLY;COUNT=2",)),
            event("day@test", start=datetime(2030, 5, 8, tzinfo=UTC), minutes=24 * 60, all_day=True),
        ]
    )
    first = engine.sync_calendar(calendar, provider, now=NOW)
    db.session.commit()
    assert first.meetings_created == 3
    before = snapshot(calendar)
    calendar.sync_state = None
    again = engine.sync_calendar(calendar, provider, now=NOW)
    db.session.commit()
    assert again.rows_written == 0
    assert snapshot(calendar) == before
    assert len(before["blocks"]) == 4

    provider.events = [event("one@test", start=T0 + HOUR)]
    calendar.sync_state = None
    report = engine.sync_calendar(calendar, provider, now=NOW)
    db.session.commit()
    assert (report.meetings_updated, report.meetings_cancelled) == (1, 2)
    assert blocks_of(calendar) == [(T0 + HOUR, T0 + 2 * HOUR)]
