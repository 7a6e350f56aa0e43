"""A prospect books a rep on the company's own domain; the rep sees it in the CRM and in one calendar.

P1, P6, C7, C10 and D1 end to end: the public page on a verified custom host, the visitor's time zone
detected and then switched, a slot picked and booked, the confirmation, the contact record with the
meeting, and the event in the rep's default CalDAV calendar (Radicale) and in no other calendar of theirs.
Then the prospect reopens their booking, moves it (the same event moves) and cancels it (the event goes).
"""

import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.crm.models import Meeting
from app.extensions import db
from app.mail.models import OutboxMessage
from app.sync import services as sync
from tests import factories
from tests.fakes import radicale

pytestmark = pytest.mark.browser

DOMAIN = "meet.acme.example"


def _connect_rep_calendars(server, tenant, rep) -> None:
    """The rep's Radicale account: "Calendar" takes bookings, "Second" is only checked for availability."""
    connection = sync.connect_caldav(
        tenant,
        rep,
        server_url=server.url,
        username=radicale.REP,
        password=radicale.PASSWORDS[radicale.REP],
    )
    by_name = {calendar.name: calendar for calendar in connection.calendars}
    sync.save_choices(
        tenant,
        rep,
        connection,
        sync.ConnectionChoices(
            calendar_sync=True,
            scheduling_pages=True,
            task_sync=False,
            default_calendar_id=by_name["Calendar"].id,
            availability_calendar_ids=frozenset({by_name["Calendar"].id, by_name["Second"].id}),
        ),
    )


def test_prospect_books_on_a_custom_domain_and_the_rep_sees_it_in_crm_and_default_calendar(
    live, browser, page, radicale_server
):
    radicale.reset(radicale_server)
    with live.app.app_context():
        tenant = factories.make_tenant("Acme")
        rep = factories.make_user(tenant, seat="sales", email="rita@acme.example", name="Rita Rep")
        domain = factories.make_domain(tenant, DOMAIN)
        factories.make_page(rep, slug="intro", title="Intro call", domain_id=domain.id)
        _connect_rep_calendars(radicale_server, tenant, rep)
        rep_email, rep_slug = rep.email, rep.page_slug
        db.session.commit()

    # The prospect's browser is in Los Angeles: the page shows times there without being asked.
    prospect = browser.new_context(locale="en-US", timezone_id="America/Los_Angeles")
    prospect.set_default_timeout(10_000)
    visitor = prospect.new_page()
    errors: list[str] = []
    visitor.on("pageerror", lambda error: errors.append(str(error)))
    visitor.goto(live.url(f"/meetings/{rep_slug}", host=DOMAIN))
    expect(visitor.locator("#page-title")).to_have_text("Intro call")
    expect(visitor.locator("select#tz")).to_have_value("America/Los_Angeles")

    # They switch to New York: searched by city, applied at once (the list and its button are there
    # without JavaScript).
    search = visitor.get_by_role("combobox", name="Time zone")
    search.fill("New York")
    visitor.get_by_role("option", name=re.compile(r"^New York, United States")).click()
    expect(visitor).to_have_url(re.compile(r"tz=America%2FNew_York"))
    expect(visitor.locator("select#tz")).to_have_value("America/New_York")

    # The first day with free times, then its first time.
    visitor.locator("#slot-picker a.day[data-day]").first.click()
    slot = visitor.locator("#day-slots a.slot[data-start]").first
    expect(slot).to_be_visible()
    start = datetime.fromisoformat(slot.get_attribute("data-start"))
    slot.click()

    form = visitor.locator("form#booking-form")
    expect(form).to_be_visible()
    form.locator("#first_name").fill("Paula")
    form.locator("#last_name").fill("Prospect")
    form.locator("#email").fill("not-an-email")
    form.locator("button#book-button").click()
    expect(visitor.locator("p.error[data-field=email]")).to_be_visible()  # 422, nothing lost
    expect(visitor.locator("#first_name")).to_have_value("Paula")
    visitor.locator("#email").fill("paula@prospect.example")
    visitor.locator("button#book-button").click()

    expect(visitor.locator("#booking-heading")).to_be_visible()
    expect(visitor.locator("#booking-status")).to_have_attribute("data-status", "confirmed")
    new_york = start.astimezone(ZoneInfo("America/New_York"))
    shown = new_york.strftime("%-I:%M")
    expect(visitor.locator("#booking-when")).to_contain_text(shown)
    assert visitor.url.startswith(f"http://{DOMAIN}:")  # the booking's own page stays on the domain
    booking_url = visitor.url  # the booking's page, which its manage link (in the email) opens too

    # "Add to my calendar": Google Calendar and Outlook on the web links, and the meeting as a file to add
    # (METHOD:PUBLISH, nobody asked to answer), downloaded as the browser would.
    adding = visitor.locator("#add-to-calendar")
    expect(adding).to_be_visible()
    google_link = adding.get_by_role("link", name="Google Calendar")
    expect(google_link).to_have_attribute(
        "href", re.compile(r"^https://calendar\.google\.com/.*action=TEMPLATE")
    )
    expect(adding.get_by_role("link", name="Outlook.com")).to_have_attribute(
        "href", re.compile(r"^https://outlook\.live\.com/calendar/0/deeplink/compose\?")
    )
    with visitor.expect_download() as download:
        adding.locator("#ics-link").click()
    assert download.value.suggested_filename == "meeting.ics"
    added = Path(download.value.path()).read_text()
    assert "METHOD:PUBLISH" in added
    assert "ATTENDEE" not in added
    prospect.close()
    assert not errors, f"JavaScript errors on the page: {errors}"

    # The rep finds the prospect in the CRM, with the meeting booked on the page.
    page.goto(live.url("/login"))
    page.get_by_label("Email").fill(rep_email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Search contacts").fill("paula")
    page.locator("#contact-list").get_by_role("link", name=re.compile("Paula Prospect")).click()
    expect(page.get_by_role("heading", name="Paula Prospect")).to_be_visible()
    expect(page.locator("#meetings")).to_contain_text("Intro call")

    with live.app.app_context():
        meeting = db.session.scalar(sa.select(Meeting).where(Meeting.source == "page"))
        assert meeting.start_at == start
        uid = meeting.uid
        kinds = db.session.scalars(
            sa.select(OutboxMessage.kind).where(OutboxMessage.status == "delivered")
        ).all()
    assert "calendar.write_meeting" in kinds  # delivered by its job right after the booking committed

    def uids(slug: str) -> list[str]:
        calendar = radicale_server.calendar_url(radicale.REP, slug)
        found = []
        for _path, text in radicale_server.objects(calendar):
            found += [str(event["UID"]) for event in icalendar.Calendar.from_ical(text).walk("VEVENT")]
        return found

    def events(slug: str, wanted: str) -> list:
        calendar = radicale_server.calendar_url(radicale.REP, slug)
        found = []
        for _path, text in radicale_server.objects(calendar):
            parsed = icalendar.Calendar.from_ical(text)
            found += [event for event in parsed.walk("VEVENT") if str(event["UID"]) == wanted]
        return found

    assert uids(radicale.PRIMARY) == [uid]  # the default calendar only (C7, C10)
    assert uid not in uids(radicale.SECOND)
    assert [event["DTSTART"].dt for event in events(radicale.PRIMARY, uid)] == [start]
    first_sequence = int(events(radicale.PRIMARY, uid)[0].get("SEQUENCE") or 0)

    # Later, the prospect opens their booking again and moves it to another day (issue 5, item 5).
    prospect = browser.new_context(locale="en-US", timezone_id="America/Los_Angeles")
    prospect.set_default_timeout(10_000)
    visitor = prospect.new_page()
    visitor.on("pageerror", lambda error: errors.append(str(error)))
    visitor.goto(booking_url)
    expect(visitor.locator("#booking-status")).to_have_attribute("data-status", "confirmed")
    booked_when = visitor.locator("#booking-when").inner_text()
    visitor.locator("a#reschedule-link").click()
    booked_day = start.astimezone(ZoneInfo("America/New_York")).date().isoformat()
    other_days = visitor.locator(f"#slot-picker a.day[data-day]:not([data-day='{booked_day}'])")
    expect(visitor.locator("#month-title")).to_be_visible()
    if other_days.count() == 0:  # the booked day was the last of its month with free times
        month = visitor.locator("#month-title").inner_text()
        visitor.locator("a#next-month").click()
        expect(visitor.locator("#month-title")).not_to_have_text(month)
    other_day = other_days.first
    expect(other_day).to_be_visible()
    new_day = other_day.get_attribute("data-day")
    other_day.click()
    expect(visitor.locator("#slot-picker a.day[aria-current=date]")).to_have_attribute("data-day", new_day)
    new_slot = visitor.locator("#day-slots a.slot[data-start]").first
    expect(new_slot).to_be_visible()
    new_start = datetime.fromisoformat(new_slot.get_attribute("data-start"))
    assert new_start.astimezone(ZoneInfo("America/New_York")).date().isoformat() != booked_day
    new_slot.click()
    # Nothing moves until the new time is confirmed.
    expect(visitor.locator("#current-when")).to_have_text(booked_when)
    visitor.locator("button#confirm-reschedule").click()

    expect(visitor.locator("#booking-status")).to_have_attribute("data-status", "confirmed")
    expect(visitor.locator("#booking-when")).not_to_have_text(booked_when)
    expect(visitor.locator("#booking-when")).to_contain_text(
        new_start.astimezone(ZoneInfo("America/New_York")).strftime("%-I:%M")
    )
    assert visitor.url.startswith(f"http://{DOMAIN}:")
    with live.app.app_context():
        meeting = db.session.scalar(sa.select(Meeting).where(Meeting.source == "page"))
        assert (meeting.uid, meeting.start_at, meeting.status) == (uid, new_start, "scheduled")
    # The same event (same UID, same resource) moved in the default calendar, and nowhere else appeared.
    assert uids(radicale.PRIMARY) == [uid]
    assert uid not in uids(radicale.SECOND)
    [moved] = events(radicale.PRIMARY, uid)
    assert moved["DTSTART"].dt == new_start
    assert int(moved.get("SEQUENCE") or 0) > first_sequence

    # Then they cancel it, with a reason.
    visitor.locator("a#cancel-link").click()
    visitor.locator("textarea#reason").fill("Our plans changed.")
    visitor.locator("button#cancel-button").click()
    expect(visitor.locator("#booking-status[data-status=cancelled]")).to_be_visible()
    prospect.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    with live.app.app_context():
        meeting = db.session.scalar(sa.select(Meeting).where(Meeting.source == "page"))
        assert meeting.status == "cancelled"
        cancels = db.session.scalars(
            sa.select(OutboxMessage.status).where(OutboxMessage.kind == "calendar.cancel_meeting")
        ).all()
    assert cancels == ["delivered"]
    # The CalDAV provider cancels by deleting the resource (app/sync/providers/caldav.py cancel_event).
    assert uid not in uids(radicale.PRIMARY)
    assert uid not in uids(radicale.SECOND)
