"""CRM meetings into the rep's calendar (C5, C10) against the Google and Graph emulators and a real Radicale,
with CalDAV invitations reaching a real SMTP server. Jobs run eagerly after each commit (tests' JOBS_MODE)."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import icalendar
import pytest
import sqlalchemy as sa

from app import transaction
from app.crm import services as crm
from app.crm.models import Contact, Meeting
from app.db import utcnow
from app.extensions import db
from app.mail import jobs, outbox
from app.mail.models import OutboxMessage
from app.sync import services as sync
from app.sync import writes
from app.sync.models import Calendar, CalendarConnection
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import APP_HOST, Client
from tests.fakes import google_calendar, graph
from tests.fakes import radicale as fake_radicale

START = datetime(2030, 5, 6, 8, 0, tzinfo=UTC)
HARNESSES = {"google": "google_harness", "microsoft": "graph_harness", "caldav": "caldav_harness"}
TOKENS = {"google": google_calendar.ACCOUNT_TOKEN, "microsoft": graph.ACCOUNT_TOKEN}


def connect(name: str, harness, tenant: Tenant, rep: User) -> CalendarConnection:
    """Connect ``rep`` to the harness's account as the settings page would, with a token that stays fresh."""
    if name == "caldav":
        server = harness.server
        return sync.connect_caldav(
            tenant,
            rep,
            server_url=server.url,
            username=fake_radicale.REP,
            password=server.passwords[fake_radicale.REP],
        )
    expires = utcnow() + timedelta(days=1)
    return sync.connect(
        tenant,
        rep,
        provider=name,
        account=harness.provider.account(),
        calendars=harness.provider.list_calendars(),
        secret={"access_token": TOKENS[name], "token_type": "Bearer", "expires_at": int(expires.timestamp())},
        token_expires_at=expires,
    )


def point_app_at(app, monkeypatch, name: str, harness) -> None:
    if name == "google":
        monkeypatch.setitem(app.config, "GOOGLE_API_URL", harness.emulator.api_url)
    elif name == "microsoft":
        monkeypatch.setitem(app.config, "MICROSOFT_GRAPH_URL", harness.emulator.graph_url)


def events_with_uid(name: str, harness, calendar_id: str, uid: str) -> list[dict]:
    """The events in ``calendar_id`` carrying Termin's ``uid`` (each provider marks it its own way)."""
    found = []
    for event in harness.server_events(calendar_id):
        if name == "google":
            marked = {(event["resource"].get("extendedProperties") or {}).get("private", {}).get("terminUid")}
        elif name == "microsoft":
            # Once written, the meeting takes Exchange's iCalUId; the event still holds the uid Termin chose.
            marked = {event["uid"], event["ical_uid"]}
        else:
            marked = {event["uid"]}
        if uid in marked:
            found.append(event)
    return found


@dataclass
class Rep:
    """A rep with a connected account, a contact to meet, and the other tenant beside them."""

    name: str
    harness: object
    tenant: Tenant
    user: User
    contact: Contact
    connection: CalendarConnection
    other_tenant: Tenant

    @property
    def default(self) -> Calendar:
        return self.connection.default_calendar

    def events(self, uid: str, calendar_id: str | None = None) -> list[dict]:
        return events_with_uid(self.name, self.harness, calendar_id or self.default.external_id, uid)

    def log(self, title: str = "Discovery call", start: datetime = START) -> Meeting:
        """Log a meeting on the contact's record as the view does, and commit (the jobs then run)."""
        meeting = crm.log_meeting(
            self.tenant,
            self.user,
            self.contact,
            title=title,
            start_at=start,
            end_at=start + timedelta(minutes=45),
        )
        db.session.commit()
        db.session.expire_all()
        return meeting


def make_rep(app, monkeypatch, name: str, harness) -> Rep:
    point_app_at(app, monkeypatch, name, harness)
    tenant, other = factories.make_tenant("Acme"), factories.make_tenant("Globex")
    factories.make_user(other, seat="sales", email="rep@globex.example.com")
    user = factories.make_user(tenant, seat="sales", name="Ada Rep", email="ada@acme.example.com")
    contact = factories.make_contact(
        tenant, email="ola@client.example.org", first_name="Ola", last_name="Nowak"
    )
    connection = connect(name, harness, tenant, user)
    db.session.commit()
    return Rep(name, harness, tenant, user, contact, connection, other)


@pytest.fixture(params=sorted(HARNESSES))
def rep(request, app, app_ctx, monkeypatch, sink) -> Rep:
    """A rep on each provider in turn."""
    harness = request.getfixturevalue(HARNESSES[request.param])
    return make_rep(app, monkeypatch, request.param, harness)


@pytest.fixture
def google_rep(app, app_ctx, monkeypatch, sink, google_harness) -> Rep:
    return make_rep(app, monkeypatch, "google", google_harness)


def rows(tenant: Tenant, kind: str | None = None) -> list[OutboxMessage]:
    query = sa.select(OutboxMessage).where(OutboxMessage.tenant_id == tenant.id).order_by(OutboxMessage.id)
    if kind:
        query = query.where(OutboxMessage.kind == kind)
    return list(db.session.scalars(query))


def calendar_part(message) -> tuple[str, icalendar.Calendar]:
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return part.get_param("method"), icalendar.Calendar.from_ical(part.get_content())


def only_event(parsed: icalendar.Calendar):
    [event] = parsed.walk("VEVENT")
    return event


# --- C5 and C10: written to the default calendar, with an invitation -------------------------------------


def test_a_meeting_logged_with_calendar_sync_on_lands_in_the_default_calendar_only(rep, sink):
    meeting = rep.log()

    if rep.name == "microsoft":
        # Exchange chose the UID of the invitation it sent: the meeting took it, so it names one event.
        [event] = rep.events(meeting.uid)
        assert meeting.uid == event["ical_uid"] != event["uid"]
    else:
        assert meeting.uid.endswith(f"@{APP_HOST}")
    assert meeting.calendar_id == rep.default.id
    assert meeting.provider_event_id
    [event] = rep.events(meeting.uid)
    assert event["summary"] == "Discovery call"
    assert (event["start"], event["end"]) == (meeting.start_at, meeting.end_at)
    assert rep.contact.email in event["attendees"]
    for other in (rep.harness.second_id, rep.harness.shared_readonly_id):
        assert rep.events(meeting.uid, other) == []
    assert [(r.kind, r.status, r.attempts) for r in rows(rep.tenant, "calendar.write_meeting")] == [
        ("calendar.write_meeting", "delivered", 1)
    ]
    assert rows(rep.other_tenant) == []


def test_google_invites_the_contact_itself(google_rep, sink):
    meeting = google_rep.log()
    emulator = google_rep.harness.emulator
    assert emulator.notifications == [
        ("insert", google_rep.default.external_id, meeting.provider_event_id, "all")
    ]
    # Google's one invitation names the meeting's own UID.
    assert [(n.kind, n.uid, n.recipients) for n in emulator.sent] == [
        ("invitation", meeting.uid, (google_rep.contact.email,))
    ]
    assert sink.messages == []  # Google sends the invitation; Termin sends nothing of its own


def test_microsoft_invites_the_contact_itself(app, app_ctx, monkeypatch, sink, graph_harness):
    rep = make_rep(app, monkeypatch, "microsoft", graph_harness)
    meeting = rep.log()
    [invitation] = graph_harness.emulator.outbox
    assert (invitation.kind, invitation.event_id, invitation.recipients, invitation.uid) == (
        "invitation",
        meeting.provider_event_id,
        (rep.contact.email,),
        meeting.uid,
    )
    assert sink.messages == []


def test_caldav_gets_an_imip_request_by_email_from_termin(app, app_ctx, monkeypatch, sink, caldav_harness):
    rep = make_rep(app, monkeypatch, "caldav", caldav_harness)
    meeting = rep.log()

    [message] = sink.messages
    assert sink.envelopes[0].rcpt_tos == (rep.contact.email,)
    assert message["To"] == rep.contact.email
    assert message["Reply-To"] == rep.connection.account_email
    # Folded after "Subject:" (it fits the next line whole), which Python's parser reads with a leading space.
    assert (
        message["Subject"].strip()
        == "Invitation: Discovery call @ Mon 06 May 2030 10:00 - 10:45 (Europe/Warsaw)"
    )
    method, parsed = calendar_part(message)
    assert method == "REQUEST"
    assert str(parsed["METHOD"]) == "REQUEST"
    assert str(parsed["PRODID"]) == "-//Termin//Termin//EN"
    event = only_event(parsed)
    assert str(event["UID"]) == meeting.uid
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].dt == meeting.start_at
    assert str(event["ORGANIZER"]) == f"mailto:{rep.connection.account_email}"
    assert event["ORGANIZER"].params["CN"] == "Ada Rep"
    attendee = event["ATTENDEE"]
    assert str(attendee) == f"mailto:{rep.contact.email}"
    assert (attendee.params["RSVP"], attendee.params["PARTSTAT"], attendee.params["CN"]) == (
        "TRUE",
        "NEEDS-ACTION",
        "Ola Nowak",
    )
    assert [p.get_filename() for p in message.iter_attachments()] == ["invite.ics"]
    assert [(r.status, r.attempts) for r in rows(rep.tenant, "mail.send")] == [("delivered", 1)]


def test_a_caldav_user_name_that_is_no_address_never_becomes_the_organizer(
    app, app_ctx, monkeypatch, sink, caldav_harness
):
    """Radicale answers calendar-user-address-set with the principal's path, no mailto: address, so the
    account is known by its login. When that is a bare user name ("rita"), invitations name the rep's
    Termin address as organizer and take the replies there (issue 10 item 2)."""
    rep = make_rep(app, monkeypatch, "caldav", caldav_harness)
    # The login stands in for the address Radicale does not give.
    assert caldav_harness.provider.account().email == caldav_harness.account_email
    rep.connection.account_email = "rita"
    db.session.commit()

    meeting = rep.log()
    [message] = sink.messages
    assert message["Reply-To"] == rep.user.email == "ada@acme.example.com"
    assert "Organizer: Ada Rep <ada@acme.example.com>" in message.get_body(("plain",)).get_content()
    _method, parsed = calendar_part(message)
    assert str(only_event(parsed)["ORGANIZER"]) == "mailto:ada@acme.example.com"
    assert str(only_event(parsed)["UID"]) == meeting.uid


def test_with_calendar_sync_off_the_meeting_is_only_logged(google_rep, sink):
    google_rep.connection.calendar_sync = False
    db.session.commit()
    meeting = google_rep.log()

    assert meeting.status == "scheduled"
    assert (meeting.uid, meeting.calendar_id, meeting.provider_event_id) == (None, None, None)
    assert rows(google_rep.tenant) == []
    assert google_rep.harness.server_events(google_rep.default.external_id) == []
    assert google_rep.harness.emulator.notifications == []
    assert sink.messages == []


def test_a_rep_without_a_connected_calendar_only_logs(app_ctx, sink):
    tenant = factories.make_tenant()
    user = factories.make_user(tenant)
    contact = factories.make_contact(tenant)
    meeting = crm.log_meeting(
        tenant, user, contact, title="Call", start_at=START, end_at=START + timedelta(hours=1)
    )
    db.session.commit()
    assert meeting.uid is None
    assert rows(tenant) == []


def test_an_inactive_default_calendar_pauses_writes(google_rep, sink):
    sync.mark_calendar_inactive(google_rep.default, "Unshared.")
    db.session.commit()
    meeting = google_rep.log()
    assert meeting.uid is None
    assert rows(google_rep.tenant) == []


# --- Retries never duplicate ----------------------------------------------------------------------------


def test_a_rate_limited_write_waits_for_retry_after_and_writes_one_event(rep, sink):
    rep.harness.fail_next_requests(429, 1, retry_after=120)
    before = utcnow()
    meeting = rep.log()

    [row] = rows(rep.tenant, "calendar.write_meeting")
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at >= before + timedelta(seconds=120)
    assert row.last_error
    assert rep.events(meeting.uid) == []

    outbox.deliver(row.id, now=row.next_attempt_at)  # the sweeper's turn, once it is due
    db.session.commit()
    db.session.expire_all()
    assert (row.status, row.attempts) == ("delivered", 2)
    assert len(rep.events(meeting.uid)) == 1
    assert meeting.provider_event_id
    if rep.name == "caldav":
        assert len(sink.messages) == 1


def test_a_write_whose_answer_was_lost_is_written_once_when_run_again(app, rep, queued, sink):
    meeting = rep.log()
    [(_queue, func, (outbox_id,), _job_id)] = queued
    assert func == outbox.DELIVER_JOB

    with app.app_context():  # a worker: the provider call succeeds, then the worker dies before its commit
        outbox.deliver(outbox_id, now=utcnow())
        db.session.rollback()
    assert len(rep.events(meeting.uid)) == 1
    db.session.expire_all()
    assert meeting.provider_event_id is None
    row = db.session.get(OutboxMessage, outbox_id)
    assert (row.status, row.attempts) == ("pending", 1)  # the attempt was committed before the provider call
    lease_end = row.next_attempt_at

    with app.app_context(), transaction.job():  # too early: the dead attempt's lease still holds the row
        jobs.deliver(outbox_id)
    with app.app_context(), transaction.job():  # its lease ran out: the sweeper enqueues it, a worker runs it
        outbox.deliver(outbox_id, now=lease_end)
    db.session.expire_all()
    assert len(rep.events(meeting.uid)) == 1
    assert meeting.provider_event_id
    row = db.session.get(OutboxMessage, outbox_id)
    assert (row.status, row.attempts) == ("delivered", 2)
    if rep.name == "google":
        assert [n[0] for n in rep.harness.emulator.notifications] == ["insert"]  # invited once
    if rep.name == "microsoft":
        assert len(rep.harness.emulator.outbox) == 1
    if rep.name == "caldav":
        assert len(rows(rep.tenant, "mail.send")) == 1  # the invitation went with the commit that counted


def test_a_second_delivery_of_a_done_write_changes_nothing(google_rep, sink):
    meeting = google_rep.log()
    [row] = rows(google_rep.tenant, "calendar.write_meeting")
    requests_before = google_rep.harness.request_count
    writes.write_meeting(google_rep.tenant.id, row.payload)
    assert google_rep.harness.request_count == requests_before
    assert len(google_rep.events(meeting.uid)) == 1


# --- Cancelling -------------------------------------------------------------------------------------------


def test_cancelling_removes_the_event_and_tells_the_attendees(rep, sink):
    meeting = rep.log()
    assert len(rep.events(meeting.uid)) == 1

    crm.cancel_meeting(rep.tenant, meeting)
    db.session.commit()
    db.session.expire_all()

    assert rep.events(meeting.uid) == []
    assert [r.status for r in rows(rep.tenant, "calendar.cancel_meeting")] == ["delivered"]
    if rep.name == "google":
        assert rep.harness.emulator.notifications[-1] == (
            "delete",
            rep.default.external_id,
            meeting.provider_event_id,
            "all",
        )
    if rep.name == "microsoft":
        assert [m.kind for m in rep.harness.emulator.outbox] == ["invitation", "cancellation"]
    if rep.name == "caldav":
        request, cancel = sink.messages
        assert cancel["Subject"].strip().startswith("Cancelled: Discovery call @ Mon 06 May 2030 10:00")
        method, parsed = calendar_part(cancel)
        assert (method, str(parsed["METHOD"])) == ("CANCEL", "CANCEL")
        event = only_event(parsed)
        assert str(event["UID"]) == meeting.uid
        assert str(event["STATUS"]) == "CANCELLED"
        assert int(event["SEQUENCE"]) > int(only_event(calendar_part(request)[1])["SEQUENCE"])
        assert [p.get_filename() for p in cancel.iter_attachments()] == ["cancel.ics"]
    else:
        assert sink.messages == []


def test_cancelling_twice_cancels_once(google_rep, sink):
    meeting = google_rep.log()
    crm.cancel_meeting(google_rep.tenant, meeting)
    crm.cancel_meeting(google_rep.tenant, meeting)
    db.session.commit()
    assert len(rows(google_rep.tenant, "calendar.cancel_meeting")) == 1


def test_a_meeting_cancelled_before_its_write_never_reaches_the_calendar(google_rep, sink):
    google_rep.harness.fail_next_requests(503, 1)
    meeting = google_rep.log()
    [write] = rows(google_rep.tenant, "calendar.write_meeting")
    assert write.status == "pending"

    crm.cancel_meeting(google_rep.tenant, meeting)
    db.session.commit()
    outbox.deliver(write.id, now=write.next_attempt_at)
    db.session.commit()
    db.session.expire_all()

    assert [r.status for r in rows(google_rep.tenant)] == ["delivered", "delivered"]
    assert google_rep.harness.server_events(google_rep.default.external_id) == []
    assert google_rep.harness.emulator.notifications == []


def test_a_meeting_that_came_from_the_calendar_is_not_cancelled_there(google_rep, sink):
    meeting = factories.make_meeting(
        google_rep.tenant, google_rep.user, [google_rep.contact], source="calendar"
    )
    meeting.uid, meeting.calendar_id, meeting.provider_event_id = (
        "theirs@example.com",
        google_rep.default.id,
        "x1",
    )
    crm.cancel_meeting(google_rep.tenant, meeting)
    db.session.commit()
    assert rows(google_rep.tenant) == []


# --- Failures (C11) ---------------------------------------------------------------------------------------


def test_a_revoked_grant_fails_the_write_and_puts_the_account_inactive(google_rep, sink):
    google_rep.harness.revoke_grant()
    meeting = google_rep.log()
    [row] = rows(google_rep.tenant, "calendar.write_meeting")
    assert row.status == "failed"
    assert row.last_error
    assert google_rep.connection.status == "inactive"
    assert google_rep.connection.inactive_reason == row.last_error
    assert meeting.provider_event_id is None


def test_a_lost_calendar_fails_the_write_and_puts_the_calendar_inactive(google_rep, sink):
    # What Google answers once the calendar is no longer the account's to write (unshared, deleted).
    google_rep.harness.fail_next_requests(403, 1, reason="forbidden")
    google_rep.log()
    [row] = rows(google_rep.tenant, "calendar.write_meeting")
    assert row.status == "failed"
    assert google_rep.default.status == "inactive"
    assert google_rep.connection.status == "active"
    # The next meeting is only logged until the rep reconnects or removes the calendar.
    assert google_rep.log("Second call").uid is None


def test_a_calendar_removed_before_the_write_fails_it_with_the_reason(google_rep, queued, sink):
    meeting = google_rep.log()
    [(_queue, _func, (outbox_id,), _job_id)] = queued
    sync.disconnect(google_rep.tenant, google_rep.user, google_rep.connection)
    db.session.commit()
    with transaction.job():
        jobs.deliver(outbox_id)
    db.session.expire_all()
    row = db.session.get(OutboxMessage, outbox_id)
    assert row.status == "failed"
    assert "removed" in row.last_error
    assert google_rep.harness.server_events(google_rep.harness.primary_id) == []
    assert meeting.provider_event_id is None


# --- Tenants ----------------------------------------------------------------------------------------------


def test_a_meeting_of_one_tenant_never_writes_into_another_tenants_connection(app, google_rep, sink):
    # The other tenant's rep connected the very same Google account, with its second calendar as default.
    theirs = factories.make_user(google_rep.other_tenant, seat="sales", email="ada@globex.example.com")
    their_connection = connect("google", google_rep.harness, google_rep.other_tenant, theirs)
    second = next(c for c in their_connection.calendars if c.external_id == google_rep.harness.second_id)
    sync.save_choices(
        google_rep.other_tenant,
        theirs,
        their_connection,
        sync.ConnectionChoices(True, True, False, second.id, frozenset()),
    )
    db.session.commit()
    harness = google_rep.harness

    meeting = google_rep.log()
    assert len(google_rep.events(meeting.uid, harness.primary_id)) == 1
    assert google_rep.events(meeting.uid, harness.second_id) == []
    assert rows(google_rep.other_tenant) == []

    # A row of the other tenant naming our meeting finds nothing to write.
    forged = outbox.add(google_rep.other_tenant.id, "calendar.write_meeting", {"meeting_id": meeting.id})
    # And our meeting pointed at their calendar is refused, not written.
    stray = factories.make_meeting(google_rep.tenant, google_rep.user, [google_rep.contact], title="Stray")
    stray.uid, stray.calendar_id = f"stray@{APP_HOST}", second.id
    misdirected = outbox.add(google_rep.tenant.id, "calendar.write_meeting", {"meeting_id": stray.id})
    db.session.commit()
    db.session.expire_all()

    assert db.session.get(OutboxMessage, forged.id).status == "delivered"
    assert db.session.get(OutboxMessage, misdirected.id).status == "failed"
    assert harness.server_events(harness.second_id) == []
    assert len(harness.server_events(harness.primary_id)) == 1
    assert stray.provider_event_id is None


# --- Over HTTP ---------------------------------------------------------------------------------------------


class SignedInClient(Client):
    """conftest's Client, fetching its CSRF token from wherever /login sends a signed-in user."""

    def csrf_token(self) -> str:
        page = self.http.get("/login", base_url=f"http://{APP_HOST}", follow_redirects=True)
        return re.search(r'name="csrf-token" content="([^"]+)"', page.get_data(as_text=True)).group(1)


def test_logging_a_meeting_on_the_record_writes_it_and_emails_the_invitation(
    app, world, sink, caldav_harness, radicale_server
):
    ours, theirs = world
    with app.app_context():
        tenant, rep = db.session.get(Tenant, ours.tenant_id), db.session.get(User, ours.rep_id)
        connection = connect("caldav", caldav_harness, tenant, rep)
        default_url = connection.default_calendar.external_id
        db.session.commit()
    client = SignedInClient(app)
    client.login(ours.rep_email)

    response = client.post_form(
        f"/crm/contacts/{ours.contact_id}/meetings",
        {"title": "Demo", "date": "2030-07-01", "start_time": "10:00", "duration": "30"},
    )

    assert response.status_code == 303
    with app.app_context():
        meeting = db.session.scalar(
            sa.select(Meeting).where(Meeting.tenant_id == ours.tenant_id, Meeting.title == "Demo")
        )
        assert meeting.provider_event_id
        kinds = [(r.kind, r.status) for r in rows(db.session.get(Tenant, ours.tenant_id))]
        assert kinds == [("calendar.write_meeting", "delivered"), ("mail.send", "delivered")]
        assert rows(db.session.get(Tenant, theirs.tenant_id)) == []
        uid = meeting.uid
        meeting_id = meeting.id
    assert [
        str(e["UID"]) for _, parsed in [radicale_server.find(default_url, uid)] for e in parsed.walk("VEVENT")
    ] == [uid]
    [invitation] = sink.messages
    assert invitation["To"] == ours.contact_email
    assert calendar_part(invitation)[0] == "REQUEST"

    response = client.post_form(f"/crm/meetings/{meeting_id}/cancel")
    assert response.status_code == 303
    with pytest.raises(LookupError):
        radicale_server.find(default_url, uid)
    assert calendar_part(sink.messages[-1])[0] == "CANCEL"


def test_logging_a_meeting_without_calendar_sync_queues_nothing(app, world, sink):
    _, theirs = world
    client = SignedInClient(app)
    client.login(theirs.rep_email)
    response = client.post_form(
        f"/crm/contacts/{theirs.contact_id}/meetings",
        {"title": "Quiet", "date": "2030-07-01", "start_time": "10:00", "duration": "30"},
    )
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalar(sa.select(Meeting).where(Meeting.title == "Quiet")).uid is None
        assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 0
    assert sink.messages == []
