"""A prospect books a round-robin page and a group page (T1); the events land in the right calendars.

Two reps of one company each connect a real CalDAV account (Radicale). On the round-robin page the visitor
books the first free time: the meeting goes to one member, whose default calendar gets the event and the
other member's does not. On the group page the visitor books again: one event, in the organizer's default
calendar, with the visitor and the other member as attendees; both members' time is held.
"""

from datetime import datetime

import icalendar
import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.extensions import db
from app.pages.models import Booking
from app.sync import services as sync
from tests import factories
from tests.fakes import radicale

pytestmark = pytest.mark.browser

DOMAIN = "meet.teamco.example"


def _connect(server, tenant, user, login: str, default: str):
    connection = sync.connect_caldav(
        tenant, user, server_url=server.url, username=login, password=radicale.PASSWORDS[login]
    )
    by_slug = {
        calendar.external_id.rstrip("/").rsplit("/", 1)[-1]: calendar for calendar in connection.calendars
    }
    calendar = by_slug[default]
    sync.save_choices(
        tenant,
        user,
        connection,
        sync.ConnectionChoices(
            calendar_sync=True,
            scheduling_pages=True,
            task_sync=False,
            default_calendar_id=calendar.id,
            availability_calendar_ids=frozenset({calendar.id}),
        ),
    )


def _uids(server, login: str, slug: str) -> dict[str, icalendar.Event]:
    found = {}
    for _path, text in server.objects(server.calendar_url(login, slug)):
        for event in icalendar.Calendar.from_ical(text).walk("VEVENT"):
            found[str(event["UID"])] = event
    return found


def _book_first_time(browser, url: str, email: str) -> datetime:
    context = browser.new_context(locale="en-US", timezone_id="Europe/Warsaw")
    context.set_default_timeout(10_000)
    visitor = context.new_page()
    errors: list[str] = []
    visitor.on("pageerror", lambda error: errors.append(str(error)))
    visitor.goto(url)
    visitor.locator("#slot-picker a.day[data-day]").first.click()
    slot = visitor.locator("#day-slots a.slot[data-start]").first
    expect(slot).to_be_visible()
    start = datetime.fromisoformat(slot.get_attribute("data-start"))
    slot.click()
    form = visitor.locator("form#booking-form")
    form.locator("#first_name").fill("Paula")
    form.locator("#last_name").fill("Prospect")
    form.locator("#email").fill(email)
    form.locator("button#book-button").click()
    expect(visitor.locator("#booking-status")).to_have_attribute("data-status", "confirmed")
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
    return start


def test_round_robin_and_group_bookings_reach_the_right_calendars(live, browser, radicale_server):
    radicale.reset(radicale_server)
    with live.app.app_context():
        tenant = factories.make_tenant("TeamCo")
        admin = factories.make_user(tenant, role="admin", email="admin@teamco.example")
        rita = factories.make_user(tenant, seat="sales", email="rita@teamco.example", name="Rita Rep")
        owen = factories.make_user(tenant, seat="sales", email="owen@teamco.example", name="Owen Owner")
        domain = factories.make_domain(tenant, DOMAIN)
        _connect(radicale_server, tenant, rita, radicale.REP, radicale.PRIMARY)
        _connect(radicale_server, tenant, owen, radicale.OWNER2, radicale.SHARED)
        members = [{"user_id": rita.id}, {"user_id": owen.id}]
        common = dict(domain_id=domain.id, min_notice=0, members=members)
        factories.make_page(admin, slug="sales", title="Talk to sales", kind="round_robin", **common)
        factories.make_page(admin, slug="all-hands", title="Meet the team", kind="group", **common)
        ids = {rita.id: (radicale.REP, radicale.PRIMARY), owen.id: (radicale.OWNER2, radicale.SHARED)}
        db.session.commit()

    start = _book_first_time(browser, live.url("/meetings/team/sales", host=DOMAIN), "paula@prospect.example")
    with live.app.app_context():
        booking = db.session.scalar(sa.select(Booking).where(Booking.email == "paula@prospect.example"))
        assert booking.start_at == start
        owner_id, uid = booking.owner_id, booking.meeting.uid
    other_id = next(user_id for user_id in ids if user_id != owner_id)
    assert uid in _uids(radicale_server, *ids[owner_id])  # the assigned member's default calendar
    assert uid not in _uids(radicale_server, *ids[other_id])  # and not the other member's

    group_start = _book_first_time(
        browser, live.url("/meetings/team/all-hands", host=DOMAIN), "gina@prospect.example"
    )
    with live.app.app_context():
        group = db.session.scalar(
            sa.select(Booking).where(Booking.email == "gina@prospect.example", Booking.parent_id.is_(None))
        )
        assert group.start_at == group_start
        assert group.start_at != start or group.owner_id != owner_id  # never a double-booked member
        organizer_id, group_uid = group.owner_id, group.meeting.uid
        assert [row.owner_id for row in group.companions] == [next(i for i in ids if i != organizer_id)]
        co_host_email = group.companions[0].owner.email
    event = _uids(radicale_server, *ids[organizer_id])[group_uid]
    listed = event.get("ATTENDEE", [])
    listed = listed if isinstance(listed, list) else [listed]
    attendees = {str(value).lower().removeprefix("mailto:") for value in listed}
    assert {"gina@prospect.example", co_host_email} <= attendees
