"""Google-only behaviour of GoogleCalendarProvider, beyond the shared contract, against the v3 emulator."""

import logging
import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote

import pytest
import requests

from app.sync.providers.base import (
    AccessLost,
    Attendee,
    AuthRevoked,
    EventDraft,
    ProviderError,
    RateLimited,
    TemporarilyUnavailable,
)
from app.sync.providers.google import EPOCH, GoogleCalendarProvider

T0 = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)


def _draft(uid: str = "termin-g-1@termin.test", **changes) -> EventDraft:
    fields = {"uid": uid, "summary": "Intro", "start": T0, "end": T0 + timedelta(minutes=30)}
    return EventDraft(**(fields | changes))


def _listings(harness, suffix: str) -> list[dict]:
    """Query arguments of every GET the provider sent to a path ending in ``suffix``."""
    return [
        args
        for method, path, args in harness.emulator.request_log
        if method == "GET" and path.endswith(suffix)
    ]


def _held(harness, calendar_id: str, event_id: str) -> dict:
    [event] = [e for e in harness.server_events(calendar_id) if e["id"] == event_id]
    return event["resource"]


# --- Paging -------------------------------------------------------------------------------------------------


def test_calendar_list_follows_every_page_and_maps_access(google_harness):
    h = google_harness
    team = h.emulator.add_calendar(h.shared_readonly_id, "Team")
    h.emulator.share(team, h.account_email, "writer")
    h.emulator.page_size = 2
    before = h.request_count

    calendars = {c.id: c for c in h.provider.list_calendars()}

    assert h.request_count - before == 3
    assert {c: calendars[c].access for c in calendars} == {
        h.primary_id: "owner",
        h.second_id: "owner",
        h.shared_readonly_id: "reader",
        h.freebusy_id: "freebusy",
        team: "writer",
    }
    assert calendars[h.primary_id].time_zone == "Europe/Warsaw"
    assert [("pageToken" in args) for args in _listings(h, "/calendarList")] == [False, True, True]


def test_changes_follow_every_page_full_and_incremental(google_harness):
    h = google_harness
    for n in range(5):
        start = T0 + timedelta(hours=n)
        h.seed_event(
            h.primary_id, uid=f"p-{n}@test", summary=f"#{n}", start=start, end=start + timedelta(hours=1)
        )
    h.emulator.page_size = 2

    full = h.provider.changes(h.primary_id, None)

    assert full.full
    assert full.requests == 3
    assert sorted(e.uid for e in full.events) == [f"p-{n}@test" for n in range(5)]
    for args in _listings(h, "/events"):
        assert (args["maxResults"], args["showDeleted"], args["singleEvents"]) == ("2500", "true", "false")
        assert "syncToken" not in args

    for n in (0, 2, 4):
        h.move_event(
            h.primary_id, f"p-{n}@test", T0 + timedelta(days=1, hours=n), T0 + timedelta(days=1, hours=n + 1)
        )
    h.emulator.request_log.clear()
    later = h.provider.changes(h.primary_id, full.next_state)

    assert not later.full
    assert later.requests == 2
    assert sorted(e.uid for e in later.events) == ["p-0@test", "p-2@test", "p-4@test"]
    pages = _listings(h, "/events")
    assert [args["syncToken"] for args in pages] == [full.next_state] * 2  # repeated on every page
    assert "pageToken" in pages[1]


# --- Writing ------------------------------------------------------------------------------------------------


def test_a_retried_insert_finds_the_event_by_its_uid_instead_of_writing_a_second(google_harness):
    h = google_harness
    draft = _draft("termin-booking-9@termin.test", attendees=(Attendee("anna@example.org", "Anna"),))
    first = h.provider.create_event(h.primary_id, draft)
    again = h.provider.create_event(h.primary_id, draft)
    assert again == first
    assert h.emulator.find(h.primary_id, draft.uid) == [first]
    # Google mailed the one invitation, under the meeting's own UID.
    assert [(n.kind, n.uid, n.recipients) for n in h.emulator.sent] == [
        ("invitation", draft.uid, ("anna@example.org",))
    ]


def test_send_updates_follows_the_drafts_wish(google_harness):
    h = google_harness
    invited = h.provider.create_event(h.primary_id, _draft("a@termin.test", send_invitations=True))
    quiet = h.provider.create_event(h.primary_id, _draft("b@termin.test", send_invitations=False))
    h.provider.update_event(
        h.primary_id, quiet, _draft("b@termin.test", summary="Moved", send_invitations=False)
    )
    h.provider.update_event(h.primary_id, invited, _draft("a@termin.test", summary="Moved"))
    h.provider.cancel_event(h.primary_id, quiet, notify=False)
    h.provider.cancel_event(h.primary_id, invited)

    assert [(method, event, send) for method, _, event, send in h.emulator.notifications] == [
        ("insert", invited, "all"),
        ("insert", quiet, "none"),
        ("patch", quiet, "none"),
        ("patch", invited, "all"),
        ("delete", quiet, "none"),
        ("delete", invited, "all"),
    ]


def test_created_event_carries_our_marker_and_reads_back_with_our_uid(google_harness):
    h = google_harness
    draft = _draft(attendees=(Attendee("anna@example.org", "Anna"),), description="Agenda", location="Online")

    event_id = h.provider.create_event(h.primary_id, draft)

    held = _held(h, h.primary_id, event_id)
    assert held["extendedProperties"] == {"private": {"termin": "1", "terminUid": draft.uid}}
    assert held["iCalUID"] == draft.uid  # the UID Google's invitation carries is the meeting's
    assert held["start"] == {"dateTime": "2030-05-06T09:00:00Z", "timeZone": "UTC"}
    assert (held["description"], held["location"]) == ("Agenda", "Online")
    [ours] = h.provider.changes(h.primary_id, None).events
    assert (ours.uid, ours.created_by, ours.id) == (draft.uid, "termin", event_id)
    assert ours.attendees == (Attendee("anna@example.org", "Anna", "needsAction"),)


def test_draft_zone_travels_with_the_times(google_harness):
    h = google_harness
    event_id = h.provider.create_event(h.primary_id, _draft(time_zone="Europe/Warsaw"))
    held = _held(h, h.primary_id, event_id)
    assert held["start"]["timeZone"] == "Europe/Warsaw"
    [event] = h.provider.changes(h.primary_id, None).events
    assert (event.start, event.end) == (T0, T0 + timedelta(minutes=30))


def test_writing_a_uid_again_after_its_event_was_deleted_is_refused(google_harness):
    h = google_harness
    event_id = h.provider.create_event(h.primary_id, _draft())
    h.provider.cancel_event(h.primary_id, event_id)
    with pytest.raises(ProviderError) as error:
        h.provider.create_event(h.primary_id, _draft())
    assert type(error.value) is ProviderError
    assert "deleted" in error.value.reason


def test_update_keeps_the_answers_attendees_gave(google_harness):
    h = google_harness
    event_id = h.provider.create_event(
        h.primary_id, _draft(attendees=(Attendee("anna@example.org", "Anna"),))
    )
    h.emulator.modify(
        h.primary_id,
        event_id,
        {"attendees": [{"email": "anna@example.org", "displayName": "Anna", "responseStatus": "accepted"}]},
    )

    moved = _draft(
        start=T0 + timedelta(hours=1),
        end=T0 + timedelta(hours=2),
        attendees=(Attendee("Anna@example.org"), Attendee("bob@example.org", "Bob")),
    )
    h.provider.update_event(h.primary_id, event_id, moved)

    attendees = {a["email"].lower(): a for a in _held(h, h.primary_id, event_id)["attendees"]}
    assert attendees["anna@example.org"]["responseStatus"] == "accepted"
    assert attendees["anna@example.org"]["displayName"] == "Anna"
    assert attendees["bob@example.org"].get("responseStatus", "needsAction") == "needsAction"


def test_all_day_drafts_are_written_as_dates_and_can_switch_back(google_harness):
    h = google_harness
    day = datetime(2030, 5, 6, tzinfo=UTC)
    event_id = h.provider.create_event(
        h.primary_id, _draft(start=day, end=day + timedelta(days=1), all_day=True)
    )
    held = _held(h, h.primary_id, event_id)
    assert (held["start"], held["end"]) == ({"date": "2030-05-06"}, {"date": "2030-05-07"})

    h.provider.update_event(h.primary_id, event_id, _draft())
    held = _held(h, h.primary_id, event_id)
    assert held["start"] == {"dateTime": "2030-05-06T09:00:00Z", "timeZone": "UTC"}

    h.provider.update_event(
        h.primary_id, event_id, _draft(start=day, end=day + timedelta(days=2), all_day=True)
    )
    assert _held(h, h.primary_id, event_id)["end"] == {"date": "2030-05-08"}


def test_update_of_an_event_deleted_in_google_is_refused(google_harness):
    h = google_harness
    event_id = h.provider.create_event(h.primary_id, _draft())
    h.emulator.delete(h.primary_id, event_id)
    with pytest.raises(ProviderError, match="deleted"):
        h.provider.update_event(h.primary_id, event_id, _draft(summary="Moved"))


# --- Errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "message"),
    [("rateLimitExceeded", "Rate Limit Exceeded"), ("userRateLimitExceeded", "User Rate Limit Exceeded")],
)
def test_403_rate_limits_are_rate_limited(google_harness, reason, message):
    google_harness.fail_next_requests(403, retry_after=3, reason=reason)
    with pytest.raises(RateLimited) as raised:
        google_harness.provider.changes(google_harness.primary_id, None)
    assert (raised.value.retry_after, raised.value.reason) == (3, message)


def test_403_for_missing_write_access_is_access_lost(google_harness):
    h = google_harness
    with pytest.raises(AccessLost) as raised:
        h.provider.create_event(h.shared_readonly_id, _draft())
    assert raised.value.calendar_id == h.shared_readonly_id
    assert raised.value.reason == "You need to have writer access to this calendar."


def test_403_for_missing_scopes_is_auth_revoked_not_access_lost(google_harness):
    google_harness.fail_next_requests(403, reason="insufficientPermissions")
    with pytest.raises(AuthRevoked) as raised:
        google_harness.provider.changes(google_harness.primary_id, None)
    assert raised.value.reason == "Request had insufficient authentication scopes."


def test_retry_after_may_be_an_http_date(google_harness):
    when = datetime.now(UTC) + timedelta(seconds=30)
    google_harness.emulator.fail_next(503, retry_after=format_datetime(when, usegmt=True))
    with pytest.raises(TemporarilyUnavailable) as raised:
        google_harness.provider.list_calendars()
    assert 0 < raised.value.retry_after <= 31


def test_an_outage_answered_in_html_is_temporarily_unavailable(google_harness):
    google_harness.emulator.fail_next(502, body="<html><body>Bad Gateway</body></html>")
    with pytest.raises(TemporarilyUnavailable) as raised:
        google_harness.provider.list_calendars()
    assert "502" in raised.value.reason
    assert raised.value.retry_after is None


def test_revoked_token_at_userinfo_is_auth_revoked(google_harness):
    google_harness.revoke_grant()
    with pytest.raises(AuthRevoked) as raised:
        google_harness.provider.account()
    assert raised.value.reason == "Invalid Credentials"


def test_account_names_the_person(google_harness):
    account = google_harness.provider.account()
    assert (account.email, account.name) == (google_harness.account_email, "Ada Rep")


def test_unreachable_google_is_temporarily_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with requests.Session() as session:
        provider = GoogleCalendarProvider(
            session,
            api_url=f"http://127.0.0.1:{port}/calendar/v3",
            userinfo_url=f"http://127.0.0.1:{port}/v1/userinfo",
            timeout=2,
        )
        with pytest.raises(TemporarilyUnavailable):
            provider.list_calendars()


def test_slow_google_times_out_as_temporarily_unavailable(google_harness):
    h = google_harness
    h.emulator.delay = 0.5
    with requests.Session() as session:
        session.headers.update(h.session.headers)
        impatient = GoogleCalendarProvider(
            session, api_url=h.emulator.api_url, userinfo_url=h.emulator.userinfo_url, timeout=0.1
        )
        with pytest.raises(TemporarilyUnavailable):
            impatient.list_calendars()


# --- Reading ------------------------------------------------------------------------------------------------


def test_times_come_back_in_utc_whatever_zone_google_answers_in(google_harness):
    h = google_harness
    h.seed_event(h.primary_id, uid="warsaw@test", summary="Demo", start=T0, end=T0 + timedelta(hours=1))
    url = f"{h.emulator.api_url}/calendars/{quote(h.primary_id, safe='')}/events"
    with h.session.get(url) as answer:
        assert answer.json()["items"][0]["start"]["dateTime"] == "2030-05-06T11:00:00+02:00"
    [event] = h.provider.changes(h.primary_id, None).events
    assert (event.start, event.end, event.all_day) == (T0, T0 + timedelta(hours=1), False)
    assert event.start.tzinfo == UTC


def test_all_day_events_are_midnight_utc(google_harness):
    h = google_harness
    day = datetime(2030, 5, 6, tzinfo=UTC)
    h.seed_event(
        h.primary_id, uid="trip@test", summary="Trip", start=day, end=day + timedelta(days=2), all_day=True
    )
    [event] = h.provider.changes(h.primary_id, None).events
    assert (event.all_day, event.start, event.end) == (True, day, day + timedelta(days=2))


def test_recurring_series_comes_as_master_exceptions_and_cancelled_occurrences(google_harness):
    h = google_harness
    h.seed_event(
        h.primary_id,
        uid="weekly@test",
        summary="Weekly",
        start=T0,
        end=T0 + timedelta(hours=1),
        rrule="FREQ=WEEKLY;COUNT=4",
    )
    week = timedelta(days=7)
    moved_id = h.seed_exception(
        h.primary_id, "weekly@test", T0 + week, start=T0 + week + timedelta(hours=2), summary="Weekly (later)"
    )
    dropped_id = h.seed_exception(h.primary_id, "weekly@test", T0 + 2 * week, cancelled=True)

    events = {e.id: e for e in h.provider.changes(h.primary_id, None).events}

    [master] = [e for e in events.values() if e.recurrence]
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=4",)
    assert (master.recurrence_id, master.start, master.uid) == (None, T0, "weekly@test")
    moved = events[moved_id]
    assert moved.recurrence_id == (T0 + week).isoformat()
    assert (moved.start, moved.summary, moved.uid) == (
        T0 + week + timedelta(hours=2),
        "Weekly (later)",
        "weekly@test",
    )
    dropped = events[dropped_id]
    assert (dropped.status, dropped.recurrence_id) == ("cancelled", (T0 + 2 * week).isoformat())
    assert dropped.start == T0 + 2 * week  # Google sends only the original start for it

    busy = h.provider.free_busy([h.primary_id], T0 - timedelta(hours=1), T0 + 5 * week)[h.primary_id]
    assert [b.start for b in busy] == [T0, T0 + week + timedelta(hours=2), T0 + 3 * week]


def test_deleted_event_comes_back_as_a_bare_cancellation(google_harness):
    h = google_harness
    h.seed_event(h.primary_id, uid="gone@test", summary="Gone", start=T0, end=T0 + timedelta(hours=1))
    full = h.provider.changes(h.primary_id, None)
    [event_id] = [e.id for e in full.events]
    h.delete_event(h.primary_id, "gone@test")

    [gone] = h.provider.changes(h.primary_id, full.next_state).events

    assert (gone.id, gone.status) == (event_id, "cancelled")
    assert (gone.uid, gone.start, gone.end) == ("", EPOCH, EPOCH)  # match cancellations by id


def test_malformed_events_are_logged_and_skipped_not_fatal(google_harness, caplog):
    h = google_harness
    h.seed_event(h.primary_id, uid="fine@test", summary="Fine", start=T0, end=T0 + timedelta(hours=1))
    no_end = h.emulator.put_raw(
        h.primary_id,
        {"iCalUID": "no-end@test", "summary": "No end", "start": {"dateTime": "2030-05-06T12:00:00Z"}},
        creator=h.account_email,
    )
    h.emulator.put_raw(
        h.primary_id,
        {"iCalUID": "garbled@test", "start": {"dateTime": "soon"}, "end": {"dateTime": "later"}},
        creator=h.account_email,
    )

    with caplog.at_level(logging.WARNING, logger="app.sync.providers.google"):
        changes = h.provider.changes(h.primary_id, None)

    assert [e.uid for e in changes.events] == ["fine@test"]
    assert changes.next_state
    assert f"skipping Google event {no_end}" in caplog.text
    assert "no end" in caplog.text


@pytest.mark.parametrize(
    ("marks", "created_by"),
    [
        ({}, None),
        ({"source": {"title": "Webinar", "url": "https://webinar.example/e/1"}}, "integration"),
        ({"extendedProperties": {"private": {"crmId": "42"}}}, "integration"),
        ({"eventType": "fromGmail"}, "integration"),
        # Shared properties travel to attendees' copies, so they mark the sender's app, not this calendar's.
        ({"extendedProperties": {"shared": {"bookingTool": "1"}}}, None),
        ({"iCalUID": "040000008200E00074C5B7101A82E00800000000@outlook.example"}, None),
        ({"extendedProperties": {"private": {"termin": "1", "terminUid": "x@termin.test"}}}, "termin"),
    ],
)
def test_created_by_follows_googles_markers(google_harness, marks, created_by):
    h = google_harness
    event = {
        "summary": "Something",
        "start": {"dateTime": "2030-05-06T09:00:00Z"},
        "end": {"dateTime": "2030-05-06T10:00:00Z"},
    }
    h.emulator.insert(h.primary_id, event | marks, creator=h.account_email)
    [read] = h.provider.changes(h.primary_id, None).events
    assert read.created_by == created_by


def test_calendar_ids_are_escaped_in_urls(google_harness):
    h = google_harness
    holidays = h.emulator.add_calendar(
        h.shared_readonly_id,
        "Holidays in Poland",
        calendar_id="pl.polish#holiday@group.v.calendar.google.com",
    )
    h.emulator.share(holidays, h.account_email, "reader")
    h.seed_event(
        holidays, uid="may-3@test", summary="Constitution Day", start=T0, end=T0 + timedelta(hours=1)
    )

    assert [e.uid for e in h.provider.changes(holidays, None).events] == ["may-3@test"]
    assert h.provider.free_busy([holidays], T0, T0 + timedelta(hours=2))[holidays]


# --- Free/busy ----------------------------------------------------------------------------------------------


def test_free_busy_reads_calendars_shared_as_free_busy_only(google_harness):
    h = google_harness
    h.seed_event(h.freebusy_id, uid="kasia-1@test", summary="Private", start=T0, end=T0 + timedelta(hours=1))
    h.seed_event(
        h.freebusy_id,
        uid="kasia-2@test",
        summary="Overlap",
        start=T0 + timedelta(minutes=30),
        end=T0 + timedelta(hours=2),
    )
    busy = h.provider.free_busy([h.freebusy_id], T0 - timedelta(hours=1), T0 + timedelta(hours=3))
    assert [(b.start, b.end) for b in busy[h.freebusy_id]] == [(T0, T0 + timedelta(hours=2))]


def test_free_busy_asks_fifty_calendars_at_a_time(google_harness):
    h = google_harness
    many = [h.emulator.add_calendar(h.account_email, f"Room {n}") for n in range(59)]
    h.seed_event(many[-1], uid="last@test", summary="Busy", start=T0, end=T0 + timedelta(hours=1))
    before = h.request_count

    busy = h.provider.free_busy([h.primary_id, *many], T0, T0 + timedelta(hours=2))

    assert h.request_count - before == 2
    assert set(busy) == {h.primary_id, *many}
    assert [(b.start, b.end) for b in busy[many[-1]]] == [(T0, T0 + timedelta(hours=1))]
    assert h.provider.free_busy([], T0, T0 + timedelta(hours=1)) == {}
    assert h.request_count - before == 2


def test_free_busy_on_a_withdrawn_calendar_is_access_lost(google_harness):
    h = google_harness
    h.withdraw_access(h.shared_readonly_id)
    with pytest.raises(AccessLost) as raised:
        h.provider.free_busy([h.primary_id, h.shared_readonly_id], T0, T0 + timedelta(hours=1))
    assert raised.value.calendar_id == h.shared_readonly_id
    assert "notFound" in raised.value.reason


def test_emulator_takes_tokens_from_a_plugged_in_validator(google_harness):
    """How an OAuth test server's tokens get in: its validator answers for the account."""
    h = google_harness
    h.emulator.set_token_validator({"from-oauth-server": "Ada.Rep@example.com"}.get)
    with requests.Session() as session:
        session.headers["Authorization"] = "Bearer from-oauth-server"
        provider = GoogleCalendarProvider(
            session, api_url=h.emulator.api_url, userinfo_url=h.emulator.userinfo_url
        )
        assert provider.account().email == h.account_email
    with pytest.raises(AuthRevoked):
        h.provider.list_calendars()  # the static map is no longer asked
