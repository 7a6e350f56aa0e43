"""The one interface every calendar provider implements, and the few errors they raise.

Google Calendar v3, Microsoft Graph and CalDAV differ in every detail; the rest of Termin sees only
what is here. Times are aware datetimes in UTC; all-day events carry dates as midnight UTC with
``all_day=True`` so callers decide what a day means in the rep's zone.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

Access = Literal["owner", "writer", "reader", "freebusy"]
EventStatus = Literal["confirmed", "tentative", "cancelled"]
ResponseStatus = Literal["needsAction", "accepted", "declined", "tentative"]

# The longest wait a provider's Retry-After can impose. The outbox and the sync engine back off at most an
# hour on their own; a server asking for more (or for ``inf``) gets that hour, after which we ask again.
MAX_RETRY_AFTER_SECONDS = 3600.0


@dataclass(frozen=True)
class Account:
    """Who the credentials belong to. ``id`` is stable at the provider; ``email`` is what people read."""

    id: str
    email: str
    name: str = ""


@dataclass(frozen=True)
class RemoteCalendar:
    id: str
    name: str
    access: Access
    is_primary: bool = False
    time_zone: str | None = None

    @property
    def shows_event_details(self) -> bool:
        """C9: a calendar shared as free/busy only cannot be added to availability."""
        return self.access != "freebusy"

    @property
    def can_write(self) -> bool:
        return self.access in ("owner", "writer")


@dataclass(frozen=True)
class Attendee:
    email: str
    name: str = ""
    response: ResponseStatus = "needsAction"


@dataclass(frozen=True)
class RemoteEvent:
    """One event (or one occurrence's override) as the provider holds it.

    ``uid`` is the iCalendar UID shared across calendars; ``recurrence_id`` names one instance of a
    recurring series (ISO 8601 of its original start) and is None for single events and series masters.
    ``created_by`` is who wrote the event: "termin" (we did), "integration" (another app did), or None
    (a person did, in their calendar), from the provider's own markers (see docs/architecture.md).
    """

    id: str
    uid: str
    start: datetime
    end: datetime
    summary: str = ""
    status: EventStatus = "confirmed"
    all_day: bool = False
    transparent: bool = False
    recurrence_id: str | None = None
    recurrence: tuple[str, ...] = ()
    organizer_email: str = ""
    attendees: tuple[Attendee, ...] = ()
    created_by: Literal["termin", "integration"] | None = None


@dataclass(frozen=True)
class Changes:
    """What changed in one calendar since ``state``; a full listing when ``full`` is true.

    Cancelled or deleted events come back with ``status="cancelled"``. ``next_state`` is the opaque
    cursor (sync token, delta link, CalDAV sync-token or ctag) for the next call.
    """

    events: list[RemoteEvent]
    next_state: str
    full: bool
    requests: int = 1


@dataclass(frozen=True)
class Busy:
    start: datetime
    end: datetime


@dataclass(frozen=True)
class EventDraft:
    """An event Termin writes. ``uid`` is chosen by us before the call so a retry can never duplicate it."""

    uid: str
    summary: str
    start: datetime
    end: datetime
    time_zone: str = "UTC"
    description: str = ""
    location: str = ""
    attendees: tuple[Attendee, ...] = ()
    organizer_email: str = ""
    send_invitations: bool = True
    all_day: bool = False
    # RFC 5546 SEQUENCE of this version as the attendees were told it (the invitations we email carry it);
    # a provider that stores SEQUENCE must never write a lower one.
    sequence: int = 0
    extra: dict = field(default_factory=dict)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (RFC 9110 10.2.3), within 0..MAX_RETRY_AFTER_SECONDS.

    Delta-seconds or an HTTP date. A number too large to be a wait (``inf``, ``1e400``) is the maximum;
    a date in the past is 0. Anything unreadable (``nan``, garbage) is None: the server gave no usable
    hint, so the caller's own back-off applies.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def bounded_wait(seconds: float | None) -> float | None:
    """``seconds`` (a ``retry_after``) within 0..MAX_RETRY_AFTER_SECONDS, so a timedelta can hold it."""
    if seconds is None or math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


class ProviderError(Exception):
    """A provider refused or failed; ``reason`` is the provider's own words, for the rep to read."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class AuthRevoked(ProviderError):
    """The account's grant is gone (invalid_grant, or 401 after a refresh): the rep must reconnect."""


class AccessLost(ProviderError):
    """One calendar answered 403/404: it was unshared or deleted. The rest of the account works."""

    def __init__(self, reason: str, calendar_id: str | None = None):
        super().__init__(reason)
        self.calendar_id = calendar_id


class RateLimited(ProviderError):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = bounded_wait(retry_after)


class TemporarilyUnavailable(ProviderError):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = bounded_wait(retry_after)


class SyncStateExpired(ProviderError):
    """The saved cursor is no longer accepted (410 Gone, invalid sync token): do a full sync."""


class CalendarProvider(Protocol):
    """What Termin asks of a calendar account. Implementations: google, microsoft, caldav."""

    name: str

    def account(self) -> Account:
        """The identity behind the credentials."""

    def list_calendars(self) -> list[RemoteCalendar]:
        """Calendars the account owns or that are shared with it, with the access it has."""

    def changes(self, calendar_id: str, state: str | None) -> Changes:
        """Events changed since ``state`` (None: everything). Raises SyncStateExpired for a stale cursor."""

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, list[Busy]]:
        """Busy intervals per calendar between ``start`` and ``end``."""

    def create_event(self, calendar_id: str, draft: EventDraft) -> str:
        """Write ``draft``; returns the provider's event id. Writing the same uid again changes nothing."""

    def invitation_uid(self, calendar_id: str, event_id: str, uid: str) -> str:
        """The iCalendar UID of the invitations the provider sends for the event written with ``uid``.

        ``uid`` itself where the API keeps the UID it is given (Google's iCalUID, CalDAV); Graph's iCalUId,
        which Exchange chooses, otherwise.
        """

    def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> None:
        """Replace the event's time, title and attendees with ``draft``'s."""

    def cancel_event(self, calendar_id: str, event_id: str, *, notify: bool = True) -> None:
        """Cancel (delete) the event; attendees are told when ``notify``. Already gone is not an error."""

    def create_calendar(self, name: str) -> RemoteCalendar:
        """A new calendar owned by the account (the task sub-calendar)."""

    def close(self) -> None:
        """Release network resources (pooled HTTP connections); the provider is not used afterwards."""
