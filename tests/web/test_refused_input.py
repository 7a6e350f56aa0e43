"""What every form refuses, once, in ``TerminForm`` (app/web/forms.py): control characters, a line break in a
one-line field (it could end up in an email header), dates outside 1900-2200; and what the app does with
values it did not take from a form: a JSON body nested too deeply, a stored moment near datetime's ends."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from app.crm.models import Meeting
from app.extensions import db
from app.tenants.models import Tenant, User
from tests.helpers import error_fields, snapshot
from tests.pages.helpers import build_site

INJECTED = "Acme\r\nBcc: victim@example.org"


def page_data(**overrides) -> dict:
    return {
        "title": "Discovery call",
        "slug": "discovery",
        "durations": "30",
        "time_zone": "Europe/Warsaw",
        "day_0": "09:00-17:00",
        "buffer_before": "0",
        "buffer_after": "0",
        "min_notice": "0",
        "window": "rolling",
        "horizon_days": "30",
        "after_booking": "message",
        "domain_id": "",
        **overrides,
    }


SIGNUP = {
    "company": "Nowa Firma",
    "name": "Ola Nowak",
    "email": "ola@nowa-firma.example",
    "password": "a long enough password",
    "time_zone": "Europe/Warsaw",
}

# (signed in?, url, a valid form but for one field, that field)
ONE_LINE_FIELDS = [
    (True, "/crm/contacts/new", {"email": "carl@example.org", "company": INJECTED}, "company"),
    (
        True,
        "/crm/contacts/new",
        {"email": "carl@example.org", "first_name": "Carl\nBcc: x@y.z"},
        "first_name",
    ),
    (
        True,
        "/account",
        {"name": "Ada\r\nBcc: victim@example.org", "time_zone": "UTC", "locale": "en"},
        "name",
    ),
    (True, "/pages/new", page_data(title="Intro\r\nBcc: victim@example.org"), "title"),
    (True, "/pages/new", page_data(location="Room 1\u2028Bcc: victim@example.org"), "location"),
    (False, "/signup", {**SIGNUP, "company": INJECTED}, "company"),
    (False, "/signup", {**SIGNUP, "name": "Ola\rNowak"}, "name"),
]


@pytest.mark.parametrize(("signed", "url", "data", "field"), ONE_LINE_FIELDS)
def test_a_line_break_in_a_one_line_field_is_refused_naming_it(
    app, world, client, signed_in, signed, url, data, field
):
    ours, _ = world
    asker = signed_in(ours.admin_email) if signed else client
    before = snapshot(app)

    response = asker.post_form(url, data)

    assert response.status_code == 422, response.get_data(as_text=True)[:500]
    assert error_fields(response) == {field}
    assert "Keep this to one line" in response.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("url", "data", "field"),
    [
        ("/crm/contacts/new", {"email": "carl@example.org", "notes": "fine\r\nbut a\x00b"}, "notes"),
        ("/crm/contacts/new", {"email": "carl@example.org", "phone": "\x1b[31m123"}, "phone"),
        ("/pages/new", page_data(description="bell\x07"), "description"),
        ("/pages/new", page_data(**{"questions-0-text": "Size\x00?"}), "questions-0-text"),
    ],
)
def test_control_characters_are_refused_in_any_field_naming_it(app, world, signed_in, url, data, field):
    client = signed_in(world[0].admin_email)
    before = snapshot(app)

    response = client.post_form(url, data)

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert "Remove the invisible control characters" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_multi_line_field_keeps_its_line_breaks_and_tabs(app, world, signed_in):
    client = signed_in(world[0].admin_email)

    response = client.post_form("/crm/contacts/new", {"email": "carl@example.org", "notes": "one\r\n\ttwo"})

    assert response.status_code in (200, 303), response.get_data(as_text=True)[:500]
    with app.app_context():
        notes = db.session.execute(sa.text("SELECT notes FROM contacts WHERE email = 'carl@example.org'"))
        assert notes.scalar_one() == "one\r\n\ttwo"


def test_the_contact_search_refuses_control_characters_naming_the_box(world, signed_in):
    client = signed_in(world[0].admin_email)

    response = client.get("/crm/contacts", query_string={"q": "a\x00b"})
    fragment = client.get("/crm/contacts", query_string={"q": "a\x00b"}, headers={"HX-Request": "true"})
    found = client.get("/crm/contacts", query_string={"q": "shared"})

    assert response.status_code == fragment.status_code == 422
    assert error_fields(response) == error_fields(fragment) == {"q"}
    assert found.status_code == 200
    assert world[0].contact_email in found.get_data(as_text=True)


# --- Dates ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data", "field"),
    [
        (
            "meetings",
            {"title": "Demo", "date": "9999-12-31", "start_time": "10:00", "duration": "30"},
            "date",
        ),
        (
            "meetings",
            {"title": "Demo", "date": "1899-12-31", "start_time": "10:00", "duration": "30"},
            "date",
        ),
        ("tasks", {"title": "Call back", "due_date": "0001-01-01", "due_time": "09:00"}, "due_date"),
        ("tasks", {"title": "Call back", "due_date": "2201-01-01", "due_time": "09:00"}, "due_date"),
    ],
)
def test_dates_outside_1900_to_2200_are_refused_by_the_form(app, world, signed_in, path, data, field):
    ours, _ = world
    client = signed_in(ours.admin_email)
    before = snapshot(app)

    response = client.post_form(f"/crm/contacts/{ours.contact_id}/{path}", data)

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert "between 1900 and 2200" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_date_override_outside_1900_to_2200_is_refused(app, world, signed_in):
    client = signed_in(world[0].admin_email)
    before = snapshot(app)

    response = client.post_form("/pages/new", page_data(overrides="2030-12-24: off\n9999-12-31: off"))

    assert response.status_code == 422
    assert error_fields(response) == {"overrides"}
    assert "Line 2: Choose a date between 1900 and 2200." in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_stored_moment_at_the_end_of_the_calendar_shows_for_a_viewer_east_of_utc(app, world, signed_in):
    ours, _ = world
    with app.app_context():
        viewer = db.session.get(User, ours.rep_id)
        viewer.time_zone = "Pacific/Kiritimati"  # UTC+14: the meeting's day there is past 9999-12-31
        meeting = db.session.get(Meeting, ours.meeting_id)
        meeting.start_at = datetime(9999, 12, 31, 20, tzinfo=UTC)
        meeting.end_at = datetime(9999, 12, 31, 21, tzinfo=UTC)
        db.session.commit()

    response = signed_in(ours.rep_email).get(f"/crm/contacts/{ours.contact_id}")

    assert response.status_code == 200
    assert "Dec 31, 9999" in response.get_data(as_text=True)
    assert "UTC" in response.get_data(as_text=True)


# --- JSON bodies -------------------------------------------------------------------------------------------

DEEP = "[" * 200_000 + "]" * 200_000


def test_a_deeply_nested_json_booking_is_refused(app, monkeypatch, client):
    site = build_site(app, monkeypatch)
    before = snapshot(app)

    response = client.post(f"{site.intro_path}/book", data=DEEP, headers={"Content-Type": "application/json"})

    assert response.status_code in (400, 422)
    assert snapshot(app) == before


@pytest.mark.parametrize("body", [DEEP, "[1, 2]", '"text"', '{"email": {"nested": ["carl@example.org"]}}'])
def test_a_json_body_a_form_cannot_read_is_refused(app, world, signed_in, body):
    client = signed_in(world[0].admin_email)
    before = snapshot(app)

    response = client.post(
        "/crm/contacts/new",
        data=body,
        headers={"Content-Type": "application/json", "X-CSRFToken": client.csrf_token()},
    )

    assert response.status_code in (400, 422)
    assert snapshot(app) == before


def test_a_json_object_of_plain_fields_still_fills_a_form(app, world, signed_in):
    client = signed_in(world[0].admin_email)

    response = client.post(
        "/crm/contacts/new",
        json={"email": "carl@example.org", "first_name": "Carl", "company": "Initech"},
        headers={"X-CSRFToken": client.csrf_token()},
    )

    assert response.status_code in (200, 303)
    with app.app_context():
        tenant = db.session.get(Tenant, world[0].tenant_id)
        row = db.session.execute(
            sa.text("SELECT first_name, company, tenant_id FROM contacts WHERE email = 'carl@example.org'")
        ).one()
        assert tuple(row) == ("Carl", "Initech", tenant.id)
