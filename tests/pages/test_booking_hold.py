"""A page that asks visitors to confirm their email (issue 15): the time is held, nothing is booked and no
confirmation sent until the emailed link is followed; a hold that runs out frees the time."""

import re
from datetime import timedelta

import sqlalchemy as sa

from app.crm.models import Contact
from app.extensions import db
from app.pages import public
from app.pages.models import Booking, BookingHold, SchedulingPage
from tests.conftest import APP_HOST, Client
from tests.pages.helpers import NOW

START = "2030-01-07T10:00:00+01:00"
JSON = {"Accept": "application/json"}


def body(**fields) -> dict:
    return {
        "start": START,
        "first_name": "Vera",
        "last_name": "Visitor",
        "email": "vera@example.org",
        "tz": "Europe/Warsaw",
        **fields,
    }


def ask_to_confirm(app, page_id: int) -> None:
    with app.app_context():
        db.session.get(SchedulingPage, page_id).confirm_email = True
        db.session.commit()


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def confirm_link(sink, address: str) -> str:
    [mail] = [m for m in sink.messages if address in m["To"] and "Confirm your booking" in m["Subject"]]
    text = mail.get_body(("plain",)).get_content()
    return re.search(r"http://[^\s]+/meetings/booking/confirm/[^\s]+", text).group(0).split(APP_HOST, 1)[1]


def slots(client, path: str) -> list[str]:
    return client.get(f"{path}/slots.json", query_string={"start": "2030-01-07", "days": 1}).json["slots"]


def test_the_time_is_held_and_booked_only_once_the_email_is_confirmed(app, site, sink):
    ask_to_confirm(app, site.intro_id)
    client = Client(app)

    held = client.post(f"{site.intro_path}/book", json=body(), headers=JSON)

    assert held.status_code == 202
    assert held.json["hold"]["status"] == "awaiting_email_confirmation"
    assert count(app, Booking) == 0
    assert count(app, Contact, Contact.email == "vera@example.org") == 0
    assert [m["Subject"] for m in sink.messages] == ["Confirm your booking: Intro call with Rita Rep"]
    assert START not in slots(client, site.intro_path)  # held for Vera
    other = client.post(f"{site.intro_path}/book", json=body(email="olga@example.org"), headers=JSON)
    assert other.status_code == 409

    link = confirm_link(sink, "vera@example.org")
    assert client.get(link).status_code == 200  # a mail scanner's GET books nothing
    assert count(app, Booking) == 0
    done = client.post_form(link)

    assert done.status_code == 303
    assert "/meetings/booking/" in done.headers["Location"]
    with app.app_context():
        [booking] = db.session.scalars(sa.select(Booking)).all()
        assert (booking.status, booking.email, booking.first_name) == (
            "confirmed",
            "vera@example.org",
            "Vera",
        )
        assert db.session.scalars(sa.select(BookingHold)).all() == []
    assert count(app, Contact, Contact.email == "vera@example.org") == 1
    assert any(m["Subject"].startswith("Booked: Intro call") for m in sink.messages)
    assert client.get(done.headers["Location"]).status_code == 200
    assert client.post_form(link).status_code == 410  # spent


def test_a_hold_that_runs_out_frees_the_time_and_its_link(app, site, sink, monkeypatch):
    ask_to_confirm(app, site.intro_id)
    client = Client(app)
    assert client.post(f"{site.intro_path}/book", json=body(), headers=JSON).status_code == 202
    link = confirm_link(sink, "vera@example.org")

    later = NOW + timedelta(minutes=app.config["BOOKING_HOLD_MINUTES"], seconds=1)
    monkeypatch.setattr(public, "utcnow", lambda: later)

    assert START in slots(client, site.intro_path)
    assert client.get(link).status_code == 410
    assert client.post_form(link).status_code == 410
    assert count(app, Booking) == 0
    sink.reset()
    assert (
        client.post(f"{site.intro_path}/book", json=body(email="olga@example.org"), headers=JSON).status_code
        == 202
    )


def test_an_html_booking_shows_where_the_link_went(app, site, sink):
    ask_to_confirm(app, site.intro_id)
    client = Client(app)
    form = client.get(site.intro_path, query_string={"start": START, "tz": "Europe/Warsaw"})
    fields = {
        name: re.search(rf'name="{name}"[^>]*value="([^"]*)"', form.get_data(as_text=True)).group(1)
        for name in ("csrf_token", "start", "duration", "tz", "idempotency_key")
    }

    response = client.post(
        f"{site.intro_path}/book",
        data={**fields, "first_name": "Vera", "last_name": "V", "email": "vera@example.org"},
    )

    assert response.status_code == 202
    assert 'id="hold-sent"' in response.get_data(as_text=True)
    assert "vera@example.org" in response.get_data(as_text=True)
    assert count(app, Booking) == 0


def test_a_hold_link_of_another_tenant_is_not_served_on_this_domain(app, site, sink, make_client):
    ask_to_confirm(app, site.intro_id)
    Client(app).post(f"{site.intro_path}/book", json=body(), headers=JSON)
    link = confirm_link(sink, "vera@example.org")

    assert make_client("meet.globex.example").get(link).status_code == 410
    assert count(app, Booking) == 0
