"""Google Calendar API v3 behind the CalendarProvider protocol.

The ``requests.Session`` handed in is already authenticated (it adds the bearer token, refreshes it before
expiry and once more on a 401), so a 401 that still reaches us means the grant itself is gone. Only
documented requests and fields are used: calendarList.list, events.list/get/insert/patch/delete,
freeBusy.query, calendars.insert and the OpenID userinfo endpoint.

Rules this module follows, so the sync engine can rely on them:

* **UIDs.** Every event Termin inserts carries the draft's uid as its ``iCalUID``, so the invitation Google
  mails the attendees (sendUpdates) names the same event as everything else Termin sends about the
  meeting (its page's calendar file): one event in the attendee's calendar. Google lets a client supply
  either ``id`` or ``iCalUID`` at creation, not both, so Google picks the id. A retried insert answers 409
  "duplicate" for the UID, and the event is then found by ``events.list?iCalUID=``. Google keeps a deleted
  event's UID taken, so a uid whose event was deleted cannot be written again: that raises
  ``ProviderError`` instead of pretending the event exists. (Events written before this rule have an id
  derived from the uid and a Google-made iCalUID; Termin stored their ids, and only ever uses those.)
* **Our marker.** Inserted events carry ``extendedProperties.private`` ``{"termin": "1", "terminUid": uid}``,
  and ``RemoteEvent.uid`` is taken from ``terminUid`` for our events (older ones have a Google-made
  iCalUID) and from ``iCalUID`` for everyone else's.
* **created_by.** "termin" when ``extendedProperties.private.termin`` is "1". Otherwise "integration" when
  the event has a ``source`` (Google shows it only to the creator, and only the API can set it), carries
  any private extended property (only the API can set those, and they stay on this calendar's copy), or
  has ``eventType`` "fromGmail" (Google made it from an email). Otherwise None: a person wrote it.
  Shared extended properties do not count, because they travel to every attendee's copy and would mark
  an invitation a client sent through some app as the rep's own integration's. The iCalUID's domain does
  not count either: invitations from people on Outlook or Apple calendars carry foreign UIDs.
* **Times.** ``dateTime`` values are converted to UTC; all-day events (``date``) become midnight UTC with
  ``all_day=True`` and an exclusive end, as Google stores them. ``recurrence_id`` is the UTC ISO 8601 form
  of ``originalStartTime`` (midnight for all-day series).
* **Recurrence.** ``singleEvents=false``: a series comes back as its master (with its RRULE/EXDATE lines)
  plus one event per exception, and a deleted occurrence as a cancelled exception.
* **Cancelled events** are always returned. Google guarantees little more than their id (and, for a
  cancelled occurrence, ``recurringEventId`` and ``originalStartTime``), so a missing uid is "" and
  missing times fall back to the original start, or to the Unix epoch: match cancellations by ``id``.
* **Malformed events** (no end, unreadable times) that are not cancelled are logged and skipped; the rest
  of the listing still comes back.
* **Writing.** ``sendUpdates`` is "all" when the draft sends invitations (or a cancellation notifies),
  else "none". ``EventDraft.organizer_email`` is not sent: Google makes the calendar the organizer and
  allows no other except on import. ``EventDraft.extra`` is not used. An update first reads the event,
  so attendees already invited keep the answer they gave instead of being reset to needsAction.
* **Errors.** 401 raises ``AuthRevoked``, and so does 403 for missing scopes; 429, or 403 with a
  rate-limit reason, ``RateLimited``; 5xx and network failures ``TemporarilyUnavailable``; other 403s and
  a 404 for a calendar ``AccessLost``; 410 on events.list ``SyncStateExpired``. A 404 or 410 for one event
  is a plain ``ProviderError`` (except on delete, where it means done). ``retry_after`` comes from the
  Retry-After header, read by ``base.parse_retry_after``. Nothing is retried here: the caller owns the
  back-off (a 401 is retried once, after a refresh, by the session: app/sync/oauth.py).
"""

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, time
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from app.sync.providers.base import (
    Access,
    AccessLost,
    Account,
    Attendee,
    AuthRevoked,
    Busy,
    Changes,
    EventDraft,
    ProviderError,
    RateLimited,
    RemoteCalendar,
    RemoteEvent,
    SyncStateExpired,
    TemporarilyUnavailable,
    parse_retry_after,
)

log = logging.getLogger(__name__)

DEFAULT_API_URL = "https://www.googleapis.com/calendar/v3"
DEFAULT_USERINFO_URL = "https://openidconnect.googleapis.com/v1/userinfo"

ACCESS_ROLES: dict[str, Access] = {
    "owner": "owner",
    "writer": "writer",
    "reader": "reader",
    "freeBusyReader": "freebusy",
}
# Google's documented throttling reasons; quotaExceeded ("Calendar usage limits exceeded") and
# dailyLimitExceeded also clear with time, so they are rate limits too, not lost access.
RATE_LIMIT_REASONS = frozenset(
    {
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "quotaExceeded",
        "dailyLimitExceeded",
        "RESOURCE_EXHAUSTED",
    }
)
SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
EVENTS_PAGE_SIZE = 2500  # the documented maximum for events.list
CALENDARS_PAGE_SIZE = 250  # the documented maximum for calendarList.list
FREEBUSY_BATCH = 50  # freeBusy.query answers for at most 50 calendars at once
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
RESPONSES = frozenset({"needsAction", "accepted", "declined", "tentative"})
STATUSES = frozenset({"confirmed", "tentative", "cancelled"})
NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
# What an attendee said or was given, which a rewrite of the attendee list must not wipe.
KEPT_ATTENDEE_FIELDS = ("responseStatus", "comment", "optional", "additionalGuests")


class _Malformed(ValueError):
    """An event whose times cannot be read."""


class GoogleCalendarProvider:
    """One Google account, through an authenticated ``requests.Session``."""

    name = "google"

    def __init__(
        self,
        session: requests.Session,
        *,
        api_url: str = DEFAULT_API_URL,
        userinfo_url: str = DEFAULT_USERINFO_URL,
        timeout: float = 20,
    ):
        self.session = session
        self.api_url = api_url.rstrip("/")
        self.userinfo_url = userinfo_url
        self.timeout = timeout

    # --- The protocol -------------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the HTTP session's pooled connections."""
        self.session.close()

    def account(self) -> Account:
        """The identity behind the credentials, from the OpenID userinfo endpoint."""
        body = self._call("GET", self.userinfo_url)
        subject = body.get("sub")
        if not subject:
            raise ProviderError("Google's userinfo answer names no account (no 'sub')")
        return Account(id=str(subject), email=body.get("email") or "", name=body.get("name") or "")

    def list_calendars(self) -> list[RemoteCalendar]:
        """Every calendar in the account's calendar list, with the access it has."""
        calendars = []
        page_token = None
        while True:
            params: dict[str, Any] = {"maxResults": CALENDARS_PAGE_SIZE}
            if page_token:
                params["pageToken"] = page_token
            body = self._call("GET", f"{self.api_url}/users/me/calendarList", params=params)
            for entry in body.get("items") or []:
                calendar = _calendar_from(entry)
                if calendar is not None:
                    calendars.append(calendar)
            page_token = body.get("nextPageToken")
            if not page_token:
                return calendars

    def changes(self, calendar_id: str, state: str | None) -> Changes:
        """Events changed since the sync token ``state`` (None: a full listing), following every page."""
        url = f"{self._calendar_url(calendar_id)}/events"
        base: dict[str, Any] = {
            "maxResults": EVENTS_PAGE_SIZE,
            "showDeleted": "true",
            "singleEvents": "false",
        }
        if state:
            base["syncToken"] = state
        events: list[RemoteEvent] = []
        made = 0
        page_token = None
        while True:
            # Google wants the sync token repeated on every page of an incremental listing.
            params = dict(base, pageToken=page_token) if page_token else base
            body = self._call("GET", url, params=params, calendar_id=calendar_id, listing=True)
            made += 1
            for item in body.get("items") or []:
                event = _event_from(item, calendar_id)
                if event is not None:
                    events.append(event)
            page_token = body.get("nextPageToken")
            if not page_token:
                break
        next_state = body.get("nextSyncToken")
        if not next_state:
            raise ProviderError("Google Calendar ended the listing without a sync token")
        return Changes(events=events, next_state=next_state, full=not state, requests=made)

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, list[Busy]]:
        """Busy intervals per calendar from freeBusy.query, asked 50 calendars at a time."""
        wanted = list(dict.fromkeys(calendar_ids))
        result: dict[str, list[Busy]] = {calendar_id: [] for calendar_id in wanted}
        for first in range(0, len(wanted), FREEBUSY_BATCH):
            batch = wanted[first : first + FREEBUSY_BATCH]
            body = self._call(
                "POST",
                f"{self.api_url}/freeBusy",
                json={
                    "timeMin": _rfc3339(start),
                    "timeMax": _rfc3339(end),
                    "items": [{"id": calendar_id} for calendar_id in batch],
                },
            )
            answered = body.get("calendars") or {}
            for calendar_id in batch:
                entry = answered.get(calendar_id) or {}
                _raise_for_freebusy_errors(calendar_id, entry.get("errors") or [])
                result[calendar_id] = _busy_from(calendar_id, entry.get("busy") or [])
        return result

    def create_event(self, calendar_id: str, draft: EventDraft) -> str:
        """Insert ``draft`` with its uid as iCalUID; a retry that meets it (409) returns the event's id."""
        body = {
            "iCalUID": draft.uid,
            "summary": draft.summary,
            **_times(draft),
            "attendees": [_attendee_body(attendee) for attendee in draft.attendees],
            "extendedProperties": {"private": {"termin": "1", "terminUid": draft.uid}},
        }
        if draft.description:
            body["description"] = draft.description
        if draft.location:
            body["location"] = draft.location
        created = self._call(
            "POST",
            f"{self._calendar_url(calendar_id)}/events",
            params={"sendUpdates": _send_updates(draft.send_invitations)},
            json=body,
            calendar_id=calendar_id,
            allow=(409,),
        )
        if created is not None:
            if not created.get("id"):
                raise ProviderError("Google created the event but did not say its id")
            return created["id"]
        existing = self._find_by_uid(calendar_id, draft.uid)
        if existing is None or existing.get("status") == "cancelled":
            raise ProviderError(
                f"An event with uid {draft.uid} was deleted from this Google calendar; "
                "Google keeps its UID taken, so it cannot be written again under the same uid."
            )
        return existing["id"]

    def invitation_uid(self, calendar_id: str, event_id: str, uid: str) -> str:
        """The iCalUID Google's invitations carry: the draft's own (``create_event`` sets it)."""
        return uid

    def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> None:
        """Patch the event's title, times and attendees, keeping the answers attendees already gave."""
        current = self._get_event(calendar_id, event_id)
        if current.get("status") == "cancelled":
            raise ProviderError("The event was deleted in Google Calendar")
        # Rewriting the attendee list would reset everyone's answer to needsAction; Google's copy is truer
        # than the draft's for people already invited.
        known = {
            (attendee.get("email") or "").lower(): attendee
            for attendee in current.get("attendees") or []
            if attendee.get("email")
        }
        attendees = []
        for attendee in draft.attendees:
            body = _attendee_body(attendee)
            held = known.get(attendee.email.lower())
            if held is not None:
                body.update({key: held[key] for key in KEPT_ATTENDEE_FIELDS if key in held})
                if "displayName" not in body and held.get("displayName"):
                    body["displayName"] = held["displayName"]
            attendees.append(body)
        patch = {"summary": draft.summary, **_times(draft, clear_other=True), "attendees": attendees}
        self._call(
            "PATCH",
            self._event_url(calendar_id, event_id),
            params={"sendUpdates": _send_updates(draft.send_invitations)},
            json=patch,
            calendar_id=calendar_id,
        )

    def cancel_event(self, calendar_id: str, event_id: str, *, notify: bool = True) -> None:
        """Delete the event; Google's 404 or 410 (already deleted) count as done."""
        self._call(
            "DELETE",
            self._event_url(calendar_id, event_id),
            params={"sendUpdates": _send_updates(notify)},
            calendar_id=calendar_id,
            allow=(404, 410),
        )

    def create_calendar(self, name: str) -> RemoteCalendar:
        """A new secondary calendar owned by the account."""
        body = self._call("POST", f"{self.api_url}/calendars", json={"summary": name})
        if not body.get("id"):
            raise ProviderError("Google created a calendar but did not say its id")
        return RemoteCalendar(
            id=body["id"], name=body.get("summary") or name, access="owner", time_zone=body.get("timeZone")
        )

    # --- HTTP ---------------------------------------------------------------------------------------------

    def _calendar_url(self, calendar_id: str) -> str:
        # Calendar ids hold '@' and sometimes '#', which must not reach the path unescaped.
        return f"{self.api_url}/calendars/{quote(calendar_id, safe='')}"

    def _event_url(self, calendar_id: str, event_id: str) -> str:
        return f"{self._calendar_url(calendar_id)}/events/{quote(event_id, safe='')}"

    def _find_by_uid(self, calendar_id: str, uid: str) -> dict | None:
        """The calendar's event with iCalendar ``uid`` (a deleted one too), or None."""
        body = self._call(
            "GET",
            f"{self._calendar_url(calendar_id)}/events",
            params={"iCalUID": uid, "showDeleted": "true", "maxResults": EVENTS_PAGE_SIZE},
            calendar_id=calendar_id,
            listing=True,
        )
        items = [item for item in body.get("items") or [] if isinstance(item, dict) and item.get("id")]
        # A live one first: Google lists a UID's deleted copy too, and only the live one can be written.
        items.sort(key=lambda item: item.get("status") == "cancelled")
        return items[0] if items else None

    def _get_event(self, calendar_id: str, event_id: str) -> dict:
        return self._call("GET", self._event_url(calendar_id, event_id), calendar_id=calendar_id)

    def _call(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        json: dict | None = None,
        calendar_id: str | None = None,
        listing: bool = False,
        allow: tuple[int, ...] = (),
    ) -> Any:
        """One request; the JSON object answered, None for an ``allow``ed error status, or a typed error."""
        try:
            with self.session.request(
                method, url, params=params, json=json, timeout=self.timeout
            ) as response:
                if response.status_code in allow:
                    return None
                if response.status_code >= 400:
                    raise _error_for(response, calendar_id=calendar_id, listing=listing)
                if not response.content:
                    return {}
                try:
                    body = response.json()
                except ValueError as error:
                    raise TemporarilyUnavailable(
                        "Google Calendar answered with something not JSON"
                    ) from error
        except NETWORK_ERRORS as error:
            raise TemporarilyUnavailable(f"Google Calendar could not be reached: {error}") from error
        if not isinstance(body, dict):
            raise TemporarilyUnavailable("Google Calendar answered with something that is not a JSON object")
        return body


# --- Errors -------------------------------------------------------------------------------------------------


def _error_for(response: requests.Response, *, calendar_id: str | None, listing: bool) -> ProviderError:
    status = response.status_code
    message, reasons = _google_error(response)
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 401:
        return AuthRevoked(message)
    if status == 429 or (status == 403 and reasons & RATE_LIMIT_REASONS):
        return RateLimited(message, retry_after=retry_after)
    if status >= 500:
        return TemporarilyUnavailable(message, retry_after=retry_after)
    if status == 410 and listing:
        return SyncStateExpired(message)
    if status == 403 and reasons & SCOPE_REASONS:
        # The grant lacks a calendar scope: only connecting again (and ticking the box) helps.
        return AuthRevoked(message)
    if status in (403, 404) and calendar_id is not None:
        # A 404 for one event (not a listing) says the event is missing, not that the calendar went away;
        # and only the organizer may change some fields, which is no loss of access either.
        if (status == 404 and not listing) or "forbiddenForNonOrganizer" in reasons:
            return ProviderError(message)
        return AccessLost(message, calendar_id=calendar_id)
    return ProviderError(message)


def _google_error(response: requests.Response) -> tuple[str, set[str]]:
    """The human message and machine reasons of a Google error answer (v3 JSON or OAuth style)."""
    message = ""
    reasons: set[str] = set()
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        message = str(error.get("message") or "")
        items = [*_list(error.get("errors")), *_list(error.get("details"))]
        for item in items:
            if isinstance(item, dict) and item.get("reason"):
                reasons.add(str(item["reason"]))
        if error.get("status"):
            reasons.add(str(error["status"]))
    elif isinstance(error, str):  # OpenID userinfo answers in OAuth's error format
        message = str(body.get("error_description") or error)
        reasons.add(error)
    if not message:
        message = f"Google Calendar answered {response.status_code} {response.reason or ''}".strip()
    return message, reasons


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _raise_for_freebusy_errors(calendar_id: str, errors: list) -> None:
    # freeBusy answers 200 and reports each calendar's failure beside its (empty) busy list.
    reasons = [str(error.get("reason") or "") for error in errors if isinstance(error, dict)]
    if not reasons:
        return
    reason = ", ".join(r for r in reasons if r) or "unknown error"
    if "notFound" in reasons:
        raise AccessLost(f"Google Calendar: {reason} (calendar {calendar_id})", calendar_id=calendar_id)
    raise TemporarilyUnavailable(f"Google Calendar could not compute free/busy for {calendar_id}: {reason}")


# --- Reading Google's resources -----------------------------------------------------------------------------


def _calendar_from(entry: dict) -> RemoteCalendar | None:
    if entry.get("deleted") or not entry.get("id"):
        return None
    access = ACCESS_ROLES.get(entry.get("accessRole") or "")
    if access is None:
        log.warning(
            "skipping Google calendar %s with unknown access role %r", entry["id"], entry.get("accessRole")
        )
        return None
    return RemoteCalendar(
        id=entry["id"],
        name=entry.get("summaryOverride") or entry.get("summary") or entry["id"],
        access=access,
        is_primary=bool(entry.get("primary")),
        time_zone=entry.get("timeZone"),
    )


def _event_from(item: dict, calendar_id: str) -> RemoteEvent | None:
    """A RemoteEvent, or None (logged) for an event that is not cancelled and cannot be read."""
    event_id = item.get("id")
    if not event_id:
        log.warning("skipping an event without an id in Google calendar %s", calendar_id)
        return None
    status = item.get("status")
    if status not in STATUSES:
        status = "confirmed"
    recurrence_id = None
    original = None
    try:
        if item.get("originalStartTime"):
            original, _ = _when(item["originalStartTime"])
            recurrence_id = original.isoformat()
        start, end, all_day = _span(item)
    except _Malformed as problem:
        if status != "cancelled":
            log.warning("skipping Google event %s in %s: %s", event_id, calendar_id, problem)
            return None
        start = end = original or EPOCH
        all_day = False
    private = (item.get("extendedProperties") or {}).get("private") or {}
    ours = private.get("termin") == "1"
    uid = (private.get("terminUid") if ours else None) or item.get("iCalUID") or ""
    attendees = []
    for attendee in item.get("attendees") or ():
        if isinstance(attendee, dict) and attendee.get("email"):
            response = attendee.get("responseStatus")
            attendees.append(
                Attendee(
                    email=attendee["email"],
                    name=attendee.get("displayName") or "",
                    response=response if response in RESPONSES else "needsAction",
                )
            )
    return RemoteEvent(
        id=event_id,
        uid=uid,
        start=start,
        end=end,
        summary=item.get("summary") or "",
        status=status,
        all_day=all_day,
        transparent=item.get("transparency") == "transparent",
        recurrence_id=recurrence_id,
        recurrence=tuple(item.get("recurrence") or ()),
        organizer_email=(item.get("organizer") or {}).get("email") or "",
        attendees=tuple(attendees),
        created_by=_created_by(item, private),
    )


def _created_by(item: dict, private: dict) -> str | None:
    """Who wrote the event, by the rule in the module docstring (``private``: its private properties)."""
    if private.get("termin") == "1":
        return "termin"
    if item.get("source") or private or item.get("eventType") == "fromGmail":
        return "integration"
    return None


def _span(item: dict) -> tuple[datetime, datetime, bool]:
    if not item.get("start"):
        raise _Malformed("no start")
    if not item.get("end"):
        raise _Malformed("no end")
    start, start_all_day = _when(item["start"])
    end, end_all_day = _when(item["end"])
    if start_all_day != end_all_day:
        raise _Malformed("start and end mix a date with a dateTime")
    if end < start:
        raise _Malformed("ends before it starts")
    return start, end, start_all_day


def _when(value: dict) -> tuple[datetime, bool]:
    """(UTC datetime, all_day) from a Google EventDateTime."""
    if not isinstance(value, dict):
        raise _Malformed(f"unreadable time {value!r}")
    try:
        if value.get("dateTime"):
            moment = datetime.fromisoformat(value["dateTime"])
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=_zone(value.get("timeZone")))
            return moment.astimezone(UTC), False
        if value.get("date"):
            return datetime.combine(date.fromisoformat(value["date"]), time(), UTC), True
    except (TypeError, ValueError) as error:
        raise _Malformed(f"unreadable time {value!r}") from error
    raise _Malformed(f"a time with neither date nor dateTime: {value!r}")


def _busy_from(calendar_id: str, periods: list) -> list[Busy]:
    busy = []
    for period in periods:
        try:
            start = datetime.fromisoformat(period["start"]).astimezone(UTC)
            end = datetime.fromisoformat(period["end"]).astimezone(UTC)
        except (KeyError, TypeError, ValueError):
            log.warning("skipping an unreadable busy period %r of Google calendar %s", period, calendar_id)
            continue
        busy.append(Busy(start=start, end=end))
    return sorted(busy, key=lambda b: (b.start, b.end))


# --- Writing ------------------------------------------------------------------------------------------------


def _times(draft: EventDraft, *, clear_other: bool = False) -> dict:
    """``start``/``end`` for a draft; ``clear_other`` nulls the other kind so a patch can switch kinds."""
    if draft.all_day:
        # All-day drafts carry their dates as midnight UTC; the date is what counts, in no zone.
        start = {"date": draft.start.date().isoformat()}
        end = {"date": draft.end.date().isoformat()}
        if clear_other:
            start |= {"dateTime": None, "timeZone": None}
            end |= {"dateTime": None, "timeZone": None}
        return {"start": start, "end": end}
    zone_name = draft.time_zone if _known_zone(draft.time_zone) else "UTC"
    zone = ZoneInfo(zone_name)
    times = {}
    for key, moment in (("start", draft.start), ("end", draft.end)):
        # The zone travels with the offset so the rep sees the booking in the zone it was made in.
        times[key] = {"dateTime": _aware(moment).astimezone(zone).isoformat(), "timeZone": zone_name}
        if clear_other:
            times[key]["date"] = None
    return times


def _attendee_body(attendee: Attendee) -> dict:
    body: dict[str, Any] = {"email": attendee.email}
    if attendee.name:
        body["displayName"] = attendee.name
    if attendee.response != "needsAction":
        body["responseStatus"] = attendee.response
    return body


def _send_updates(notify: bool) -> str:
    return "all" if notify else "none"


def _rfc3339(moment: datetime) -> str:
    return _aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _aware(moment: datetime) -> datetime:
    # Termin's datetimes are aware UTC; a naive one is read as UTC rather than as the server's local time.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _known_zone(name: str | None) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _zone(name: str | None) -> ZoneInfo:
    return ZoneInfo(name) if _known_zone(name) else ZoneInfo("UTC")
