"""Attribution: the ref on an email's meeting links survives the page's moves and a booking through it records
the email; the contact's timeline says "booked from the email <subject>"."""

import re

import sqlalchemy as sa

from app.emails.models import SentEmail
from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages.models import Booking, SchedulingPage
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, hidden, slot_starts

MONDAY_10 = "2030-01-07T10:00:00+01:00"


def _send(rep, mailroom, body="Book: {{ meeting_link }}", subject="Time for a chat?") -> str:
    response = rep.post_form(
        f"/crm/contacts/{mailroom.contact_id}/email", {"action": "send", "subject": subject, "body": body}
    )
    assert response.status_code == 303, response.get_data(as_text=True)


def _link(sink) -> str:
    text = sink.messages[-1].get_body(("plain",)).get_content()
    return re.search(r"(http://\S+\?ref=[\w-]{16})", text).group(1)


def _book(visitor, path: str, ref: str, email="vera@example.org", start=MONDAY_10):
    """Open the page through the emailed link, pick Monday 10:00 and book it, as the browser would."""
    page = visitor.get(path, query_string={"ref": ref})
    assert page.status_code == 200
    assert f"ref={ref}" in page.get_data(as_text=True)  # the day and time links keep it
    form = visitor.get(path, query_string={"ref": ref, "start": start, "tz": "Europe/Warsaw"})
    assert hidden(form, "ref") == ref
    fields = {
        name: hidden(form, name)
        for name in ("csrf_token", "start", "duration", "tz", "idempotency_key", "ref")
    }
    return visitor.post(
        f"{path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": email},
    )


def _bookings(app) -> list[Booking]:
    with app.app_context():
        rows = db.session.scalars(sa.select(Booking)).all()
        db.session.expunge_all()
        return rows


def test_a_booking_through_the_emailed_link_records_the_email_and_shows_on_the_timeline(
    app, mailroom, signed_in, sink, make_client
):
    rep = signed_in(mailroom.rep_email)
    _send(rep, mailroom)
    link = _link(sink)
    path, ref = link.split("//", 1)[1].split("/", 1)[1].split("?ref=")
    visitor = make_client()
    assert slot_starts(visitor.get(f"/{path}", query_string={"ref": ref, "day": "2030-01-07"}))
    booked = _book(visitor, f"/{path}", ref)
    assert booked.status_code == 303, booked.get_data(as_text=True)
    [booking] = _bookings(app)
    with app.app_context():
        sent = db.session.scalar(sa.select(SentEmail))
        assert booking.sent_email_id == sent.id
    record = rep.get(f"/crm/contacts/{mailroom.contact_id}").get_data(as_text=True)
    assert "Booked from the email “Time for a chat?”" in record
    assert f'data-booking-id="{booking.id}"' in record


def test_the_emailed_link_301s_after_the_page_moves_and_keeps_the_ref(
    app, mailroom, signed_in, sink, make_client
):
    rep = signed_in(mailroom.rep_email)
    _send(rep, mailroom)
    link = _link(sink)
    ref = link.rsplit("=", 1)[1]
    old_path = link.split("app.termin.test", 1)[1]
    with app.app_context():
        intro = db.session.get(SchedulingPage, mailroom.intro_id)
        intro.domain_id = mailroom.domain_id
        db.session.commit()
    moved = make_client().get(old_path)
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"http://{ACME_HOST}/meetings/{mailroom.rep_slug}?ref={ref}"
    booked = _book(make_client(ACME_HOST), f"/meetings/{mailroom.rep_slug}", ref)
    assert booked.status_code == 303
    assert _bookings(app)[0].sent_email_id is not None
    # A new send builds the new domain's URL.
    _send(rep, mailroom)
    assert _link(sink).startswith(f"http://{ACME_HOST}/meetings/{mailroom.rep_slug}?ref=")


def test_a_ref_of_another_tenant_or_made_up_is_ignored_and_the_booking_still_made(
    app, mailroom, signed_in, sink, make_client
):
    rep = signed_in(mailroom.rep_email)
    _send(rep, mailroom)
    ref = _link(sink).rsplit("=", 1)[1]
    with app.app_context():
        sent = db.session.scalar(sa.select(SentEmail))
        sent.tenant_id = mailroom.other_tenant_id  # as if Globex had sent it
        db.session.commit()
    booked = _book(make_client(), f"/meetings/{mailroom.rep_slug}", ref)
    assert booked.status_code == 303
    assert _bookings(app)[0].sent_email_id is None
    made_up = _book(
        make_client(),
        f"/meetings/{mailroom.rep_slug}/intro",
        "AAAAAAAAAAAAAAAA",
        email="x@example.org",
        start="2030-01-07T11:00:00+01:00",
    )
    assert made_up.status_code == 303
    assert len(_bookings(app)) == 2
    assert all(b.sent_email_id is None for b in _bookings(app))


def test_another_tenants_domain_does_not_serve_our_page_even_with_a_ref(
    app, mailroom, signed_in, sink, make_client
):
    rep = signed_in(mailroom.rep_email)
    _send(rep, mailroom)
    ref = _link(sink).rsplit("=", 1)[1]
    assert make_client(GLOBEX_HOST).get(f"/meetings/{mailroom.rep_slug}?ref={ref}").status_code == 404


def test_the_stored_copy_keeps_the_ref_and_nothing_else_carries_it(
    app, mailroom, signed_in, sink, make_client
):
    """The outbox's copy of a delivered sales email keeps its links' ref (it is what was sent, and grants
    nothing but attribution); the visitor's and the rep's booking mails and the answer's Location do not
    carry it on."""
    rep = signed_in(mailroom.rep_email)
    _send(rep, mailroom)
    ref = _link(sink).rsplit("=", 1)[1]
    with app.app_context():
        [stored] = db.session.scalars(sa.select(OutboxMessage)).all()
        assert stored.status == "delivered"
        assert stored.payload["redacted"] is True
        assert f"ref={ref}" in stored.payload["text"]
        assert f"ref={ref}" in stored.payload["html"]
    booked = _book(make_client(), f"/meetings/{mailroom.rep_slug}", ref)
    assert booked.status_code == 303
    assert ref not in booked.headers["Location"]
    with app.app_context():
        later = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.id != stored.id)).all()
        assert later  # the visitor's confirmation and the rep's notice
        assert all(ref not in str(row.payload) for row in later)
