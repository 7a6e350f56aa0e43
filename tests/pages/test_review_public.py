"""Review of the visitor's side: odd input never answers 500 and is refused naming its field, links stay on
the site, a booking whose length the page no longer offers is not moved, headers say what the answer
depends on."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.pages.models import Booking, SchedulingPage
from tests.conftest import APP_HOST
from tests.helpers import error_fields, snapshot
from tests.pages.helpers import ACME_HOST
from tests.pages.test_public_manage import book, csrf_of

START = "2030-01-07T10:00:00+01:00"
VALID = {
    "start": START,
    "first_name": "Vera",
    "last_name": "Visitor",
    "email": "vera@example.org",
    "tz": "Europe/Warsaw",
    "consent": True,
    "q_q1": "Acme",
    "q_q2": "1-10",
}
ODD = [
    "9999-12",
    "0001-01",
    "9999-12-31",
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:30:00+00:00",
    "²",
    "-1",
    "99999999999999999999",
    "nan",
    " ",
    "\x00",
    "a\r\nb",
    "%",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    "2030-13",
    "2030-00-10",
    "١٢",
    "x" * 3000,
]


@pytest.mark.parametrize("value", ODD)
def test_no_query_parameter_or_field_of_the_public_routes_answers_500(site, make_client, value):
    for path, host in ((site.intro_path, APP_HOST), (site.demo_path, ACME_HOST)):
        client = make_client(host)
        for name in ("tz", "duration", "month", "day", "start", "lang"):
            response = client.get(path, query_string={name: value})
            assert response.status_code < 500, (path, name)
        for name in ("tz", "duration", "start", "days"):
            response = client.get(f"{path}/slots.json", query_string={name: value})
            assert response.status_code < 500, (path, name)
        for name in [*VALID, "duration", "idempotency_key", "q_q3"]:
            as_json = client.post(f"{path}/book", json={**VALID, name: value})
            assert as_json.status_code < 500, (path, name)
            as_form = client.post(
                f"{path}/book", data={**VALID, name: value}, headers={"Accept": "application/json"}
            )
            assert as_form.status_code < 500, (path, name)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"month": "9999-12"}, "month"),
        ({"month": "0001-01"}, "month"),
        ({"day": "0001-01-01"}, "day"),
        ({"day": "9999-12-31"}, "day"),
        ({"start": "0001-01-01T00:00:00+14:00"}, "start"),
        ({"start": "9999-12-31T23:30:00+00:00"}, "start"),
    ],
)
def test_dates_out_of_range_on_the_page_are_422_naming_the_parameter(site, client, query, field):
    response = client.get(site.intro_path, query_string=query)

    assert response.status_code == 422
    assert field in error_fields(response)


@pytest.mark.parametrize("start", ["9999-12-31", "0001-01-01"])
def test_slots_json_refuses_a_start_out_of_range(site, client, start):
    response = client.get(f"{site.intro_path}/slots.json", query_string={"start": start, "days": "62"})

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"start"}


@pytest.mark.parametrize("start", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_booking_a_start_out_of_range_is_422_on_start(app, site, client, start):
    before = snapshot(app)

    response = client.post(f"{site.intro_path}/book", json={**VALID, "start": start})

    assert response.status_code == 422
    assert set(response.get_json()["errors"]) == {"start"}
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("first_name", "Ve\x00ra"),
        ("first_name", "Vera\r\nBcc: victim@example.org"),
        ("last_name", "Vi\x00sitor"),
        ("email", "ve\x00ra@example.org"),
        ("q_q1", "Ac\x00me"),
        ("q_q3", "a\x00b"),
        ("idempotency_key", "k\x00"),
    ],
)
def test_control_characters_are_refused_naming_the_field(app, site, make_client, field, value):
    before = snapshot(app)

    response = make_client(ACME_HOST).post(f"{site.demo_path}/book", json={**VALID, field: value})

    assert response.status_code == 422
    assert field in response.get_json()["errors"]
    assert snapshot(app) == before


def test_a_multi_line_answer_is_still_fine(app, site, make_client):
    answer = "line one\r\nline two\ttabbed"
    response = make_client(ACME_HOST).post(f"{site.demo_path}/book", json={**VALID, "q_q3": answer})

    assert response.status_code == 201, response.get_json()
    answers = {item["id"]: item["answer"] for item in response.get_json()["booking"]["answers"]}
    assert answers["q3"] == answer
    with app.app_context():
        booking = db.session.get(Booking, response.get_json()["booking"]["id"])
        assert {item["id"]: item["answer"] for item in booking.answers}["q3"] == answer
        assert "line one" in booking.meeting.notes
        assert "line two\ttabbed" in booking.meeting.notes


def test_the_html_form_with_a_damaged_duration_comes_back_422(site, client):
    data = {**VALID, "duration": "²", "consent": "y"}
    del data["q_q1"], data["q_q2"]

    response = client.post_form(f"{site.intro_path}/book", data)

    assert response.status_code == 422
    assert "duration" in error_fields(response)


def test_a_cancel_reason_with_nul_is_refused_and_nothing_changes(app, site, client):
    path = book(client, site.intro_path)
    token = csrf_of(client.get(f"{path}/cancel"))

    response = client.post(f"{path}/cancel", data={"csrf_token": token, "reason": "bye\x00"})

    assert response.status_code == 422
    assert "reason" in error_fields(response)
    with app.app_context():
        assert db.session.scalar(sa.select(Booking.status)) == "confirmed"


@pytest.mark.parametrize("value", ODD)
def test_the_visitors_booking_routes_never_answer_500(site, client, value):
    path = book(client, site.intro_path)
    for suffix in ("", "/cancel", "/reschedule"):
        for name in ("tz", "month", "day"):
            assert client.get(path + suffix, query_string={name: value}).status_code < 500, (suffix, name)
    token = csrf_of(client.get(f"{path}/cancel"))
    moved = client.post(f"{path}/reschedule", data={"csrf_token": token, "start": value, "tz": value})
    assert moved.status_code < 500
    assert client.post(f"{path}/cancel", data={"csrf_token": token, "reason": value}).status_code < 500


@pytest.mark.parametrize(
    "target",
    [
        "/meetings/\r\nSet-Cookie: evil=1",
        "/meetings/x\x00",
        "/meetings/\t//evil.example",
        "/meetings/..\\evil.example",
        "//evil.example/meetings/",
        "https://evil.example/meetings/",
        " /meetings/x",
    ],
)
def test_not_you_never_redirects_to_an_odd_target(site, client, target):
    response = client.post_form("/meetings/booking/forget", {"next": target})

    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "evil" not in response.headers.get("Set-Cookie", "")


def test_not_you_still_goes_back_to_the_page(site, client):
    response = client.post_form("/meetings/booking/forget", {"next": f"{site.intro_path}?tz=Europe/Warsaw"})

    assert response.status_code == 303
    assert response.headers["Location"] == f"{site.intro_path}?tz=Europe/Warsaw"


def test_reschedule_and_forget_need_the_csrf_token(app, site, client):
    path = book(client, site.intro_path)
    before = snapshot(app)

    moved = client.post(f"{path}/reschedule", data={"start": "2030-01-08T15:00:00+01:00"})
    forgot = client.post("/meetings/booking/forget", data={"next": site.intro_path})
    cancelled = client.post(f"{path}/cancel", data={"reason": "x"})

    assert (moved.status_code, forgot.status_code, cancelled.status_code) == (400, 400, 400)
    assert "termin_prefill=;" not in forgot.headers.get("Set-Cookie", "")
    assert snapshot(app) == before


def test_a_booking_whose_length_is_no_longer_offered_is_not_moved(app, site, client):
    path = book(client, site.intro_path)
    token = csrf_of(client.get(f"{path}/cancel"))
    with app.app_context():
        db.session.get(SchedulingPage, site.intro_id).durations = [60]
        db.session.commit()
    before = snapshot(app)

    shown = client.get(path)
    asked = client.get(f"{path}/reschedule")
    posted = client.post(
        f"{path}/reschedule", data={"csrf_token": token, "start": "2030-01-08T15:00:00+01:00"}
    )

    assert shown.status_code == 200
    assert 'id="reschedule-link"' not in shown.get_data(as_text=True)
    assert 'id="cancel-link"' in shown.get_data(as_text=True)
    assert asked.status_code == 200
    assert 'id="booking-notice"' in asked.get_data(as_text=True)
    assert posted.status_code == 409
    assert "no longer offers meetings of this length" in posted.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_moved_page_with_odd_bytes_in_its_query_still_redirects(site, make_client):
    response = make_client(APP_HOST).get(f"{site.demo_path}?x=%FF%00&y=\u0142")

    assert response.status_code == 301
    assert response.headers["Location"].startswith(f"http://{ACME_HOST}{site.demo_path}?")


def test_public_answers_say_they_depend_on_the_language_and_cookies(site, client):
    response = client.get(site.intro_path)

    assert {"Accept-Language", "Cookie"} <= set(response.vary)


def test_an_idempotency_key_sent_again_with_another_length_is_refused(app, site, make_client):
    client = make_client(ACME_HOST)
    first = client.post(f"{site.demo_path}/book", json={**VALID, "idempotency_key": "k-1", "duration": "30"})
    assert first.status_code == 201
    before = snapshot(app)

    again = client.post(f"{site.demo_path}/book", json={**VALID, "idempotency_key": "k-1", "duration": "60"})
    same = client.post(f"{site.demo_path}/book", json={**VALID, "idempotency_key": "k-1", "duration": "30"})

    assert again.status_code == 422
    assert set(again.get_json()["errors"]) == {"idempotency_key"}
    assert same.status_code == 200
    assert same.get_json()["booking"]["id"] == first.get_json()["booking"]["id"]
    assert snapshot(app) == before
