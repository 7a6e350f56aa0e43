"""The booking transaction: re-check, exclusion, idempotency, contact, meeting, calendar write (P6, C10)."""

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.crm.models import Contact, Meeting
from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages import services as pages
from app.pages.models import Booking
from tests import factories
from tests.pages.helpers import NOW, at, booking_request, connect_caldav, synced_busy


@pytest.fixture
def page(app_ctx):
    tenant = factories.make_tenant()
    owner = factories.make_user(tenant, time_zone="Europe/Warsaw")
    return factories.make_page(owner)


def test_booking_logs_meeting_and_contact(page):
    result = pages.book(page, booking_request(at(10)), now=NOW)

    booking = result.booking
    assert result.created
    assert result.token
    assert booking.start_at == at(10)
    assert booking.end_at == at(10, 30)
    assert booking.meeting.source == "page"
    assert booking.meeting.contacts == [booking.contact]
    assert booking.contact.email == "visitor@example.org"
    assert booking.contact.first_name == "Vera"
    assert pages.get_booking_by_token(result.token) == booking
    assert pages.get_booking_by_token(result.token + "x") is None


def test_the_same_key_twice_is_one_booking(page):
    first = pages.book(page, booking_request(at(10)), now=NOW)
    again = pages.book(page, booking_request(at(10)), now=NOW)

    assert not again.created
    assert again.booking.id == first.booking.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1


def test_a_taken_slot_is_refused_and_writes_nothing(page):
    pages.book(page, booking_request(at(10)), now=NOW)
    meetings = db.session.scalar(sa.select(sa.func.count()).select_from(Meeting))

    with pytest.raises(pages.SlotTaken):
        pages.book(page, booking_request(at(10), idempotency_key="k2", email="other@example.org"), now=NOW)

    assert db.session.scalar(sa.select(sa.func.count()).select_from(Meeting)) == meetings
    assert db.session.scalar(sa.select(Contact).where(Contact.email == "other@example.org")) is None


@pytest.mark.parametrize(
    ("start", "code"),
    [
        (at(10, 10), "start_not_offered"),  # off the 30-minute grid
        (at(18), "start_not_offered"),  # after hours
        (datetime(2029, 12, 31, 9, tzinfo=UTC), "start_past"),
        (datetime(2030, 6, 3, 9, tzinfo=UTC), "start_not_offered"),  # beyond the 60-day horizon
    ],
)
def test_a_start_the_page_does_not_offer_names_the_field(page, start, code):
    with pytest.raises(pages.PagesError) as refused:
        pages.book(page, booking_request(start), now=NOW)

    assert not isinstance(refused.value, pages.SlotTaken)
    assert refused.value.field == "start"
    assert refused.value.code == code


def test_the_database_refuses_overlapping_bookings_even_without_the_service(page):
    pages.book(page, booking_request(at(10)), now=NOW)
    overlapping = Booking(
        tenant_id=page.tenant_id,
        page=page,
        owner=page.owner,
        start_at=at(10, 15),
        end_at=at(10, 45),
        idempotency_key="raw",
        first_name="A",
        last_name="B",
        email="a@example.org",
        time_zone="UTC",
        manage_token_hash="0" * 64,
    )

    db.session.add(overlapping)

    with pytest.raises(IntegrityError, match="ex_bookings_owner_id_overlap"):
        db.session.flush()
    db.session.rollback()


def test_a_cancelled_booking_frees_its_time(page):
    first = pages.book(page, booking_request(at(10)), now=NOW)
    pages.cancel_booking(first.booking, by_visitor=True, now=NOW)

    second = pages.book(page, booking_request(at(10), idempotency_key="k2"), now=NOW)

    assert second.created
    assert first.booking.meeting.status == "cancelled"


def test_reschedule_moves_booking_and_meeting(page):
    result = pages.book(page, booking_request(at(10)), now=NOW)

    pages.reschedule_booking(result.booking, at(11), result.token, now=NOW)

    assert result.booking.start_at == at(11)
    assert result.booking.meeting.start_at == at(11)
    assert result.booking.meeting.sequence == 1
    # Its old time is free again for someone else.
    assert pages.book(page, booking_request(at(10), idempotency_key="k2"), now=NOW).created


def test_rescheduling_frees_only_the_bookings_own_calendar_event(page):
    owner = page.owner
    connection = connect_caldav(owner)
    result = pages.book(page, booking_request(at(10)), now=NOW)
    meeting = result.booking.meeting
    meeting.uid = meeting.uid or "booked@termin.test"
    # The calendar sync brings the booking's own event back as busy time ...
    synced_busy(connection, meeting.uid, at(10), at(10, 30))
    window = dict(now=NOW, duration=timedelta(minutes=30), except_booking=result.booking)
    assert at(10) in pages.free_slots(page, at(9), at(12), **window)

    # ... but another event at exactly the same times is someone else's meeting, and still blocks.
    synced_busy(connection, "dentist@example.org", at(10), at(10, 30))
    assert at(10) not in pages.free_slots(page, at(9), at(12), **window)


def test_no_calendar_means_no_calendar_write(page):
    pages.book(page, booking_request(at(10)), now=NOW)

    kinds = db.session.scalars(sa.select(OutboxMessage.kind)).all()
    assert "calendar.write_meeting" not in kinds
