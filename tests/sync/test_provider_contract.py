"""One contract, three providers: Google Calendar v3 (emulator), Microsoft Graph (emulator), CalDAV
(Radicale). Every test here runs against all three."""

from datetime import UTC, datetime, timedelta

import pytest

from app.sync.providers.base import (
    AccessLost,
    AuthRevoked,
    EventDraft,
    RateLimited,
    SyncStateExpired,
    TemporarilyUnavailable,
)
from app.sync.providers.base import Attendee as DraftAttendee
from tests.sync.harness import SeedAttendee

T0 = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["google_harness", "graph_harness", "caldav_harness"])
def harness(request):
    return request.getfixturevalue(request.param)


def test_account_identity(harness):
    account = harness.provider.account()
    assert account.email.lower() == harness.account_email.lower()
    assert account.id


def test_lists_owned_and_shared_calendars_with_access(harness):
    calendars = {c.id: c for c in harness.provider.list_calendars()}
    assert calendars[harness.primary_id].access == "owner"
    assert calendars[harness.primary_id].is_primary
    assert calendars[harness.second_id].can_write
    assert not calendars[harness.second_id].is_primary
    shared = calendars[harness.shared_readonly_id]
    assert shared.access == "reader"
    assert shared.shows_event_details
    if harness.freebusy_id is not None:
        assert calendars[harness.freebusy_id].access == "freebusy"
        assert not calendars[harness.freebusy_id].shows_event_details


def test_full_then_incremental_changes(harness):
    attendee = SeedAttendee("client@example.org", "accepted")
    harness.seed_event(
        harness.primary_id,
        uid="evt-1@test",
        summary="Demo",
        start=T0,
        end=T0 + timedelta(hours=1),
        attendees=(attendee,),
    )
    harness.seed_event(
        harness.primary_id,
        uid="evt-2@test",
        summary="Lunch",
        start=T0 + timedelta(hours=3),
        end=T0 + timedelta(hours=4),
    )
    full = harness.provider.changes(harness.primary_id, None)
    assert full.full
    by_uid = {e.uid: e for e in full.events if e.status != "cancelled"}
    assert {"evt-1@test", "evt-2@test"} <= set(by_uid)
    demo = by_uid["evt-1@test"]
    assert (demo.start, demo.end, demo.summary) == (T0, T0 + timedelta(hours=1), "Demo")
    assert "client@example.org" in {a.email.lower() for a in demo.attendees}
    assert demo.created_by is None

    nothing = harness.provider.changes(harness.primary_id, full.next_state)
    assert not nothing.full
    assert [e for e in nothing.events if e.uid in by_uid] == []

    harness.move_event(
        harness.primary_id, "evt-1@test", T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1)
    )
    harness.delete_event(harness.primary_id, "evt-2@test")
    later = harness.provider.changes(harness.primary_id, nothing.next_state)
    moved = [e for e in later.events if e.uid == "evt-1@test"]
    assert moved
    assert moved[-1].start == T0 + timedelta(days=1)
    removed = [e for e in later.events if e.status == "cancelled"]
    assert removed, "a deleted event comes back as cancelled"


def test_expired_sync_state_raises(harness):
    state = harness.provider.changes(harness.primary_id, None).next_state
    harness.expire_sync_state(harness.primary_id)
    with pytest.raises(SyncStateExpired):
        harness.provider.changes(harness.primary_id, state)


def test_recognises_events_written_by_integrations(harness):
    harness.seed_event(
        harness.primary_id,
        uid="zoom-1@test",
        summary="Webinar",
        start=T0,
        end=T0 + timedelta(hours=1),
        by_integration=True,
    )
    events = {e.uid: e for e in harness.provider.changes(harness.primary_id, None).events}
    assert events["zoom-1@test"].created_by == "integration"


def test_create_event_is_idempotent_by_uid_and_recognised_as_ours(harness):
    draft = EventDraft(
        uid="termin-booking-1@termin.test",
        summary="Intro with Anna",
        start=T0,
        end=T0 + timedelta(minutes=30),
        time_zone="Europe/Warsaw",
        attendees=(DraftAttendee("anna@example.org", "Anna"),),
        organizer_email=harness.account_email,
    )
    first = harness.provider.create_event(harness.primary_id, draft)
    again = harness.provider.create_event(harness.primary_id, draft)  # a retry after a lost answer
    assert first == again
    on_server = [e for e in harness.server_events(harness.primary_id) if e["summary"] == "Intro with Anna"]
    assert len(on_server) == 1
    assert "anna@example.org" in [a.lower() for a in on_server[0]["attendees"]]
    ours = [
        e for e in harness.provider.changes(harness.primary_id, None).events if e.summary == "Intro with Anna"
    ]
    assert ours
    assert ours[0].created_by == "termin"


def test_update_and_cancel_event(harness):
    draft = EventDraft(
        uid="termin-booking-2@termin.test", summary="Call", start=T0, end=T0 + timedelta(minutes=30)
    )
    event_id = harness.provider.create_event(harness.primary_id, draft)
    moved = EventDraft(
        uid=draft.uid,
        summary="Call (moved)",
        start=T0 + timedelta(hours=2),
        end=T0 + timedelta(hours=2, minutes=30),
    )
    harness.provider.update_event(harness.primary_id, event_id, moved)
    [held] = [e for e in harness.server_events(harness.primary_id) if e["summary"].startswith("Call")]
    assert held["summary"] == "Call (moved)"
    assert held["start"] == T0 + timedelta(hours=2)
    harness.provider.cancel_event(harness.primary_id, event_id)
    harness.provider.cancel_event(harness.primary_id, event_id)  # already gone: not an error
    assert [e for e in harness.server_events(harness.primary_id) if e["summary"].startswith("Call")] == []


def test_free_busy_skips_transparent_events(harness):
    harness.seed_event(
        harness.second_id, uid="busy-1@test", summary="Busy", start=T0, end=T0 + timedelta(hours=1)
    )
    harness.seed_event(
        harness.second_id,
        uid="free-1@test",
        summary="Reminder",
        start=T0 + timedelta(hours=2),
        end=T0 + timedelta(hours=3),
        transparent=True,
    )
    busy = harness.provider.free_busy([harness.second_id], T0 - timedelta(hours=1), T0 + timedelta(hours=5))
    intervals = [(b.start, b.end) for b in busy[harness.second_id]]
    assert intervals == [(T0, T0 + timedelta(hours=1))]


def test_create_calendar(harness):
    created = harness.provider.create_calendar("Termin tasks")
    assert created.access == "owner"
    assert created.id in {c.id for c in harness.provider.list_calendars()}


def test_withdrawn_calendar_raises_access_lost(harness):
    harness.provider.changes(harness.shared_readonly_id, None)
    harness.withdraw_access(harness.shared_readonly_id)
    with pytest.raises(AccessLost) as error:
        harness.provider.changes(harness.shared_readonly_id, None)
    assert error.value.reason
    assert harness.shared_readonly_id not in {c.id for c in harness.provider.list_calendars()}
    harness.provider.changes(harness.primary_id, None)  # the rest of the account still works


def test_revoked_grant_raises_auth_revoked(harness):
    harness.revoke_grant()
    with pytest.raises(AuthRevoked):
        harness.provider.list_calendars()


@pytest.mark.parametrize(("status", "error"), [(429, RateLimited), (503, TemporarilyUnavailable)])
def test_throttling_and_outages_are_typed_with_retry_after(harness, status, error):
    harness.fail_next_requests(status, retry_after=7)
    with pytest.raises(error) as raised:
        harness.provider.list_calendars()
    assert raised.value.retry_after == 7
    assert harness.provider.list_calendars()  # the next request goes through
