"""Booking from the public page: JSON and HTML, 201/303, 409, 422, 503, 413, idempotency, isolation."""

import re

import pytest
import sqlalchemy as sa

from app.crm.models import Contact, Meeting
from app.extensions import db
from app.pages import services as pages
from app.pages.models import Booking
from app.tenants.models import User
from tests.helpers import error_fields, snapshot
from tests.pages.helpers import (
    ACME_HOST,
    CONSENT,
    GLOBEX_HOST,
    NOW,
    field_value,
    hidden,
    make_inactive_calendar,
    slot_starts,
)

START = "2030-01-07T10:00:00+01:00"
JSON = {"Accept": "application/json"}


def payload(**fields) -> dict:
    return {
        "start": START,
        "first_name": "Vera",
        "last_name": "Visitor",
        "email": "Vera@Example.org",
        "tz": "Europe/Warsaw",
        **fields,
    }


def demo_payload(**fields) -> dict:
    return {**payload(), "q_q1": "Initech", "q_q2": "11-50", "consent": True, **fields}


def bookings(app) -> list[Booking]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Booking).order_by(Booking.id)).all()
        db.session.expunge_all()
        return rows


def form_for(client, path: str, start: str = START, tz: str = "Europe/Warsaw"):
    """The booking form as the browser gets it, and the fields it would post."""
    response = client.get(path, query_string={"start": start, "tz": tz})
    assert response.status_code == 200, response.get_data(as_text=True)
    fields = {
        name: hidden(response, name) for name in ("csrf_token", "start", "duration", "tz", "idempotency_key")
    }
    return response, fields


# --- JSON ---------------------------------------------------------------------------------------------------


def test_json_booking_answers_201_with_the_booking(app, site, client):
    response = client.post(f"{site.intro_path}/book", json=payload(idempotency_key="client-1"), headers=JSON)

    assert response.status_code == 201, response.get_json()
    booking = response.get_json()["booking"]
    assert booking["status"] == "confirmed"
    assert booking["start"] == START
    assert booking["end"] == "2030-01-07T10:30:00+01:00"
    assert booking["duration"] == 30
    assert booking["time_zone"] == "Europe/Warsaw"
    assert booking["email"] == "vera@example.org"
    assert booking["page"] == {"id": site.intro_id, "title": "Intro call"}
    assert booking["manage_url"].startswith("http://app.termin.test/meetings/booking/")
    assert booking["cancel_url"] == booking["manage_url"] + "/cancel"
    assert booking["reschedule_url"] == booking["manage_url"] + "/reschedule"

    with app.app_context():
        row = db.session.get(Booking, booking["id"])
        assert row.tenant_id == site.acme_id
        assert row.meeting.source == "page"
        assert row.contact.email == "vera@example.org"
        assert row.locale == "en"
        token = booking["manage_url"].rsplit("/", 1)[1]
        assert pages.get_booking_by_token(token).id == row.id


def test_a_json_body_or_form_fields_both_work(app, site, client):
    later = "2030-01-07T11:00:00+01:00"
    as_json = client.post(f"{site.intro_path}/book", json=payload(first_name="Jay"), headers=JSON)
    as_form = client.post(
        f"{site.intro_path}/book", data=payload(start=later, first_name="Fay"), headers=JSON
    )

    assert (as_json.status_code, as_form.status_code) == (201, 201), (as_json.get_json(), as_form.get_json())
    by_json, by_form = as_json.get_json()["booking"], as_form.get_json()["booking"]
    assert (by_json["first_name"], by_json["start"]) == ("Jay", START)
    assert (by_form["first_name"], by_form["start"]) == ("Fay", later)
    for key in ("last_name", "email", "time_zone", "duration", "status", "answers", "page"):
        assert by_form[key] == by_json[key], key
    assert by_form["email"] == "vera@example.org"
    rows = bookings(app)
    assert [(b.first_name, b.last_name, b.email) for b in rows] == [
        ("Jay", "Visitor", "vera@example.org"),
        ("Fay", "Visitor", "vera@example.org"),
    ]


def test_json_answers_and_consent_are_kept(app, site, make_client):
    response = make_client(ACME_HOST).post(
        f"{site.demo_path}/book", json=demo_payload(duration=60, q_q3="Coffee, please")
    )

    assert response.status_code == 201, response.get_json()
    body = response.get_json()["booking"]
    assert body["duration"] == 60
    assert body["answers"] == [
        {"id": "q1", "label": "Company", "answer": "Initech"},
        {"id": "q2", "label": "Team size", "answer": "11-50"},
        {"id": "q3", "label": "Anything else?", "answer": "Coffee, please"},
    ]
    assert body["manage_url"].startswith(f"http://{ACME_HOST}/meetings/booking/")
    with app.app_context():
        row = db.session.get(Booking, body["id"])
        assert row.consented_at == NOW
        assert "Company: Initech" in row.meeting.notes


def test_the_same_idempotency_key_twice_is_one_booking(app, site, client):
    first = client.post(f"{site.intro_path}/book", json=payload(idempotency_key="k-1"))
    again = client.post(f"{site.intro_path}/book", json=payload(idempotency_key="k-1"))

    assert first.status_code == 201
    assert again.status_code == 200
    assert again.get_json()["booking"] == first.get_json()["booking"]
    assert len(bookings(app)) == 1


def test_a_taken_slot_is_409(app, site, client):
    assert client.post(f"{site.intro_path}/book", json=payload()).status_code == 201
    before = snapshot(app)

    taken = client.post(f"{site.intro_path}/book", json=payload(email="other@example.org"))

    assert taken.status_code == 409
    assert taken.get_json()["error"] == "slot_taken"
    assert "start" in taken.get_json()["errors"]
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": ""}, "email"),
        ({"email": "x" * 250 + "@example.org"}, "email"),
        ({"first_name": ""}, "first_name"),
        ({"first_name": "   "}, "first_name"),
        ({"last_name": "L" * 81}, "last_name"),
        ({"tz": "Mars/Olympus_Mons"}, "tz"),
        ({"tz": ""}, "tz"),
        ({"start": ""}, "start"),
        ({"start": "tomorrow at ten"}, "start"),
        ({"start": "2030-01-07T10:00:00"}, "start"),  # no offset
        ({"start": "2030-01-07T10:10:00+01:00"}, "start"),  # not on the grid
        ({"start": "2030-01-07T18:00:00+01:00"}, "start"),  # after hours
        ({"start": "2029-12-31T10:00:00+01:00"}, "start"),  # in the past
        ({"start": "2030-01-01T10:00:00+01:00"}, "start"),  # today, but before now
        ({"start": "2030-06-03T10:00:00+02:00"}, "start"),  # beyond the 60-day window
        ({"duration": "45"}, "duration"),
        ({"duration": "thirty"}, "duration"),
        ({"idempotency_key": "k" * 101}, "idempotency_key"),
    ],
)
def test_bad_input_is_422_naming_the_field_and_writes_nothing(app, site, client, fields, field):
    before = snapshot(app)

    response = client.post(f"{site.intro_path}/book", json=payload(**fields))

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert snapshot(app) == before


def test_the_past_and_the_grid_say_why(site, client):
    past = client.post(f"{site.intro_path}/book", json=payload(start="2029-12-31T10:00:00+01:00"))
    off = client.post(f"{site.intro_path}/book", json=payload(start="2030-01-07T10:10:00+01:00"))
    assert "past" in past.get_json()["errors"]["start"]
    assert "not offered" in off.get_json()["errors"]["start"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"q_q1": ""}, "q_q1"),  # a required text question
        ({"q_q1": "x" * 2001}, "q_q1"),
        ({"q_q2": ""}, "q_q2"),  # a required choice
        ({"q_q2": "1000+"}, "q_q2"),  # not one of the choices
        ({"consent": False}, "consent"),
        ({"duration": "45"}, "duration"),
    ],
)
def test_page_questions_and_consent_are_checked(app, site, make_client, fields, field):
    before = snapshot(app)
    response = make_client(ACME_HOST).post(f"{site.demo_path}/book", json=demo_payload(**fields))

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["errors"]
    assert snapshot(app) == before


def test_missing_consent_is_refused(site, make_client):
    body = demo_payload()
    del body["consent"]
    response = make_client(ACME_HOST).post(f"{site.demo_path}/book", json=body)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"consent"}


def test_not_a_json_object_is_422(site, client):
    response = client.post(f"{site.intro_path}/book", data="[1, 2]", content_type="application/json")
    assert response.status_code == 422
    assert "body" in response.get_json()["errors"]


def test_a_10_mb_body_is_413_and_writes_nothing(app, site, client):
    before = snapshot(app)
    big = payload(q_note="x" * (10 * 1024 * 1024))

    as_json = client.post(f"{site.intro_path}/book", json=big)
    as_form = client.post(f"{site.intro_path}/book", data=big)

    assert as_json.status_code == 413
    assert as_json.get_json()["error"] == "too_large"
    assert as_form.status_code == 413
    assert "larger than we accept" in as_form.get_data(as_text=True)
    assert snapshot(app) == before


def test_booking_another_tenants_page_through_a_domain_is_404(app, site, make_client):
    before = snapshot(app)
    on_acme = make_client(ACME_HOST).post(f"{site.globex_path}/book", json=payload())
    on_globex = make_client(GLOBEX_HOST).post(f"{site.demo_path}/book", json=demo_payload())

    assert on_acme.status_code == on_globex.status_code == 404
    assert snapshot(app) == before


def test_a_post_to_the_old_host_is_sent_on_with_308(site, client):
    response = client.post(f"{site.demo_path}/book", json=demo_payload())
    assert response.status_code == 308
    assert response.headers["Location"] == f"http://{ACME_HOST}{site.demo_path}/book"


def test_booking_on_pages_switched_off_is_404(app, site, client):
    with app.app_context():
        pages.set_pages_disabled(db.session.get(User, site.acme_rep_id), True)
        db.session.commit()
    before = snapshot(app)

    response = client.post(f"{site.intro_path}/book", json=payload())

    assert response.status_code == 404
    assert response.get_json()["error"] == "page_unavailable"
    assert snapshot(app) == before


# --- HTML ---------------------------------------------------------------------------------------------------


def test_html_booking_redirects_to_the_booking_page(app, site, make_client):
    host = make_client(ACME_HOST)
    _, fields = form_for(host, site.demo_path, tz="America/New_York")
    assert fields["tz"] == "America/New_York"

    response = host.post(
        f"{site.demo_path}/book",
        data={
            **fields,
            "first_name": "Vera",
            "last_name": "Visitor",
            "email": "vera@example.org",
            "q_q1": "Initech",
            "q_q2": "1-10",
            "consent": "y",
        },
    )

    assert response.status_code == 303, response.get_data(as_text=True)
    location = response.headers["Location"]
    assert location.startswith(f"http://{ACME_HOST}/meetings/booking/")
    confirmation = host.get(location)
    body = confirmation.get_data(as_text=True)
    assert confirmation.status_code == 200
    assert 'data-status="confirmed"' in body
    assert "4:00" in body  # 10:00 in Warsaw is 4:00 AM in New York
    assert "America/New_York" in body
    assert 'id="confirmation-message"' in body
    assert "See you soon!" in body
    assert 'id="cancel-link"' in body
    assert 'id="reschedule-link"' in body
    assert confirmation.headers["X-Robots-Tag"] == "noindex"
    assert '<meta name="robots" content="noindex">' in body
    (row,) = bookings(app)
    assert row.time_zone == "America/New_York"
    assert [a["answer"] for a in row.answers] == ["Initech", "1-10", ""]


def test_html_double_submit_is_one_booking(app, site, client):
    _, fields = form_for(client, site.intro_path)
    data = {**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"}

    first = client.post(f"{site.intro_path}/book", data=data)
    again = client.post(f"{site.intro_path}/book", data=data)

    assert first.status_code == again.status_code == 303
    assert again.headers["Location"] == first.headers["Location"]
    assert len(bookings(app)) == 1


def test_html_redirect_url_after_booking(app, site, client):
    with app.app_context():
        page = db.session.get(pages.SchedulingPage, site.intro_id)
        page.redirect_url = "https://acme.example.com/thanks"
        db.session.commit()
    _, fields = form_for(client, site.intro_path)

    response = client.post(
        f"{site.intro_path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == "https://acme.example.com/thanks"


def test_html_422_keeps_the_fields_and_puts_errors_beside_them(app, site, make_client):
    host = make_client(ACME_HOST)
    _, fields = form_for(host, site.demo_path)
    before = snapshot(app)

    response = host.post(
        f"{site.demo_path}/book",
        data={**fields, "first_name": "Vera", "last_name": "", "email": "vera@", "q_q1": "Initech"},
    )

    assert response.status_code == 422
    assert error_fields(response) == {"last_name", "email", "q_q2", "consent"}
    assert field_value(response, "first_name") == "Vera"
    assert field_value(response, "email") == "vera@"
    assert "Initech" in response.get_data(as_text=True)
    assert hidden(response, "idempotency_key") == fields["idempotency_key"]
    assert 'aria-describedby="last_name-error"' in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_html_without_the_csrf_token_is_refused(app, site, client):
    _, fields = form_for(client, site.intro_path)
    del fields["csrf_token"]
    before = snapshot(app)

    response = client.post(
        f"{site.intro_path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )

    assert response.status_code == 400
    assert snapshot(app) == before


def test_html_409_keeps_the_details_and_offers_the_nearest_free_times(app, site, client):
    _, fields = form_for(client, site.intro_path)
    assert client.post(f"{site.intro_path}/book", json=payload(email="first@example.org")).status_code == 201
    typed = {"first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"}

    response = client.post(f"{site.intro_path}/book", data={**fields, **typed})

    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert 'id="slot-message"' in body
    assert "Someone has just booked that time" in body
    assert field_value(response, "first_name") == "Vera"
    assert field_value(response, "email") == "vera@example.org"
    offered = re.findall(r'type="radio" name="start" value="([^"]+)"', body)
    assert START not in offered
    assert "2030-01-07T10:30:00+01:00" in offered
    assert len(bookings(app)) == 1

    # One click on another time books it, with nothing typed again.
    again = {**fields, **typed, "csrf_token": hidden(response, "csrf_token"), "start": offered[0]}
    booked = client.post(f"{site.intro_path}/book", data=again)
    assert booked.status_code == 303
    assert [b.start_at.isoformat() for b in bookings(app)][1] == pages.parse_start(offered[0]).isoformat()


def test_html_409_on_a_full_day_offers_the_next_days_times(app, site, client, raise_limits):
    raise_limits(RATELIMIT_BOOKING_IP="100 per hour", RATELIMIT_VISITOR_MAIL="100 per day")
    _, fields = form_for(client, site.intro_path)
    day = client.get(site.intro_path, query_string={"day": "2030-01-07", "tz": "Europe/Warsaw"})
    monday = slot_starts(day)
    assert START in monday
    for n, start in enumerate(monday):
        taken = client.post(
            f"{site.intro_path}/book", json=payload(start=start, email=f"early{n}@example.org"), headers=JSON
        )
        assert taken.status_code == 201

    response = client.post(
        f"{site.intro_path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )

    assert response.status_code == 409
    offered = re.findall(r'type="radio" name="start" value="([^"]+)"', response.get_data(as_text=True))
    assert offered
    assert all(start.startswith("2030-01-08") for start in offered)
    assert field_value(response, "last_name") == "Visitor"


def test_html_503_while_paused_records_the_attempt(app, site, client):
    _, fields = form_for(client, site.intro_path)
    make_inactive_calendar(app, site.acme_rep_id)

    response = client.post(
        f"{site.intro_path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )

    assert response.status_code == 503
    assert 'id="booking-paused"' in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(pages.BookingAttempt)) == 1
    assert bookings(app) == []


def test_a_booking_makes_a_contact_and_logs_the_meeting(app, site, client):
    client.post(f"{site.intro_path}/book", json=payload())
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email == "vera@example.org"))
        assert contact.tenant_id == site.acme_id
        meeting = db.session.scalar(sa.select(Meeting).where(Meeting.source == "page"))
        assert meeting.contacts == [contact]
        assert meeting.owner_id == site.acme_rep_id


def test_the_form_escapes_what_the_visitor_typed(site, client):
    _, fields = form_for(client, site.intro_path)
    response = client.post(
        f"{site.intro_path}/book",
        data={
            **fields,
            "first_name": '<script>alert("x")</script>',
            "last_name": "",
            "email": "v@example.org",
        },
    )
    assert response.status_code == 422
    assert '<script>alert("x")</script>' not in response.get_data(as_text=True)
    assert re.search(r"&lt;script&gt;", response.get_data(as_text=True))


def test_consent_text_is_shown_with_the_form(site, make_client):
    response, _ = form_for(make_client(ACME_HOST), site.demo_path)
    assert CONSENT in response.get_data(as_text=True)
