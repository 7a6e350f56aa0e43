"""The visitor's scheduling page: month and day navigation, time zones, languages, hosts, noindex, P4, C11."""

import re
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages import paths, public
from app.pages import services as pages
from app.pages.models import BookingAttempt
from app.sync import services as sync
from app.sync.providers.base import Account, RemoteCalendar
from app.tenants.models import Domain, User
from tests import factories
from tests.conftest import APP_HOST
from tests.helpers import error_fields, is_fragment
from tests.pages.helpers import (
    ACME_HOST,
    CONSENT,
    GLOBEX_HOST,
    NOW,
    connect_caldav,
    day_links,
    hidden,
    make_inactive_calendar,
    slot_starts,
)

# --- The page, the month and the day ------------------------------------------------------------------------


def test_default_page_shows_the_first_day_with_free_times(site, client):
    response = client.get(site.intro_path)

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "Intro call" in body
    assert "Rita Rep" in body
    assert 'id="month-title"' in body
    assert "January 2030" in body
    # It is 13:00 in Warsaw: today's first free time is 13:00, the last 16:30.
    assert day_links(response)[0] == "2030-01-01"
    starts = slot_starts(response)
    assert starts[0] == "2030-01-01T13:00:00+01:00"
    assert starts[-1] == "2030-01-01T16:30:00+01:00"
    assert "2030-01-01T12:30:00+01:00" not in starts
    # Weekends have no link; a working day does.
    assert "2030-01-05" not in day_links(response)
    assert "2030-01-07" in day_links(response)
    assert re.search(r'src="/assets/booking\.[0-9a-f]{10}\.js"', body)
    assert 'data-tz-given="0"' in body  # the script may apply the browser's zone


def test_times_are_shown_in_the_visitors_zone(site, client):
    response = client.get(f"{site.intro_path}?tz=America/New_York&day=2030-01-07")

    assert response.status_code == 200
    starts = slot_starts(response)
    assert starts[0] == "2030-01-07T03:00:00-05:00"  # 9:00 in Warsaw
    assert len(starts) == 16
    body = response.get_data(as_text=True)
    assert '<option value="America/New_York" selected>' in body
    assert 'data-tz-given="1"' in body
    # Links keep the chosen zone.
    assert "tz=America%2FNew_York" in body


def test_day_navigation_swaps_only_the_slot_list_with_htmx(site, client):
    plain = client.get(f"{site.intro_path}?day=2030-01-08")
    swapped = client.get(f"{site.intro_path}?day=2030-01-08", headers={"HX-Request": "true"})

    assert plain.status_code == swapped.status_code == 200
    assert not is_fragment(plain)
    assert is_fragment(swapped)
    assert swapped.get_data(as_text=True).lstrip().startswith('<section id="slot-picker"')
    assert slot_starts(swapped) == slot_starts(plain)
    assert slot_starts(swapped)[0] == "2030-01-08T09:00:00+01:00"
    assert 'hx-get="' in plain.get_data(as_text=True)
    assert "HX-Request" in swapped.headers.get("Vary", "")


def test_month_navigation(site, client):
    february = client.get(f"{site.intro_path}?month=2030-02", headers={"HX-Request": "true"})
    assert february.status_code == 200
    assert "February 2030" in february.get_data(as_text=True)
    assert day_links(february)[0] == "2030-02-01"
    assert 'id="prev-month"' in february.get_data(as_text=True)

    # January is the first month offered: no way back from it.
    january = client.get(f"{site.intro_path}?month=2030-01")
    assert 'id="prev-month"' not in january.get_data(as_text=True)

    # Beyond the 60-day horizon nothing is free.
    april = client.get(f"{site.intro_path}?month=2030-04")
    assert april.status_code == 200
    assert day_links(april) == []
    assert 'id="no-slots"' in april.get_data(as_text=True)


def test_durations_are_picked_from_the_page(site, make_client):
    host = make_client(ACME_HOST)
    default = host.get(f"{site.demo_path}?day=2030-01-07")
    hour = host.get(f"{site.demo_path}?day=2030-01-07&duration=60")

    assert len(slot_starts(default)) == 16
    assert slot_starts(hour)[-1] == "2030-01-07T16:00:00+01:00"  # an hour-long meeting ends at 17:00
    assert len(slot_starts(hour)) == 8
    assert 'data-duration="60"' in default.get_data(as_text=True)
    assert "duration=60" in hour.get_data(as_text=True)  # links keep the length


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tz=Mars/Olympus_Mons", "tz"),
        ("duration=45", "duration"),
        ("duration=abc", "duration"),
        ("month=2030-13", "month"),
        ("day=yesterday", "day"),
        ("start=10am", "start"),
    ],
)
def test_bad_query_parameters_are_named(site, client, query, field):
    response = client.get(f"{site.intro_path}?{query}")

    assert response.status_code == 422
    assert field in error_fields(response)
    assert 'id="slot-picker"' in response.get_data(as_text=True)  # the page still works


def test_a_chosen_start_shows_the_booking_form(site, make_client):
    host = make_client(ACME_HOST)
    response = host.get(f"{site.demo_path}?start=2030-01-07T10:00:00%2B01:00&tz=Europe/Warsaw")

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="booking-form"' in body
    for name in ("first_name", "last_name", "email", "q_q1", "q_q3", "consent"):
        assert f'id="{name}"' in body
    assert 'name="q_q2"' in body
    assert 'value="11-50"' in body
    assert CONSENT in body
    assert hidden(response, "start") == "2030-01-07T09:00:00+00:00"
    assert len(hidden(response, "idempotency_key")) >= 24
    assert hidden(response, "tz") == "Europe/Warsaw"
    assert 'id="chosen-time"' in body
    assert "10:00" in body
    assert f'action="{site.demo_path}/book"' in body
    # Each rendering gets its own key, so two tabs are two bookings.
    again = host.get(f"{site.demo_path}?start=2030-01-07T10:00:00%2B01:00&tz=Europe/Warsaw")
    assert hidden(again, "idempotency_key") != hidden(response, "idempotency_key")


def test_a_start_that_is_not_free_shows_the_day_again(site, client):
    response = client.get(f"{site.intro_path}?start=2030-01-07T10:10:00%2B01:00")

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert 'id="booking-form"' not in body
    assert 'id="slot-message"' in body
    assert slot_starts(response)[0] == "2030-01-07T09:00:00+01:00"


def test_polish_by_accept_language_and_switchable(site, client):
    polish = client.get(site.intro_path, headers={"Accept-Language": "pl,en;q=0.5"})
    assert '<html lang="pl">' in polish.get_data(as_text=True)
    assert "styczeń 2030" in polish.get_data(as_text=True)

    english = client.get(f"{site.intro_path}?lang=en", headers={"Accept-Language": "pl"})
    assert '<html lang="en">' in english.get_data(as_text=True)
    # The choice is remembered on this host.
    again = client.get(site.intro_path, headers={"Accept-Language": "pl"})
    assert '<html lang="en">' in again.get_data(as_text=True)
    assert 'hreflang="pl"' in again.get_data(as_text=True)


# --- Search engines (D4) ------------------------------------------------------------------------------------


def test_a_visible_page_may_be_indexed(site, client):
    response = client.get(site.intro_path)
    assert "X-Robots-Tag" not in response.headers
    assert 'name="robots"' not in response.get_data(as_text=True)


def test_a_hidden_page_says_noindex(app, site, client):
    with app.app_context():
        page = pages.get_page(db.session.get(User, site.acme_rep_id).tenant, site.intro_id)
        page.hide_from_search = True
        db.session.commit()

    response = client.get(site.intro_path, headers={"User-Agent": "Googlebot/2.1"})

    assert response.status_code == 200
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert '<meta name="robots" content="noindex">' in response.get_data(as_text=True)


def test_slots_json_is_never_indexed(site, client):
    assert client.get(f"{site.intro_path}/slots.json").headers["X-Robots-Tag"] == "noindex"


# --- P4: pages switched off ---------------------------------------------------------------------------------


def _rep_pages_off(app, rep_id: int, off: bool) -> None:
    with app.app_context():
        pages.set_pages_disabled(db.session.get(User, rep_id), off)
        db.session.commit()


def test_pages_switched_off_answer_not_available_and_come_back(app, site, client, make_client):
    before = client.get(f"{site.intro_path}?day=2030-01-07")
    _rep_pages_off(app, site.acme_rep_id, True)

    page = client.get(site.intro_path)
    assert page.status_code == 404
    assert 'id="page-unavailable"' in page.get_data(as_text=True)
    assert "This scheduling page is not available" in page.get_data(as_text=True)
    assert page.headers["X-Robots-Tag"] == "noindex"
    slots = client.get(f"{site.intro_path}/slots.json")
    assert slots.status_code == 404
    assert slots.get_json()["error"] == "page_unavailable"
    on_domain = make_client(ACME_HOST).get(site.demo_path)
    assert on_domain.status_code == 404

    _rep_pages_off(app, site.acme_rep_id, False)
    after = client.get(f"{site.intro_path}?day=2030-01-07")
    assert after.status_code == 200
    assert slot_starts(after) == slot_starts(before)


def test_the_tenant_switch_turns_every_page_off(app, site, client, make_client):
    with app.app_context():
        rep = db.session.get(User, site.acme_rep_id)
        admin = factories.make_user(rep.tenant, role="admin")
        pages.set_tenant_pages_disabled(rep.tenant, admin, True)
        db.session.commit()

    for response in (client.get(site.intro_path), make_client(ACME_HOST).get(site.demo_path)):
        assert response.status_code == 404
        body = response.get_data(as_text=True)
        assert 'id="page-unavailable"' in body
        assert "This scheduling page is not available" in body
        assert "Intro call" not in body
        assert "Product demo" not in body
        assert slot_starts(response) == []
    assert client.get(f"{site.intro_path}/slots.json").get_json()["error"] == "page_unavailable"
    # Globex's page is on its own domain, and still on.
    globex = client.get(site.globex_path)
    assert globex.status_code == 301
    assert globex.headers["Location"] == f"http://{GLOBEX_HOST}{site.globex_path}"
    on_domain = make_client(GLOBEX_HOST).get(f"{site.globex_path}?day=2030-01-07")
    assert 'id="page-unavailable"' not in on_domain.get_data(as_text=True)
    assert "Globex call" in on_domain.get_data(as_text=True)
    assert len(slot_starts(on_domain)) == 16


# --- C7: "Meeting scheduling pages" off on every account ----------------------------------------------------


def _scheduling_pages(app, rep_id: int, on: bool, connection_ids: list[int]) -> None:
    with app.app_context():
        rep = db.session.get(User, rep_id)
        for connection_id in connection_ids:
            connection = sync.get_connection(rep.tenant, rep, connection_id)
            choices = sync.ConnectionChoices(
                calendar_sync=connection.calendar_sync,
                scheduling_pages=on,
                task_sync=connection.task_sync,
                default_calendar_id=connection.default_calendar.id,
                availability_calendar_ids=frozenset(),
            )
            sync.save_choices(rep.tenant, rep, connection, choices)
        db.session.commit()


def _connect_two_accounts(app, rep_id: int) -> list[int]:
    with app.app_context():
        rep = db.session.get(User, rep_id)
        ids = [connect_caldav(rep).id]
        other = sync.connect(
            rep.tenant,
            rep,
            provider="caldav",
            account=Account(id="acct-2", email="rita@home.example.com"),
            calendars=[RemoteCalendar("home", "Home", "owner", is_primary=True)],
            secret={"password": "app-password"},
            server_url="https://caldav.example.com/",
            username="rita-home",
        )
        ids.append(other.id)
        db.session.commit()
        return ids


def test_scheduling_pages_off_on_every_account_makes_the_pages_unavailable(
    app, site, client, make_client, signed_in
):
    ids = _connect_two_accounts(app, site.acme_rep_id)
    before = client.get(f"{site.intro_path}?day=2030-01-07")
    assert slot_starts(before)

    # Off on one account of two: the pages still book, into the other account's calendar.
    _scheduling_pages(app, site.acme_rep_id, False, ids[:1])
    assert slot_starts(client.get(f"{site.intro_path}?day=2030-01-07")) == slot_starts(before)

    _scheduling_pages(app, site.acme_rep_id, False, ids[1:])
    page = client.get(site.intro_path)
    assert page.status_code == 404  # crawlers drop it
    assert 'id="page-unavailable"' in page.get_data(as_text=True)
    assert "This scheduling page is not available" in page.get_data(as_text=True)
    assert client.get(f"{site.intro_path}/slots.json").get_json()["error"] == "page_unavailable"
    assert make_client(ACME_HOST).get(site.demo_path).status_code == 404
    booked = client.post(
        f"{site.intro_path}/book",
        json={
            "start": "2030-01-07T10:00:00+01:00",
            "first_name": "Vera",
            "last_name": "Visitor",
            "email": "vera@example.org",
            "tz": "Europe/Warsaw",
        },
    )
    assert booked.status_code == 404
    assert booked.get_json()["error"] == "page_unavailable"
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(pages.Booking)) == 0
        rep_email = db.session.get(User, site.acme_rep_id).email
    # The editor says why, with the way to the setting.
    editor = signed_in(rep_email).get("/pages").get_data(as_text=True)
    assert 'id="pages-calendar-off"' in editor
    assert "“Meeting scheduling pages” is off on every calendar account you connected" in editor
    assert 'href="/settings/calendars" id="pages-calendar-setting"' in editor
    # Globex's rep is untouched.
    assert make_client(GLOBEX_HOST).get(site.globex_path).status_code == 200

    _scheduling_pages(app, site.acme_rep_id, True, ids[1:])
    after = client.get(f"{site.intro_path}?day=2030-01-07")
    assert after.status_code == 200
    assert slot_starts(after) == slot_starts(before)
    assert 'id="pages-calendar-off"' not in signed_in(rep_email).get("/pages").get_data(as_text=True)


def test_a_rep_with_no_calendar_takes_bookings_and_the_editor_says_they_reach_none(
    app, site, client, signed_in
):
    with app.app_context():
        rep = db.session.get(User, site.acme_rep_id)
        rep_email = rep.email
        editor_path = f"/pages/{site.intro_id}/edit"
    assert slot_starts(client.get(f"{site.intro_path}?day=2030-01-07"))
    rep_client = signed_in(rep_email)
    for path in ("/pages", editor_path):
        body = rep_client.get(path).get_data(as_text=True)
        assert 'id="pages-no-calendar"' in body
        assert "they will not reach a calendar" in body
    _connect_two_accounts(app, site.acme_rep_id)
    assert 'id="pages-no-calendar"' not in rep_client.get(editor_path).get_data(as_text=True)


# --- C11: booking paused ------------------------------------------------------------------------------------


def test_booking_paused_offers_no_slots_and_refuses_with_503(app, site, client):
    make_inactive_calendar(app, site.acme_rep_id)

    page = client.get(site.intro_path)
    assert page.status_code == 200
    assert 'id="booking-paused"' in page.get_data(as_text=True)
    assert slot_starts(page) == []

    slots = client.get(f"{site.intro_path}/slots.json?start=2030-01-07&days=3")
    assert slots.status_code == 200
    assert slots.get_json() == {"slots": [], "paused": True, "time_zone": "Europe/Warsaw", "duration": 30}

    payload = {
        "start": "2030-01-07T10:00:00+01:00",
        "first_name": "Vera",
        "last_name": "Visitor",
        "email": "vera@example.org",
        "tz": "Europe/Warsaw",
    }
    first = client.post(f"{site.intro_path}/book", json=payload)
    second = client.post(f"{site.intro_path}/book", json={**payload, "email": "other@example.org"})
    assert first.status_code == second.status_code == 503
    assert first.get_json()["error"] == "booking_paused"

    with app.app_context():
        # Two visits and two refused bookings in one hour: one row that counts them, with the latest
        # address a visitor gave.
        assert _attempt_rows() == [(site.acme_rep_id, NOW, 4, "other@example.org")]
        # The rep is told once (hourly at most), not once per visitor.
        assert db.session.get(User, site.acme_rep_id).paused_booking_notified_at == NOW
        assert len(_paused_mails(site.acme_rep_id)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(pages.Booking)) == 0


def _attempt_rows() -> list[tuple]:
    query = sa.select(BookingAttempt).order_by(BookingAttempt.owner_id, BookingAttempt.hour_start)
    return [(a.owner_id, a.hour_start, a.attempts, a.email) for a in db.session.scalars(query)]


def _paused_mails(rep_id: int) -> list[dict]:
    rep = db.session.get(User, rep_id)
    query = sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send").order_by(OutboxMessage.id)
    return [
        row.payload
        for row in db.session.scalars(query)
        if row.payload["to"] == [rep.email] and "while booking is paused" in row.payload["subject"]
    ]


def test_a_visit_to_a_paused_page_is_an_attempt_the_rep_hears_of_once_an_hour(app, site, client, monkeypatch):
    make_inactive_calendar(app, site.acme_rep_id)
    visits = [
        site.intro_path,
        f"{site.intro_path}?day=2030-01-07",
        f"{site.intro_path}?start=2030-01-07T10:00:00%2B01:00",
        f"{site.intro_path}/slots.json?start=2030-01-07",
    ]

    for path in visits:
        response = client.get(path)
        assert response.status_code == 200
        if "slots.json" in path:
            assert response.get_json()["paused"] is True
        else:
            assert 'id="booking-paused"' in response.get_data(as_text=True)
            assert slot_starts(response) == []

    with app.app_context():
        assert _attempt_rows() == [(site.acme_rep_id, NOW, 4, "")]
        [mail] = _paused_mails(site.acme_rep_id)
        assert "Someone tried to book a meeting on your page “Intro call”" in mail["text"]
        assert "Why: invalid_grant: the password was changed." in mail["text"]

    # Another hour: one more row, one more email; the other tenant's rep has neither.
    monkeypatch.setattr(public, "utcnow", lambda: NOW + timedelta(hours=1, minutes=5))
    client.get(site.intro_path)
    client.get(f"{site.intro_path}?day=2030-01-08")
    with app.app_context():
        rows = _attempt_rows()
        assert [(row[1], row[2]) for row in rows] == [(NOW, 4), (NOW + timedelta(hours=1), 2)]
        assert len(_paused_mails(site.acme_rep_id)) == 2
        assert _paused_mails(site.globex_rep_id) == []


# --- Hosts (D3, D5, D6) and old links (P2) ------------------------------------------------------------------


def test_another_tenants_page_path_on_a_domain_is_404(site, make_client):
    acme = make_client(ACME_HOST)
    globex = make_client(GLOBEX_HOST)

    assert acme.get(site.globex_path).status_code == 404
    assert acme.get(f"{site.globex_path}/slots.json").status_code == 404
    assert globex.get(site.demo_path).status_code == 404
    assert globex.get(site.intro_path).status_code == 404
    assert globex.get(f"{site.demo_path}/slots.json").get_json()["error"] == "not_found"


def test_each_domain_serves_its_own_tenants_page(site, make_client):
    acme = make_client(ACME_HOST).get(f"{site.demo_path}?day=2030-01-07")
    globex = make_client(GLOBEX_HOST).get(f"{site.globex_path}?day=2030-01-07")

    assert acme.status_code == globex.status_code == 200
    acme_body, globex_body = acme.get_data(as_text=True), globex.get_data(as_text=True)
    assert "Product demo" in acme_body
    assert "Rita Rep" in acme_body
    assert "Globex" not in acme_body
    assert "Gus" not in acme_body
    assert "Globex call" in globex_body
    assert "Gus Globex" in globex_body
    assert "Acme" not in globex_body
    assert "Rita" not in globex_body
    # Each page's own slots, with links on its own host's paths.
    assert slot_starts(acme)[0] == slot_starts(globex)[0] == "2030-01-07T09:00:00+01:00"
    assert f'href="{site.demo_path}?' in acme_body
    assert f'href="{site.globex_path}?' in globex_body


def test_a_page_on_a_domain_asked_on_the_app_host_moves_there(site, client):
    response = client.get(f"{site.demo_path}?day=2030-01-07&tz=Europe/Warsaw")

    assert response.status_code == 301
    assert (
        response.headers["Location"] == f"http://{ACME_HOST}{site.demo_path}?day=2030-01-07&tz=Europe/Warsaw"
    )


def test_a_page_on_the_app_host_asked_on_the_domain_moves_back(site, make_client):
    response = make_client(ACME_HOST).get(f"{site.intro_path}?lang=pl")

    assert response.status_code == 301
    assert response.headers["Location"] == f"http://{APP_HOST}{site.intro_path}?lang=pl"


def test_a_page_moved_to_another_domain_redirects_from_the_old_one(app, site, make_client):
    with app.app_context():
        tenant = db.session.get(User, site.acme_rep_id).tenant
        other = factories.make_domain(tenant, "meet.acme.example")
        pages.get_page(tenant, site.demo_id).domain_id = other.id
        db.session.commit()

    old = make_client(ACME_HOST).get(f"{site.demo_path}?tz=Asia/Kolkata")
    new = make_client("meet.acme.example").get(site.demo_path)

    assert old.status_code == 301
    assert old.headers["Location"] == f"http://meet.acme.example{site.demo_path}?tz=Asia/Kolkata"
    assert new.status_code == 200


def test_a_removed_domain_redirects_to_the_app_host(app, site, make_client):
    with app.app_context():
        domain = db.session.get(Domain, site.acme_domain_id)
        domain.status, domain.removed_at = "removed", NOW
        db.session.commit()

    response = make_client(ACME_HOST).get(f"{site.demo_path}?day=2030-01-07")
    slots = make_client(ACME_HOST).get(f"{site.demo_path}/slots.json?days=2")

    assert response.status_code == 301
    assert response.headers["Location"] == f"http://{APP_HOST}{site.demo_path}?day=2030-01-07"
    assert slots.status_code == 301
    assert slots.headers["Location"] == f"http://{APP_HOST}{site.demo_path}/slots.json?days=2"
    # Nothing else is served there any more.
    assert make_client(ACME_HOST).get("/robots.txt").status_code == 404
    # Another tenant's path on the removed domain is still not served.
    assert make_client(ACME_HOST).get(site.globex_path).status_code == 404


def test_an_old_user_slug_redirects(app, site, client):
    with app.app_context():
        rep = db.session.get(User, site.acme_rep_id)
        pages.change_user_slug(rep, "rita")
        db.session.commit()

    response = client.get(f"{site.intro_path}?tz=Europe/Warsaw")
    on_domain = client.get(f"{site.demo_path}?day=2030-01-07")

    assert response.status_code == 301
    assert response.headers["Location"] == f"http://{APP_HOST}/meetings/rita?tz=Europe/Warsaw"
    assert client.get("/meetings/rita").status_code == 200
    # The old path of a page on a domain goes straight to the domain.
    assert on_domain.status_code == 301
    assert on_domain.headers["Location"] == f"http://{ACME_HOST}/meetings/rita/demo?day=2030-01-07"


def test_an_old_page_slug_redirects(app, site, make_client):
    with app.app_context():
        tenant = db.session.get(User, site.acme_rep_id).tenant
        page = pages.get_page(tenant, site.demo_id)
        page.slug, old = "product-demo", page.slug
        pages._keep_old_page_slug(page, old, "product-demo")
        db.session.commit()
        new_path = paths.page_path(page)

    response = make_client(ACME_HOST).get(f"{site.demo_path}?duration=60")

    assert response.status_code == 301
    assert response.headers["Location"] == f"http://{ACME_HOST}{new_path}?duration=60"


@pytest.mark.parametrize("path", ["/meetings/nobody", "/meetings/nobody/page", "/meetings/booking"])
def test_unknown_paths_are_404(site, client, path):
    assert client.get(path).status_code == 404


def test_a_pending_domain_serves_nothing(app, site, make_client):
    with app.app_context():
        factories.make_domain(
            db.session.get(User, site.acme_rep_id).tenant, "new.acme.example", status="pending"
        )
        db.session.commit()
    assert make_client("new.acme.example").get(site.demo_path).status_code == 404


# --- slots.json ---------------------------------------------------------------------------------------------


def test_slots_json_shape(site, client):
    response = client.get(f"{site.intro_path}/slots.json?start=2030-01-07&days=2&tz=Asia/Kolkata")

    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"slots", "time_zone", "duration", "paused"}
    assert body["time_zone"] == "Asia/Kolkata"
    assert body["duration"] == 30
    assert body["paused"] is False
    # Monday 9:00 in Warsaw is 13:30 in Kolkata; two Kolkata days hold Monday and part of Tuesday.
    assert body["slots"][0] == "2030-01-07T13:30:00+05:30"
    assert all(datetime.fromisoformat(s).utcoffset().total_seconds() == 19800 for s in body["slots"])
    assert len(body["slots"]) == 16 + 16


def test_slots_json_defaults_to_today_and_a_week(site, client):
    body = client.get(f"{site.intro_path}/slots.json").get_json()
    assert body["slots"][0] == "2030-01-01T13:00:00+01:00"
    assert body["slots"][-1].startswith("2030-01-07T")  # 7 days from today


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("tz=Nowhere/City", "tz"),
        ("start=2030-02-30", "start"),
        ("days=0", "days"),
        ("days=63", "days"),
        ("days=many", "days"),
        ("duration=45", "duration"),
    ],
)
def test_slots_json_bad_input_names_the_field(site, client, query, field):
    response = client.get(f"{site.intro_path}/slots.json?{query}")
    assert response.status_code == 422
    assert field in response.get_json()["errors"]


def test_slots_json_of_another_duration(site, make_client):
    body = (
        make_client(ACME_HOST)
        .get(f"{site.demo_path}/slots.json?start=2030-01-07&days=1&duration=60")
        .get_json()
    )
    assert body["duration"] == 60
    assert body["slots"][-1] == "2030-01-07T16:00:00+01:00"


def test_slots_json_across_dst_changes_keeps_the_reps_wall_clock(app, site, client):
    with app.app_context():
        page = pages.get_page(db.session.get(User, site.acme_rep_id).tenant, site.intro_id)
        page.horizon_days = 150
        db.session.commit()

    def first_of_each_day(tz: str, start: str, days: int) -> list[str]:
        body = client.get(f"{site.intro_path}/slots.json?start={start}&days={days}&tz={tz}").get_json()
        seen: dict[str, str] = {}
        for slot in body["slots"]:
            seen.setdefault(slot[:10], slot)
        return list(seen.values())

    # Warsaw moves its clocks on 31 March 2030: 9:00 stays 9:00 there, the offset changes.
    assert first_of_each_day("Europe/Warsaw", "2030-03-29", 4) == [
        "2030-03-29T09:00:00+01:00",
        "2030-04-01T09:00:00+02:00",
    ]
    # New York moves on 10 March: for three weeks the gap between the two cities is an hour shorter.
    assert first_of_each_day("America/New_York", "2030-03-08", 1) == ["2030-03-08T03:00:00-05:00"]
    assert first_of_each_day("America/New_York", "2030-03-11", 1) == ["2030-03-11T04:00:00-04:00"]
    assert first_of_each_day("America/New_York", "2030-04-01", 1) == ["2030-04-01T03:00:00-04:00"]
    # Lord Howe shifts by 30 minutes (on 7 April 2030).
    assert first_of_each_day("Australia/Lord_Howe", "2030-04-08", 1) == ["2030-04-08T17:30:00+10:30"]
