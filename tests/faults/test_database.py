"""PostgreSQL restarted under bookings (issue 11, items 2 and 6): while it is down every booking is answered
503 with Retry-After (never 500), right after it is back bookings succeed again (the pool checks its
connections), and nothing is half-written: every booking answered 201 exists with its contact, its meeting
and its outbox rows, and no other booking does."""

import threading
from collections import Counter
from collections.abc import Iterator

import pytest
import requests
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.crm.models import Meeting
from app.extensions import db
from app.pages.models import Booking
from app.pages.paths import page_path
from tests import factories

pytestmark = pytest.mark.faults
HOST = "app.termin.test"


@pytest.fixture
def served(faults_app, runtime) -> Iterator[tuple[str, str]]:
    """The app on a loopback port (threaded, as gunicorn's workers would serve it) and one rep's page."""
    app = faults_app[0]
    with app.app_context():
        tenant = factories.make_tenant("Acme")
        rep = factories.make_user(tenant, seat="sales", email="rep@acme.example.com")
        page = factories.make_page(rep)
        path = page_path(page)
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", path
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


def test_postgresql_restarted_during_bookings_answers_503_then_books_again(faults_app, postgres, served):
    base, path = served
    session = requests.Session()
    session.headers.update({"Host": HOST, "Accept": "application/json"})
    starts = session.get(f"{base}{path}/slots.json", params={"days": 14}, timeout=30).json()
    free = starts["slots"]
    assert len(free) >= 40

    def book(n: int) -> requests.Response:
        body = {
            "start": free[n],
            "first_name": "Vera",
            "last_name": f"Visitor {n}",
            "email": f"vera{n}@example.org",
            "tz": "Europe/Warsaw",
            "idempotency_key": f"fault-{n}",
        }
        return session.post(f"{base}{path}/book", json=body, timeout=30)

    answers: dict[str, list[int]] = {"before": [], "during": [], "after": []}
    for n in range(5):
        answers["before"].append(book(n).status_code)
    postgres.stop("fast")  # every connection cut, the pool's included
    try:
        for n in range(5, 15):
            response = book(n)
            answers["during"].append(response.status_code)
            if response.status_code == 503:
                assert response.headers.get("Retry-After")
                assert response.headers["Content-Type"].startswith("application/json")
    finally:
        postgres.start()
    for n in range(15, 25):
        answers["after"].append(book(n).status_code)

    assert answers["before"] == [201] * 5
    assert set(answers["during"]) == {503}, answers
    assert answers["after"] == [201] * 10, answers  # the first requests after the restart succeed

    app = faults_app[0]
    with app.app_context():
        booked = db.session.scalars(sa.select(Booking)).all()
        assert sorted(b.idempotency_key for b in booked) == sorted(
            f"fault-{n}" for n in [*range(5), *range(15, 25)]
        )
        meetings = Counter(db.session.scalars(sa.select(Meeting.id)).all())
        assert all(b.meeting_id in meetings and b.contact_id is not None for b in booked)
