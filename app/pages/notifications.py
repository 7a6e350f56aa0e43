"""Emails about bookings (P6, C11). Placeholder interface, being written now."""

from datetime import datetime

from app.pages.models import Booking, BookingAttempt, SchedulingPage


def booking_confirmed(booking: Booking, token: str) -> None:
    pass


def booking_rescheduled(
    booking: Booking, token: str, *, previous_start: datetime, previous_end: datetime
) -> None:
    pass


def booking_cancelled(booking: Booking, *, by_visitor: bool) -> None:
    pass


def booking_attempted_while_paused(page: SchedulingPage, attempt: BookingAttempt) -> None:
    pass
