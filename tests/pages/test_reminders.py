"""Reminders (T2): queued with the booking at their instants, sent by the outbox in the visitor's language
and zone with the manage links, moved by a reschedule, dropped by a cancel, never sent after the start."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.mail import outbox
from app.mail.models import OutboxMessage
from app.pages import notifications
from app.pages import services as pages
from app.pages.models import SchedulingPage
from tests import factories
from tests.helpers import error_fields
from tests.pages.helpers import NOW, at, booking_request


@pytest.fixture
def page(app_ctx):
    tenant = factories.make_tenant()
    owner = factories.make_user(tenant, time_zone="Europe/Warsaw", email="rita@reminders.example")
    return factories.make_page(owner, reminders=[60, 1440], remind_rep=True)


def reminders() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.kind == "booking.reminder")
            .order_by(OutboxMessage.id)
        )
    )


def mails_to(address: str) -> list[dict]:
    rows = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send"))
    return [row.payload for row in rows if address in str(row.payload.get("to"))]


def deliver_at(message: OutboxMessage, when, monkeypatch) -> OutboxMessage:
    monkeypatch.setattr(notifications, "utcnow", lambda: when)
    return outbox.deliver(message.id, now=when)


def test_reminders_are_queued_at_their_instants_for_the_visitor_and_the_rep(page):
    pages.book(page, booking_request(at(10)), now=NOW)

    queued = reminders()
    assert sorted((m.payload["to"], m.next_attempt_at) for m in queued) == [
        ("rep", at(10) - timedelta(days=1)),
        ("rep", at(9)),
        ("visitor", at(10) - timedelta(days=1)),
        ("visitor", at(9)),
    ]
    assert all(m.status == "pending" for m in queued)
    assert outbox.due_messages(NOW) == [] or all(
        m.kind != "booking.reminder" for m in outbox.due_messages(NOW)
    )


def test_a_due_reminder_goes_out_in_the_visitors_language_with_the_manage_links(page, monkeypatch):
    result = pages.book(page, booking_request(at(10), locale="pl", time_zone="America/New_York"), now=NOW)
    [hour_before] = [m for m in reminders() if m.payload["to"] == "visitor" and m.payload["minutes"] == 60]

    assert deliver_at(hour_before, at(9, 1), monkeypatch).status == "delivered"

    [mail] = [m for m in mails_to("visitor@example.org") if m["subject"].startswith("Przypomnienie")]
    assert "4:00" in mail["subject"]  # 10:00 in Warsaw is 4:00 in New York
    assert result.token in mail["text"]
    assert "/cancel" in mail["text"]
    assert "/reschedule" in mail["text"]
    [rep_reminder] = [m for m in reminders() if m.payload["to"] == "rep" and m.payload["minutes"] == 60]
    deliver_at(rep_reminder, at(9, 1), monkeypatch)
    assert any(m["subject"].startswith("Reminder") for m in mails_to("rita@reminders.example"))


def test_a_reschedule_moves_the_reminders(page, monkeypatch):
    result = pages.book(page, booking_request(at(10)), now=NOW)
    old = [m for m in reminders() if m.payload["to"] == "visitor"]

    pages.reschedule_booking(result.booking, at(14), result.token, now=NOW)

    new = [m for m in reminders() if m.payload["to"] == "visitor" and m not in old]
    assert sorted(m.next_attempt_at for m in new) == [at(14) - timedelta(days=1), at(13)]
    before = len(mails_to("visitor@example.org"))
    for message in old:
        deliver_at(message, message.next_attempt_at, monkeypatch)
    assert len(mails_to("visitor@example.org")) == before  # the old time's reminders send nothing
    deliver_at(new[0], new[0].next_attempt_at, monkeypatch)
    assert len(mails_to("visitor@example.org")) == before + 1


def test_a_cancel_drops_the_reminders(page, monkeypatch):
    result = pages.book(page, booking_request(at(10)), now=NOW)
    pages.cancel_booking(result.booking, by_visitor=True, now=NOW)
    before = len(mails_to("visitor@example.org"))

    for message in reminders():
        deliver_at(message, message.next_attempt_at, monkeypatch)

    assert len(mails_to("visitor@example.org")) == before


def test_a_reminder_due_while_the_worker_was_down_goes_once_before_the_start_never_after(page, monkeypatch):
    pages.book(page, booking_request(at(10)), now=NOW)
    day_before, hour_before = sorted(
        (m for m in reminders() if m.payload["to"] == "visitor"), key=lambda m: m.next_attempt_at
    )
    before = len(mails_to("visitor@example.org"))

    deliver_at(day_before, at(9, 30), monkeypatch)  # back 23.5 hours late, the meeting not started
    assert len(mails_to("visitor@example.org")) == before + 1
    assert deliver_at(day_before, at(9, 31), monkeypatch).status == "delivered"  # not sent twice
    deliver_at(hour_before, at(10, 1), monkeypatch)  # back after the start
    assert len(mails_to("visitor@example.org")) == before + 1


def test_a_reminder_whose_instant_passed_at_booking_is_not_queued(page):
    pages.book(page, booking_request(at(10)), now=at(9, 30))

    assert [m.payload["minutes"] for m in reminders()] == []


def test_reminders_are_checked(page):
    settings = pages.PageSettings(
        title="x", slug="x", time_zone="Europe/Warsaw", weekly=[[0, "09:00", "17:00"]], durations=[30]
    )
    for bad in ([1, 2, 3, 4], [0], [10**6]):
        with pytest.raises(pages.PagesError) as refused:
            pages.create_page(
                page.owner.tenant, page.owner, pages.PageSettings(**{**settings.__dict__, "reminders": bad})
            )
        assert refused.value.field == "reminders"


# --- The editor -------------------------------------------------------------------------------------------

PAGE_DATA = {
    "title": "Intro",
    "slug": "intro-reminded",
    "durations": "30",
    "time_zone": "Europe/Warsaw",
    **{f"day_{d}": "09:00-17:00" if d < 5 else "" for d in range(7)},
    "min_notice": "0",
    "buffer_before": "0",
    "buffer_after": "0",
    "window": "rolling",
    "horizon_days": "60",
    "after_booking": "message",
    "domain_id": "",
}


def test_the_editor_saves_reminders_and_refuses_bad_ones_naming_the_field(world, signed_in, app):
    ours, _theirs = world
    client = signed_in(ours.rep_email)

    bad = client.post_form("/pages/new", {**PAGE_DATA, "reminders": "1440, 60, 30, 10"})
    assert bad.status_code == 422
    assert "reminders" in error_fields(bad)
    saved = client.post_form("/pages/new", {**PAGE_DATA, "reminders": "60, 1440", "remind_rep": "y"})
    assert saved.status_code == 303

    with app.app_context():
        page = db.session.scalar(sa.select(SchedulingPage).where(SchedulingPage.slug == "intro-reminded"))
        assert (page.reminders, page.remind_rep) == ([1440, 60], True)
        form = client.get(f"/pages/{page.id}/edit").get_data(as_text=True)
    assert 'value="1440, 60"' in form
