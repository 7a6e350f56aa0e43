"""The visitor's own booking: its page, cancel and reschedule, by token alone, on the page's host only."""

import re
from datetime import UTC

import icalendar
import pytest
import sqlalchemy as sa

from app.extensions import db
from app.pages import services as pages
from app.pages.models import Booking
from app.tenants.models import Domain, User
from tests.conftest import APP_HOST
from tests.helpers import error_fields, is_fragment, snapshot
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, NOW, make_inactive_calendar

START = "2030-01-07T10:00:00+01:00"


def book(client, path: str, start: str = START, **fields) -> str:
    """Book through the JSON twin; the booking's own path (/meetings/booking/<token>)."""
    body = {
        "start": start,
        "first_name": "Vera",
        "last_name": "Visitor",
        "email": "vera@example.org",
        "tz": "Europe/Warsaw",
        **fields,
    }
    response = client.post(f"{path}/book", json=body)
    assert response.status_code == 201, response.get_json()
    return "/" + response.get_json()["booking"]["manage_url"].split("/", 3)[3]


def csrf_of(response) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True)).group(1)


def the_booking(app) -> Booking:
    with app.app_context():
        (booking,) = db.session.scalars(sa.select(Booking)).all()
        db.session.expunge_all()
        return booking


def test_the_booking_page_shows_it_in_the_visitors_zone(site, client):
    path = book(client, site.intro_path, tz="Asia/Kolkata")

    response = client.get(path)

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'data-status="confirmed"' in body
    assert "2:30" in body  # 10:00 in Warsaw is 14:30 in Kolkata
    assert "Asia/Kolkata" in body
    assert "Intro call" in body
    assert response.headers["X-Robots-Tag"] == "noindex"
    # Another zone on request.
    assert "10:00" in client.get(f"{path}?tz=Europe/Warsaw").get_data(as_text=True)


@pytest.mark.parametrize("suffix", ["", "/cancel", "/reschedule", "/invite.ics"])
def test_a_forged_token_is_404(site, client, suffix):
    book(client, site.intro_path)
    assert client.get(f"/meetings/booking/{'A' * 43}{suffix}").status_code == 404
    assert client.get(f"/meetings/booking/x{suffix}").status_code == 404
    assert client.get(f"/meetings/booking/{'A' * 200}{suffix}").status_code == 404


@pytest.mark.parametrize("suffix", ["", "/cancel", "/reschedule", "/invite.ics"])
def test_a_booking_is_not_served_on_another_tenants_domain(app, site, make_client, suffix):
    path = book(make_client(ACME_HOST), site.demo_path, q_q1="Initech", q_q2="1-10", consent=True)
    before = snapshot(app)

    globex = make_client(GLOBEX_HOST)
    assert globex.get(f"{path}{suffix}").status_code == 404
    assert globex.post(f"{path}{suffix}", data={"reason": "x"}).status_code in (400, 404)
    assert snapshot(app) == before


def test_the_token_on_the_wrong_host_of_its_tenant_moves_there(app, site, client, make_client):
    on_domain = book(make_client(ACME_HOST), site.demo_path, q_q1="Initech", q_q2="1-10", consent=True)
    on_app = book(client, site.intro_path, start="2030-01-07T11:00:00+01:00")

    from_app = client.get(f"{on_domain}/cancel?tz=Asia/Kolkata")
    assert from_app.status_code == 301
    assert from_app.headers["Location"] == f"http://{ACME_HOST}{on_domain}/cancel?tz=Asia/Kolkata"
    from_domain = make_client(ACME_HOST).get(on_app)
    assert from_domain.status_code == 301
    assert from_domain.headers["Location"] == f"http://{APP_HOST}{on_app}"


def test_links_on_a_removed_domain_still_lead_to_the_booking(app, site, make_client):
    path = book(make_client(ACME_HOST), site.demo_path, q_q1="Initech", q_q2="1-10", consent=True)
    with app.app_context():
        domain = db.session.get(Domain, site.acme_domain_id)
        domain.status, domain.removed_at = "removed", NOW
        db.session.commit()

    response = make_client(ACME_HOST).get(f"{path}/reschedule")

    assert response.status_code == 301
    assert response.headers["Location"] == f"http://{APP_HOST}{path}/reschedule"


def test_the_booking_page_offers_the_meeting_to_add_to_a_calendar_not_an_invitation(app, site, client):
    path = book(client, site.intro_path)
    page = client.get(path).get_data(as_text=True)
    assert 'id="ics-link"' in page
    # Google Calendar's and Outlook on the web's "new event" links, with the booking's title and UTC times.
    start = pages.parse_start(START).astimezone(UTC)
    assert "https://calendar.google.com/calendar/render?action=TEMPLATE&amp;text=" in page
    assert f"dates={start:%Y%m%dT%H%M%SZ}%2F" in page
    assert "https://outlook.live.com/calendar/0/deeplink/compose?path=%2Fcalendar%2Faction%2Fcompose" in page
    assert f"startdt={start:%Y-%m-%dT%H}%3A" in page
    assert "https://outlook.office.com/calendar/0/deeplink/compose?" in page

    response = client.get(f"{path}/invite.ics")

    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    assert response.headers["Content-Disposition"] == 'attachment; filename="meeting.ics"'
    calendar = icalendar.Calendar.from_ical(response.get_data())
    (event,) = calendar.walk("VEVENT")
    booking = the_booking(app)
    with app.app_context():
        meeting = db.session.get(Booking, booking.id).meeting
        assert str(event["UID"]) == meeting.uid  # the emails' and the rep's calendar's event
    # An event to add: nobody is asked to answer (RFC 5546 PUBLISH names no attendee).
    assert str(calendar["METHOD"]) == "PUBLISH"
    assert "ATTENDEE" not in event
    assert "RSVP" not in response.get_data(as_text=True)
    assert str(event["ORGANIZER"]).startswith("mailto:")
    assert event.decoded("DTSTART") == pages.parse_start(START)

    form = client.get(f"{path}/cancel")
    client.post(f"{path}/cancel", data={"csrf_token": csrf_of(form)})
    assert 'id="add-to-calendar"' not in client.get(path).get_data(as_text=True)
    cancelled = icalendar.Calendar.from_ical(client.get(f"{path}/invite.ics").get_data())
    assert str(cancelled["METHOD"]) == "CANCEL"  # importing it takes the event out again


def test_cancel_with_a_reason(app, site, client):
    path = book(client, site.intro_path)
    form = client.get(f"{path}/cancel")
    assert form.status_code == 200
    assert 'id="cancel-form"' in form.get_data(as_text=True)

    response = client.post(f"{path}/cancel", data={"csrf_token": csrf_of(form), "reason": "Plans changed"})

    assert response.status_code == 303
    assert response.headers["Location"] == f"http://{APP_HOST}{path}"
    booking = the_booking(app)
    assert booking.status == "cancelled"
    assert booking.cancel_reason == "Plans changed"
    assert booking.cancelled_at == NOW
    with app.app_context():
        assert db.session.get(Booking, booking.id).meeting.status == "cancelled"
    page = client.get(path).get_data(as_text=True)
    assert 'data-status="cancelled"' in page
    assert "Plans changed" in page
    assert 'id="cancel-link"' not in page
    assert 'id="book-again"' in page
    # Its time is free again.
    assert START in client.get(f"{site.intro_path}/slots.json?start=2030-01-07&days=1").get_json()["slots"]


def test_cancel_needs_the_forms_token_and_a_short_reason(app, site, client):
    path = book(client, site.intro_path)
    form = client.get(f"{path}/cancel")
    before = snapshot(app)

    assert client.post(f"{path}/cancel", data={"reason": "no token"}).status_code == 400
    too_long = client.post(f"{path}/cancel", data={"csrf_token": csrf_of(form), "reason": "x" * 2001})
    assert too_long.status_code == 422
    assert error_fields(too_long) == {"reason"}
    assert snapshot(app) == before


def test_reschedule_offers_times_around_its_own_then_asks_to_confirm_the_new_one(app, site, client):
    path = book(client, site.intro_path)
    picker = client.get(f"{path}/reschedule?day=2030-01-07")

    assert picker.status_code == 200
    body = picker.get_data(as_text=True)
    starts = re.findall(r'class="slot" data-start="([^"]+)"', body)
    # Its own time counts as free: the visitor may keep it or move it by a slot either way.
    assert "2030-01-07T10:00:00+01:00" in starts
    assert "2030-01-07T09:30:00+01:00" in starts
    assert "2030-01-07T10:30:00+01:00" in starts
    assert "<form" not in body.split('id="day-slots"')[1].split("</section>")[0]  # links: nothing moves yet

    # A time picked: the current one and the new one, and a form to confirm with an optional reason.
    confirm = client.get(f"{path}/reschedule", query_string={"start": "2030-01-08T15:00:00+01:00"})
    assert confirm.status_code == 200
    page = confirm.get_data(as_text=True)
    assert 'id="reschedule-form"' in page
    assert "Monday, January 7, 2030" in page.split('id="current-when"')[1].split("</dd>")[0]
    assert "Tuesday, January 8, 2030" in page.split('id="new-when"')[1].split("</dd>")[0]
    assert 'name="reason"' in page
    assert the_booking(app).start_at.isoformat() == "2030-01-07T09:00:00+00:00"  # nothing moved

    response = client.post(
        f"{path}/reschedule",
        data={"csrf_token": csrf_of(confirm), "start": "2030-01-08T15:00:00+01:00", "reason": "A clash."},
    )

    assert response.status_code == 303
    booking = the_booking(app)
    assert booking.start_at.isoformat() == "2030-01-08T14:00:00+00:00"
    assert booking.rescheduled_at == NOW
    assert booking.reschedule_reason == "A clash."
    with app.app_context():
        assert db.session.get(Booking, booking.id).meeting.start_at == booking.start_at
    shown = client.get(path).get_data(as_text=True)
    assert "Tuesday, January 8, 2030" in shown
    assert 'data-state="rescheduled"' in shown
    assert "Your meeting is rescheduled" in shown


def test_confirming_a_time_taken_meanwhile_shows_the_times_again(app, site, client):
    path = book(client, site.intro_path)
    book(client, site.intro_path, start="2030-01-07T12:00:00+01:00", email="other@example.org")
    response = client.get(f"{path}/reschedule", query_string={"start": "2030-01-07T12:00:00+01:00"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="reschedule-form"' not in body
    assert 'id="slot-message"' in body
    assert 'data-day="2030-01-07"' in body
    bad = client.get(f"{path}/reschedule", query_string={"start": "soon"})
    assert bad.status_code == 422
    assert "start" in error_fields(bad)


def test_a_reschedule_reason_too_long_is_refused_and_nothing_moves(app, site, client):
    path = book(client, site.intro_path)
    confirm = client.get(f"{path}/reschedule", query_string={"start": "2030-01-08T15:00:00+01:00"})
    before = snapshot(app)
    response = client.post(
        f"{path}/reschedule",
        data={"csrf_token": csrf_of(confirm), "start": "2030-01-08T15:00:00+01:00", "reason": "x" * 2001},
    )
    assert response.status_code == 422
    assert error_fields(response) == {"reason"}
    assert 'id="reschedule-form"' in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_reschedule_month_navigation_swaps_the_fragment(site, client):
    path = book(client, site.intro_path)
    response = client.get(f"{path}/reschedule?month=2030-02", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert is_fragment(response)
    assert "February 2030" in response.get_data(as_text=True)


def test_reschedule_onto_a_taken_or_bad_time_is_refused(app, site, client):
    path = book(client, site.intro_path)
    book(client, site.intro_path, start="2030-01-07T12:00:00+01:00", email="other@example.org")
    token = csrf_of(client.get(f"{path}/cancel"))  # the picker's times are links: no form, no token
    before = snapshot(app)

    taken = client.post(
        f"{path}/reschedule", data={"csrf_token": token, "start": "2030-01-07T12:00:00+01:00"}
    )
    off_grid = client.post(
        f"{path}/reschedule", data={"csrf_token": token, "start": "2030-01-07T12:10:00+01:00"}
    )
    garbage = client.post(f"{path}/reschedule", data={"csrf_token": token, "start": "soon"})

    assert taken.status_code == 409
    assert "Someone has just booked that time" in taken.get_data(as_text=True)
    assert off_grid.status_code == 422
    assert "start" in error_fields(off_grid)
    assert garbage.status_code == 422
    assert snapshot(app) == before


def test_reschedule_while_paused_is_503_and_records_the_attempt(app, site, client):
    path = book(client, site.intro_path)
    picker = client.get(f"{path}/reschedule", query_string={"start": "2030-01-08T15:00:00+01:00"})
    make_inactive_calendar(app, site.acme_rep_id)

    assert 'id="booking-paused"' in client.get(f"{path}/reschedule").get_data(as_text=True)
    response = client.post(
        f"{path}/reschedule", data={"csrf_token": csrf_of(picker), "start": "2030-01-08T15:00:00+01:00"}
    )

    assert response.status_code == 503
    assert the_booking(app).start_at.isoformat() == "2030-01-07T09:00:00+00:00"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(pages.BookingAttempt)) == 1


def test_a_cancelled_booking_cannot_be_rescheduled(app, site, client):
    path = book(client, site.intro_path)
    form = client.get(f"{path}/cancel")
    client.post(f"{path}/cancel", data={"csrf_token": csrf_of(form)})

    response = client.post(
        f"{path}/reschedule", data={"csrf_token": csrf_of(form), "start": "2030-01-08T15:00:00+01:00"}
    )

    assert response.status_code == 303
    assert the_booking(app).status == "cancelled"
    assert the_booking(app).start_at.isoformat() == "2030-01-07T09:00:00+00:00"


def test_rep_pages_off_still_lets_the_visitor_see_and_cancel(app, site, client):
    path = book(client, site.intro_path)
    with app.app_context():
        pages.set_pages_disabled(db.session.get(User, site.acme_rep_id), True)
        db.session.commit()

    assert client.get(path).status_code == 200
    assert client.get(f"{path}/reschedule").status_code == 404
    form = client.get(f"{path}/cancel")
    assert client.post(f"{path}/cancel", data={"csrf_token": csrf_of(form)}).status_code == 303
    assert the_booking(app).status == "cancelled"
