"""The public page's micro-cache (app/pages/cache.py) and the host -> domain cache (app/web/tenancy.py).

Every other test runs with PAGE_CACHE_SECONDS=0; these switch it on, with the caches' clocks pinned.
"""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.pages import cache as page_cache
from app.pages import public
from app.pages import services as pages
from app.tenants.models import User
from app.web import tenancy
from tests.conftest import APP_HOST, Client
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, build_site, slot_starts

TTL = 5
START = "2030-01-07T10:00:00+01:00"


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app, monkeypatch) -> Clock:
    pinned = Clock()
    monkeypatch.setattr(page_cache, "clock", pinned)
    monkeypatch.setattr(tenancy, "clock", pinned)
    monkeypatch.setitem(app.config, "PAGE_CACHE_SECONDS", TTL)
    page_cache.page_cache(app).clear()
    app.extensions.pop(tenancy.HOSTS_EXTENSION, None)
    yield pinned
    page_cache.page_cache(app).clear()
    app.extensions.pop(tenancy.HOSTS_EXTENSION, None)


@pytest.fixture
def site(app, monkeypatch, clock):
    return build_site(app, monkeypatch)


@pytest.fixture
def queries(db_connection):
    """How many SQL statements the app sent since the last ``reset()``."""

    class Counter:
        count = 0

        def reset(self):
            self.count = 0

    counter = Counter()

    def count(*_args):
        counter.count += 1

    sa.event.listen(db_connection, "before_cursor_execute", count)
    yield counter
    sa.event.remove(db_connection, "before_cursor_execute", count)


def fresh(app, host: str = APP_HOST) -> Client:
    """A new visitor: no cookies."""
    return Client(app, host)


def book(app, path: str):
    """A new visitor books START on the page at ``path``, as a JSON client; the answer."""
    fields = {
        "start": START,
        "first_name": "Vera",
        "last_name": "V",
        "email": "v@example.org",
        "tz": "Europe/Warsaw",
    }
    return fresh(app).post(f"{path}/book", json=fields, headers={"Accept": "application/json"})


def hits(app) -> int:
    return page_cache.page_cache(app).hits


def test_a_second_identical_get_is_served_from_the_cache_without_a_query(app, site, queries):
    first = fresh(app, ACME_HOST).get(f"{site.demo_path}?day=2030-01-07")
    assert first.status_code == 200
    assert hits(app) == 0

    queries.reset()
    second = fresh(app, ACME_HOST).get(f"{site.demo_path}?day=2030-01-07")

    assert second.status_code == 200
    assert hits(app) == 1
    assert queries.count == 0  # neither the host nor the page was looked up
    assert second.get_data() == first.get_data()
    assert second.headers["Content-Type"] == first.headers["Content-Type"]
    assert "HX-Request" in second.headers["Vary"]
    assert "Cookie" in second.headers["Vary"]
    assert "X-Robots-Tag" not in second.headers  # the page is visible: the cached copy stays indexable


def test_fragments_and_slots_json_are_cached_apart_from_the_page(app, site):
    path = f"{site.intro_path}?day=2030-01-08"
    page = fresh(app).get(path)
    fragment = fresh(app).get(path, headers={"HX-Request": "true"})
    assert hits(app) == 0
    assert fresh(app).get(path, headers={"HX-Request": "true"}).get_data() == fragment.get_data()
    assert fresh(app).get(path).get_data() == page.get_data()
    assert fragment.get_data() != page.get_data()
    assert hits(app) == 2

    url = f"{site.intro_path}/slots.json?start=2030-01-07&days=1&tz=Europe/Warsaw"
    body = fresh(app).get(url).get_json()
    again = fresh(app).get(url)
    assert again.get_json() == body
    assert again.headers["X-Robots-Tag"] == "noindex"
    assert hits(app) == 3


def test_a_booking_drops_the_pages_entries_at_once(app, site):
    path = f"{site.intro_path}?day=2030-01-07"
    assert START in slot_starts(fresh(app).get(path))
    json_url = f"{site.intro_path}/slots.json?start=2030-01-07&days=1&tz=Europe/Warsaw"
    assert START in fresh(app).get(json_url).get_json()["slots"]
    assert START in slot_starts(fresh(app).get(path))  # from the cache
    assert hits(app) == 1

    booked = book(app, site.intro_path)
    assert booked.status_code == 201, booked.get_data(as_text=True)

    assert START not in slot_starts(fresh(app).get(path))
    assert START not in fresh(app).get(json_url).get_json()["slots"]
    assert hits(app) == 1


def test_a_cancel_drops_the_pages_entries(app, site):
    booked = book(app, site.intro_path).get_json()["booking"]
    token = booked["manage_url"].rsplit("/", 1)[1]
    path = f"{site.intro_path}?day=2030-01-07"
    assert START not in slot_starts(fresh(app).get(path))
    with app.app_context():
        booking = pages.get_booking_by_token(token)
        pages.cancel_booking(booking, reason="", by_visitor=True, now=public.utcnow())
        db.session.commit()
    assert START in slot_starts(fresh(app).get(path))  # not the cached page from before the cancel
    assert hits(app) == 0


def test_a_request_with_the_apps_cookies_is_never_served_nor_stored(app, site):
    path = f"{site.intro_path}?day=2030-01-07"
    fresh(app).get(path)  # stored
    with_prefill = fresh(app)
    with_prefill.http.set_cookie(public.PREFILL_COOKIE, "anything", domain=APP_HOST, path="/meetings/")
    assert with_prefill.get(path).status_code == 200
    signed = fresh(app)
    signed.csrf_token()  # the login page gives this browser a session cookie
    assert signed.get(path).status_code == 200
    assert hits(app) == 0  # neither was answered from the cache

    page_cache.page_cache(app).clear()
    with_prefill.get(f"{site.intro_path}?day=2030-01-08")
    signed.get(f"{site.intro_path}?day=2030-01-09")
    assert len(page_cache.page_cache(app)) == 0  # nor stored


def test_answers_that_set_a_cookie_or_carry_a_form_are_not_stored(app, site):
    # ?lang= remembers the language in the session: a cookie is set, so nothing is stored.
    response = fresh(app).get(f"{site.intro_path}?lang=pl")
    assert response.status_code == 200
    assert "Set-Cookie" in response.headers
    # The booking form: a CSRF token and an idempotency key, this visitor's own.
    form = fresh(app).get(site.intro_path, query_string={"start": START, "tz": "Europe/Warsaw"})
    assert 'id="booking-form"' in form.get_data(as_text=True)
    assert len(page_cache.page_cache(app)) == 0
    again = fresh(app).get(site.intro_path, query_string={"start": START, "tz": "Europe/Warsaw"})
    assert 'id="booking-form"' in again.get_data(as_text=True)
    assert hits(app) == 0


def test_hosts_tenants_locales_and_queries_never_share_an_entry(app, site):
    globex = fresh(app, GLOBEX_HOST).get(site.globex_path)
    assert globex.status_code == 200
    assert "Globex call" in globex.get_data(as_text=True)
    # The same path on another tenant's domain is not Globex's page.
    assert fresh(app, ACME_HOST).get(site.globex_path).status_code == 404
    # Nor on the app host: there it is sent to its domain.
    assert fresh(app).get(site.globex_path).status_code == 301

    english = fresh(app).get(site.intro_path, headers={"Accept-Language": "en"})
    polish = fresh(app).get(site.intro_path, headers={"Accept-Language": "pl"})
    assert "January 2030" in english.get_data(as_text=True)
    assert "January 2030" not in polish.get_data(as_text=True)
    assert 'lang="pl"' in polish.get_data(as_text=True)

    monday = fresh(app).get(f"{site.intro_path}?day=2030-01-07")
    tuesday = fresh(app).get(f"{site.intro_path}?day=2030-01-08")
    assert slot_starts(monday)[0].startswith("2030-01-07")
    assert slot_starts(tuesday)[0].startswith("2030-01-08")
    assert hits(app) == 0

    # Each is served again from its own entry.
    again = fresh(app).get(site.intro_path, headers={"Accept-Language": "pl"})
    assert again.get_data() == polish.get_data()
    assert hits(app) == 1


def test_entries_expire_after_the_ttl(app, site, clock, queries):
    path = f"{site.intro_path}?day=2030-01-07"
    fresh(app).get(path)
    clock.now += TTL - 0.1
    queries.reset()
    fresh(app).get(path)
    assert hits(app) == 1
    assert queries.count == 0
    clock.now += 0.2
    fresh(app).get(path)
    assert hits(app) == 1
    assert queries.count > 0


def test_p4_switch_off_in_another_process_shows_within_the_ttl(app, site, clock):
    path = site.demo_path
    assert fresh(app, ACME_HOST).get(path).status_code == 200
    # Another process switches the rep's pages off: no ORM object of this process changes.
    with app.app_context():
        db.session.execute(sa.update(User).where(User.id == site.acme_rep_id).values(pages_disabled=True))
        db.session.commit()
    clock.now += 1
    assert fresh(app, ACME_HOST).get(path).status_code == 200  # still the cached page, within the TTL
    clock.now += TTL
    gone = fresh(app, ACME_HOST).get(path)
    assert gone.status_code == 404
    assert 'id="page-unavailable"' in gone.get_data(as_text=True)


def test_p4_switch_off_in_this_process_shows_at_once(app, site):
    path = site.demo_path
    assert fresh(app, ACME_HOST).get(path).status_code == 200
    with app.app_context():
        pages.set_pages_disabled(db.session.get(User, site.acme_rep_id), True)
        db.session.commit()
    assert fresh(app, ACME_HOST).get(path).status_code == 404
    assert hits(app) == 0


def test_p4_switch_off_drops_the_app_hosts_entries_too(app, site):
    path = site.intro_path  # served on the app host, where the request names no tenant
    assert fresh(app).get(path).status_code == 200
    with app.app_context():
        pages.set_pages_disabled(db.session.get(User, site.acme_rep_id), True)
        db.session.commit()
    assert fresh(app).get(path).status_code == 404
    assert hits(app) == 0


def test_a_rolled_back_savepoint_does_not_forget_what_its_transaction_commits(app, site):
    path = site.demo_path
    assert fresh(app, ACME_HOST).get(path).status_code == 200
    with app.app_context():
        pages.set_pages_disabled(db.session.get(User, site.acme_rep_id), True)
        db.session.flush()
        with db.session.begin_nested() as savepoint:
            savepoint.rollback()  # e.g. a refused insert inside the same request
        db.session.commit()
    assert fresh(app, ACME_HOST).get(path).status_code == 404
    assert hits(app) == 0


def test_a_domain_removed_elsewhere_stops_serving_within_the_ttl(app, site, clock):
    from app.tenants.models import Domain

    path = site.demo_path
    assert fresh(app, ACME_HOST).get(f"{path}?day=2030-01-08").status_code == 200
    with app.app_context():
        db.session.execute(sa.update(Domain).where(Domain.id == site.acme_domain_id).values(status="failed"))
        db.session.commit()
    clock.now += 1
    # Within the TTL the host is still remembered as verified, with its page: served, even uncached.
    assert fresh(app, ACME_HOST).get(f"{path}?day=2030-01-09").status_code == 200
    clock.now += TTL
    assert fresh(app, ACME_HOST).get(f"{path}?day=2030-01-08").status_code == 404
    assert fresh(app, ACME_HOST).get(f"{path}?day=2030-01-09").status_code == 404


def test_posts_always_look_the_host_up(app, site, clock):
    assert fresh(app, ACME_HOST).get(site.demo_path).status_code == 200  # the host is remembered
    with app.app_context():
        from app.tenants.models import Domain

        db.session.execute(sa.update(Domain).where(Domain.id == site.acme_domain_id).values(status="failed"))
        db.session.commit()
    answer = fresh(app, ACME_HOST).post(
        f"{site.demo_path}/book", json={"start": START}, headers={"Accept": "application/json"}
    )
    assert answer.status_code == 404


def test_the_cache_is_bounded():
    cache = page_cache.PageCache(max_entries=3)
    for n in range(5):
        cache.put(n, page_cache.Entry(1e12, n, None, 200, (), b"", True))
    assert len(cache) == 3
    assert cache.get(0) is None
    assert cache.get(4) is not None


def test_a_reschedule_drops_the_pages_entries(app, site):
    booked = book(app, site.intro_path).get_json()["booking"]
    token = booked["manage_url"].rsplit("/", 1)[1]
    path = f"{site.intro_path}?day=2030-01-07"
    later = "2030-01-07T14:00:00+01:00"
    starts = slot_starts(fresh(app).get(path))
    assert START not in starts
    assert later in starts
    with app.app_context():  # as the reschedule view does, through the service, one commit
        booking = pages.get_booking_by_token(token)
        pages.reschedule_booking(booking, pages.parse_start(later), token, now=public.utcnow())
        db.session.commit()
    starts = slot_starts(fresh(app).get(path))
    assert START in starts
    assert later not in starts
