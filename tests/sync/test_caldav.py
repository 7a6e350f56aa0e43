"""What the contract suite cannot say about CalDAV: the SSRF guard, RFC 6764 discovery, the ctag
fallback for servers without RFC 6578, objects other clients wrote badly, and PUT idempotency."""

import contextlib
import json
import socket
import threading
from datetime import UTC, datetime, timedelta

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Response

from app.sync.providers import caldav as caldav_module
from app.sync.providers.base import (
    AccessLost,
    AuthRevoked,
    EventDraft,
    ProviderError,
    SyncStateExpired,
    TemporarilyUnavailable,
)
from app.sync.providers.base import Attendee as DraftAttendee
from app.sync.providers.caldav import (
    CalDAVProvider,
    DiscoveryFailed,
    ServerAddressRefused,
    UnsafeServerURL,
    check_server_url,
    discover,
    draft_to_ics,
    events_from_ics,
)
from tests.fakes import radicale as radicale_fake
from tests.fakes.radicale import OWNER2, REP, person_ics
from tests.sync.harness import SeedAttendee

T0 = datetime(2030, 5, 6, 9, 0, tzinfo=UTC)
radicale_server = radicale_fake.radicale_server  # the session fixture, as other modules would use it


def vcalendar(body: str, prodid: str = "-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN") -> str:
    return f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:{prodid}\r\n{body}END:VCALENDAR\r\n"


def vevent(uid: str, lines: str) -> str:
    return f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20300101T000000Z\r\n{lines}END:VEVENT\r\n"


@contextlib.contextmanager
def serve(app):
    """A throwaway HTTP server on 127.0.0.1 answering with ``app``."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- SSRF guard ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/dav/",
        "https://127.0.0.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:5232/",
        "http://[fc00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",  # carrier-grade NAT: not private, not public either
        "http://224.0.0.1/",
        "http://localhost:5232/",  # a name resolving to loopback
    ],
)
def test_private_addresses_are_refused_unless_allowed(url):
    with pytest.raises(UnsafeServerURL) as refused:
        check_server_url(url, allow_private=False)
    assert "public internet" in str(refused.value)
    check_server_url(url, allow_private=True)


@pytest.mark.parametrize(
    "url", ["ftp://caldav.example.com/", "file:///etc/passwd", "javascript:alert(1)", "//x/"]
)
def test_only_http_and_https_even_when_private_is_allowed(url):
    with pytest.raises(UnsafeServerURL, match="http"):
        check_server_url(url, allow_private=True)


def test_public_addresses_pass_without_any_connection(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the guard must not touch the network for an address literal")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    check_server_url("https://93.184.216.34/dav/", allow_private=False)
    check_server_url("https://[2606:2800:220:1:248:1893:25c8:1946]:8443/", allow_private=False)


def test_every_resolved_address_must_be_public(monkeypatch):
    answers = {
        "caldav.example.com": ["93.184.216.34"],
        "split.example.com": ["93.184.216.34", "10.0.0.5"],
    }

    def resolve(host, port, *args, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    check_server_url("https://caldav.example.com/", allow_private=False)
    with pytest.raises(UnsafeServerURL, match=r"split\.example\.com \(10\.0\.0\.5\) is a private address"):
        check_server_url("https://split.example.com/", allow_private=False)


def test_the_guard_runs_before_the_first_request(caldav_harness):
    server = caldav_harness.server
    provider = CalDAVProvider(server.url + "/", REP, server.passwords[REP], allow_private=False)
    # A stored account whose server is at a refused address is unusable until reconnected (an AuthRevoked).
    with pytest.raises(ServerAddressRefused, match=r"loopback address"):
        provider.list_calendars()
    assert provider.request_count == 0
    assert caldav_harness.request_count == 0


def test_a_redirect_into_the_private_network_is_refused(monkeypatch):
    # Let this test's own loopback server count as public, so the guard has a redirect to judge.
    monkeypatch.setattr(caldav_module, "_refusal", lambda ip: None if ip.is_loopback else "private")
    seen = []

    def redirecting(environ, start_response):
        seen.append(environ["PATH_INFO"])
        return Response("", status=301, headers={"Location": "http://10.1.2.3/dav/"})(environ, start_response)

    with serve(redirecting) as url:
        provider = CalDAVProvider(url + "/", "someone", "secret", allow_private=False, timeout=5)
        with pytest.raises(ServerAddressRefused, match=r"10\.1\.2\.3 is a private address"):
            provider.account()
    assert seen == ["/"]


# --- discovery ----------------------------------------------------------------------------------


def test_discovery_from_a_bare_host_follows_the_well_known_redirect(radicale_server, caldav_harness):
    host = radicale_server.url.removeprefix("http://")
    found = discover(host, REP, radicale_server.passwords[REP], True, 5)
    assert found == f"{radicale_server.url}/rep%40example.com/"
    provider = CalDAVProvider(found, REP, radicale_server.passwords[REP], allow_private=True)
    assert provider.account().email == REP
    assert caldav_harness.primary_id in {c.id for c in provider.list_calendars()}


def test_discovery_follows_a_well_known_redirect_to_another_host(radicale_server, caldav_harness):
    def forwarding(environ, start_response):
        if environ["PATH_INFO"] == "/.well-known/caldav":
            answer = Response("", status=301, headers={"Location": radicale_server.url + "/"})
        else:
            answer = Response("not here", status=404)
        return answer(environ, start_response)

    with serve(forwarding) as url:
        found = discover(url, REP, radicale_server.passwords[REP], True, 5)
    assert found == f"{radicale_server.url}/rep%40example.com/"


def test_the_password_stays_on_the_account_server(caldav_harness):
    asked = []

    def elsewhere(environ, start_response):
        asked.append(environ.get("HTTP_AUTHORIZATION"))
        return Response("", status=207)(environ, start_response)

    server = caldav_harness.server
    with serve(elsewhere) as url:
        foreign = url + "/team/"
        provider = CalDAVProvider(
            server.url + "/", REP, server.passwords[REP], allow_private=True, extra_calendar_urls=(foreign,)
        )
        assert foreign not in {c.id for c in provider.list_calendars()}
        with pytest.raises(UnsafeServerURL, match="not on this account's server"):
            provider.changes(foreign, None)
    assert asked == []


def test_discovery_from_a_url_with_a_path(radicale_server, caldav_harness):
    found = discover(f"{radicale_server.url}/{OWNER2}/", OWNER2, radicale_server.passwords[OWNER2], True, 5)
    assert found == f"{radicale_server.url}/owner2%40example.com/"


def test_discovery_with_a_wrong_password_says_so(radicale_server, caldav_harness):
    with pytest.raises(AuthRevoked, match="refused the user name or password"):
        discover(radicale_server.url, REP, "not-the-password", True, 5)


def test_discovery_of_an_unreachable_host_says_so():
    port = closed_port()
    with pytest.raises(DiscoveryFailed) as failed:
        discover(f"127.0.0.1:{port}", REP, "secret", True, 5)
    message = str(failed.value)
    assert f"Could not connect to 127.0.0.1:{port}" in message
    assert "refused" in message


def test_discovery_of_something_that_is_not_caldav_says_so():
    def website(environ, start_response):
        return Response("<html>Welcome</html>", content_type="text/html")(environ, start_response)

    with serve(website) as url, pytest.raises(DiscoveryFailed, match="No CalDAV calendar service answered"):
        discover(url, REP, "secret", True, 5)


def test_a_bare_public_host_is_never_tried_over_plain_http():
    public = caldav_module._candidates("caldav.example.com:8443", False, 5)
    assert public == [("https://caldav.example.com:8443", "")]
    assert caldav_module._candidates("rep@127.0.0.1:5232/dav", True, 5) == [
        ("https://127.0.0.1:5232", "/dav"),
        ("http://127.0.0.1:5232", "/dav"),
    ]


def test_discovery_checks_the_address_first():
    with pytest.raises(UnsafeServerURL):
        discover("http://169.254.169.254/", REP, "secret", False, 5)


# --- errors from a live account ----------------------------------------------------------------


def test_wrong_password_on_an_account(caldav_harness):
    server = caldav_harness.server
    provider = CalDAVProvider(server.url + "/", REP, "wrong", allow_private=True)
    with pytest.raises(AuthRevoked, match=r"refused the user name or password \(HTTP 401\)"):
        provider.list_calendars()


def test_unreachable_server_is_temporary():
    provider = CalDAVProvider(
        f"http://127.0.0.1:{closed_port()}/", REP, "secret", allow_private=True, timeout=5
    )
    with pytest.raises(TemporarilyUnavailable, match="Could not connect"):
        provider.list_calendars()


def test_a_503_without_retry_after_is_temporary(caldav_harness):
    caldav_harness.fail_next_requests(503)
    with pytest.raises(TemporarilyUnavailable) as raised:
        caldav_harness.provider.changes(caldav_harness.primary_id, None)
    assert raised.value.retry_after is None
    assert caldav_harness.provider.changes(caldav_harness.primary_id, None).full


def test_an_unreadable_state_asks_for_a_full_sync(caldav_harness):
    with pytest.raises(SyncStateExpired):
        caldav_harness.provider.changes(caldav_harness.primary_id, "not json")
    assert caldav_harness.request_count == 0


# --- ctag/ETag fallback -------------------------------------------------------------------------


def test_without_sync_collection_changes_compare_ctag_and_etags(caldav_harness):
    harness, provider = caldav_harness, caldav_harness.provider
    harness.server.proxy.sync_collection = False
    harness.seed_event(harness.primary_id, uid="a@test", summary="A", start=T0, end=T0 + timedelta(hours=1))
    harness.seed_event(harness.primary_id, uid="b@test", summary="B", start=T0, end=T0 + timedelta(hours=1))

    full = provider.changes(harness.primary_id, None)
    assert full.full
    assert {e.uid for e in full.events} == {"a@test", "b@test"}
    assert json.loads(full.next_state)["m"] == "ctag"

    quiet = provider.changes(harness.primary_id, full.next_state)
    assert (quiet.events, quiet.full, quiet.requests) == ([], False, 1)  # one PROPFIND for the ctag

    harness.move_event(harness.primary_id, "a@test", T0 + timedelta(days=1), T0 + timedelta(days=1, hours=1))
    harness.delete_event(harness.primary_id, "b@test")  # stored under a random name: the state knows its uid
    later = provider.changes(harness.primary_id, quiet.next_state)
    by_uid = {e.uid: e for e in later.events}
    assert by_uid["a@test"].start == T0 + timedelta(days=1)
    assert by_uid["b@test"].status == "cancelled"
    assert len(later.events) == 2


def test_deletions_keep_their_uid_with_sync_collection_too(caldav_harness):
    harness, provider = caldav_harness, caldav_harness.provider
    harness.seed_event(
        harness.primary_id, uid="gone@test", summary="Gone", start=T0, end=T0 + timedelta(hours=1)
    )
    state = provider.changes(harness.primary_id, None).next_state
    harness.delete_event(harness.primary_id, "gone@test")
    [gone] = provider.changes(harness.primary_id, state).events
    assert (gone.uid, gone.status) == ("gone@test", "cancelled")


# --- what other clients write -------------------------------------------------------------------


def test_events_without_dtend_follow_rfc_5545(caldav_harness):
    server, calendar = caldav_harness.server, caldav_harness.primary_id
    server.put_event(calendar, vcalendar(vevent("timed", "DTSTART:20300506T090000Z\r\n")))
    server.put_event(calendar, vcalendar(vevent("day", "DTSTART;VALUE=DATE:20300506\r\n")))
    server.put_event(calendar, vcalendar(vevent("lasting", "DTSTART:20300506T090000Z\r\nDURATION:PT45M\r\n")))
    events = {e.uid: e for e in caldav_harness.provider.changes(calendar, None).events}
    assert (events["timed"].start, events["timed"].end) == (T0, T0)
    assert (events["day"].start, events["day"].end, events["day"].all_day) == (
        datetime(2030, 5, 6, tzinfo=UTC),
        datetime(2030, 5, 7, tzinfo=UTC),
        True,
    )
    assert events["lasting"].end == T0 + timedelta(minutes=45)


def test_a_malformed_object_does_not_break_the_listing(caldav_harness):
    harness = caldav_harness
    harness.seed_event(
        harness.primary_id, uid="fine@test", summary="Fine", start=T0, end=T0 + timedelta(hours=1)
    )
    broken = harness.server.put_event(harness.primary_id, person_ics("broken@test", "Broken", T0, T0))
    half = harness.server.put_event(harness.primary_id, person_ics("half@test", "Half", T0, T0))
    # Radicale validates what it stores; many servers do not. The proxy serves what they would.
    harness.server.proxy.served_instead = {
        broken: "BEGIN:VCALENDAR\r\nthis is not iCalendar\r\n",
        half: vcalendar(
            vevent("half@test", "SUMMARY:no start\r\n") + vevent("ok@test", "DTSTART:20300506T090000Z\r\n")
        ),
    }
    for use_sync_collection in (True, False):
        harness.server.proxy.sync_collection = use_sync_collection
        events = harness.provider.changes(harness.primary_id, None).events
        assert {e.uid for e in events} == {"fine@test", "ok@test"}
    harness.server.proxy.freebusy_report = False  # the calendar-query path reads the objects itself
    busy = harness.provider.free_busy([harness.primary_id], T0, T0 + timedelta(hours=2))
    assert [(b.start, b.end) for b in busy[harness.primary_id]] == [(T0, T0 + timedelta(hours=1))]


def test_reads_attendees_recurrence_and_overrides():
    text = vcalendar(
        vevent(
            "series@test",
            "DTSTART;TZID=Europe/Warsaw:20300506T110000\r\nDTEND;TZID=Europe/Warsaw:20300506T120000\r\n"
            "RRULE:FREQ=WEEKLY;COUNT=4\r\nEXDATE;TZID=Europe/Warsaw:20300513T110000\r\n"
            "ORGANIZER;CN=Rep:mailto:rep@example.com\r\n"
            "ATTENDEE;CN=Anna;PARTSTAT=ACCEPTED:mailto:anna@example.org\r\n"
            "ATTENDEE;PARTSTAT=DECLINED:MAILTO:bob@example.org\r\n"
            "ATTENDEE:urn:uuid:room-12\r\nTRANSP:TRANSPARENT\r\n",
        )
        + vevent(
            "series@test",
            "RECURRENCE-ID;TZID=Europe/Warsaw:20300520T110000\r\nDTSTART:20300520T120000Z\r\n"
            "DTEND:20300520T130000Z\r\nSTATUS:CANCELLED\r\n",
        )
    )
    master, override = events_from_ics("https://dav.example.com/cal/series.ics", text)
    assert (master.start, master.end) == (T0, T0 + timedelta(hours=1))
    assert master.recurrence == ("RRULE:FREQ=WEEKLY;COUNT=4", "EXDATE;TZID=Europe/Warsaw:20300513T110000")
    assert master.organizer_email == "rep@example.com"
    assert [(a.email, a.name, a.response) for a in master.attendees] == [
        ("anna@example.org", "Anna", "accepted"),
        ("bob@example.org", "", "declined"),
    ]
    assert master.transparent
    assert master.recurrence_id is None
    assert override.recurrence_id == "2030-05-20T09:00:00+00:00"
    assert override.status == "cancelled"


@pytest.mark.parametrize(
    ("prodid", "extra", "created_by"),
    [
        ("-//Termin//Termin//EN", "", "termin"),
        ("-//Apple Inc.//macOS 14.4//EN", "X-TERMIN-UID:booking-7@termin.test\r\n", "termin"),
        ("-//zoom.us//iCalendar Event//EN", "", "integration"),
        ("-//Calendly//Calendly Scheduling//EN", "", "integration"),
        ("-//Apple Inc.//macOS 14.4//EN", "", None),
        ("-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN", "", None),
        ("-//Zoomerang Fan Club//EN", "", None),  # a whole word, not a prefix
    ],
)
def test_who_wrote_an_event(prodid, extra, created_by):
    text = vcalendar(vevent("x", "DTSTART:20300506T090000Z\r\n" + extra), prodid=prodid)
    [event] = events_from_ics("https://dav.example.com/cal/x.ics", text)
    assert event.created_by == created_by


# --- writing ------------------------------------------------------------------------------------


def booking(uid: str = "booking-1@termin.test", **changes) -> EventDraft:
    values = {
        "uid": uid,
        "summary": "Intro",
        "start": T0,
        "end": T0 + timedelta(minutes=30),
        "time_zone": "Europe/Warsaw",
        "attendees": (DraftAttendee("anna@example.org", "Anna"),),
        "organizer_email": REP,
    }
    return EventDraft(**(values | changes))


def test_put_is_idempotent_by_uid(caldav_harness):
    harness, provider = caldav_harness, caldav_harness.provider
    first = provider.create_event(harness.primary_id, booking())
    assert first == harness.primary_id + "booking-1%40termin.test.ics"
    before = harness.request_count
    assert provider.create_event(harness.primary_id, booking(summary="Changed meanwhile")) == first
    assert harness.request_count - before == 1  # the If-None-Match PUT answered 412, nothing more
    [held] = harness.server_events(harness.primary_id)
    assert held["summary"] == "Intro"
    assert held["prodid"] == "-//Termin//Termin//EN"


def test_a_uid_stored_under_another_name_is_found_not_duplicated(caldav_harness):
    harness = caldav_harness
    harness.seed_event(harness.primary_id, uid="booking-9@termin.test", summary="Copied", start=T0, end=T0)
    [seeded] = harness.server_events(harness.primary_id)
    event_id = harness.provider.create_event(harness.primary_id, booking("booking-9@termin.test"))
    assert event_id == harness.server.url + seeded["href"]
    assert len(harness.server_events(harness.primary_id)) == 1


def test_uids_that_are_not_safe_file_names_still_map_to_one_resource(caldav_harness):
    harness = caldav_harness
    uid = "../odd uid/with slashes?@termin.test"
    first = harness.provider.create_event(harness.primary_id, booking(uid))
    assert harness.provider.create_event(harness.primary_id, booking(uid)) == first
    assert first.startswith(harness.primary_id + "termin-")
    assert [e["uid"] for e in harness.server_events(harness.primary_id)] == [uid]


def test_update_bumps_sequence_and_keeps_the_uid(caldav_harness):
    harness = caldav_harness
    event_id = harness.provider.create_event(harness.primary_id, booking())
    harness.provider.update_event(harness.primary_id, event_id, booking(start=T0 + timedelta(days=1)))
    [(_, text)] = harness.server.objects(harness.primary_id)
    assert "SEQUENCE:1" in text
    assert "UID:booking-1@termin.test" in text
    [held] = harness.server_events(harness.primary_id)
    assert held["start"] == T0 + timedelta(days=1)


def test_what_termin_writes():
    text = draft_to_ics(booking())
    assert "PRODID:-//Termin//Termin//EN" in text
    assert "X-TERMIN-UID:booking-1@termin.test" in text
    assert "DTSTART;TZID=Europe/Warsaw:20300506T110000" in text
    assert "BEGIN:VTIMEZONE" in text
    unfolded = text.replace("\r\n ", "")
    assert "RSVP=TRUE" in unfolded
    assert "SCHEDULE-AGENT=CLIENT" in unfolded  # Termin sends the iMIP itself
    assert "ORGANIZER;SCHEDULE-AGENT=CLIENT:mailto:rep@example.com" in unfolded


# --- free/busy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("report", [True, False])
def test_free_busy_with_and_without_the_report(caldav_harness, report):
    harness = caldav_harness
    harness.server.proxy.freebusy_report = report
    calendar = harness.second_id
    harness.seed_event(calendar, uid="a", summary="A", start=T0, end=T0 + timedelta(hours=1))
    harness.seed_event(
        calendar, uid="b", summary="B", start=T0 + timedelta(minutes=30), end=T0 + timedelta(hours=2)
    )
    harness.seed_event(
        calendar, uid="free", summary="F", start=T0, end=T0 + timedelta(hours=5), transparent=True
    )
    harness.seed_event(
        calendar,
        uid="weekly",
        summary="W",
        start=T0 + timedelta(hours=3),
        end=T0 + timedelta(hours=4),
        rrule="FREQ=DAILY;COUNT=3",
    )
    cancelled = vevent(
        "cancelled", "DTSTART:20300506T150000Z\r\nDTEND:20300506T160000Z\r\nSTATUS:CANCELLED\r\n"
    )
    harness.server.put_event(calendar, vcalendar(cancelled))
    busy = harness.provider.free_busy(
        [calendar], T0 - timedelta(hours=1), T0 + timedelta(days=1, hours=3, minutes=30)
    )
    assert [(b.start, b.end) for b in busy[calendar]] == [
        (T0, T0 + timedelta(hours=2)),
        (T0 + timedelta(hours=3), T0 + timedelta(hours=4)),
        (T0 + timedelta(days=1, hours=3), T0 + timedelta(days=1, hours=3, minutes=30)),  # clipped to the end
    ]


def test_free_busy_of_a_free_busy_only_share(caldav_harness):
    harness = caldav_harness
    harness.seed_event(harness.freebusy_id, uid="x", summary="Private", start=T0, end=T0 + timedelta(hours=1))
    busy = harness.provider.free_busy([harness.freebusy_id], T0, T0 + timedelta(hours=8))
    assert [(b.start, b.end) for b in busy[harness.freebusy_id]] == [(T0, T0 + timedelta(hours=1))]


def test_a_free_busy_only_share_has_no_events_to_list(caldav_harness):
    with pytest.raises(ProviderError, match="free/busy only") as refused:
        caldav_harness.provider.changes(caldav_harness.freebusy_id, None)
    assert not isinstance(refused.value, AccessLost)


def test_seeded_attendees_round_trip(caldav_harness):
    harness = caldav_harness
    harness.seed_event(
        harness.shared_readonly_id,
        uid="team@test",
        summary="Team",
        start=T0,
        end=T0 + timedelta(hours=1),
        attendees=(SeedAttendee("client@example.org", "tentative"),),
    )
    [event] = harness.provider.changes(harness.shared_readonly_id, None).events
    assert event.organizer_email == OWNER2
    assert [(a.email, a.response) for a in event.attendees] == [("client@example.org", "tentative")]
