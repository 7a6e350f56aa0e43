"""Every link to a scheduling page or a booking, built from the page's host when shown or sent (D3).

Nothing here is stored: a page can move to another domain (or its domain be removed) and every link made
afterwards follows it, while the old host answers 301 to the new one.
"""

from flask import current_app

from app.pages.models import Booking, SchedulingPage
from app.pages.paths import page_host, page_path
from app.web.links import external_url


def page_url(page: SchedulingPage) -> str:
    """The page's share link: its current host and path."""
    return external_url(page_host(page, current_app.config["APP_HOST"]), page_path(page))


def booking_host(booking: Booking) -> str:
    """Where a booking's own pages live: its page's host, or the app host once the page is gone."""
    app_host = current_app.config["APP_HOST"]
    return page_host(booking.page, app_host) if booking.page is not None else app_host


def manage_url(booking: Booking, token: str, action: str | None = None) -> str:
    """The visitor's link to a booking (``action`` None), to cancel it or to reschedule it; no account."""
    if action not in (None, "cancel", "reschedule"):
        raise ValueError(f"unknown booking action {action!r}")
    path = f"/meetings/booking/{token}" + (f"/{action}" if action else "")
    return external_url(booking_host(booking), path)
