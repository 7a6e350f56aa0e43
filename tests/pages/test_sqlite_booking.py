"""The embedded demo's guarantee (issue 5, item 8): on SQLite, concurrent bookings of one slot give exactly
one booking and a clean SlotTaken (409) for every other visitor, never "database is locked" or a 500.

Each test migrates a SQLite file of its own with the app's migrations and books from several threads at
once, each thread in its own app context and so its own session and connection, as the demo's threaded
server runs requests. Without the booking lock this double-books; with a busy timeout of 0, or with an
explicit deferred BEGIN at the start of every transaction (see app/extensions.py), it answers "database is
locked".
"""

import itertools
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from app.extensions import SQLITE_BUSY_TIMEOUT_MS, db
from app.pages import paths
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from tests import factories
from tests.conftest import APP_HOST, config_for_tests

THREADS = 12
ROUNDS = 3
NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
# Monday 7 January 2030, 10:00 in Europe/Warsaw (UTC+1 in winter); one slot per round, 30 minutes apart.
FIRST_SLOT = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def sqlite_app(tmp_path):
    app = create_app(
        {**config_for_tests(f"sqlite:///{tmp_path / 'termin.db'}"), "MAIL_DIR": str(tmp_path / "mail")}
    )
    with app.app_context():
        upgrade()
        tenant = factories.make_tenant()
        owner = factories.make_user(tenant, time_zone="Europe/Warsaw")
        page = factories.make_page(owner)
        db.session.commit()
        app.config["TEST_PAGE_ID"] = page.id
        app.config["TEST_PAGE_PATH"] = paths.page_path(page)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _request(start: datetime, n: int) -> pages.BookingRequest:
    return pages.BookingRequest(
        start=start,
        duration=timedelta(minutes=30),
        first_name="Visitor",
        last_name=str(n),
        email=f"visitor{n}@example.org",
        time_zone="Europe/Warsaw",
        idempotency_key=f"key-{start:%H%M}-{n}",
    )


def _race(threads: int, attempt) -> list[str]:
    """Run ``attempt(n)`` in ``threads`` threads released together; their outcomes, one per thread."""
    barrier = threading.Barrier(threads)
    outcomes: list[str] = [""] * threads

    def run(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            outcomes[n] = attempt(n)
        except Exception as error:  # recorded, and asserted on below
            outcomes[n] = f"error: {error!r}"

    workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert not any(worker.is_alive() for worker in workers), "a booking thread hung"
    return outcomes


def _confirmed(app) -> list[tuple[datetime, datetime]]:
    with app.app_context():
        rows = db.session.execute(
            sa.select(Booking.start_at, Booking.end_at).where(Booking.status == "confirmed")
        ).all()
        db.session.remove()
    return [(row[0], row[1]) for row in rows]


def test_sqlite_is_configured_for_one_writer_at_a_time(sqlite_app):
    with sqlite_app.app_context():
        timeout = db.session.execute(sa.text("PRAGMA busy_timeout")).scalar()
        db.session.remove()
    assert timeout == SQLITE_BUSY_TIMEOUT_MS


def test_concurrent_service_bookings_of_one_slot_give_one_booking(sqlite_app):
    page_id = sqlite_app.config["TEST_PAGE_ID"]
    for round_ in range(ROUNDS):
        start = FIRST_SLOT + timedelta(minutes=30 * round_)

        def attempt(n: int, start=start) -> str:
            with sqlite_app.app_context():
                # Read first, as the view does before it books: the reads must not stop the
                # transaction from taking the write lock later.
                page = db.session.get(SchedulingPage, page_id)
                pages.free_slots(page, start, start + timedelta(hours=1), now=NOW)
                try:
                    pages.book(page, _request(start, n), now=NOW)
                    db.session.commit()
                    return "booked"
                except pages.SlotTaken:
                    db.session.rollback()
                    return "taken"
                finally:
                    db.session.remove()

        outcomes = _race(THREADS, attempt)

        assert sorted(outcomes) == ["booked"] + ["taken"] * (THREADS - 1), outcomes
        assert [s for s, _ in _confirmed(sqlite_app)].count(start) == 1

    bookings = sorted(_confirmed(sqlite_app))
    assert len(bookings) == ROUNDS
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(bookings))


def test_concurrent_http_bookings_of_one_slot_give_one_201_and_409s(sqlite_app, monkeypatch):
    # The view takes "now" from the clock: pin it before the page's slots, as the service test does.
    from app.pages import public

    monkeypatch.setattr(public, "utcnow", lambda: NOW)
    # Every racer posts from 127.0.0.1 to one page: more tries than one visitor's limit allows.
    monkeypatch.setitem(sqlite_app.config, "RATELIMIT_BOOKING_IP", "1000 per hour")
    path = sqlite_app.config["TEST_PAGE_PATH"]
    start = FIRST_SLOT + timedelta(hours=2)

    def attempt(n: int) -> str:
        response = sqlite_app.test_client().post(
            f"{path}/book",
            base_url=f"http://{APP_HOST}",
            headers={"Accept": "application/json"},
            data={
                "start": start.isoformat(),
                "duration": "30",
                "first_name": "Visitor",
                "last_name": str(n),
                "email": f"visitor{n}@example.org",
                "tz": "Europe/Warsaw",
                "idempotency_key": f"http-{n}",
            },
        )
        if response.status_code in (201, 409):
            return str(response.status_code)
        return f"{response.status_code} {response.get_data(as_text=True)[:300]}"

    outcomes = _race(THREADS, attempt)

    assert sorted(outcomes) == ["201"] + ["409"] * (THREADS - 1), outcomes
    assert [s for s, _ in _confirmed(sqlite_app)] == [start]
