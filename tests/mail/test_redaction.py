"""Secrets at rest (issue 15): once a mail is delivered, or has failed for good, its stored copy in the
outbox keeps no live manage link or token; what the delivery status needs stays."""

import sqlalchemy as sa

from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages.models import Booking
from tests.conftest import Client
from tests.pages.conftest import site  # noqa: F401  (the pages' fixture, used here too)

BODY = {
    "start": "2030-01-07T10:00:00+01:00",
    "first_name": "Vera",
    "last_name": "Visitor",
    "email": "vera@example.org",
    "tz": "Europe/Warsaw",
}


def outbox(app) -> list[OutboxMessage]:
    with app.app_context():
        rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send")).all()
        db.session.expunge_all()
        return rows


def book(app, site) -> str:  # noqa: F811
    response = Client(app).post(f"{site.intro_path}/book", json=BODY, headers={"Accept": "application/json"})
    assert response.status_code == 201
    return response.json["booking"]["manage_url"].rsplit("/", 1)[1]


def test_a_delivered_confirmation_keeps_no_manage_token(app, site, sink):  # noqa: F811
    token = book(app, site)

    [sent] = [m for m in sink.messages if m["To"] == "vera@example.org"]
    assert token in sent.get_body(("plain",)).get_content()  # the visitor got the live link
    [row] = [row for row in outbox(app) if row.payload["to"] == ["vera@example.org"]]
    assert row.status == "delivered"
    assert token not in str(row.payload)
    assert "[redacted]" in row.payload["text"]
    assert row.payload["redacted"] is True
    assert "secrets" not in row.payload
    # What the delivery status needs stays.
    assert row.payload["subject"].startswith("Booked: Intro call")
    assert row.payload["message_id"] == sent["Message-ID"]
    # The link itself still works: only the stored copy lost it.
    assert Client(app).get(f"/meetings/booking/{token}").status_code == 200
    with app.app_context():
        assert token not in db.session.scalar(sa.select(Booking.manage_token_hash))


def test_a_mail_that_failed_for_good_is_redacted_too(app, site, sink):  # noqa: F811
    sink.refuse("vera@example.org", 550)

    token = book(app, site)

    [row] = [row for row in outbox(app) if row.payload["to"] == ["vera@example.org"]]
    assert row.status == "failed"
    assert "550" in row.last_error
    assert token not in str(row.payload)


def test_a_mail_waiting_to_be_sent_still_has_its_link(app, site, queued):  # noqa: F811
    token = book(app, site)

    [row] = [row for row in outbox(app) if row.payload["to"] == ["vera@example.org"]]
    assert row.status == "pending"
    assert token in row.payload["text"]
