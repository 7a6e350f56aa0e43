"""A Google Calendar API v3 emulator on 127.0.0.1, and the ``google_harness`` the provider contract runs on.

The emulator serves the documented subset GoogleCalendarProvider uses: calendarList.list, calendars.insert,
events.list/get/insert/patch/delete, freeBusy.query and the OpenID userinfo endpoint. It refuses what it
does not implement (unknown query parameters, unknown event fields, ``singleEvents=true``) with 400, so the
provider cannot come to lean on something only this emulator tolerates.

Behaviour it reproduces from the reference: paging with ``nextPageToken`` over a snapshot, so a listing is
consistent while events change between pages; ``nextSyncToken`` on the last page only; sync tokens per
calendar that answer 410 ``fullSyncRequired`` once expired; deleted events as bare tombstones (id and
status only); cancelled occurrences of a live series listed even without ``showDeleted``; ids and
iCalUIDs of deleted events stay taken (409 on insert, 410 on a second delete); an insert supplies ``id``
or ``iCalUID``, not both; ``events.list?iCalUID=``; ``dateTime`` answered in the calendar's zone;
``source`` shown only to the event's creator; 404 for calendars the account cannot see, 403 for writes
it may not make; 401 for unknown or revoked tokens; injected faults (429, 403 rate limits, 5xx, with
Retry-After) ahead of everything else.

The emails Google would send attendees for a change made with ``sendUpdates`` (all, or externalOnly for
addresses that are no account here) are recorded in ``sent``: kind, the event's iCalUID, recipients.

Left out on purpose: attendees' own copies of events, ACL and watch APIs, ``singleEvents`` expansion.

Bearer tokens go through a validator (token -> account email, or None), so an OAuth test server can be
wired in (constructor argument, or ``set_token_validator`` until the next ``reset``); the default is the
emulator's own ``tokens`` map. The email must belong to an account added with ``add_account``.
"""

import base64
import copy
import json
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
import requests
from dateutil.rrule import rrulestr
from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler, make_server

from app.sync.providers.google import GoogleCalendarProvider
from tests.sync.harness import SeedAttendee

EVENT_ID = re.compile(r"[a-v0-9]{5,1024}")
EVENT_FIELDS = frozenset(
    {
        "id",
        "iCalUID",
        "summary",
        "description",
        "location",
        "start",
        "end",
        "attendees",
        "extendedProperties",
        "transparency",
        "status",
        "recurrence",
        "source",
        "visibility",
        "reminders",
        "colorId",
        "eventType",
        "guestsCanInviteOthers",
        "guestsCanModify",
        "guestsCanSeeOtherGuests",
    }
)
ATTENDEE_FIELDS = frozenset(
    {"email", "displayName", "responseStatus", "optional", "comment", "additionalGuests", "resource"}
)
RESPONSES = frozenset({"needsAction", "accepted", "declined", "tentative"})
WRITERS = frozenset({"owner", "writer"})
MESSAGES = {
    "rateLimitExceeded": "Rate Limit Exceeded",
    "userRateLimitExceeded": "User Rate Limit Exceeded",
    "quotaExceeded": "Calendar usage limits exceeded.",
    "backendError": "Backend Error",
    "authError": "Invalid Credentials",
    "fullSyncRequired": "Sync token is no longer valid, a full sync is required.",
    "insufficientPermissions": "Request had insufficient authentication scopes.",
}


class ApiError(Exception):
    """An error answer in Google's JSON shape."""

    def __init__(self, status: int, reason: str, message: str, domain: str = "global"):
        super().__init__(message)
        self.status, self.reason, self.message, self.domain = status, reason, message, domain


@dataclass
class StoredEvent:
    resource: dict  # as written, with dateTime values normalised to UTC
    creator: str
    seq: int
    ordinal: int
    created: datetime
    updated: datetime
    deleted: bool = False


@dataclass
class StoredCalendar:
    id: str
    summary: str
    time_zone: str
    owner: str
    events: dict[str, StoredEvent] = field(default_factory=dict)
    epoch: int = 0  # bumped to invalidate every sync token issued so far


@dataclass
class Fault:
    status: int
    retry_after: int | str | None
    reason: str | None
    body: str | None


@dataclass(frozen=True)
class Notice:
    """An email Google sends attendees for a change made with sendUpdates (its iCalendar object's UID)."""

    kind: str  # "invitation", "update" or "cancellation"
    uid: str
    recipients: tuple[str, ...]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, code="-", size="-"):
        pass  # one line per request drowns the test output


class GoogleCalendarEmulator:
    """Google Calendar v3 as a small Flask app; ``start()`` serves it on a free port of 127.0.0.1."""

    def __init__(self, token_validator: Callable[[str], str | None] | None = None):
        self.tokens: dict[str, str] = {}
        self._given_validator = token_validator
        self._validator = token_validator
        self._lock = threading.RLock()
        self._server = None
        self._thread: threading.Thread | None = None
        self.app = self._make_app()
        self.reset()

    # --- Lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> "GoogleCalendarEmulator":
        """Serve on 127.0.0.1 from a background thread."""
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="google-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    @property
    def base_url(self) -> str:
        """Where the server listens."""
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def api_url(self) -> str:
        """What GoogleCalendarProvider takes as ``api_url``."""
        return f"{self.base_url}/calendar/v3"

    @property
    def userinfo_url(self) -> str:
        """What GoogleCalendarProvider takes as ``userinfo_url``."""
        return f"{self.base_url}/v1/userinfo"

    # --- State, changed directly as the people involved would in Google's UI ------------------------------

    def reset(self) -> None:
        """Forget every account, calendar, event, fault and counter."""
        with self._lock:
            self.tokens.clear()
            self._validator = self._given_validator
            self.revoked: set[str] = set()
            self.accounts: dict[str, dict] = {}
            self.calendars: dict[str, StoredCalendar] = {}
            self.acl: dict[str, dict[str, str]] = {}
            self.calendar_lists: dict[str, list[str]] = {}
            self.faults: list[Fault] = []
            self.page_size: int | None = None  # caps every page, to exercise nextPageToken
            self.delay = 0.0
            self.request_count = 0
            self.request_log: list[tuple[str, str, dict]] = []
            self.notifications: list[tuple[str, str, str, str]] = []  # method, calendar, event, sendUpdates
            self.sent: list[Notice] = []  # what those notifications mailed, to whom, with which UID
            self.errors: list[str] = []
            self._seq = 0
            self._ordinal = 0

    def add_account(self, email: str, *, name: str = "", token: str | None = None, time_zone: str = "UTC"):
        """An account with its primary calendar (whose id is the email, as at Google)."""
        with self._lock:
            sub = str(100000000000000000000 + len(self.accounts) * 7919)
            self.accounts[email] = {"sub": sub, "email": email, "name": name, "time_zone": time_zone}
            self.calendar_lists[email] = []
            self.add_calendar(email, name or email, calendar_id=email, time_zone=time_zone)
            if token:
                self.tokens[token] = email

    def add_calendar(
        self, owner: str, summary: str, *, calendar_id: str | None = None, time_zone: str | None = None
    ) -> str:
        """A calendar ``owner`` owns and sees in their list."""
        with self._lock:
            calendar_id = calendar_id or f"c_{uuid.uuid4().hex[:20]}@group.calendar.google.com"
            zone = time_zone or self.accounts[owner]["time_zone"]
            self.calendars[calendar_id] = StoredCalendar(calendar_id, summary, zone, owner)
            self.share(calendar_id, owner, "owner")
            return calendar_id

    def share(self, calendar_id: str, account: str, role: str) -> None:
        """Give ``account`` ``role`` (owner, writer, reader, freeBusyReader) and list the calendar for it."""
        with self._lock:
            self.acl.setdefault(calendar_id, {})[account] = role
            if calendar_id not in self.calendar_lists[account]:
                self.calendar_lists[account].append(calendar_id)

    def unshare(self, calendar_id: str, account: str) -> None:
        """The owner stops sharing: the calendar leaves the account's list and answers it 404."""
        with self._lock:
            self.acl.get(calendar_id, {}).pop(account, None)
            if calendar_id in self.calendar_lists.get(account, []):
                self.calendar_lists[account].remove(calendar_id)

    def insert(self, calendar_id: str, resource: dict, *, creator: str) -> str:
        """Insert an event as events.insert would (validated); returns its id."""
        with self._lock:
            return self._insert(self.calendars[calendar_id], copy.deepcopy(resource), creator=creator)

    def put_raw(self, calendar_id: str, resource: dict, *, creator: str) -> str:
        """Store ``resource`` unchecked, to serve data Google should never hold (a missing end...)."""
        with self._lock:
            calendar = self.calendars[calendar_id]
            event_id = resource.get("id") or _new_event_id()
            self._store(calendar, {**copy.deepcopy(resource), "id": event_id}, creator)
            return event_id

    def modify(self, calendar_id: str, event_id: str, patch: dict) -> None:
        """Apply ``patch`` as events.patch does: objects merge, arrays and values replace, null clears."""
        with self._lock:
            calendar = self.calendars[calendar_id]
            stored = calendar.events[event_id]
            merged = _merge(stored.resource, patch)
            stored.resource = self._checked(calendar, merged)
            self._touch(stored)

    def delete(self, calendar_id: str, event_id: str) -> None:
        """Delete an event (a series with its exceptions); Google keeps a tombstone."""
        with self._lock:
            calendar = self.calendars[calendar_id]
            for stored in list(calendar.events.values()):
                if stored.resource["id"] == event_id or stored.resource.get("recurringEventId") == event_id:
                    stored.deleted = True
                    self._touch(stored)

    def find(self, calendar_id: str, ical_uid: str) -> list[str]:
        """Ids of live single events and series masters with ``ical_uid``."""
        with self._lock:
            return [
                stored.resource["id"]
                for stored in self.calendars[calendar_id].events.values()
                if not stored.deleted
                and stored.resource.get("iCalUID") == ical_uid
                and "recurringEventId" not in stored.resource
            ]

    def stored(self, calendar_id: str) -> list[StoredEvent]:
        """Live events of a calendar, oldest first."""
        with self._lock:
            events = self.calendars[calendar_id].events.values()
            return sorted((e for e in events if not e.deleted), key=lambda e: e.ordinal)

    def expire_sync_tokens(self, calendar_id: str) -> None:
        """Every sync and page token issued for the calendar now answers 410."""
        with self._lock:
            self.calendars[calendar_id].epoch += 1

    def fail_next(
        self,
        status: int,
        count: int = 1,
        retry_after: int | str | None = None,
        reason: str | None = None,
        body: str | None = None,
    ) -> None:
        """The next ``count`` requests answer ``status``; ``body`` replaces Google's JSON error."""
        with self._lock:
            self.faults.extend(Fault(status, retry_after, reason, body) for _ in range(count))

    def token_validator(self, token: str) -> str | None:
        """The account (email) a bearer token acts for: the plugged-in validator's, else ``tokens``'."""
        validator = self._validator or self.tokens.get
        account = validator(token)
        return account.lower() if account else None

    def set_token_validator(self, validator: Callable[[str], str | None] | None) -> None:
        """Accept another server's tokens (OAuthServer.validate_token) until ``reset()``; None: ``tokens``."""
        self._validator = validator

    def revoke(self, token: str) -> None:
        """The token answers 401 from now on, whatever the validator says."""
        with self._lock:
            self.revoked.add(token)

    # --- Storage -------------------------------------------------------------------------------------------

    def _insert(self, calendar: StoredCalendar, body: dict, *, creator: str) -> str:
        event_id = body.get("id")
        if event_id is not None:
            # Occurrence ids ("<series>_<start>") are Google's own and need not fit the client alphabet.
            generated = "recurringEventId" in body and isinstance(event_id, str)
            if not generated and (not isinstance(event_id, str) or not EVENT_ID.fullmatch(event_id)):
                raise ApiError(400, "invalid", "Invalid resource id value.")
            if event_id in calendar.events:  # deleted ones too: Google never hands an id out twice
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        else:
            event_id = _new_event_id()
            uid = body.get("iCalUID")
            if uid is not None and any(e.resource.get("iCalUID") == uid for e in calendar.events.values()):
                # As for ids, a UID stays taken once its event is deleted.
                raise ApiError(409, "duplicate", "The requested identifier already exists.")
        body["id"] = event_id
        body.setdefault("iCalUID", f"{event_id}@google.com")
        body["organizer"] = {"email": calendar.id, "displayName": calendar.summary}
        self._store(calendar, self._checked(calendar, body), creator)
        return event_id

    def _mail(self, calendar: StoredCalendar, resource: dict, kind: str, send_updates: str) -> None:
        """Record the email Google sends the guests (never the organizer) for ``send_updates``."""
        if send_updates not in ("all", "externalOnly"):
            return
        guests = [
            a["email"].lower()
            for a in resource.get("attendees") or ()
            if a["email"].lower() != calendar.id.lower()
            and (send_updates == "all" or a["email"].lower() not in self.accounts)
        ]
        if guests:
            self.sent.append(Notice(kind, resource.get("iCalUID", ""), tuple(guests)))

    def _store(self, calendar: StoredCalendar, resource: dict, creator: str) -> None:
        self._seq += 1
        self._ordinal += 1
        now = datetime.now(UTC)
        calendar.events[resource["id"]] = StoredEvent(resource, creator, self._seq, self._ordinal, now, now)

    def _touch(self, stored: StoredEvent) -> None:
        self._seq += 1
        stored.seq = self._seq
        stored.updated = datetime.now(UTC)

    def _checked(self, calendar: StoredCalendar, body: dict) -> dict:
        """``body`` validated as Google validates an event, with its times normalised."""
        unknown = set(body) - EVENT_FIELDS - {"organizer", "recurringEventId", "originalStartTime"}
        if unknown:
            raise ApiError(
                400, "invalid", f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}"
            )
        if "start" not in body:
            raise ApiError(400, "required", "Missing start time.")
        if "end" not in body:
            raise ApiError(400, "required", "Missing end time.")
        body["start"] = _normalised_time(body["start"], "start")
        body["end"] = _normalised_time(body["end"], "end")
        if ("date" in body["start"]) != ("date" in body["end"]):
            raise ApiError(
                400, "invalid", "Start and end times must either both be date or both be dateTime."
            )
        if _instant(body["end"], calendar.time_zone) <= _instant(body["start"], calendar.time_zone):
            raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", domain="calendar")
        for attendee in body.get("attendees") or []:
            if not isinstance(attendee, dict) or not attendee.get("email"):
                raise ApiError(400, "required", "Missing attendee email.")
            if set(attendee) - ATTENDEE_FIELDS - {"self", "organizer"}:
                raise ApiError(400, "invalid", "Invalid attendee.")
            if attendee.get("responseStatus", "needsAction") not in RESPONSES:
                raise ApiError(400, "invalid", "Invalid attendee response status.")
        properties = body.get("extendedProperties") or {}
        for scope, values in properties.items():
            if scope not in ("private", "shared") or not isinstance(values, dict):
                raise ApiError(400, "invalid", "Invalid extended properties.")
            if not all(isinstance(v, str) for v in values.values()):
                raise ApiError(400, "invalid", "Extended property values must be strings.")
        if body.get("transparency", "opaque") not in ("opaque", "transparent"):
            raise ApiError(400, "invalid", "Invalid transparency value.")
        if body.get("status", "confirmed") not in ("confirmed", "tentative", "cancelled"):
            raise ApiError(400, "invalid", "Invalid status value.")
        for line in body.get("recurrence") or []:
            if not isinstance(line, str) or not line.startswith(("RRULE:", "EXRULE:", "RDATE", "EXDATE")):
                raise ApiError(400, "invalid", "Invalid recurrence rule.")
        return body

    # --- Reading -------------------------------------------------------------------------------------------

    def _calendar_for(self, calendar_id: str, account: str) -> tuple[StoredCalendar, str]:
        calendar_id = account if calendar_id == "primary" else calendar_id
        calendar = self.calendars.get(calendar_id)
        role = self.acl.get(calendar_id, {}).get(account)
        if calendar is None or role is None:
            raise ApiError(404, "notFound", "Not Found")
        return calendar, role

    def _render(self, calendar: StoredCalendar, stored: StoredEvent, account: str, role: str) -> dict:
        """The event as the API answers it to ``account``."""
        resource = stored.resource
        head = {"kind": "calendar#event", "etag": f'"{stored.seq}"', "id": resource["id"]}
        if stored.deleted or resource.get("status") == "cancelled":
            # Google promises only the id for a deleted event, plus series and original start for a
            # cancelled occurrence; anything a client needs beyond that it must already know.
            out = {**head, "status": "cancelled", "updated": _z(stored.updated)}
            if "recurringEventId" in resource and not stored.deleted:
                out["recurringEventId"] = resource["recurringEventId"]
                out["originalStartTime"] = _rendered_time(resource["originalStartTime"], calendar)
            return out
        if role == "freeBusyReader":
            out = {**head, "status": resource.get("status", "confirmed"), "updated": _z(stored.updated)}
            for key in ("start", "end"):
                if key in resource:
                    out[key] = _rendered_time(resource[key], calendar)
            return out
        out = {
            **head,
            "status": "confirmed",
            "htmlLink": f"https://calendar.google.com/calendar/event?eid={resource['id']}",
            "created": _z(stored.created),
            "updated": _z(stored.updated),
            "creator": {"email": stored.creator},
            "sequence": 0,
            "eventType": "default",
        }
        for key, value in resource.items():
            if key in ("start", "end", "originalStartTime"):
                out[key] = _rendered_time(value, calendar)
            elif key == "source" and stored.creator != account:
                continue
            elif key == "organizer":
                out[key] = {**value, **({"self": True} if calendar.owner == account else {})}
            elif key == "attendees":
                out[key] = [
                    {**a, "responseStatus": a.get("responseStatus", "needsAction")}
                    | ({"self": True} if a["email"].lower() == account.lower() else {})
                    for a in value
                ]
            else:
                out[key] = copy.deepcopy(value)
        return out

    def _busy(
        self, calendar: StoredCalendar, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        spans = []
        for stored in calendar.events.values():
            resource = stored.resource
            if stored.deleted or resource.get("status") == "cancelled":
                continue
            if resource.get("transparency") == "transparent":
                continue
            try:
                spans.extend(self._occurrences(calendar, stored, start, end))
            except (KeyError, TypeError, ValueError):
                continue  # raw, malformed test data holds no time to be busy in
        merged: list[list[datetime]] = []
        for span_start, span_end in sorted(spans):
            span_start, span_end = max(span_start, start), min(span_end, end)
            if span_start >= span_end:
                continue
            if merged and span_start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], span_end)
            else:
                merged.append([span_start, span_end])
        return [(a, b) for a, b in merged]

    def _occurrences(self, calendar: StoredCalendar, stored: StoredEvent, start: datetime, end: datetime):
        resource = stored.resource
        first = _instant(resource["start"], calendar.time_zone)
        duration = _instant(resource["end"], calendar.time_zone) - first
        rules = resource.get("recurrence")
        if not rules:
            return [(first, first + duration)]
        zone = ZoneInfo(resource["start"].get("timeZone") or calendar.time_zone)
        # Expanding in the event's own zone keeps the wall-clock time across DST, as Google does.
        series = rrulestr("\n".join(rules), dtstart=first.astimezone(zone), forceset=True)
        overridden = {
            _instant(other.resource["originalStartTime"], calendar.time_zone)
            for other in calendar.events.values()
            if other.resource.get("recurringEventId") == resource["id"]
        }
        return [
            (moment.astimezone(UTC), moment.astimezone(UTC) + duration)
            for moment in series.between(start - duration, end, inc=True)
            if moment.astimezone(UTC) not in overridden
        ]

    # --- HTTP ----------------------------------------------------------------------------------------------

    def _make_app(self) -> Flask:
        app = Flask(__name__)

        @app.before_request
        def gate():
            with self._lock:
                self.request_count += 1
                self.request_log.append((request.method, request.path, request.args.to_dict()))
                fault = self.faults.pop(0) if self.faults else None
                delay = self.delay
            if delay:
                time.sleep(delay)
            if fault is not None:
                return _fault_response(fault)
            header = request.headers.get("Authorization", "")
            token = header[7:] if header.startswith("Bearer ") else ""
            account = None if not token or token in self.revoked else self.token_validator(token)
            if account is None or account not in self.accounts:
                if request.endpoint == "userinfo":
                    return _oauth_unauthorized()
                raise ApiError(401, "authError", MESSAGES["authError"])
            g.account = account
            return None

        @app.get("/v1/userinfo", endpoint="userinfo")
        def userinfo():
            person = self.accounts[g.account]
            return {
                "sub": person["sub"],
                "email": person["email"],
                "email_verified": True,
                "name": person["name"],
            }

        @app.get("/calendar/v3/users/me/calendarList")
        def calendar_list():
            args = _args({"maxResults", "pageToken", "showDeleted", "showHidden", "minAccessRole"})
            limit = self._limit(args, default=100, maximum=250)
            offset = _decode(args["pageToken"], "calendarList", 400)["o"] if "pageToken" in args else 0
            with self._lock:
                ids = list(self.calendar_lists[g.account])
                entries = [self._list_entry(calendar_id, g.account) for calendar_id in ids]
            body = {
                "kind": "calendar#calendarList",
                "etag": f'"{self._seq}"',
                "items": entries[offset:][:limit],
            }
            if offset + limit < len(entries):
                body["nextPageToken"] = _encode({"k": "calendarList", "o": offset + limit})
            else:
                body["nextSyncToken"] = _encode({"k": "calendarListSync", "s": self._seq})
            return body

        @app.post("/calendar/v3/calendars")
        def insert_calendar():
            _args(set())
            body = _json_body()
            if set(body) - {"summary", "description", "location", "timeZone"}:
                raise ApiError(400, "invalid", "Invalid JSON payload received.")
            if not body.get("summary"):
                raise ApiError(400, "required", "Missing title.")
            with self._lock:
                calendar_id = self.add_calendar(g.account, body["summary"], time_zone=body.get("timeZone"))
                calendar = self.calendars[calendar_id]
            return {
                "kind": "calendar#calendar",
                "etag": f'"{self._seq}"',
                "id": calendar.id,
                "summary": calendar.summary,
                "timeZone": calendar.time_zone,
            }

        @app.get("/calendar/v3/calendars/<calendar_id>/events")
        def list_events(calendar_id):
            args = _args({"iCalUID", "maxResults", "pageToken", "showDeleted", "singleEvents", "syncToken"})
            if "iCalUID" in args and "syncToken" in args:
                raise ApiError(400, "invalid", "iCalUID cannot be combined with a syncToken.")
            if _flag(args, "singleEvents"):
                raise ApiError(400, "invalid", "The emulator does not expand recurring events.")
            show_deleted = _flag(args, "showDeleted")
            if "syncToken" in args and "showDeleted" in args and not show_deleted:
                raise ApiError(400, "invalid", "showDeleted cannot be false with a syncToken.")
            limit = self._limit(args, default=250, maximum=2500)
            with self._lock:
                calendar, role = self._calendar_for(calendar_id, g.account)
                since = None
                if "syncToken" in args:
                    token = _decode(args["syncToken"], "sync", 410)
                    if (token["c"], token["e"]) != (calendar.id, calendar.epoch):
                        raise ApiError(410, "fullSyncRequired", MESSAGES["fullSyncRequired"], "calendar")
                    since = token["s"]
                snapshot, after = self._seq, 0
                if "pageToken" in args:
                    page = _decode(args["pageToken"], "events", 400)
                    if (page["c"], page["t"]) != (calendar.id, since):
                        raise ApiError(400, "invalid", "The page token belongs to another listing.")
                    if page["e"] != calendar.epoch:
                        raise ApiError(410, "fullSyncRequired", MESSAGES["fullSyncRequired"], "calendar")
                    snapshot, after = page["s"], page["a"]
                matching = [
                    stored
                    for stored in sorted(calendar.events.values(), key=lambda e: e.ordinal)
                    if stored.ordinal > after
                    and stored.seq <= snapshot
                    and (since is None or stored.seq > since)
                    and (since is not None or show_deleted or not stored.deleted)
                    and ("iCalUID" not in args or stored.resource.get("iCalUID") == args["iCalUID"])
                ]
                if role == "freeBusyReader":
                    matching = [e for e in matching if e.resource.get("transparency") != "transparent"]
                served = matching[:limit]
                body = {
                    "kind": "calendar#events",
                    "etag": f'"{snapshot}"',
                    "summary": calendar.summary,
                    "updated": _z(datetime.now(UTC)),
                    "timeZone": calendar.time_zone,
                    "accessRole": role,
                    "defaultReminders": [],
                    "items": [self._render(calendar, stored, g.account, role) for stored in served],
                }
                if len(matching) > limit:
                    body["nextPageToken"] = _encode(
                        {
                            "k": "events",
                            "c": calendar.id,
                            "e": calendar.epoch,
                            "s": snapshot,
                            "a": served[-1].ordinal,
                            "t": since,
                        }
                    )
                else:
                    body["nextSyncToken"] = _encode(
                        {"k": "sync", "c": calendar.id, "e": calendar.epoch, "s": snapshot}
                    )
            return body

        @app.post("/calendar/v3/calendars/<calendar_id>/events")
        def insert_event(calendar_id):
            send_updates = _send_updates(_args({"sendUpdates"}))
            body = _json_body()
            if set(body) & {"organizer", "recurringEventId", "originalStartTime"}:
                raise ApiError(400, "invalid", "Only events.import may set these fields.")
            if "id" in body and "iCalUID" in body:
                # The reference: "only one of them should be supplied at event creation time".
                raise ApiError(400, "invalid", "Supply either id or iCalUID, not both.")
            with self._lock:
                calendar, role = self._calendar_for(calendar_id, g.account)
                _require_writer(role)
                event_id = self._insert(calendar, body, creator=g.account)
                self.notifications.append(("insert", calendar.id, event_id, send_updates))
                self._mail(calendar, calendar.events[event_id].resource, "invitation", send_updates)
                return self._render(calendar, calendar.events[event_id], g.account, role)

        @app.route(
            "/calendar/v3/calendars/<calendar_id>/events/<event_id>", methods=["GET", "PATCH", "DELETE"]
        )
        def one_event(calendar_id, event_id):
            args = _args(set() if request.method == "GET" else {"sendUpdates"})
            with self._lock:
                calendar, role = self._calendar_for(calendar_id, g.account)
                stored = calendar.events.get(event_id)
                if stored is None:
                    raise ApiError(404, "notFound", "Not Found")
                if request.method == "GET":
                    return self._render(calendar, stored, g.account, role)
                _require_writer(role)
                if stored.deleted:
                    raise ApiError(410, "deleted", "Resource has been deleted")
                send_updates = _send_updates(args)
                if request.method == "DELETE":
                    self._mail(calendar, stored.resource, "cancellation", send_updates)
                    self.delete(calendar.id, event_id)
                    self.notifications.append(("delete", calendar.id, event_id, send_updates))
                    return Response(status=204)
                patch = _json_body()
                if patch.get("id", event_id) != event_id:
                    raise ApiError(400, "invalid", "The event id cannot be changed.")
                self.modify(calendar.id, event_id, patch)
                self.notifications.append(("patch", calendar.id, event_id, send_updates))
                self._mail(calendar, stored.resource, "update", send_updates)
                return self._render(calendar, stored, g.account, role)

        @app.post("/calendar/v3/freeBusy")
        def free_busy():
            _args(set())
            body = _json_body()
            allowed = {"timeMin", "timeMax", "timeZone", "groupExpansionMax", "calendarExpansionMax", "items"}
            if set(body) - allowed:
                raise ApiError(400, "invalid", "Invalid JSON payload received.")
            start, end = _query_time(body, "timeMin"), _query_time(body, "timeMax")
            if end <= start:
                raise ApiError(400, "timeRangeEmpty", "The specified time range is empty.", "calendar")
            items = body.get("items") or []
            if len(items) > 50:
                raise ApiError(400, "tooManyCalendarsRequested", "Too many calendars requested.", "calendar")
            answered = {}
            with self._lock:
                for item in items:
                    try:
                        calendar, _ = self._calendar_for(item["id"], g.account)
                    except ApiError:
                        answered[item["id"]] = {
                            "errors": [{"domain": "global", "reason": "notFound"}],
                            "busy": [],
                        }
                        continue
                    busy = self._busy(calendar, start, end)
                    answered[item["id"]] = {"busy": [{"start": _z(a), "end": _z(b)} for a, b in busy]}
            return {
                "kind": "calendar#freeBusy",
                "timeMin": _z(start),
                "timeMax": _z(end),
                "calendars": answered,
            }

        @app.errorhandler(ApiError)
        def api_error(error: ApiError):
            return _error_response(error.status, error.reason, error.message, error.domain)

        @app.errorhandler(HTTPException)
        def unserved(error: HTTPException):
            # Google would answer too, but here it means the provider asked for something unimplemented.
            self.errors.append(f"{request.method} {request.full_path}: {error.code}")
            return _error_response(error.code or 500, "notFound", error.name)

        @app.errorhandler(Exception)
        def crashed(error: Exception):
            self.errors.append(f"{request.method} {request.full_path}: {error!r}")
            return _error_response(500, "backendError", "Backend Error")

        return app

    def _list_entry(self, calendar_id: str, account: str) -> dict:
        calendar = self.calendars[calendar_id]
        entry = {
            "kind": "calendar#calendarListEntry",
            "etag": f'"{calendar.epoch}"',
            "id": calendar.id,
            "summary": calendar.summary,
            "timeZone": calendar.time_zone,
            "accessRole": self.acl[calendar_id][account],
            "defaultReminders": [],
        }
        if calendar.id == account:
            entry["primary"] = True
        return entry

    def _limit(self, args: dict, *, default: int, maximum: int) -> int:
        try:
            wanted = int(args.get("maxResults", default))
        except ValueError:
            raise ApiError(400, "invalid", "Invalid value for maxResults.") from None
        if wanted < 1:
            raise ApiError(400, "invalid", "Invalid value for maxResults.")
        return min(wanted, maximum, self.page_size or maximum)


# --- Request helpers ----------------------------------------------------------------------------------------


def _args(allowed: set[str]) -> dict:
    unknown = set(request.args) - allowed
    if unknown:
        raise ApiError(400, "invalid", f"The emulator does not implement parameter {sorted(unknown)[0]!r}.")
    return request.args.to_dict()


def _flag(args: dict, name: str) -> bool:
    value = args.get(name, "false")
    if value not in ("true", "false"):
        raise ApiError(400, "invalid", f"Invalid boolean value for {name}.")
    return value == "true"


def _send_updates(args: dict) -> str:
    value = args.get("sendUpdates", "false")  # Google's default sends nothing
    if value not in ("all", "externalOnly", "none", "false"):
        raise ApiError(400, "invalid", "Invalid value for sendUpdates.")
    return value


def _json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "parseError", "Parse Error")
    return body


def _require_writer(role: str) -> None:
    if role not in WRITERS:
        raise ApiError(403, "requiredAccessLevel", "You need to have writer access to this calendar.")


def _query_time(body: dict, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(body[name])
    except (KeyError, TypeError, ValueError):
        raise ApiError(400, "required", f"Missing {name}.") from None
    if moment.tzinfo is None:
        raise ApiError(400, "invalid", f"{name} needs a time zone offset.")
    return moment.astimezone(UTC)


def _encode(token: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode(token: str, kind: str, status: int) -> dict:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError):
        decoded = None
    if not isinstance(decoded, dict) or decoded.get("k") != kind:
        if status == 410:
            raise ApiError(410, "fullSyncRequired", MESSAGES["fullSyncRequired"], "calendar")
        raise ApiError(400, "invalid", "Invalid page token.")
    return decoded


def _error_response(status: int, reason: str, message: str, domain: str = "global") -> Response:
    body = {"error": {"errors": [{"domain": domain, "reason": reason, "message": message}]}}
    body["error"] |= {"code": status, "message": message}
    headers = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
    return Response(json.dumps(body), status=status, headers=headers, mimetype="application/json")


def _oauth_unauthorized() -> Response:
    body = {"error": "invalid_token", "error_description": "Invalid Credentials"}
    return Response(
        json.dumps(body),
        status=401,
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        mimetype="application/json",
    )


def _fault_response(fault: Fault) -> Response:
    if fault.body is not None:
        response = Response(fault.body, status=fault.status, mimetype="text/html")
    else:
        default = {
            401: "authError",
            403: "rateLimitExceeded",
            429: "rateLimitExceeded",
            410: "fullSyncRequired",
        }
        reason = fault.reason or default.get(
            fault.status, "backendError" if fault.status >= 500 else "failed"
        )
        domain = "usageLimits" if "Limit" in reason or reason == "quotaExceeded" else "global"
        response = _error_response(fault.status, reason, MESSAGES.get(reason, reason), domain)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = str(fault.retry_after)
    return response


# --- Times --------------------------------------------------------------------------------------------------


def _normalised_time(value, name: str) -> dict:
    if not isinstance(value, dict) or set(value) - {"date", "dateTime", "timeZone"}:
        raise ApiError(400, "invalid", f"Invalid {name} time.")
    value = {k: v for k, v in value.items() if v is not None}
    if ("date" in value) == ("dateTime" in value):
        raise ApiError(400, "required", f"Missing {name} time.")
    zone = value.get("timeZone")
    if zone is not None:
        try:
            ZoneInfo(zone)
        except (ValueError, KeyError):
            raise ApiError(400, "invalid", f"Invalid time zone definition for {name} time.") from None
    try:
        if "date" in value:
            return {"date": date.fromisoformat(value["date"]).isoformat()}
        moment = datetime.fromisoformat(value["dateTime"])
    except (TypeError, ValueError):
        raise ApiError(400, "invalid", f"Invalid {name} time.") from None
    if moment.tzinfo is None:
        if zone is None:
            raise ApiError(400, "invalid", f"Missing time zone definition for {name} time.")
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return {"dateTime": _z(moment)} | ({"timeZone": zone} if zone else {})


def _instant(value: dict, zone: str) -> datetime:
    """When a stored time happens; an all-day date starts at midnight in the calendar's zone."""
    if "dateTime" in value:
        return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)
    day = date.fromisoformat(value["date"])
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _rendered_time(value: dict, calendar: StoredCalendar) -> dict:
    # Google answers in the calendar's zone unless asked otherwise; the offset is what makes it exact.
    try:
        moment = datetime.fromisoformat(value["dateTime"])
    except (KeyError, TypeError, ValueError):
        return copy.deepcopy(value)  # date-only, or raw test data served as it was stored
    return {**value, "dateTime": moment.astimezone(ZoneInfo(calendar.time_zone)).isoformat()}


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _merge(target: dict, patch: dict) -> dict:
    merged = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _new_event_id() -> str:
    return base64.b32hexencode(uuid.uuid4().bytes).decode().lower().rstrip("=")


# --- The contract's harness ---------------------------------------------------------------------------------

ACCOUNT_EMAIL = "ada.rep@example.com"
ACCOUNT_TOKEN = "ya29.ada-test-token"
SECOND_ID = "c_5f0e2a9b7c31d4e8a6b2@group.calendar.google.com"
SHARED_READONLY_ID = "olek.boss@example.com"
FREEBUSY_ID = "kasia.peer@example.com"


def build_world(emulator: GoogleCalendarEmulator) -> None:
    """Ada's account: her primary and a second calendar, Olek's shared read-only, Kasia's free/busy only."""
    emulator.add_account(ACCOUNT_EMAIL, name="Ada Rep", token=ACCOUNT_TOKEN, time_zone="Europe/Warsaw")
    emulator.add_calendar(ACCOUNT_EMAIL, "Ada - side projects", calendar_id=SECOND_ID)
    emulator.add_account(SHARED_READONLY_ID, name="Olek Boss", time_zone="Europe/Warsaw")
    emulator.share(SHARED_READONLY_ID, ACCOUNT_EMAIL, "reader")
    emulator.add_account(FREEBUSY_ID, name="Kasia Peer", time_zone="America/New_York")
    emulator.share(FREEBUSY_ID, ACCOUNT_EMAIL, "freeBusyReader")


class GoogleHarness:
    """ProviderHarness over the emulator; ``emulator`` is there for Google-specific tests."""

    account_email = ACCOUNT_EMAIL
    primary_id = ACCOUNT_EMAIL
    second_id = SECOND_ID
    shared_readonly_id = SHARED_READONLY_ID
    freebusy_id = FREEBUSY_ID

    def __init__(self, emulator: GoogleCalendarEmulator):
        self.emulator = emulator
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {ACCOUNT_TOKEN}"
        self.provider = GoogleCalendarProvider(
            self.session, api_url=emulator.api_url, userinfo_url=emulator.userinfo_url, timeout=5
        )

    def close(self) -> None:
        """Close the provider's session and its sockets."""
        self.session.close()

    def seed_event(
        self,
        calendar_id: str,
        *,
        uid: str,
        summary: str,
        start: datetime,
        end: datetime,
        attendees: tuple[SeedAttendee, ...] = (),
        transparent: bool = False,
        all_day: bool = False,
        rrule: str | None = None,
        by_integration: bool = False,
    ) -> None:
        """Create an event as a person would (or, with by_integration, as another app would)."""
        calendar = self.emulator.calendars[calendar_id]
        resource: dict = {"iCalUID": uid, "summary": summary, **_seed_times(start, end, all_day, calendar)}
        if attendees:
            resource["attendees"] = [{"email": a.email, "responseStatus": a.response} for a in attendees]
        if transparent:
            resource["transparency"] = "transparent"
        if rrule:
            resource["recurrence"] = [rrule if rrule.startswith("RRULE:") else f"RRULE:{rrule}"]
        if by_integration:
            # What a video-meeting add-on writes with the rep's own grant.
            resource["source"] = {"title": "Zoom Meeting", "url": "https://zoom.example/j/81234567890"}
            resource["extendedProperties"] = {"private": {"zmMeetingNum": "81234567890"}}
        self.emulator.insert(calendar_id, resource, creator=calendar.owner)

    def seed_exception(
        self,
        calendar_id: str,
        uid: str,
        original_start: datetime,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        summary: str | None = None,
        cancelled: bool = False,
    ) -> str:
        """Change (or cancel) one occurrence of the series ``uid`` as its owner would; returns its id."""
        [master_id] = self.emulator.find(calendar_id, uid)
        calendar = self.emulator.calendars[calendar_id]
        master = calendar.events[master_id].resource
        duration = _instant(master["end"], calendar.time_zone) - _instant(master["start"], calendar.time_zone)
        start = start or original_start
        end = end or start + duration
        exception = {
            key: copy.deepcopy(master[key]) for key in ("iCalUID", "summary", "attendees") if key in master
        }
        exception |= {
            "id": f"{master_id}_{original_start.astimezone(UTC):%Y%m%dT%H%M%SZ}",
            "recurringEventId": master_id,
            "originalStartTime": {"dateTime": _z(original_start), "timeZone": calendar.time_zone},
            **_seed_times(start, end, False, calendar),
        }
        if summary is not None:
            exception["summary"] = summary
        if cancelled:
            exception["status"] = "cancelled"
        return self.emulator.insert(calendar_id, exception, creator=calendar.owner)

    def move_event(self, calendar_id: str, uid: str, start: datetime, end: datetime) -> None:
        """Move the event ``uid`` as its owner would in Google's UI."""
        calendar = self.emulator.calendars[calendar_id]
        for event_id in self.emulator.find(calendar_id, uid):
            all_day = "date" in calendar.events[event_id].resource["start"]
            times = _seed_times(start, end, all_day, calendar)
            for key in ("start", "end"):  # switch kinds cleanly, as a patch with nulls would
                times[key] = {"date": None, "dateTime": None, "timeZone": None} | times[key]
            self.emulator.modify(calendar_id, event_id, times)

    def delete_event(self, calendar_id: str, uid: str) -> None:
        """Delete the event ``uid`` (a whole series, for a recurring one)."""
        for event_id in self.emulator.find(calendar_id, uid):
            self.emulator.delete(calendar_id, event_id)

    def server_events(self, calendar_id: str) -> list[dict]:
        """Live events with uid, summary, start, end (UTC; all-day as midnight UTC) and attendee emails."""
        held = []
        for stored in self.emulator.stored(calendar_id):
            resource = stored.resource
            held.append(
                {
                    "id": resource["id"],
                    "uid": resource.get("iCalUID", ""),
                    "summary": resource.get("summary", ""),
                    "start": _held_time(resource.get("start")),
                    "end": _held_time(resource.get("end")),
                    "all_day": "date" in (resource.get("start") or {}),
                    "status": resource.get("status", "confirmed"),
                    "attendees": [a["email"] for a in resource.get("attendees") or []],
                    "resource": copy.deepcopy(resource),
                }
            )
        return held

    def withdraw_access(self, calendar_id: str) -> None:
        """The owner stops sharing the calendar with the account."""
        self.emulator.unshare(calendar_id, ACCOUNT_EMAIL)

    def expire_sync_state(self, calendar_id: str) -> None:
        """Google forgets the calendar's sync tokens."""
        self.emulator.expire_sync_tokens(calendar_id)

    def fail_next_requests(
        self, status: int, count: int = 1, retry_after: int | None = None, reason: str | None = None
    ) -> None:
        """The next ``count`` requests answer ``status`` (Google's ``reason``, Retry-After when given)."""
        self.emulator.fail_next(status, count, retry_after=retry_after, reason=reason)

    def revoke_grant(self) -> None:
        """The account's access token stops working."""
        self.emulator.revoke(ACCOUNT_TOKEN)

    @property
    def request_count(self) -> int:
        """API requests the provider made so far (userinfo included)."""
        return self.emulator.request_count


def _seed_times(start: datetime, end: datetime, all_day: bool, calendar: StoredCalendar) -> dict:
    if all_day:
        return {"start": {"date": start.date().isoformat()}, "end": {"date": end.date().isoformat()}}
    zone = ZoneInfo(calendar.time_zone)
    return {
        "start": {"dateTime": start.astimezone(zone).isoformat(), "timeZone": calendar.time_zone},
        "end": {"dateTime": end.astimezone(zone).isoformat(), "timeZone": calendar.time_zone},
    }


def _held_time(value: dict | None) -> datetime | None:
    if not value:
        return None
    if "dateTime" in value:
        return datetime.fromisoformat(value["dateTime"]).astimezone(UTC)
    day = date.fromisoformat(value["date"])
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


_EMULATOR = pytest.StashKey[GoogleCalendarEmulator]()


def _running_emulator(config: pytest.Config) -> GoogleCalendarEmulator:
    # One server per test session, started on first use and stopped when pytest unconfigures: a
    # session-scoped fixture would have to be imported into every conftest that imports google_harness.
    emulator = config.stash.get(_EMULATOR, None)
    if emulator is None:
        emulator = GoogleCalendarEmulator().start()
        config.stash[_EMULATOR] = emulator
        config.add_cleanup(emulator.stop)
    return emulator


@pytest.fixture
def google_harness(request: pytest.FixtureRequest) -> Iterator[GoogleHarness]:
    """A fresh Google world on the session's emulator, with a GoogleCalendarProvider pointed at it."""
    emulator = _running_emulator(request.config)
    emulator.reset()
    build_world(emulator)
    harness = GoogleHarness(emulator)
    yield harness
    harness.close()
    assert not emulator.errors, f"the emulator crashed or was asked what it does not serve: {emulator.errors}"
