"""Meeting invitations and cancellations by email: iTIP (RFC 5546) objects for iMIP (RFC 6047).

Google and Microsoft invite attendees themselves when Termin writes an event. A CalDAV server does not:
Termin writes its events with SCHEDULE-AGENT=CLIENT (app/sync/providers/caldav.py), which tells an
RFC 6638 server that the client does the scheduling, so these are what reach the contact. The UID is the
meeting's, the same as the event in the rep's calendar, so the contact's calendar app files the
invitation, and later the cancellation, under one event.

``publish`` is the other kind: an event to add ("Add to my calendar"), METHOD:PUBLISH with no attendee,
so nothing asks for an answer; it has the same UID, so a calendar that also got the invitation keeps one.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import icalendar

from app.sync.providers.base import Attendee

PRODID = "-//Termin//Termin//EN"


@dataclass(frozen=True)
class Invitation:
    """One meeting as the contact's calendar app should see it.

    ``sequence`` orders versions of the event (RFC 5545 3.8.7.4): a cancellation must carry a higher one
    than the invitation it cancels, or calendar apps ignore it as stale.
    """

    uid: str
    summary: str
    start: datetime
    end: datetime
    organizer_email: str
    organizer_name: str = ""
    attendees: Sequence[Attendee] = ()
    description: str = ""
    location: str = ""
    sequence: int = 0


def request(invitation: Invitation, *, dtstamp: datetime | None = None) -> str:
    """The METHOD:REQUEST object that invites every attendee (RSVP=TRUE, PARTSTAT=NEEDS-ACTION)."""
    return _itip("REQUEST", "CONFIRMED", invitation, dtstamp)


def publish(invitation: Invitation, *, dtstamp: datetime | None = None) -> str:
    """The METHOD:PUBLISH object of an event to add to a calendar: its organizer, no attendee, no RSVP."""
    return _itip("PUBLISH", "CONFIRMED", invitation, dtstamp)


def cancel(invitation: Invitation, *, dtstamp: datetime | None = None) -> str:
    """The METHOD:CANCEL object that takes the meeting out of every attendee's calendar."""
    return _itip("CANCEL", "CANCELLED", invitation, dtstamp)


def _itip(method: str, status: str, invitation: Invitation, dtstamp: datetime | None) -> str:
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    event = icalendar.Event()
    event.add("uid", invitation.uid)
    event.add("dtstamp", (dtstamp or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0))
    event.add("sequence", invitation.sequence)
    # UTC, not the rep's zone: a single meeting needs no VTIMEZONE, and the RDATE-list VTIMEZONEs icalendar
    # generates are where calendar apps (Outlook above all) disagree. Each app shows the viewer's own time.
    event.add("dtstart", invitation.start.astimezone(UTC))
    event.add("dtend", invitation.end.astimezone(UTC))
    event.add("summary", invitation.summary)
    if invitation.description:
        event.add("description", invitation.description)
    if invitation.location:
        event.add("location", invitation.location)
    event.add("status", status)
    event.add("transp", "OPAQUE")
    organizer = icalendar.vCalAddress(f"mailto:{invitation.organizer_email}")
    if invitation.organizer_name:
        organizer.params["CN"] = invitation.organizer_name
    event.add("organizer", organizer)
    # RFC 5546 3.2.1: a PUBLISH names no attendees; there is nobody to answer.
    for person in invitation.attendees if method != "PUBLISH" else ():
        attendee = icalendar.vCalAddress(f"mailto:{person.email}")
        if person.name:
            attendee.params["CN"] = person.name
        attendee.params["CUTYPE"] = "INDIVIDUAL"
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        if method == "REQUEST":
            # A reply (accept/decline) is wanted; a cancellation asks for none (RFC 5546 3.2.5).
            attendee.params["PARTSTAT"] = "NEEDS-ACTION"
            attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar.to_ical().decode()
