"""Microsoft Graph behaviour the shared contract does not reach, against the emulator in tests/fakes/graph.py:
paging, delta removals, transactionId retries, how cancelling reaches attendees, all-day and recurring
mapping, free/busy-only calendars, and events Graph hands back malformed."""

import logging
import socket
from datetime import UTC, datetime, timedelta

import pytest
import requests

from app.sync.providers.base import (
    AccessLost,
    Attendee,
    AuthRevoked,
    EventDraft,
    SyncStateExpired,
    TemporarilyUnavailable,
)
from app.sync.providers.microsoft import (
    TERMIN_UID_PROPERTY,
    UNKNOWN_TIME,
    GraphCalendarProvider,
    transaction_id_for,
)
from tests.fakes.graph import HARNESS_NOW
from tests.sync.harness import SeedAttendee

T0 = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def booking(uid: str = "termin-booking@termin.test", **changes) -> EventDraft:
    fields = {
        "uid": uid,
        "summary": "Intro with Anna",
        "start": T0,
        "end": T0 + timedelta(minutes=30),
        "attendees": (Attendee("anna@example.org", "Anna"),),
    }
    return EventDraft(**{**fields, **changes})


def requests_to(harness, suffix: str, method: str = "GET") -> list[dict]:
    return [r for r in harness.emulator.log if r["method"] == method and r["path"].endswith(suffix)]


def event_id_of(harness, calendar_id: str, uid: str) -> str:
    return next(e["id"] for e in harness.server_events(calendar_id) if e["uid"] == uid)


class TestGraphPaging:
    """Graph hands out small pages; every listing follows @odata.nextLink to the end."""

    def test_full_sync_follows_next_links_until_the_delta_link(self, graph_harness):
        for n in range(7):
            graph_harness.seed_event(
                graph_harness.primary_id,
                uid=f"e{n}@test",
                summary=f"E{n}",
                start=T0 + n * HOUR,
                end=T0 + (n + 1) * HOUR,
            )
        graph_harness.emulator.page_size_cap = 3

        full = graph_harness.provider.changes(graph_harness.primary_id, None)

        assert sorted(e.uid for e in full.events) == [f"e{n}@test" for n in range(7)]
        assert full.requests == 3
        first, *rest = requests_to(graph_harness, "/calendarView/delta")
        assert {"startDateTime", "endDateTime"} <= set(first["args"])
        assert [set(r["args"]) for r in rest] == [{"$skiptoken"}, {"$skiptoken"}]
        assert "odata.maxpagesize=" in first["prefer"]
        assert 'outlook.timezone="UTC"' in first["prefer"]
        assert "$deltatoken=" in full.next_state

    def test_incremental_rounds_are_paged_as_well(self, graph_harness):
        for n in range(5):
            graph_harness.seed_event(
                graph_harness.primary_id,
                uid=f"e{n}@test",
                summary=f"E{n}",
                start=T0 + n * HOUR,
                end=T0 + (n + 1) * HOUR,
            )
        state = graph_harness.provider.changes(graph_harness.primary_id, None).next_state
        for n in range(4):
            graph_harness.move_event(graph_harness.primary_id, f"e{n}@test", T0 + 24 * HOUR, T0 + 25 * HOUR)
        graph_harness.emulator.page_size_cap = 3

        later = graph_harness.provider.changes(graph_harness.primary_id, state)

        assert not later.full
        assert later.requests == 2
        assert sorted(e.uid for e in later.events) == [f"e{n}@test" for n in range(4)]
        assert {e.start for e in later.events} == {T0 + 24 * HOUR}

    def test_calendar_listing_follows_next_links(self, graph_harness):
        graph_harness.emulator.page_size_cap = 1

        calendars = graph_harness.provider.list_calendars()

        assert len(calendars) == 4
        listing = requests_to(graph_harness, "/me/calendars")
        assert [r["args"].get("$skip") for r in listing] == [None, "1", "2", "3"]


class TestGraphDelta:
    """What a delta round reports, and which cursors it refuses."""

    def test_removed_items_come_back_cancelled_with_only_their_id(self, graph_harness):
        for uid in ("stays@test", "deleted@test", "moved-away@test"):
            graph_harness.seed_event(graph_harness.primary_id, uid=uid, summary=uid, start=T0, end=T0 + HOUR)
        full = graph_harness.provider.changes(graph_harness.primary_id, None)
        ids = {e.uid: e.id for e in full.events}
        graph_harness.delete_event(graph_harness.primary_id, "deleted@test")
        far = T0 + timedelta(days=800)  # beyond the delta window: Graph reports it as removed too
        graph_harness.move_event(graph_harness.primary_id, "moved-away@test", far, far + HOUR)

        later = graph_harness.provider.changes(graph_harness.primary_id, full.next_state)

        assert {e.id for e in later.events} == {ids["deleted@test"], ids["moved-away@test"]}
        for event in later.events:
            assert (event.status, event.uid, event.start, event.end) == (
                "cancelled",
                "",
                UNKNOWN_TIME,
                UNKNOWN_TIME,
            )

    def test_a_delta_link_for_another_host_is_never_followed(self, graph_harness):
        before = graph_harness.request_count
        stale = "https://graph.evil.example/v1.0/me/calendars/x/calendarView/delta?$deltatoken=abc"

        with pytest.raises(SyncStateExpired):
            graph_harness.provider.changes(graph_harness.primary_id, stale)

        assert graph_harness.request_count == before


class TestGraphCreating:
    """transactionId retries, our extended property, and what goes out on the wire."""

    def test_a_retried_create_returns_the_same_event_and_invites_once(self, graph_harness):
        draft = booking()

        first = graph_harness.provider.create_event(graph_harness.primary_id, draft)
        again = graph_harness.provider.create_event(graph_harness.primary_id, draft)

        assert first == again
        [held] = graph_harness.server_events(graph_harness.primary_id)
        assert held["transaction_id"] == transaction_id_for(draft.uid)
        assert held["properties"] == {TERMIN_UID_PROPERTY: draft.uid}
        posts = requests_to(graph_harness, "/events", "POST")
        assert len(posts) == 2
        invitations = [m for m in graph_harness.emulator.outbox if m.kind == "invitation"]
        assert [m.recipients for m in invitations] == [("anna@example.org",)]

    def test_transaction_ids_are_stable_guids_per_uid(self):
        one = transaction_id_for("a@termin.test")

        assert one == transaction_id_for("a@termin.test")
        assert one != transaction_id_for("b@termin.test")
        assert len(one) == 36
        assert one.count("-") == 4

    def test_our_events_carry_our_uid_not_graphs(self, graph_harness):
        draft = booking()
        event_id = graph_harness.provider.create_event(graph_harness.primary_id, draft)

        [ours] = graph_harness.provider.changes(graph_harness.primary_id, None).events

        assert (ours.id, ours.uid, ours.created_by) == (event_id, draft.uid, "termin")
        assert ours.uid != graph_harness.server_events(graph_harness.primary_id)[0]["ical_uid"]

    def test_a_small_incremental_round_looks_each_candidate_up(self, graph_harness):
        state = graph_harness.provider.changes(graph_harness.primary_id, None).next_state
        draft = booking()
        event_id = graph_harness.provider.create_event(graph_harness.primary_id, draft)

        later = graph_harness.provider.changes(graph_harness.primary_id, state)

        assert [(e.uid, e.created_by) for e in later.events] == [(draft.uid, "termin")]
        assert later.requests == 2
        [lookup] = requests_to(graph_harness, f"/events/{event_id}")
        assert (
            lookup["args"]["$expand"]
            == f"singleValueExtendedProperties($filter=id eq '{TERMIN_UID_PROPERTY}')"
        )

    def test_a_full_sync_finds_many_of_our_events_with_one_listing(self, graph_harness):
        graph_harness.emulator.page_size_cap = 10
        for n in range(25):
            start = T0 + n * HOUR
            graph_harness.provider.create_event(
                graph_harness.primary_id,
                booking(f"b{n}@termin.test", start=start, end=start + HOUR, attendees=()),
            )

        full = graph_harness.provider.changes(graph_harness.primary_id, None)

        assert {e.uid for e in full.events} == {f"b{n}@termin.test" for n in range(25)}
        assert {e.created_by for e in full.events} == {"termin"}
        assert full.requests == 6  # three delta pages, three listing pages
        assert [r for r in graph_harness.emulator.log if "/events/" in r["path"]] == []

    def test_apps_without_our_marker_are_integrations(self, graph_harness):
        graph_harness.seed_event(
            graph_harness.primary_id,
            uid="zoom@test",
            summary="Webinar",
            start=T0,
            end=T0 + HOUR,
            by_integration=True,
        )
        graph_harness.seed_event(
            graph_harness.primary_id, uid="person@test", summary="Lunch", start=T0, end=T0 + HOUR
        )

        events = {e.uid: e for e in graph_harness.provider.changes(graph_harness.primary_id, None).events}

        assert events["zoom@test"].created_by == "integration"
        assert events["person@test"].created_by is None

    def test_times_go_out_in_a_zone_graph_documents_else_utc(self, graph_harness):
        graph_harness.provider.create_event(
            graph_harness.primary_id, booking("w@t", time_zone="Europe/Warsaw")
        )
        graph_harness.provider.create_event(
            graph_harness.primary_id, booking("h@t", time_zone="Asia/Ho_Chi_Minh")
        )

        held = {e["uid"]: e for e in graph_harness.server_events(graph_harness.primary_id)}

        assert (held["w@t"]["time_zone"], held["w@t"]["start"]) == ("Europe/Warsaw", T0)
        assert (held["h@t"]["time_zone"], held["h@t"]["start"]) == ("UTC", T0)

    def test_without_invitations_no_attendees_are_written(self, graph_harness):
        graph_harness.provider.create_event(graph_harness.primary_id, booking(send_invitations=False))

        [held] = graph_harness.server_events(graph_harness.primary_id)

        assert held["attendees"] == []
        assert graph_harness.emulator.outbox == []

    def test_an_update_patches_and_graph_tells_the_attendees(self, graph_harness):
        event_id = graph_harness.provider.create_event(graph_harness.primary_id, booking())

        graph_harness.provider.update_event(
            graph_harness.primary_id, event_id, booking(start=T0 + HOUR, end=T0 + 2 * HOUR, summary="Moved")
        )

        [held] = graph_harness.server_events(graph_harness.primary_id)
        assert (held["summary"], held["start"], held["id"]) == ("Moved", T0 + HOUR, event_id)
        assert len(requests_to(graph_harness, f"/events/{event_id}", "PATCH")) == 1
        assert [m.kind for m in graph_harness.emulator.outbox] == ["invitation", "update"]


class TestGraphCancelling:
    """POST cancel when attendees must hear, DELETE otherwise, and what Graph does anyway."""

    def test_cancel_with_notify_uses_the_cancel_action(self, graph_harness):
        event_id = graph_harness.provider.create_event(graph_harness.primary_id, booking())

        graph_harness.provider.cancel_event(graph_harness.primary_id, event_id, notify=True)

        assert len(requests_to(graph_harness, f"/events/{event_id}/cancel", "POST")) == 1
        assert requests_to(graph_harness, f"/events/{event_id}", "DELETE") == []
        assert graph_harness.emulator.outbox[-1].kind == "cancellation"
        assert graph_harness.emulator.outbox[-1].recipients == ("anna@example.org",)
        assert graph_harness.server_events(graph_harness.primary_id) == []

    def test_cancel_without_notify_deletes(self, graph_harness):
        event_id = graph_harness.provider.create_event(graph_harness.primary_id, booking(attendees=()))

        graph_harness.provider.cancel_event(graph_harness.primary_id, event_id, notify=False)

        assert requests_to(graph_harness, f"/events/{event_id}/cancel", "POST") == []
        assert len(requests_to(graph_harness, f"/events/{event_id}", "DELETE")) == 1
        assert graph_harness.server_events(graph_harness.primary_id) == []

    def test_deleting_a_meeting_still_notifies_as_graph_documents(self, graph_harness):
        event_id = graph_harness.provider.create_event(graph_harness.primary_id, booking())

        graph_harness.provider.cancel_event(graph_harness.primary_id, event_id, notify=False)

        # Graph: deleting a meeting in the organizer's calendar sends a cancellation. notify=False only
        # spares the attendees a custom message; it cannot keep them from hearing.
        assert [m.kind for m in graph_harness.emulator.outbox] == ["invitation", "cancellation"]

    def test_cancelling_a_meeting_we_do_not_organize_falls_back_to_delete(self, graph_harness):
        graph_harness.emulator.seed_event(
            graph_harness.primary_id,
            uid="bobs-meeting@test",
            subject="Bob's review",
            start=T0,
            end=T0 + HOUR,
            organizer="bob@contoso.test",
            attendees=[("ana@contoso.test", "accepted")],
        )
        event_id = event_id_of(graph_harness, graph_harness.primary_id, "bobs-meeting@test")

        graph_harness.provider.cancel_event(graph_harness.primary_id, event_id)

        assert len(requests_to(graph_harness, "/cancel", "POST")) == 1
        assert len(requests_to(graph_harness, f"/events/{event_id}", "DELETE")) == 1
        assert graph_harness.server_events(graph_harness.primary_id) == []


class TestGraphMapping:
    """How Graph's events become RemoteEvents."""

    def test_all_day_events_are_midnight_utc_dates(self, graph_harness):
        graph_harness.seed_event(
            graph_harness.primary_id,
            uid="holiday@test",
            summary="Holiday",
            start=datetime(2030, 5, 6, tzinfo=UTC),
            end=datetime(2030, 5, 7, tzinfo=UTC),
            all_day=True,
        )

        [event] = graph_harness.provider.changes(graph_harness.primary_id, None).events

        assert event.all_day
        assert (event.start, event.end) == (
            datetime(2030, 5, 6, tzinfo=UTC),
            datetime(2030, 5, 7, tzinfo=UTC),
        )

    def test_an_all_day_draft_is_written_as_midnight_in_its_zone(self, graph_harness):
        draft = booking(
            all_day=True,
            start=datetime(2030, 5, 6, tzinfo=UTC),
            end=datetime(2030, 5, 7, tzinfo=UTC),
            time_zone="Europe/Warsaw",
            attendees=(),
        )

        graph_harness.provider.create_event(graph_harness.primary_id, draft)

        [held] = graph_harness.server_events(graph_harness.primary_id)
        assert held["all_day"]
        assert (held["start"], held["end"]) == (
            datetime(2030, 5, 6, tzinfo=UTC),
            datetime(2030, 5, 7, tzinfo=UTC),
        )

    def test_recurring_series_come_as_occurrences_with_recurrence_ids(self, graph_harness):
        graph_harness.seed_event(
            graph_harness.primary_id,
            uid="standup@test",
            summary="Standup",
            start=T0,
            end=T0 + timedelta(minutes=15),
            rrule="FREQ=DAILY;COUNT=3",
            attendees=(SeedAttendee("team@example.org", "accepted"),),
        )
        day = timedelta(days=1)
        graph_harness.emulator.edit_occurrence(
            graph_harness.primary_id,
            "standup@test",
            T0 + day,
            T0 + day + HOUR,
            T0 + day + HOUR + timedelta(minutes=15),
        )

        events = graph_harness.provider.changes(graph_harness.primary_id, None).events

        assert {e.uid for e in events} == {"standup@test"}
        by_recurrence = {e.recurrence_id: e for e in events}
        assert set(by_recurrence) == {(T0 + n * day).isoformat() for n in range(3)}
        assert by_recurrence[(T0 + day).isoformat()].start == T0 + day + HOUR  # the exception
        assert by_recurrence[(T0 + 2 * day).isoformat()].start == T0 + 2 * day
        assert len({e.id for e in events}) == 3
        assert all(e.recurrence == () for e in events)  # calendarView expands: no master, no double count
        graph_harness.provider.changes(graph_harness.primary_id, None)
        master_id = graph_harness.emulator.find(graph_harness.primary_id, "standup@test").id
        assert len(requests_to(graph_harness, f"/events/{master_id}")) == 1  # once per series, then cached

    def test_attendee_responses_and_organizer_are_mapped(self, graph_harness):
        graph_harness.seed_event(
            graph_harness.primary_id,
            uid="meet@test",
            summary="Meet",
            start=T0,
            end=T0 + HOUR,
            attendees=(
                SeedAttendee("a@example.org", "accepted"),
                SeedAttendee("b@example.org", "declined"),
                SeedAttendee("c@example.org", "tentative"),
                SeedAttendee("d@example.org"),
            ),
        )

        [event] = graph_harness.provider.changes(graph_harness.primary_id, None).events

        assert event.organizer_email == "ana@contoso.test"
        assert [(a.email, a.response) for a in event.attendees] == [
            ("a@example.org", "accepted"),
            ("b@example.org", "declined"),
            ("c@example.org", "tentative"),
            ("d@example.org", "needsAction"),
        ]

    def test_a_malformed_event_is_skipped_and_the_rest_still_syncs(self, graph_harness, caplog):
        graph_harness.seed_event(
            graph_harness.primary_id, uid="before@test", summary="A", start=T0, end=T0 + HOUR
        )
        broken = graph_harness.emulator.seed_event(
            graph_harness.primary_id, uid="broken@test", subject="B", start=T0, end=T0 + HOUR, omit=("end",)
        )
        graph_harness.seed_event(
            graph_harness.primary_id, uid="after@test", summary="C", start=T0, end=T0 + HOUR
        )

        with caplog.at_level(logging.WARNING, logger="app.sync.providers.microsoft"):
            full = graph_harness.provider.changes(graph_harness.primary_id, None)
            busy = graph_harness.provider.free_busy([graph_harness.primary_id], T0, T0 + 2 * HOUR)

        assert {e.uid for e in full.events} == {"before@test", "after@test"}
        assert broken.id in caplog.text
        assert [(b.start, b.end) for b in busy[graph_harness.primary_id]] == [(T0, T0 + HOUR)]


class TestGraphFreeBusy:
    """calendarView for calendars we may read, getSchedule for free/busy-only shares."""

    def test_show_as_decides_busy_and_overlaps_merge(self, graph_harness):
        for offset, show_as in [
            (0, "busy"),
            (0.5, "tentative"),
            (3, "oof"),
            (5, "workingElsewhere"),
            (7, "free"),
        ]:
            start = T0 + offset * HOUR
            graph_harness.emulator.seed_event(
                graph_harness.second_id,
                uid=f"{show_as}@test",
                subject=show_as,
                start=start,
                end=start + HOUR,
                show_as=show_as,
            )

        busy = graph_harness.provider.free_busy([graph_harness.second_id], T0, T0 + 10 * HOUR)

        assert [(b.start, b.end) for b in busy[graph_harness.second_id]] == [
            (T0, T0 + 1.5 * HOUR),
            (T0 + 3 * HOUR, T0 + 4 * HOUR),
        ]

    def test_a_free_busy_only_calendar_is_listed_as_such_and_read_through_get_schedule(self, graph_harness):
        graph_harness.seed_event(
            graph_harness.freebusy_id, uid="carol@test", summary="Private", start=T0, end=T0 + HOUR
        )

        calendars = {c.id: c for c in graph_harness.provider.list_calendars()}
        busy = graph_harness.provider.free_busy([graph_harness.freebusy_id], T0 - HOUR, T0 + 3 * HOUR)

        assert calendars[graph_harness.freebusy_id].access == "freebusy"
        assert [(b.start, b.end) for b in busy[graph_harness.freebusy_id]] == [(T0, T0 + HOUR)]
        assert len(requests_to(graph_harness, "/me/calendar/getSchedule", "POST")) == 1

    def test_free_busy_on_a_withdrawn_calendar_raises_access_lost(self, graph_harness):
        graph_harness.withdraw_access(graph_harness.freebusy_id)

        with pytest.raises(AccessLost) as raised:
            graph_harness.provider.free_busy([graph_harness.freebusy_id], T0, T0 + HOUR)

        assert raised.value.calendar_id == graph_harness.freebusy_id


class TestGraphFailures:
    """Errors the contract suite does not provoke."""

    def test_an_unknown_token_is_auth_revoked(self, graph_harness):
        with requests.Session() as session:
            session.headers["Authorization"] = "Bearer not-a-token"
            provider = GraphCalendarProvider(
                session, graph_url=graph_harness.emulator.graph_url, clock=lambda: HARNESS_NOW
            )
            with pytest.raises(AuthRevoked) as raised:
                provider.changes(graph_harness.primary_id, None)
        assert raised.value.reason == "Access token has expired or is not yet valid."

    def test_the_emulator_takes_tokens_from_whichever_validator_is_plugged_in(self, graph_harness):
        graph_harness.emulator.set_token_validator({"from-oauth-server": "ana@contoso.test"}.get)

        with requests.Session() as session:
            session.headers["Authorization"] = "Bearer from-oauth-server"
            provider = GraphCalendarProvider(session, graph_url=graph_harness.emulator.graph_url)
            assert provider.account().email == "ana@contoso.test"
        with pytest.raises(AuthRevoked):
            graph_harness.provider.account()  # its static token is no longer one the server knows

    def test_an_unreachable_graph_is_temporarily_unavailable(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        with requests.Session() as session:
            provider = GraphCalendarProvider(session, graph_url=f"http://127.0.0.1:{port}/v1.0", timeout=2)
            with pytest.raises(TemporarilyUnavailable):
                provider.account()
