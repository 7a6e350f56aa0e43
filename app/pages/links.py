"""Every link to a scheduling page or a booking, built from the page's host when shown or sent (D3).

Nothing here is stored: a page can move to another domain (or its domain be removed) and every link made
afterwards follows it, while the old host answers 301 to the new one.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

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


def calendar_file_url(booking: Booking, token: str) -> str:
    """The booking's "add to my calendar" file (METHOD:PUBLISH, the meeting's UID)."""
    return external_url(booking_host(booking), f"/meetings/booking/{token}/invite.ics")


GOOGLE_CALENDAR_ADD = "https://calendar.google.com/calendar/render"
OUTLOOK_COM_ADD = "https://outlook.live.com/calendar/0/deeplink/compose"
OUTLOOK_OFFICE_ADD = "https://outlook.office.com/calendar/0/deeplink/compose"


@dataclass(frozen=True)
class AddToCalendar:
    """Links that add a booking to a calendar without inviting anyone (nothing to answer)."""

    google: str
    outlook_com: str
    outlook_office: str
    ics: str


def add_to_calendar(booking: Booking, token: str, *, title: str, details: str = "") -> AddToCalendar:
    """The booking as Google Calendar's and Outlook on the web's "new event" links, and as a file.

    The web links make a new event in the visitor's own calendar (neither takes a UID); the file carries
    the meeting's UID, so it merges with the invitation in a calendar app that got both.
    """
    location = booking.page.location if booking.page is not None else ""
    google = {
        "action": "TEMPLATE",
        "text": title,
        "dates": f"{_google_time(booking.start_at)}/{_google_time(booking.end_at)}",
        "details": details,
        "location": location,
    }
    outlook = {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": title,
        "startdt": _outlook_time(booking.start_at),
        "enddt": _outlook_time(booking.end_at),
        "body": details,
        "location": location,
    }
    return AddToCalendar(
        google=f"{GOOGLE_CALENDAR_ADD}?{urlencode(google)}",
        outlook_com=f"{OUTLOOK_COM_ADD}?{urlencode(outlook)}",
        outlook_office=f"{OUTLOOK_OFFICE_ADD}?{urlencode(outlook)}",
        ics=calendar_file_url(booking, token),
    )


def _google_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _outlook_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hold_confirm_url(page: SchedulingPage, token: str) -> str:
    """The link that turns a held time into a booking (a page that asks visitors to confirm their email)."""
    return external_url(page_host(page, current_app.config["APP_HOST"]), f"/meetings/booking/confirm/{token}")
