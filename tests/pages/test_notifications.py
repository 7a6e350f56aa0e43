"""The emails of a booking (P6, C11): who gets what, in which language and zone, with which links and .ics."""

from datetime import datetime

import icalendar
import pytest
import sqlalchemy as sa
from flask_babel import force_locale
from flask_babel import gettext as _

from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages import notifications
from app.pages import services as pages
from app.sync import services as sync
from app.sync.providers.base import Account, RemoteCalendar
from tests import factories
from tests.conftest import APP_HOST
from tests.pages.helpers import NOW, at, booking_request

REP_EMAIL = "ada@acme.example"
VISITOR = "vera@example.org"


def _request(start: datetime, **fields) -> pages.BookingRequest:
    defaults = {"email": VISITOR, "time_zone": "America/New_York", "locale": "en"}
    return booking_request(start, **{**defaults, **fields})


def mails(tenant_id: int | None = None) -> list[dict]:
    """The queued "mail.send" payloads, oldest first (with the tenant they were queued for)."""
    query = sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send").order_by(OutboxMessage.id)
    return [{**row.payload, "tenant_id": row.tenant_id} for row in db.session.scalars(query)]


def mail_to(address: str) -> list[dict]:
    return [mail for mail in mails() if address in mail["to"]]


def event_of(ics: str) -> tuple[str, icalendar.Event]:
    calendar = icalendar.Calendar.from_ical(ics)
    [event] = calendar.walk("VEVENT")
    return str(calendar["METHOD"]), event


@pytest.fixture
def tenant(app_ctx):
    return factories.make_tenant("Acme")


@pytest.fixture
def rep(tenant):
    return factories.make_user(tenant, email=REP_EMAIL, name="Ada Rep", time_zone="Europe/Warsaw")


@pytest.fixture
def page(rep):
    return factories.make_page(
        rep,
        title="Intro call",
        location="Video call (link follows)",
        confirmation_message="Bring your questions!",
        questions=[{"id": "q1", "label": "Company size", "kind": "text", "required": False}],
    )


def book(page, **fields) -> pages.BookingResult:
    answers = ({"id": "q1", "label": "Company size", "answer": "50 people"},)
    return pages.book(page, _request(fields.pop("start", at(10)), answers=answers, **fields), now=NOW)


# --- Confirmation ------------------------------------------------------------------------------------------


def test_visitor_confirmation_says_what_when_and_how_to_change_it(page, rep):
    result = book(page)
    booking, token = result.booking, result.token

    [mail] = mail_to(VISITOR)
    assert mail["to"] == [VISITOR]
    assert (
        mail["subject"]
        == "Booked: Intro call with Ada Rep, Monday, 7 January 2030, 04:00-04:30 (New York time)"
    )
    assert mail["reply_to"] == REP_EMAIL
    assert mail["sender_name"] == "Ada Rep"
    text = mail["text"]
    assert "Hello Vera," in text
    assert "What: Intro call with Ada Rep" in text
    # 10:00 in Warsaw is 4:00 in New York, the visitor's zone, which is named.
    assert "When: Monday, 7 January 2030, 04:00-04:30 (New York time)" in text
    assert "Duration: 30 min" in text
    assert "Where: Video call (link follows)" in text
    assert "Bring your questions!" in text
    base = f"http://{APP_HOST}/meetings/booking/{token}"
    assert f"Your booking: {base}\n" in text
    assert f"Reschedule: {base}/reschedule\n" in text
    assert f"Cancel: {base}/cancel\n" in text
    assert pages.get_booking_by_token(token) == booking


def test_visitor_confirmation_carries_the_invitation_with_the_meetings_uid(page, rep):
    booking = book(page).booking
    meeting = booking.meeting

    [mail] = mail_to(VISITOR)
    assert mail["ics_method"] == "REQUEST"
    method, event = event_of(mail["ics"])
    assert method == "REQUEST"
    # No calendar account: the meeting is only logged, yet it got a UID the invitation and its updates share.
    assert meeting.uid
    assert meeting.uid.endswith(f"@{APP_HOST}")
    assert str(event["UID"]) == meeting.uid
    assert event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == at(10)
    assert event.decoded("DTEND") == at(10, 30)
    assert str(event["ORGANIZER"]) == f"mailto:{REP_EMAIL}"
    assert event["ORGANIZER"].params["CN"] == "Ada Rep"
    assert str(event["ATTENDEE"]) == f"mailto:{VISITOR}"
    assert event["ATTENDEE"].params["CN"] == "Vera Visitor"
    assert str(event["LOCATION"]) == "Video call (link follows)"
    assert str(event["SUMMARY"]) == "Intro call with Ada Rep"


def connect(tenant, rep, provider: str, email: str = "ada@calendar.example"):
    return sync.connect(
        tenant,
        rep,
        provider=provider,
        account=Account(id="acct-1", email=email),
        calendars=[RemoteCalendar("main", "Main", "owner", is_primary=True)],
        secret={"password": "not used"} if provider == "caldav" else {"access_token": "not used"},
    )


@pytest.mark.parametrize("provider", ["caldav", "google", "microsoft"])
def test_the_invitation_shares_the_uid_of_the_calendar_write(page, rep, tenant, provider):
    connection = connect(tenant, rep, provider)
    result = book(page)
    meeting = result.booking.meeting

    kinds = db.session.scalars(sa.select(OutboxMessage.kind)).all()
    assert "calendar.write_meeting" in kinds
    assert meeting.calendar_id == connection.default_calendar.id
    [mail] = mail_to(VISITOR)
    base = f"http://{APP_HOST}/meetings/booking/{result.token}"
    if provider == "caldav":
        # No CalDAV server mails attendees: Termin's confirmation is the invitation.
        method, event = event_of(mail["ics"])
        assert (mail["ics_method"], method) == ("REQUEST", "REQUEST")
        assert str(event["UID"]) == meeting.uid
        # The organizer is the account the event is written with, as in the rep's own calendar.
        assert str(event["ORGANIZER"]) == "mailto:ada@calendar.example"
        assert "The attached invitation puts the meeting in your calendar." in mail["text"]
    else:
        # Google and Exchange invite the visitor themselves: a second invitation here would be a second
        # event in the visitor's calendar. The confirmation carries no calendar object at all.
        assert (mail["ics"], mail["ics_method"]) == (None, None)
        assert "Ada Rep's calendar sends you the invitation in a separate email" in mail["text"]
    # Either way the visitor may add the meeting themselves: an event to add, not one to answer.
    assert "Google Calendar: https://calendar.google.com/calendar/render?action=TEMPLATE&" in mail["text"]
    assert "Outlook.com: https://outlook.live.com/calendar/0/deeplink/compose?" in mail["text"]
    assert f"Other calendar apps (.ics file): {base}/invite.ics\n" in mail["text"]
    # The rep is not told the meeting missed their calendar: it did not.
    [notice] = mail_to(REP_EMAIL)
    assert "not written to a calendar" not in notice["text"]


@pytest.mark.parametrize("provider", ["google", "microsoft"])
def test_reschedule_and_cancel_leave_the_invitations_to_the_provider(page, rep, tenant, provider):
    connect(tenant, rep, provider)
    result = book(page)
    booking = result.booking
    booking.meeting.provider_event_id = "written"  # the write went through: the provider invited

    pages.reschedule_booking(booking, at(14), result.token, now=NOW)
    pages.cancel_booking(booking, by_visitor=False, now=NOW)

    confirmation, moved, cancelled = mail_to(VISITOR)
    assert [m["ics"] for m in (confirmation, moved, cancelled)] == [None, None, None]
    assert "sends you the updated invitation in a separate email" in moved["text"]
    assert "sends you the cancellation in a separate email" in cancelled["text"]


@pytest.mark.parametrize("login", ["rita", ""])
def test_a_caldav_login_that_is_no_address_is_never_the_organizer(page, rep, tenant, login):
    connect(tenant, rep, "caldav", email=login)
    result = book(page)

    [mail] = mail_to(VISITOR)
    _method, event = event_of(mail["ics"])
    assert str(event["ORGANIZER"]) == f"mailto:{REP_EMAIL}"  # the rep's own address: replies reach them
    assert mail["reply_to"] == REP_EMAIL
    added = icalendar.Calendar.from_ical(notifications.calendar_file(result.booking, result.token))
    [event] = added.walk("VEVENT")
    assert str(event["ORGANIZER"]) == f"mailto:{REP_EMAIL}"


def test_rep_is_told_who_booked_with_the_answers_and_the_contact_link(page, rep):
    booking = book(page).booking

    [mail] = mail_to(REP_EMAIL)
    assert mail["to"] == [REP_EMAIL]
    assert mail["reply_to"] == VISITOR
    assert mail["ics"] is None
    # The rep's zone, not the visitor's; nothing the visitor typed in the subject.
    assert mail["subject"] == (
        "New booking on “Intro call”: Monday, 7 January 2030, 10:00-10:30 (Warsaw time)"
    )
    text = mail["text"]
    assert f"Vera Visitor ({VISITOR}) booked “Intro call” with you." in text
    assert "Their answers:\nCompany size: 50 people" in text
    assert f"Contact record in Termin: http://{APP_HOST}/crm/contacts/{booking.contact.id}\n" in text
    assert "not written to a calendar" in text
    assert len(mails()) == 2


def test_a_polish_visitor_gets_polish_and_the_rep_their_own_language(page, rep):
    book(page, locale="pl", time_zone="Europe/Warsaw")

    [mail] = mail_to(VISITOR)
    with force_locale("pl"):
        assert mail["subject"].startswith(_("Booked: %(what)s, %(when)s", what="", when="").rstrip(", "))
        assert _("Hello %(name)s,", name="Vera") in mail["text"]
    assert "poniedziałek, 7 stycznia 2030, 10:00-10:30 (czas: Warszawa)" in mail["text"]
    [notice] = mail_to(REP_EMAIL)
    assert "Monday, 7 January 2030" in notice["text"]
    assert "poniedziałek" not in notice["text"]


def test_a_polish_rep_gets_polish(tenant):
    rep = factories.make_user(tenant, locale="pl", time_zone="Europe/Warsaw")
    page = factories.make_page(rep)
    book(page)

    [notice] = mail_to(rep.email)
    assert "poniedziałek, 7 stycznia 2030, 10:00-10:30 (czas: Warszawa)" in notice["subject"]
    [mail] = mail_to(VISITOR)
    assert "Monday, 7 January 2030" in mail["subject"]


def test_links_follow_the_pages_verified_domain(page, rep, tenant):
    domain = factories.make_domain(tenant, "meet.acme.example")
    page.domain = domain
    db.session.flush()
    result = book(page)

    [mail] = mail_to(VISITOR)
    assert f"Cancel: http://meet.acme.example/meetings/booking/{result.token}/cancel\n" in mail["text"]
    assert APP_HOST not in mail["text"]
    _, event = event_of(mail["ics"])
    assert f"http://meet.acme.example/meetings/booking/{result.token}" in str(event["DESCRIPTION"])
    # The rep's link to the CRM stays on the app host.
    [notice] = mail_to(REP_EMAIL)
    assert f"http://{APP_HOST}/crm/contacts/{result.booking.contact.id}" in notice["text"]


def test_a_pending_domain_leaves_links_on_the_app_host(page, rep, tenant):
    page.domain = factories.make_domain(tenant, "soon.acme.example", status="pending")
    db.session.flush()
    result = book(page)

    [mail] = mail_to(VISITOR)
    assert f"http://{APP_HOST}/meetings/booking/{result.token}/cancel" in mail["text"]
    assert "soon.acme.example" not in mail["text"]


def test_the_same_booking_again_sends_nothing_new(page):
    book(page)
    again = book(page)

    assert not again.created
    assert len(mails()) == 2


# --- Reschedule --------------------------------------------------------------------------------------------


def test_reschedule_tells_both_sides_with_a_newer_invitation(page, rep):
    result = book(page)
    booking = result.booking
    uid = booking.meeting.uid

    pages.reschedule_booking(booking, at(11), result.token, now=NOW)

    visitor_mails = mail_to(VISITOR)
    assert len(visitor_mails) == 2
    mail = visitor_mails[-1]
    assert mail["subject"] == (
        "Rescheduled: Intro call with Ada Rep, now Monday, 7 January 2030, 05:00-05:30 (New York time)"
    )
    assert "Previous time: Monday, 7 January 2030, 04:00-04:30 (New York time)" in mail["text"]
    assert f"Reschedule: http://{APP_HOST}/meetings/booking/{result.token}/reschedule" in mail["text"]
    method, event = event_of(mail["ics"])
    assert method == "REQUEST"
    assert str(event["UID"]) == uid == booking.meeting.uid
    assert booking.meeting.sequence == 1
    assert event["SEQUENCE"] == 1
    assert event.decoded("DTSTART") == at(11)
    assert str(event["ATTENDEE"]) == f"mailto:{VISITOR}"

    notice = mail_to(REP_EMAIL)[-1]
    assert notice["subject"].startswith("Booking on “Intro call” moved to Monday, 7 January 2030, 11:00")
    assert "Previous time: Monday, 7 January 2030, 10:00-10:30 (Warsaw time" in (notice["text"])
    assert notice["ics"] is None


# --- Cancel ------------------------------------------------------------------------------------------------


def test_visitor_cancelling_tells_the_rep_why_and_takes_it_out_of_their_calendar(page, rep):
    result = book(page)
    booking = result.booking
    pages.reschedule_booking(booking, at(11), result.token, now=NOW)

    pages.cancel_booking(booking, reason="Found another vendor", by_visitor=True, now=NOW)

    notice = mail_to(REP_EMAIL)[-1]
    assert notice["subject"].startswith("Booking on “Intro call” cancelled: Monday, 7 January 2030, 11:00")
    assert "Their reason: Found another vendor" in notice["text"]
    assert f"/crm/contacts/{booking.contact.id}" in notice["text"]
    mail = mail_to(VISITOR)[-1]
    assert mail["subject"].startswith("Cancelled: Intro call with Ada Rep, Monday, 7 January 2030, 05:00")
    assert mail["ics_method"] == "CANCEL"
    method, event = event_of(mail["ics"])
    assert method == "CANCEL"
    assert str(event["UID"]) == booking.meeting.uid
    # One above the reschedule's invitation, or calendar apps ignore it as stale.
    assert event["SEQUENCE"] == 2
    assert str(event["STATUS"]) == "CANCELLED"
    assert str(event["ATTENDEE"]) == f"mailto:{VISITOR}"


def test_rep_cancelling_offers_the_visitor_to_book_again(page, rep, tenant):
    page.domain = factories.make_domain(tenant, "meet.acme.example")
    db.session.flush()
    booking = book(page).booking
    before = len(mail_to(REP_EMAIL))

    pages.cancel_booking(booking, reason="I am ill, sorry", by_visitor=False, now=NOW)

    assert len(mail_to(REP_EMAIL)) == before  # the rep did it; nothing to tell them
    mail = mail_to(VISITOR)[-1]
    assert "Ada Rep has cancelled your meeting." in mail["text"]
    assert "Reason: I am ill, sorry" in mail["text"]
    assert f"To book another time: http://meet.acme.example/meetings/{rep.page_slug}\n" in mail["text"]
    method, event = event_of(mail["ics"])
    assert (method, event["SEQUENCE"]) == ("CANCEL", 1)


def test_cancelling_after_the_page_was_deleted_offers_no_dead_link(page, rep, tenant):
    booking = book(page).booking
    pages.delete_page(tenant, page)
    db.session.expire(booking, ["page"])

    pages.cancel_booking(booking, by_visitor=False, now=NOW)

    mail = mail_to(VISITOR)[-1]
    assert "To book another time" not in mail["text"]
    assert "What: Meeting with Ada Rep" in mail["text"]
    assert mail["ics_method"] == "CANCEL"


def test_a_visitor_cancelling_without_a_reason(page, rep):
    booking = book(page).booking

    pages.cancel_booking(booking, by_visitor=True, now=NOW)

    assert "They gave no reason." in mail_to(REP_EMAIL)[-1]["text"]


# --- Booking paused (C11) ----------------------------------------------------------------------------------


def _pause(tenant, rep):
    connection = sync.connect(
        tenant,
        rep,
        provider="caldav",
        account=Account(id=f"acct-{rep.id}", email=f"cal-{rep.id}@calendar.example"),
        calendars=[RemoteCalendar("main", "Main", "owner", is_primary=True)],
        secret={"password": "not used"},
    )
    sync.mark_connection_inactive(connection, "The password was changed.")
    return connection


def test_an_attempt_while_paused_tells_the_rep_once_an_hour(page, rep, tenant):
    _pause(tenant, rep)

    with pytest.raises(pages.BookingPaused):
        book(page)
    with pytest.raises(pages.BookingPaused):
        book(page, email="second@example.org", idempotency_key="k2")

    [mail] = mails()
    assert mail["to"] == [REP_EMAIL]
    assert mail["subject"] == "Someone tried to book you on “Intro call” while booking is paused"
    text = mail["text"]
    assert f"{VISITOR} tried to book a meeting on your page “Intro call”" in text
    assert "Tuesday, 1 January 2030, 13:00 (Warsaw time)" in text
    assert "Why: The password was changed." in text
    assert f"http://{APP_HOST}/settings/calendars\n" in text
    assert mail_to(VISITOR) == []


def test_a_polish_rep_is_told_in_polish(tenant):
    rep = factories.make_user(tenant, locale="pl", time_zone="Europe/Warsaw")
    page = factories.make_page(rep)
    _pause(tenant, rep)

    with pytest.raises(pages.BookingPaused):
        book(page)

    [mail] = mail_to(rep.email)
    assert "wtorek, 1 stycznia 2030, 13:00 (czas: Warszawa)" in mail["text"]
    with force_locale("pl"):
        assert mail["subject"] == _(
            "Someone tried to book you on “%(page)s” while booking is paused", page=page.title
        )


# --- Tenants -----------------------------------------------------------------------------------------------


def test_nothing_reaches_another_tenants_rep(page, rep, tenant):
    globex = factories.make_tenant("Globex")
    stranger = factories.make_user(globex, email="sam@globex.example")
    factories.make_page(stranger)
    # The visitor is already a contact at Globex; Acme's booking mails only Acme's people.
    factories.make_contact(globex, email=VISITOR)
    result = book(page)
    pages.reschedule_booking(result.booking, at(11), result.token, now=NOW)
    pages.cancel_booking(result.booking, by_visitor=True, now=NOW)
    _pause(tenant, rep)
    with pytest.raises(pages.BookingPaused):
        book(page, idempotency_key="k2", start=at(12))

    sent = mails()
    assert len(sent) == 7
    assert {mail["tenant_id"] for mail in sent} == {tenant.id}
    assert {address for mail in sent for address in mail["to"]} == {VISITOR, REP_EMAIL}
    assert all(stranger.email not in mail["text"] for mail in sent)
    assert result.booking.contact.tenant_id == tenant.id


# --- Through a real SMTP server ----------------------------------------------------------------------------


def test_the_confirmation_reaches_an_smtp_server_as_an_imip_message(page, rep, sink):
    booking = book(page).booking
    uid = booking.meeting.uid

    db.session.commit()

    assert {row.status for row in db.session.scalars(sa.select(OutboxMessage))} == {"delivered"}
    by_recipient = {
        envelope.rcpt_tos: message for envelope, message in zip(sink.envelopes, sink.messages, strict=True)
    }
    assert set(by_recipient) == {(VISITOR,), (REP_EMAIL,)}
    sent = by_recipient[(VISITOR,)]
    assert sent["Reply-To"] == REP_EMAIL
    assert sent["From"].addresses[0].display_name == "Ada Rep via Termin"
    assert sent["Subject"].startswith("Booked: Intro call with Ada Rep")
    [calendar_part] = [part for part in sent.walk() if part.get_content_type() == "text/calendar"]
    assert calendar_part.get_param("method") == "REQUEST"
    parsed = icalendar.Calendar.from_ical(calendar_part.get_content())
    [event] = parsed.walk("VEVENT")
    assert str(event["UID"]) == uid
    [attachment] = [part for part in sent.walk() if part.get_filename() == "invite.ics"]
    assert b"METHOD:REQUEST" in attachment.get_content()
    plain = next(part for part in sent.walk() if part.get_content_type() == "text/plain")
    assert "/meetings/booking/" in plain.get_content()
    notice = by_recipient[(REP_EMAIL,)]
    assert notice["Reply-To"] == VISITOR
    assert not [part for part in notice.walk() if part.get_content_type() == "text/calendar"]
