"""CRM meetings written to the rep's calendar, with an invitation to the contact (C5, C10).

Rules this module keeps:

* **When.** A meeting logged on a contact's record is written when its owner has a calendar account with
  *calendar sync* on and an active default calendar; with several, the oldest such account. Sync off (or
  no account) means the meeting is only logged on the record: no event, no invitation (C5). Only that
  default calendar is ever written, never the other integrated ones (C10).
* **UID first.** The request that logs the meeting gives it its iCalendar UID (``<uuid4>@<APP_HOST>``) and
  its target calendar before any provider is called. Every provider is idempotent by uid (Google keeps it as
  the iCalUID, Graph derives a transactionId, CalDAV the resource name, with If-None-Match), so a retried
  write, or one whose answer was lost with its commit, finds the event instead of making a second one.
* **Invitations: exactly one per change, from one sender** (``provider_invites``). Google (sendUpdates=all)
  and Microsoft (the organizer's create, update and cancel) mail the attendees themselves, and Termin
  sends no invitation of its own for them. Google keeps the UID it is given (iCalUID = the meeting's);
  Exchange chooses its own iCalUId, which the write then adopts as the meeting's UID, so whatever else
  names the event later (the booking page's calendar file) names the same one. A CalDAV server does
  not invite: our events carry SCHEDULE-AGENT=CLIENT, so Termin emails each contact an iMIP REQUEST (on
  cancel, a CANCEL); for a CRM meeting here, queued in the transaction that stores the event id, so it
  goes out once however often the write runs; for a booking, in the booking's own emails.
* **Organizer** (``organizer_address``): the calendar account's address when it is an email address (a
  CalDAV account's is its calendar-user-address-set, else its user name, which often is none), else the
  rep's Termin address. Never a bare user name: replies and RSVPs must reach someone.
* **Cancelling.** A meeting that reached the calendar has its event cancelled there, attendees told. One
  that has not yet is simply never written: the write sees it cancelled. Both handlers lock the meeting
  row, so a cancel cannot slip between a write's provider call and its commit. What stays open: a write
  whose commit was lost and whose meeting was cancelled before its retry leaves the event behind (the
  event id was never stored, and Graph offers no lookup by uid).
* **Failures.** A revoked grant puts the account inactive and a lost calendar puts that calendar inactive
  (C11), and the write fails with the provider's reason; an account or calendar already inactive fails it
  too. Rate limits and outages raise, so the outbox tries again later (app/mail/outbox.py).
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from uuid import uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from flask import current_app

from app.crm.models import Meeting
from app.extensions import db
from app.mail import imip, outbox, smtp
from app.mail.models import OutboxMessage
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from app.sync.providers.base import AccessLost, Attendee, AuthRevoked, CalendarProvider, EventDraft
from app.tenants.models import Tenant, User

log = logging.getLogger(__name__)

# Meetings Termin itself puts in calendars; a "calendar" meeting came from one and is never written back.
WRITTEN_SOURCES = ("crm", "page")
# Providers that mail the attendees of an event Termin writes, so Termin must not invite them too.
INVITING_PROVIDERS = frozenset({"google", "microsoft"})


# --- Hooks: what the CRM calls, inside its own transaction ------------------------------------------------


def write_target(tenant: Tenant, owner: User, purpose: str = "calendar_sync") -> Calendar | None:
    """The calendar ``owner``'s meetings are written to, or None when they are only logged (C5, C7, C10).

    ``purpose`` is the account switch that must be on: "calendar_sync" for meetings logged in the CRM (C5),
    "pages" for bookings on scheduling pages (C7). It is the default calendar of the oldest account with
    that switch on that has one, when both the account and the calendar are active (an inactive one pauses
    writes, as it pauses bookings: C11).
    """
    for connection in sync.list_connections(tenant, owner):
        calendar = connection.default_calendar
        switched_on = connection.scheduling_pages if purpose == "pages" else connection.calendar_sync
        if not switched_on or calendar is None:
            continue
        if connection.is_active and calendar.is_active:
            return calendar
        log.warning(
            "tenant %s user %s: calendar %s is inactive, so meetings are only logged",
            tenant.id,
            owner.id,
            calendar.id,
        )
        return None
    return None


def provider_invites(meeting: Meeting) -> bool:
    """Whether the calendar ``meeting`` is written to sends its invitations (Google, Microsoft).

    False when Termin must send them: a CalDAV calendar, or no calendar at all (the meeting is only logged).
    """
    calendar = _calendar_of(meeting)
    return calendar is not None and calendar.connection.provider in INVITING_PROVIDERS


def organizer_address(meeting: Meeting) -> str:
    """The address invitations name as organizer and replies go to (see the module docstring)."""
    calendar = _calendar_of(meeting)
    return _organizer(calendar.connection if calendar is not None else None, meeting.owner)


def _organizer(connection: CalendarConnection | None, owner: User) -> str:
    if connection is not None and _is_email(connection.account_email):
        return connection.account_email
    return owner.email


def _is_email(address: str) -> bool:
    try:
        validate_email(address or "", check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


def _calendar_of(meeting: Meeting) -> Calendar | None:
    if meeting.calendar_id is None:
        return None
    calendar = db.session.get(Calendar, meeting.calendar_id)
    return calendar if calendar is not None and calendar.tenant_id == meeting.tenant_id else None


def new_uid() -> str:
    """A meeting's iCalendar UID, chosen once (here, or by a booking's confirmation email) and kept."""
    return f"{uuid4()}@{current_app.config['APP_HOST']}"


def schedule_meeting_write(
    tenant: Tenant, meeting: Meeting, purpose: str = "calendar_sync"
) -> OutboxMessage | None:
    """Queue writing ``meeting`` to its owner's default calendar when ``purpose``'s switch is on; flushes.

    Returns the outbox row, or None when the switch is off and the meeting is only logged.
    """
    calendar = write_target(tenant, meeting.owner, purpose)
    if calendar is None:
        log.info(
            "tenant %s meeting %s only logged: its owner has no calendar with sync on", tenant.id, meeting.id
        )
        return None
    if not meeting.uid:
        meeting.uid = new_uid()
    meeting.calendar_id = calendar.id
    db.session.flush()
    return outbox.add(tenant.id, "calendar.write_meeting", {"meeting_id": meeting.id})


def schedule_meeting_cancel(tenant: Tenant, meeting: Meeting) -> OutboxMessage | None:
    """Queue cancelling ``meeting``'s calendar event (and telling its attendees), if it was to have one."""
    if meeting.source not in WRITTEN_SOURCES or meeting.calendar_id is None or not meeting.uid:
        return None
    return outbox.add(tenant.id, "calendar.cancel_meeting", {"meeting_id": meeting.id})


def schedule_meeting_update(tenant: Tenant, meeting: Meeting) -> OutboxMessage | None:
    """Queue moving ``meeting``'s calendar event to its new times (a rescheduled booking)."""
    if meeting.source not in WRITTEN_SOURCES or meeting.calendar_id is None or not meeting.uid:
        return None
    return outbox.add(tenant.id, "calendar.update_meeting", {"meeting_id": meeting.id})


# --- Outbox handlers --------------------------------------------------------------------------------------


def write_meeting(tenant_id: int, payload: dict) -> None:
    """Outbox "calendar.write_meeting": create the meeting's event in its calendar, idempotent by uid."""
    meeting = _locked_meeting(tenant_id, payload["meeting_id"])
    if meeting is None or meeting.provider_event_id:
        return  # deleted since, or this is a second delivery of a write that went through
    if meeting.status == "cancelled":
        return  # cancelled before it reached the calendar: there is nothing to write
    if not meeting.uid:
        raise outbox.Undeliverable("The meeting was never scheduled for a calendar (it has no uid).")
    calendar = _target(meeting)
    connection = calendar.connection
    with _provider(connection, calendar) as provider:
        meeting.provider_event_id = provider.create_event(calendar.external_id, _draft(meeting, connection))
        # Exchange names the event (and its invitations) with a UID of its own: the meeting takes it.
        meeting.uid = provider.invitation_uid(calendar.external_id, meeting.provider_event_id, meeting.uid)
    db.session.flush()
    if connection.provider not in INVITING_PROVIDERS and meeting.source != "page":
        # A booking's own confirmation email carries its invitation (same UID), so it is not sent twice.
        _email_itip(meeting, connection, "REQUEST")


def update_meeting(tenant_id: int, payload: dict) -> None:
    """Outbox "calendar.update_meeting": move the meeting's event to the meeting's current times.

    Not yet written: the pending write will write the current times, so there is nothing to move.
    """
    meeting = _locked_meeting(tenant_id, payload["meeting_id"])
    if meeting is None or not meeting.provider_event_id or meeting.status == "cancelled":
        return
    calendar = _target(meeting)
    connection = calendar.connection
    with _provider(connection, calendar) as provider:
        provider.update_event(calendar.external_id, meeting.provider_event_id, _draft(meeting, connection))
    if connection.provider not in INVITING_PROVIDERS and meeting.source != "page":
        _email_itip(meeting, connection, "REQUEST")


def cancel_meeting(tenant_id: int, payload: dict) -> None:
    """Outbox "calendar.cancel_meeting": cancel the meeting's event and tell its attendees."""
    meeting = _locked_meeting(tenant_id, payload["meeting_id"])
    if meeting is None or not meeting.provider_event_id:
        return  # never reached the calendar (and its pending write, seeing it cancelled, writes nothing)
    calendar = _target(meeting)
    connection = calendar.connection
    with _provider(connection, calendar) as provider:
        provider.cancel_event(calendar.external_id, meeting.provider_event_id, notify=True)
    if connection.provider not in INVITING_PROVIDERS and meeting.source != "page":
        _email_itip(meeting, connection, "CANCEL")


# --- Helpers ----------------------------------------------------------------------------------------------


def _locked_meeting(tenant_id: int, meeting_id: int) -> Meeting | None:
    return db.session.scalar(
        sa.select(Meeting).where(Meeting.tenant_id == tenant_id, Meeting.id == meeting_id).with_for_update()
    )


def _target(meeting: Meeting) -> Calendar:
    """The meeting's calendar, which must still belong to the meeting's owner, in the meeting's tenant.

    Removing a calendar (or disconnecting its account) sets the meeting's ``calendar_id`` to NULL.
    """
    calendar = db.session.scalar(
        sa.select(Calendar)
        .join(CalendarConnection, Calendar.connection_id == CalendarConnection.id)
        .where(
            Calendar.id == meeting.calendar_id,
            Calendar.tenant_id == meeting.tenant_id,
            CalendarConnection.tenant_id == meeting.tenant_id,
            CalendarConnection.user_id == meeting.owner_id,
        )
    )
    if calendar is None:
        raise outbox.Undeliverable("The calendar was removed from Termin, or its account disconnected.")
    if not calendar.connection.is_active:
        raise outbox.Undeliverable(calendar.connection.inactive_reason or "The calendar account is inactive.")
    if not calendar.is_active:
        raise outbox.Undeliverable(calendar.inactive_reason or f"The calendar “{calendar.name}” is inactive.")
    return calendar


def _draft(meeting: Meeting, connection: CalendarConnection) -> EventDraft:
    return EventDraft(
        uid=meeting.uid,
        summary=meeting.title,
        start=meeting.start_at,
        end=meeting.end_at,
        time_zone=meeting.owner.time_zone,
        # The notes are the rep's own; the event goes to the contact, so they stay in the CRM.
        attendees=_attendees(meeting),
        organizer_email=_organizer(connection, meeting.owner),
        send_invitations=True,
        sequence=meeting.sequence,
    )


def _attendees(meeting: Meeting) -> tuple[Attendee, ...]:
    return tuple(Attendee(email=contact.email, name=contact.display_name) for contact in meeting.contacts)


@contextmanager
def _provider(connection: CalendarConnection, calendar: Calendar) -> Iterator[CalendarProvider]:
    """The live provider, closed afterwards; a revoked grant or a lost calendar is recorded (C11)."""
    try:
        with sync.open_provider(connection) as provider:
            yield provider
    except AuthRevoked as error:
        sync.mark_connection_inactive(connection, error.reason)
        raise
    except AccessLost as error:
        sync.mark_calendar_inactive(calendar, error.reason)
        raise


def _email_itip(meeting: Meeting, connection: CalendarConnection, method: str) -> None:
    """Email each contact the iMIP REQUEST or CANCEL that a CalDAV server leaves to us."""
    owner = meeting.owner
    organizer = _organizer(connection, owner)
    invitation = imip.Invitation(
        uid=meeting.uid,
        summary=meeting.title,
        start=meeting.start_at,
        end=meeting.end_at,
        organizer_email=organizer,
        organizer_name=owner.name,
        attendees=_attendees(meeting),
        # A cancellation must outrank every version sent before it (RFC 5546).
        sequence=meeting.sequence if method == "REQUEST" else meeting.sequence + 1,
    )
    ics = imip.request(invitation) if method == "REQUEST" else imip.cancel(invitation)
    when = _when(meeting.start_at, meeting.end_at, owner.time_zone)
    if method == "REQUEST":
        subject = f"Invitation: {meeting.title} @ {when}"
        opening = f"{owner.name} invited you to “{meeting.title}”."
        closing = "Accept or decline in your calendar app; your answer goes to the organizer."
    else:
        subject = f"Cancelled: {meeting.title} @ {when}"
        opening = f"{owner.name} cancelled “{meeting.title}”."
        closing = "Your calendar app can remove it from your calendar."
    text = f"{opening}\n\nWhen: {when}\nOrganizer: {owner.name} <{organizer}>\n\n{closing}\n"
    for contact in meeting.contacts:
        smtp.send_mail(
            meeting.tenant_id,
            to=contact.email,
            subject=subject,
            text=text,
            ics=ics,
            ics_method=method,
            reply_to=organizer,
            sender_name=owner.name,
        )


def _when(start: datetime, end: datetime, time_zone: str) -> str:
    """The meeting's time as the organizer sees it, named with its zone (the .ics has the exact times)."""
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        zone, time_zone = ZoneInfo("UTC"), "UTC"
    local_start, local_end = start.astimezone(zone), end.astimezone(zone)
    until = (
        f"{local_end:%H:%M}" if local_end.date() == local_start.date() else f"{local_end:%a %d %b %Y %H:%M}"
    )
    return f"{local_start:%a %d %b %Y %H:%M} - {until} ({time_zone})"
