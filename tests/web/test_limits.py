"""Rate limits (issue 15, S1), with the production values: each limit is hammered on the test client until it
answers 429 with Retry-After, and nothing is written past it. Counting, never timing: the clock is frozen
with time-machine, and moved on only to show a limit letting go."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine
from limits import parse_many

from app.extensions import db, limiter
from app.mail.models import OutboxMessage
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import Client
from tests.pages.conftest import site  # noqa: F401  (the pages' fixture, used here too)
from tests.pages.helpers import at, booking_request, slot_starts

WRONG = "not the password at all"
JSON = {"Accept": "application/json"}
CLOCK = datetime(2030, 1, 1, 12, tzinfo=UTC)


@pytest.fixture
def clock():
    """Wall-clock time stopped (the limits' windows count from it); ``clock.shift(seconds)`` moves it."""
    with time_machine.travel(CLOCK, tick=False) as traveller:
        yield traveller


def amount(app, setting: str) -> int:
    """The smallest count a setting allows in any of its windows (its production value)."""
    return min(item.amount for item in parse_many(app.config[setting]))


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def assert_429(response, *, json: bool = False) -> int:
    assert response.status_code == 429, response.get_data(as_text=True)[:500]
    seconds = int(response.headers["Retry-After"])
    assert seconds >= 1
    if json:
        assert response.json["error"] == "rate_limited"
        assert response.json["retry_after"] == seconds
    else:
        assert "Too many attempts" in response.get_data(as_text=True)
    return seconds


def signed_in(client: Client) -> bool:
    return client.get("/crm/contacts").status_code == 200


# --- Sign-in ------------------------------------------------------------------------------------------------


def test_sign_in_per_account_refuses_even_the_right_password_until_the_window_passes(app, world, clock):
    ours, _ = world
    attacker = Client(app)
    limit = amount(app, "RATELIMIT_SIGNIN_ACCOUNT")
    for _ in range(limit):
        response = attacker.post_form("/login", {"email": ours.admin_email, "password": WRONG})
        assert response.status_code == 422

    owner = Client(app)
    refused = owner.post_form("/login", {"email": ours.admin_email.upper(), "password": factories.PASSWORD})

    retry_after = assert_429(refused)
    assert retry_after <= 15 * 60 + 1
    assert not signed_in(owner)
    # Another account from the same address is not locked by it.
    assert Client(app).login(ours.rep_email).status_code == 303

    clock.shift(timedelta(seconds=retry_after))
    assert owner.login(ours.admin_email).status_code == 303
    assert signed_in(owner)


def test_sign_in_per_address_counts_failures_over_every_account(app, world, clock):
    ours, _ = world
    limit = amount(app, "RATELIMIT_SIGNIN_IP")
    attacker = Client(app)
    for n in range(limit):
        response = attacker.post_form("/login", {"email": f"guess{n}@example.com", "password": WRONG})
        assert response.status_code == 422

    same_address = Client(app)
    assert_429(same_address.post_form("/login", {"email": ours.rep_email, "password": factories.PASSWORD}))
    assert not signed_in(same_address)

    elsewhere = Client(app)
    elsewhere.http.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert elsewhere.login(ours.rep_email).status_code == 303


def test_a_forged_forwarded_for_does_not_escape_the_address_limit(app, world, clock):
    """Without PROXY_COUNT the socket's address counts, whatever X-Forwarded-For says."""
    ours, _ = world
    client = Client(app)
    for n in range(amount(app, "RATELIMIT_SIGNIN_IP")):
        client.post_form(
            "/login",
            {"email": f"guess{n}@example.com", "password": WRONG},
            headers={"X-Forwarded-For": f"198.51.100.{n}"},
        )
    response = client.post_form(
        "/login",
        {"email": ours.rep_email, "password": factories.PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.1"},
    )
    assert_429(response)


def test_successful_sign_ins_are_not_counted(app, world, clock):
    ours, _ = world
    for _ in range(amount(app, "RATELIMIT_SIGNIN_ACCOUNT") + 2):
        assert Client(app).login(ours.rep_email).status_code == 303


def test_the_429_page_is_translated(app, world, clock):
    ours, _ = world
    client = Client(app)
    for _ in range(amount(app, "RATELIMIT_SIGNIN_ACCOUNT")):
        client.post_form("/login", {"email": ours.admin_email, "password": WRONG})
    response = client.post_form(
        "/login", {"email": ours.admin_email, "password": WRONG}, headers={"Accept-Language": "pl"}
    )
    assert response.status_code == 429
    assert "Zbyt wiele prób" in response.get_data(as_text=True)


def test_json_clients_get_the_json_429(app, world, clock):
    ours, _ = world
    client = Client(app)
    for _ in range(amount(app, "RATELIMIT_SIGNIN_ACCOUNT")):
        client.post_form("/login", {"email": ours.admin_email, "password": WRONG})
    response = client.post_form(
        "/login", {"email": ours.admin_email, "password": WRONG}, headers={"Accept": "application/json"}
    )
    assert_429(response, json=True)


# --- Sign-up and invitations --------------------------------------------------------------------------------


def test_sign_up_per_address(app, clock):
    client = Client(app)
    for _ in range(amount(app, "RATELIMIT_SIGNUP_IP")):
        assert client.post_form("/signup", {"company": ""}).status_code == 422
    response = client.post_form(
        "/signup",
        {
            "company": "Hammer Inc",
            "name": "Hank Hammer",
            "email": "hank@hammer.example",
            "password": "a long enough password",
            "time_zone": "UTC",
        },
    )
    assert_429(response)
    assert count(app, Tenant, Tenant.name == "Hammer Inc") == 0


def test_invitation_accept_per_address(app, world, clock):
    ours, _ = world
    client = Client(app)
    for _ in range(amount(app, "RATELIMIT_INVITATION_IP")):
        assert client.post_form("/invitations/not-a-token", {"name": "X"}).status_code == 404
    assert_429(client.post_form("/invitations/not-a-token", {"name": "X"}))
    assert count(app, User, User.email == f"new@{ours.admin_email.split('@')[1]}") == 0


# --- Public booking -----------------------------------------------------------------------------------------


def monday_starts(client, path: str) -> list[str]:
    response = client.get(path, query_string={"day": "2030-01-07", "tz": "Europe/Warsaw"})
    return slot_starts(response)


def book(client, path: str, start: str, email: str, **headers):
    body = {
        "start": start,
        "first_name": "Vera",
        "last_name": "Visitor",
        "email": email,
        "tz": "Europe/Warsaw",
    }
    return client.post(f"{path}/book", json=body, headers={**JSON, **headers})


def test_booking_per_address_and_page(app, site, clock):  # noqa: F811
    client = Client(app)
    starts = monday_starts(client, site.intro_path)
    limit = amount(app, "RATELIMIT_BOOKING_IP")
    assert len(starts) > limit
    for n in range(limit):
        assert book(client, site.intro_path, starts[n], f"visitor{n}@example.org").status_code == 201

    refused = book(client, site.intro_path, starts[limit], "late@example.org")

    assert_429(refused, json=True)
    assert count(app, Booking, Booking.page_id == site.intro_id) == limit
    assert visitor_mails(app, "late@example.org") == []
    # The same address on another page, and another address on this one, still book.
    other = Client(app, "book.acme.example")
    demo_start = monday_starts(other, site.demo_path)[0]
    demo = {"q_q1": "Initech", "q_q2": "11-50", "consent": True}
    body = {"start": demo_start, "first_name": "V", "last_name": "V", "email": "v@example.org", "tz": "UTC"}
    assert other.post(f"{site.demo_path}/book", json={**body, **demo}, headers=JSON).status_code == 201
    neighbour = Client(app)
    neighbour.http.environ_base["REMOTE_ADDR"] = "192.0.2.8"
    assert book(neighbour, site.intro_path, starts[limit + 1], "late@example.org").status_code == 201


def test_an_html_booking_over_the_limit_gets_the_429_page(app, site, clock):  # noqa: F811
    client = Client(app)
    starts = monday_starts(client, site.intro_path)
    for n in range(amount(app, "RATELIMIT_BOOKING_IP")):
        client.post(f"{site.intro_path}/book", data={"start": starts[n]})  # refused forms count too
    response = client.post(
        f"{site.intro_path}/book", data={"start": starts[0]}, headers={"Accept": "text/html"}
    )
    assert_429(response)
    assert count(app, Booking) == 0


def test_bookings_per_visitor_email_over_every_page_and_address(app, site, clock):  # noqa: F811
    limit = amount(app, "RATELIMIT_BOOKING_EMAIL")
    starts = monday_starts(Client(app), site.intro_path)
    made = 0
    for n in range(limit):
        client = Client(app)
        client.http.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 10}"
        # A refused booking (here: no such time) is not counted against the email.
        assert (
            book(client, site.intro_path, "2030-01-07T03:00:00+01:00", "Busy@Example.org").status_code == 422
        )
        assert book(client, site.intro_path, starts[n], "Busy@Example.org").status_code == 201
        made += 1

    client = Client(app)
    client.http.environ_base["REMOTE_ADDR"] = "192.0.2.99"
    assert_429(book(client, site.intro_path, starts[limit], "busy@example.org"), json=True)
    assert count(app, Booking, Booking.email == "busy@example.org") == made == limit
    assert book(client, site.intro_path, starts[limit], "someone.else@example.org").status_code == 201


def test_slots_and_page_views_share_a_generous_per_address_limit(app, site, clock):  # noqa: F811
    client = Client(app)
    limit = amount(app, "RATELIMIT_PUBLIC_READ_IP")
    assert limit >= 100  # generous: a person clicking through months never meets it
    for n in range(limit):
        path = f"{site.intro_path}/slots.json" if n % 2 else site.intro_path
        assert client.get(path).status_code == 200
    assert_429(client.get(f"{site.intro_path}/slots.json"), json=True)
    assert_429(client.get(site.intro_path, headers={"Accept": "text/html"}))
    clock.shift(timedelta(seconds=61))
    assert client.get(site.intro_path).status_code == 200


# --- Not a mail relay ---------------------------------------------------------------------------------------


def mails(app) -> list[dict]:
    with app.app_context():
        rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send")).all()
        return [row.payload for row in rows]


def visitor_mails(app, address: str) -> list[dict]:
    return [mail for mail in mails(app) if address in mail["to"]]


def test_one_address_gets_a_bounded_number_of_mails_a_day(app, site, clock):  # noqa: F811
    limit = amount(app, "RATELIMIT_VISITOR_MAIL")
    with app.app_context():
        page = db.session.get(SchedulingPage, site.intro_id)
        now = datetime(2030, 1, 1, 12, tzinfo=UTC)
        for n in range(limit + 3):
            start = at(9) + timedelta(minutes=30 * n)
            pages.book(
                page, booking_request(start, idempotency_key=f"k{n}", email="flood@example.org"), now=now
            )
        db.session.commit()
    assert count(app, Booking, Booking.email == "flood@example.org") == limit + 3
    assert len(visitor_mails(app, "flood@example.org")) == limit
    # The rep still hears of every booking.
    assert len([m for m in mails(app) if m["subject"].startswith("New booking")]) == limit + 3


def test_what_a_visitor_types_never_reaches_a_subject(app, site, clock):  # noqa: F811
    client = Client(app)
    start = monday_starts(client, site.intro_path)[0]
    body = {
        "start": start,
        "first_name": "WIN A PRIZE",
        "last_name": "http://spam.example",
        "email": "target@example.org",
        "tz": "Europe/Warsaw",
    }
    created = client.post(f"{site.intro_path}/book", json=body, headers=JSON)
    assert created.status_code == 201
    client.post(created.json["booking"]["cancel_url"].split("example", 1)[-1], data={})  # may be a 400: fine
    with app.app_context():
        subjects = [row.payload["subject"] for row in db.session.scalars(sa.select(OutboxMessage))]
        texts = [row.payload["text"] for row in db.session.scalars(sa.select(OutboxMessage))]
    assert subjects
    assert not any("PRIZE" in s or "spam" in s for s in subjects)
    assert any("WIN A PRIZE" in t for t in texts)  # plain text in the body, as typed
    assert all(row.get("html") is None for row in visitor_mails(app, "target@example.org"))


# --- The rep's daily cap on a page --------------------------------------------------------------------------


def test_a_page_with_a_daily_cap_offers_no_more_times_that_day(app, site, clock):  # noqa: F811
    with app.app_context():
        page = db.session.get(SchedulingPage, site.intro_id)
        page.max_bookings_per_day = 2
        db.session.commit()
    client = Client(app)
    starts = monday_starts(client, site.intro_path)
    assert book(client, site.intro_path, starts[0], "a@example.org").status_code == 201
    assert book(client, site.intro_path, starts[1], "b@example.org").status_code == 201

    assert monday_starts(client, site.intro_path) == []
    monday = client.get(f"{site.intro_path}/slots.json", query_string={"start": "2030-01-07", "days": 1})
    assert monday.json["slots"] == []
    refused = book(client, site.intro_path, starts[2], "c@example.org")
    assert refused.status_code == 409
    assert "fully booked" in refused.json["message"]
    assert count(app, Booking, Booking.page_id == site.intro_id) == 2
    tuesday = client.get(f"{site.intro_path}/slots.json", query_string={"start": "2030-01-08", "days": 1})
    assert tuesday.json["slots"]


def test_limits_are_counted_in_the_configured_storage(app):
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert limiter.enabled
