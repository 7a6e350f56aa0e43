"""A booking's calendar event follows the booking (C7, C10, issue 5 item 5), against the Google and Graph
emulators and a real Radicale: booked, rescheduled and cancelled, the event is created, moved and cancelled
in the rep's default calendar only, once each however often the outbox delivers.

Jobs are handed over (``queued``) instead of run, and each test delivers the outbox rows itself, each in
its own app context as a worker would (``deliver``), so it decides when and in which order they go.
"""

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta

import icalendar
import pytest
import sqlalchemy as sa

from app.db import utcnow
from app.extensions import db
from app.mail import outbox
from app.mail.models import OutboxMessage
from app.pages import notifications
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from app.sync import engine
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from app.tenants.models import Tenant, User
from tests import factories
from tests.pages.helpers import NOW, at, booking_request
from tests.sync.test_writes import HARNESSES, connect, events_with_uid, point_app_at, rows

VISITOR = "visitor@example.org"


@dataclass
class Rep:
    """A rep whose account has a default calendar and a second one checked for availability, and a page."""

    name: str
    app: object
    harness: object
    tenant: Tenant
    user: User
    connection: CalendarConnection
    page: SchedulingPage
    other_tenant: Tenant

    @property
    def default(self) -> Calendar:
        return self.connection.default_calendar

    @property
    def second(self) -> Calendar:
        return next(c for c in self.connection.calendars if c.external_id == self.harness.second_id)

    def events(self, uid: str, calendar_id: str | None = None) -> list[dict]:
        return events_with_uid(self.name, self.harness, calendar_id or self.default.external_id, uid)

    def the_event(self, uid: str) -> dict:
        [event] = self.events(uid)
        return event

    def book(self, start: datetime, **fields) -> pages.BookingResult:
        result = pages.book(self.page, booking_request(start, **fields), now=NOW)
        db.session.commit()
        db.session.expire_all()
        return result

    def deliver(self, kind: str = "calendar.", now: datetime | None = None) -> list[OutboxMessage]:
        """Deliver the tenant's pending rows of ``kind`` (a prefix), oldest first, each as a worker does."""
        pending = [r.id for r in rows(self.tenant) if r.kind.startswith(kind) and r.status == "pending"]
        for outbox_id in pending:
            deliver_row(self.app, outbox_id, now)
        db.session.expire_all()
        return [db.session.get(OutboxMessage, outbox_id) for outbox_id in pending]

    def event_id(self, event: dict) -> str:
        """The provider's id of a held event, as Termin stores it in ``provider_event_id``."""
        if self.name == "caldav":
            return self.harness.server.url.rstrip("/") + event["href"]
        return event["id"]

    def sequence(self, uid: str) -> int:
        """The SEQUENCE of the CalDAV event with ``uid`` in the default calendar."""
        _href, parsed = self.harness.server.find(self.default.external_id, uid)
        [event] = parsed.walk("VEVENT")
        return int(event.get("SEQUENCE") or 0)

    def updates_sent(self) -> int:
        """How often the provider was asked to move an event (Google: PATCH; Graph: its update notice)."""
        if self.name == "google":
            return sum(1 for n in self.harness.emulator.notifications if n[0] == "patch")
        if self.name == "microsoft":
            return sum(1 for m in self.harness.emulator.outbox if m.kind == "update")
        raise ValueError(self.name)


# How each channel names what it sends: the providers' notices, as iTIP methods.
NOTICE_METHODS = {"invitation": "REQUEST", "update": "REQUEST", "cancellation": "CANCEL"}


def invitations(rep: Rep, sink) -> Counter:
    """Every invitation, update and cancellation that reached the visitor, through every channel, as
    (iTIP method, UID): the provider's own notices (as the emulator records them) and the emails in the
    SMTP sink (a calendar part per message; its .ics attachment is the same object)."""
    found: Counter = Counter()
    if rep.name == "google":
        notices = [(n.kind, n.uid, n.recipients) for n in rep.harness.emulator.sent]
    elif rep.name == "microsoft":
        notices = [(m.kind, m.uid, m.recipients) for m in rep.harness.emulator.outbox]
    else:
        notices = []  # a CalDAV server mails nobody (our events carry SCHEDULE-AGENT=CLIENT)
    for kind, uid, recipients in notices:
        if VISITOR in recipients:
            found[(NOTICE_METHODS[kind], uid)] += 1
    for message in sink.messages:
        if message["To"] != VISITOR:
            continue
        for part in message.walk():
            if part.get_content_type() == "text/calendar":
                parsed = icalendar.Calendar.from_ical(part.get_content())
                assert str(parsed["METHOD"]) in ("REQUEST", "CANCEL")  # nothing else is mailed
                for event in parsed.walk("VEVENT"):
                    found[(str(parsed["METHOD"]), str(event["UID"]))] += 1
    return found


def deliver_row(flask_app, outbox_id: int, now: datetime | None = None) -> None:
    """One worker's delivery of one row, in its own app context (its own session), committed."""
    with flask_app.app_context():
        outbox.deliver(outbox_id, now=now or utcnow())
        db.session.commit()


def make_rep(
    flask_app, monkeypatch, name: str, harness, *, scheduling_pages: bool = True, calendar_sync: bool = True
) -> Rep:
    point_app_at(flask_app, monkeypatch, name, harness)
    tenant, other = factories.make_tenant("Acme"), factories.make_tenant("Globex")
    factories.make_user(other, seat="sales", email="rep@globex.example.com")
    user = factories.make_user(
        tenant, seat="sales", name="Ada Rep", email="ada@acme.example.com", time_zone="Europe/Warsaw"
    )
    connection = connect(name, harness, tenant, user)
    calendars = {c.external_id: c for c in connection.calendars}
    primary, second = calendars[harness.primary_id], calendars[harness.second_id]
    sync.save_choices(
        tenant,
        user,
        connection,
        sync.ConnectionChoices(
            calendar_sync=calendar_sync,
            scheduling_pages=scheduling_pages,
            task_sync=False,
            default_calendar_id=primary.id,
            availability_calendar_ids=frozenset({primary.id, second.id}),
        ),
    )
    page = factories.make_page(user, title="Intro call")
    db.session.commit()
    assert connection.default_calendar is primary
    assert second.checks_availability
    return Rep(name, flask_app, harness, tenant, user, connection, page, other)


@pytest.fixture(params=sorted(HARNESSES))
def rep(request, app, app_ctx, monkeypatch, sink, queued) -> Rep:
    """A rep with scheduling pages (and calendar sync) on, on each provider in turn."""
    harness = request.getfixturevalue(HARNESSES[request.param])
    return make_rep(app, monkeypatch, request.param, harness)


@pytest.fixture(params=sorted(HARNESSES))
def provider_name(request) -> str:
    return request.param


def booking_of(booking_id: int) -> Booking:
    return db.session.get(Booking, booking_id)


# --- 1. Booked: the default calendar only, once ---------------------------------------------------------


def test_a_booking_is_written_to_the_default_calendar_only_and_once(rep, sink):
    result = rep.book(at(10))
    booking = booking_of(result.booking.id)
    meeting = booking.meeting
    [write] = rows(rep.tenant, "calendar.write_meeting")
    assert meeting.calendar_id == rep.default.id
    assert meeting.uid
    assert write.payload == {"meeting_id": meeting.id}
    assert rep.events(meeting.uid) == []  # queued, not yet written
    mails = len(rows(rep.tenant, "mail.send"))  # the confirmation (for CalDAV it carries the invitation)

    # A worker writes the event, then dies before its commit: the row is still pending, no id stored.
    with rep.app.app_context():
        outbox.deliver(write.id, now=utcnow())
        db.session.rollback()
    db.session.expire_all()
    assert len(rep.events(meeting.uid)) == 1
    assert meeting.provider_event_id is None
    row = db.session.get(OutboxMessage, write.id)
    assert (row.status, row.attempts) == ("pending", 1)  # the attempt was committed before the provider call

    # Once the attempt's lease has run out the sweeper hands the row over again: the provider finds the event
    # by its uid, writes no second one.
    [delivered] = rep.deliver(now=row.next_attempt_at)
    assert (delivered.id, delivered.status, delivered.attempts) == (write.id, "delivered", 2)
    event = rep.the_event(meeting.uid)
    assert meeting.provider_event_id
    assert (event["start"], event["end"]) == (at(10), at(10, 30))
    assert (event["start"], event["end"]) == (booking.start_at, booking.end_at)
    assert event["summary"] == "Intro call: Vera Visitor"
    assert VISITOR in [a.lower() for a in event["attendees"]]
    for other in (rep.harness.second_id, rep.harness.shared_readonly_id):
        assert rep.events(meeting.uid, other) == []
    assert rep.harness.server_events(rep.harness.second_id) == []
    if rep.name == "caldav":
        assert rep.sequence(meeting.uid) == 0
    assert rep.event_id(event) == meeting.provider_event_id
    if rep.name == "google":
        assert [n[0] for n in rep.harness.emulator.notifications] == ["insert"]  # the visitor invited once
    if rep.name == "microsoft":
        assert [m.kind for m in rep.harness.emulator.outbox] == ["invitation"]
    # No iMIP from the write: the booking's own confirmation carries the invitation (CalDAV).
    assert len(rows(rep.tenant, "mail.send")) == mails
    assert rows(rep.other_tenant) == []

    # A stray second job for the delivered row changes nothing.
    requests = rep.harness.request_count
    deliver_row(rep.app, write.id)
    assert rep.harness.request_count == requests
    assert len(rep.events(meeting.uid)) == 1

    # Through every channel (the provider's notices and the emails), the visitor is invited once.
    rep.deliver("mail.")
    assert invitations(rep, sink) == Counter({("REQUEST", meeting.uid): 1})


# --- 1b. One invitation per change, on every provider, counted by UID through every channel ---------------


def test_the_visitor_gets_one_invitation_per_change_all_naming_one_event(rep, sink):
    result = rep.book(at(10))
    rep.deliver("")  # the calendar write and the emails, as the workers would
    booking = booking_of(result.booking.id)
    meeting = booking.meeting
    uid = meeting.uid
    assert invitations(rep, sink) == Counter({("REQUEST", uid): 1})
    # The event in the rep's calendar is that one too.
    assert len(rep.events(uid)) == 1
    # The page's "add to my calendar" file is an event to add, under the same UID: it cannot be a second.
    added = icalendar.Calendar.from_ical(notifications.calendar_file(booking, result.token))
    [event] = added.walk("VEVENT")
    assert (str(added["METHOD"]), str(event["UID"])) == ("PUBLISH", uid)
    assert "ATTENDEE" not in event

    pages.reschedule_booking(booking, at(14), result.token, now=NOW)
    db.session.commit()
    rep.deliver("")
    db.session.expire_all()
    assert meeting.uid == uid
    assert invitations(rep, sink) == Counter({("REQUEST", uid): 2})

    pages.cancel_booking(booking, by_visitor=True, now=NOW)
    db.session.commit()
    rep.deliver("")
    assert invitations(rep, sink) == Counter({("REQUEST", uid): 2, ("CANCEL", uid): 1})
    assert rep.events(uid) == []


# --- 2. Rescheduled: the same event moves ---------------------------------------------------------------


def test_rescheduling_moves_the_same_event(rep, sink):
    result = rep.book(at(10))
    rep.deliver()
    booking = booking_of(result.booking.id)
    meeting = booking.meeting
    before = rep.the_event(meeting.uid)
    event_id = meeting.provider_event_id
    sequence = rep.sequence(meeting.uid) if rep.name == "caldav" else None

    pages.reschedule_booking(booking, at(14), result.token, now=NOW)
    db.session.commit()
    db.session.expire_all()
    [update] = rep.deliver()

    assert (update.kind, update.status, update.attempts) == ("calendar.update_meeting", "delivered", 1)
    after = rep.the_event(meeting.uid)
    assert (after["start"], after["end"]) == (at(14), at(14, 30))
    assert (booking.start_at, meeting.start_at, meeting.end_at) == (at(14), at(14), at(14, 30))
    assert meeting.provider_event_id == event_id
    assert rep.event_id(after) == rep.event_id(before) == event_id
    assert VISITOR in [a.lower() for a in after["attendees"]]
    assert rep.events(meeting.uid, rep.harness.second_id) == []
    assert rep.harness.server_events(rep.harness.second_id) == []
    if rep.name == "caldav":
        assert rep.sequence(meeting.uid) > sequence
        assert rep.sequence(meeting.uid) == meeting.sequence == 1
    else:
        assert rep.updates_sent() == 1


# --- 3. Cancelled, by either side: the event is cancelled as the provider does it ------------------------


@pytest.mark.parametrize("by_visitor", [True, False], ids=["by-visitor", "by-rep"])
def test_cancelling_the_booking_cancels_its_event(rep, sink, by_visitor):
    result = rep.book(at(10))
    rep.deliver()
    booking = booking_of(result.booking.id)
    meeting = booking.meeting
    event_id = meeting.provider_event_id
    assert len(rep.events(meeting.uid)) == 1
    mails = len(rows(rep.tenant, "mail.send"))

    pages.cancel_booking(booking, reason="Something came up", by_visitor=by_visitor, now=NOW)
    db.session.commit()
    db.session.expire_all()
    assert len(rows(rep.tenant, "mail.send")) > mails  # the other side is told by the booking's email
    mails = len(rows(rep.tenant, "mail.send"))
    [cancel] = rep.deliver()

    assert (cancel.kind, cancel.status) == ("calendar.cancel_meeting", "delivered")
    assert (booking.status, meeting.status) == ("cancelled", "cancelled")
    assert rep.events(meeting.uid) == []
    if rep.name == "google":
        # Google deletes it and mails the attendees (sendUpdates=all).
        assert rep.harness.emulator.notifications[-1] == ("delete", rep.default.external_id, event_id, "all")
    if rep.name == "microsoft":
        # The organizer's cancel: Graph removes it and sends the attendees a cancellation.
        assert [m.kind for m in rep.harness.emulator.outbox] == ["invitation", "cancellation"]
        assert rep.harness.emulator.outbox[-1].recipients == (VISITOR,)
    if rep.name == "caldav":
        # The resource is deleted; the booking's cancellation email is the visitor's iMIP CANCEL.
        with pytest.raises(LookupError):
            rep.harness.server.find(rep.default.external_id, meeting.uid)
        assert len(rows(rep.tenant, "mail.send")) == mails  # the write queues no second one

    # Cancelling again, or delivering the row again, touches the provider no more.
    pages.cancel_booking(booking, by_visitor=by_visitor, now=NOW)
    db.session.commit()
    assert len(rows(rep.tenant, "calendar.cancel_meeting")) == 1
    requests = rep.harness.request_count
    deliver_row(rep.app, cancel.id)
    assert rep.harness.request_count == requests


def test_rescheduling_frees_the_bookings_own_event_once_synced_back(rep, sink):
    """The event comes back with the calendar's sync as busy time; a reschedule must not be blocked by it,
    also on Microsoft, where the meeting took Exchange's UID and the event is synced under Termin's."""
    result = rep.book(at(10))
    rep.deliver()
    booking = booking_of(result.booking.id)
    provider = sync.provider_for(rep.connection)
    if rep.name == "microsoft":
        provider.clock = lambda: NOW  # its sync window is around "now"
    try:
        report = engine.sync_calendar(rep.default, provider, now=NOW)
    finally:
        provider.close()
    db.session.commit()
    assert report.outcome == "synced", report

    window = {"now": NOW, "duration": timedelta(minutes=30)}
    assert at(10) not in pages.free_slots(rep.page, at(9), at(12), **window)
    assert at(10) in pages.free_slots(rep.page, at(9), at(12), except_booking=booking, **window)


def test_a_booking_cancelled_before_its_write_never_reaches_the_calendar(rep, sink):
    result = rep.book(at(10))
    booking = booking_of(result.booking.id)
    pages.cancel_booking(booking, by_visitor=True, now=NOW)
    db.session.commit()
    db.session.expire_all()

    delivered = rep.deliver()

    assert [(r.kind, r.status) for r in delivered] == [
        ("calendar.write_meeting", "delivered"),
        ("calendar.cancel_meeting", "delivered"),
    ]
    assert rep.events(booking.meeting.uid) == []
    assert booking.meeting.provider_event_id is None


# --- 4. Rescheduled before the first write went out ------------------------------------------------------


@pytest.mark.parametrize("order", ["write-first", "update-first"])
def test_a_reschedule_queued_before_the_write_ends_with_one_event_at_the_new_time(rep, sink, order):
    result = rep.book(at(10))
    booking = booking_of(result.booking.id)
    pages.reschedule_booking(booking, at(15), result.token, now=NOW)
    db.session.commit()
    db.session.expire_all()
    [write] = rows(rep.tenant, "calendar.write_meeting")
    [update] = rows(rep.tenant, "calendar.update_meeting")

    # "update-first": the write's first try met an outage, so the update's job runs before its retry.
    for outbox_id in [write.id, update.id] if order == "write-first" else [update.id, write.id]:
        deliver_row(rep.app, outbox_id)
    db.session.expire_all()

    assert [(r.status, r.attempts) for r in (write, update)] == [("delivered", 1), ("delivered", 1)]
    meeting = booking.meeting
    [event] = rep.events(meeting.uid)
    assert (event["start"], event["end"]) == (at(15), at(15, 30))
    assert meeting.provider_event_id
    assert rep.events(meeting.uid, rep.harness.second_id) == []
    assert rep.harness.server_events(rep.harness.second_id) == []


def test_caldav_event_written_after_a_reschedule_keeps_up_with_the_invitations_sequence(
    app, app_ctx, monkeypatch, sink, queued, caldav_harness
):
    rep = make_rep(app, monkeypatch, "caldav", caldav_harness)
    result = rep.book(at(10))
    booking = booking_of(result.booking.id)
    pages.reschedule_booking(booking, at(15), result.token, now=NOW)
    db.session.commit()
    [write] = rows(rep.tenant, "calendar.write_meeting")
    [update] = rows(rep.tenant, "calendar.update_meeting")
    deliver_row(rep.app, update.id)  # before the write (its first try met an outage): nothing to move yet
    deliver_row(rep.app, write.id)
    db.session.expire_all()
    meeting = booking.meeting
    assert meeting.sequence == 1  # what the rescheduled email's REQUEST carried

    # The organizer's copy must never lag behind what the visitor holds (RFC 5546 ordering).
    assert rep.sequence(meeting.uid) >= meeting.sequence


# --- 5. The account switches: scheduling pages, not calendar sync, decide ---------------------------------


def test_with_scheduling_pages_off_nothing_is_booked_into_no_calendar(
    app, app_ctx, monkeypatch, sink, queued, request, provider_name
):
    """C7: *Meeting scheduling pages* off on the rep's only account, though calendar sync is on: the page
    is not bookable (P4's "not available"), so no booking is logged that would reach no calendar."""
    harness = request.getfixturevalue(HARNESSES[provider_name])
    rep = make_rep(app, monkeypatch, provider_name, harness, scheduling_pages=False, calendar_sync=True)
    assert rep.connection.calendar_sync
    assert pages.unavailable_reason(rep.page) == "calendar"

    with pytest.raises(pages.PageUnavailable):
        rep.book(at(10))
    db.session.rollback()

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 0
    assert rows(rep.tenant) == []  # no calendar write and no email
    rep.deliver("")
    assert harness.server_events(harness.primary_id) == []
    assert harness.server_events(harness.second_id) == []


def test_with_calendar_sync_off_but_pages_on_the_booking_is_written(
    app, app_ctx, monkeypatch, sink, queued, request, provider_name
):
    harness = request.getfixturevalue(HARNESSES[provider_name])
    rep = make_rep(app, monkeypatch, provider_name, harness, scheduling_pages=True, calendar_sync=False)

    result = rep.book(at(10))
    [write] = rep.deliver()

    assert (write.kind, write.status) == ("calendar.write_meeting", "delivered")
    meeting = booking_of(result.booking.id).meeting
    event = rep.the_event(meeting.uid)
    assert (event["start"], event["end"]) == (at(10), at(10, 30))
    assert rep.events(meeting.uid, harness.second_id) == []


# --- 6. A rate-limited update is retried and moves the event once ----------------------------------------


def test_a_rate_limited_update_waits_for_retry_after_and_moves_the_event_once(rep, sink):
    result = rep.book(at(10))
    rep.deliver()
    booking = booking_of(result.booking.id)
    meeting = booking.meeting
    event_id = meeting.provider_event_id

    pages.reschedule_booking(booking, at(13), result.token, now=NOW)
    db.session.commit()
    db.session.expire_all()
    rep.harness.fail_next_requests(429, 1, retry_after=120)
    before = utcnow()
    [update] = rep.deliver()

    assert (update.status, update.attempts) == ("pending", 1)
    assert update.next_attempt_at >= before + timedelta(seconds=120)
    assert update.last_error
    assert (rep.the_event(meeting.uid)["start"]) == at(10)  # not moved yet
    assert rep.deliver(now=before) == [update]  # not due yet: left alone
    assert update.attempts == 1

    rep.deliver(now=update.next_attempt_at)  # the sweeper's turn, once it is due

    assert (update.status, update.attempts) == ("delivered", 2)
    [event] = rep.events(meeting.uid)
    assert (event["start"], event["end"]) == (at(13), at(13, 30))
    assert meeting.provider_event_id == event_id
    if rep.name == "caldav":
        assert rep.sequence(meeting.uid) == 1  # one PUT over the first version
    else:
        assert rep.updates_sent() == 1
    assert rep.harness.server_events(rep.harness.second_id) == []
