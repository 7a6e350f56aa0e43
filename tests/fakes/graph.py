"""A Microsoft Graph v1.0 emulator on 127.0.0.1, for the calendar subset Termin uses, and its harness.

It serves what app/sync/providers/microsoft.py calls, as Graph documents it: ``/me``, ``/me/calendars``
(list, get, create), ``calendarView`` with ``$skip`` paging, ``calendarView/delta`` with skip and delta
tokens (410 once forgotten; no ``$select``/``$expand``/``$filter``, as documented), events (create with
``transactionId`` deduplication and single-value extended properties, get with ``$expand``, patch,
delete, cancel) and ``getSchedule``. Pages are small (``page_size_cap``) so clients must follow
``@odata.nextLink``. Mail Graph would send (invitations, updates, cancellations) lands in ``outbox``.

Access follows the sharing model: the owner and ``write`` sharees may write; ``read`` sharees read;
``freeBusyRead`` sharees see the calendar listed but get 403 for its items; an account that lost a
calendar gets 404. Bearer tokens go through ``token_validator`` (token → user email, or None), a
static map by default, so tests/fakes/oauth_server.py's ``validate_token`` can be plugged in; a user
in ``revoked`` gets 401 whatever the validator says. ``fail_next`` answers the next requests with a
429/503 and a Retry-After.

Times are held in UTC and always written as UTC (the ``Prefer: outlook.timezone`` the provider sends
is UTC). All-day events are floating dates, kept as midnight UTC.

The ``graph_harness`` fixture (tests/sync/harness.py's ProviderHarness) shares one server across the
session and resets it for each test.
"""

import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from functools import wraps
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
import requests
from dateutil.rrule import rrulestr
from flask import Flask, Response, g, jsonify, request
from werkzeug.serving import make_server

from app.sync.providers.microsoft import GraphCalendarProvider
from tests.sync.harness import SeedAttendee

ACCOUNT_EMAIL = "ana@contoso.test"
ACCOUNT_TOKEN = "graph-token-ana"
# The harness's world is in May 2030 (the contract suite's T0); the provider's clock says so too.
HARNESS_NOW = datetime(2030, 5, 1, tzinfo=UTC)
DEFAULT_PAGE = 10  # Graph's page when the client states no odata.maxpagesize
PAGE_SIZE_CAP = 3
UTC_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # a new event's time until its body sets one

_READ_ROLES = frozenset(
    {
        "owner",
        "limitedRead",
        "read",
        "write",
        "delegateWithoutPrivateEventAccess",
        "delegateWithPrivateEventAccess",
    }
)
_WRITE_ROLES = frozenset(
    {"owner", "write", "delegateWithoutPrivateEventAccess", "delegateWithPrivateEventAccess"}
)
_SEED_RESPONSES = {
    "needsAction": "notResponded",
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentativelyAccepted",
}
_AVAILABILITY = {
    "free": "0",
    "tentative": "1",
    "busy": "2",
    "oof": "3",
    "workingElsewhere": "4",
    "unknown": "0",
}
_DELTA_UNSUPPORTED = ("$select", "$expand", "$filter", "$orderby", "$search")


class GraphError(Exception):
    """An error answer in Graph's shape: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


@dataclass
class User:
    email: str
    name: str
    id: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class Calendar:
    id: str
    name: str
    owner: str  # email
    is_default: bool = False


@dataclass
class Override:
    """One occurrence of a series changed on its own: an exception."""

    start: datetime
    end: datetime
    subject: str
    seq: int


@dataclass
class Event:
    id: str
    calendar_id: str
    ical_uid: str
    subject: str
    start: datetime
    end: datetime
    organizer: str
    seq: int
    all_day: bool = False
    show_as: str = "busy"
    attendees: list[dict] = field(default_factory=list)  # {"address", "name", "response"}
    transaction_id: str | None = None
    properties: dict[str, str] = field(default_factory=dict)  # single-value extended properties
    rrule: str | None = None
    overrides: dict[datetime, Override] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)
    body: str = ""
    location: str = ""
    time_zone: str = "UTC"
    omit: tuple[str, ...] = ()  # fields left out of every answer, to play a malformed event
    created: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass
class Message:
    """Mail Graph would have sent on the organizer's behalf."""

    kind: str  # "invitation", "update" or "cancellation"
    event_id: str
    subject: str
    recipients: tuple[str, ...]
    comment: str = ""
    uid: str = ""  # the iCalendar UID of the invitation's object: the event's iCalUId


@dataclass
class DeltaState:
    user: str
    calendar_id: str
    start: datetime
    end: datetime
    seq: int
    known: frozenset[str]


@dataclass
class PendingPages:
    user: str
    calendar_id: str
    items: list[dict]
    then: str  # the delta token handed out with the last page


@dataclass
class _State:
    users: dict[str, User] = field(default_factory=dict)
    calendars: dict[str, Calendar] = field(default_factory=dict)
    shares: dict[tuple[str, str], str] = field(default_factory=dict)  # (calendar id, email) → role
    events: dict[str, Event] = field(default_factory=dict)
    seq: int = 0
    delta_states: dict[str, DeltaState] = field(default_factory=dict)
    pending: dict[str, PendingPages] = field(default_factory=dict)
    faults: list[tuple[int, int | None]] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    tokens: dict[str, str] = field(default_factory=dict)
    request_count: int = 0
    log: list[dict] = field(default_factory=list)
    outbox: list[Message] = field(default_factory=list)


def _graph_id(prefix: str = "AAMk") -> str:
    # Graph ids are base64 with '=' padding; keeping one here makes clients quote path segments.
    return f"{prefix}{secrets.token_hex(10)}="


def _ical_uid() -> str:
    return "040000008200E00074C5B7101A82E008" + secrets.token_hex(24).upper()


def _dt(value: datetime) -> dict:
    return {"dateTime": value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _offset(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_query_time(text: str | None) -> datetime:
    if not text:
        raise GraphError(400, "ErrorInvalidParameter", "startDateTime and endDateTime are required.")
    try:
        parsed = datetime.fromisoformat(text.replace(" ", "+"))
    except ValueError as error:
        raise GraphError(400, "ErrorInvalidParameter", f"Cannot read '{text}' as a date/time.") from error
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _parse_body_time(value: object, what: str) -> tuple[datetime, str]:
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise GraphError(400, "ErrorInvalidRequest", f"The {what} of the event is missing.")
    zone_name = value.get("timeZone") or "UTC"
    try:
        zone = UTC if zone_name == "UTC" else ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. "
            f"The following TimeZone value is not supported: '{zone_name}'.",
        ) from error
    try:
        naive = datetime.fromisoformat(value["dateTime"][:26])
    except ValueError as error:
        raise GraphError(400, "ErrorInvalidRequest", f"Cannot read the {what} date/time.") from error
    if naive.tzinfo is not None:
        raise GraphError(400, "ErrorInvalidRequest", "dateTime carries no offset; the zone is timeZone.")
    return naive.replace(tzinfo=zone), zone_name


def _floating_day(moment: datetime) -> datetime:
    return datetime.combine(moment.date(), time.min, tzinfo=UTC)


class GraphEmulator:
    """The server, its mailboxes, and the switches tests pull."""

    def __init__(
        self,
        token_validator: Callable[[str], str | None] | None = None,
        page_size_cap: int = PAGE_SIZE_CAP,
    ):
        self._lock = threading.RLock()
        self._state = _State()
        self._given_validator = self._custom_validator = token_validator
        self._given_page_size_cap = self.page_size_cap = page_size_cap
        self.app = self._create_app()
        self._http = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._http.server_port}"
        self.graph_url = f"{self.url}/v1.0"
        self._thread = threading.Thread(target=self._http.serve_forever, name="graph-emulator", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "GraphEmulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """An empty world: no users, calendars, events, tokens, faults or history; settings as built."""
        with self._lock:
            self._state = _State()
            self._custom_validator = self._given_validator
            self.page_size_cap = self._given_page_size_cap

    # -- the world -------------------------------------------------------------------------------

    def token_validator(self, token: str) -> str | None:
        """The user (email) a bearer token acts for: the plugged-in validator's, else the static map's."""
        if self._custom_validator is not None:
            return self._custom_validator(token)
        return self._state.tokens.get(token)

    def set_token_validator(self, validator: Callable[[str], str | None] | None) -> None:
        """Accept another server's tokens (e.g. OAuthServer.validate_token); None: the static map."""
        self._custom_validator = validator

    def issue_token(self, email: str, token: str | None = None) -> str:
        """A static bearer token for ``email``."""
        token = token or secrets.token_urlsafe(16)
        with self._lock:
            self._state.tokens[token] = email.lower()
        return token

    def add_user(self, email: str, name: str = "") -> User:
        """A mailbox with its default calendar."""
        with self._lock:
            user = User(email=email.lower(), name=name or email.split("@")[0].title())
            self._state.users[user.email] = user
            self.add_calendar(user.email, "Calendar", is_default=True)
            return user

    def add_calendar(self, owner: str, name: str, *, is_default: bool = False) -> Calendar:
        """Another calendar in ``owner``'s mailbox."""
        with self._lock:
            calendar = Calendar(
                id=_graph_id("AAMkCal"), name=name, owner=owner.lower(), is_default=is_default
            )
            self._state.calendars[calendar.id] = calendar
            return calendar

    def default_calendar(self, email: str) -> Calendar:
        """``email``'s default calendar."""
        with self._lock:
            return next(
                c for c in self._state.calendars.values() if c.owner == email.lower() and c.is_default
            )

    def share(self, calendar_id: str, email: str, role: str) -> None:
        """The owner shares the calendar with ``email`` as ``role`` (calendarRoleType), and it is accepted."""
        with self._lock:
            self._state.shares[(calendar_id, email.lower())] = role

    def withdraw(self, calendar_id: str, email: str) -> None:
        """``email`` loses the calendar: an owner's is deleted, a share is ended."""
        with self._lock:
            calendar = self._state.calendars[calendar_id]
            if calendar.owner == email.lower():
                del self._state.calendars[calendar_id]
                for event_id in [e.id for e in self._state.events.values() if e.calendar_id == calendar_id]:
                    del self._state.events[event_id]
            self._state.shares.pop((calendar_id, email.lower()), None)

    def revoke(self, email: str) -> None:
        """Every token of ``email`` answers 401 from now on."""
        with self._lock:
            self._state.revoked.add(email.lower())

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` requests answer ``status`` before anything else is looked at."""
        with self._lock:
            self._state.faults.extend([(status, retry_after)] * count)

    def expire_delta(self, calendar_id: str) -> None:
        """Forget every skip and delta token of the calendar."""
        with self._lock:
            state = self._state
            state.delta_states = {k: v for k, v in state.delta_states.items() if v.calendar_id != calendar_id}
            state.pending = {k: v for k, v in state.pending.items() if v.calendar_id != calendar_id}

    def seed_event(
        self,
        calendar_id: str,
        *,
        uid: str,
        subject: str,
        start: datetime,
        end: datetime,
        attendees: Iterable[tuple[str, str]] = (),
        show_as: str = "busy",
        all_day: bool = False,
        rrule: str | None = None,
        transaction_id: str | None = None,
        organizer: str | None = None,
        omit: tuple[str, ...] = (),
    ) -> Event:
        """An event as Outlook or another client would have written it; ``uid`` becomes its iCalUId."""
        with self._lock:
            calendar = self._state.calendars[calendar_id]
            if all_day:
                start, end = _floating_day(start), _floating_day(end)
            event = Event(
                id=_graph_id("AAMkEvt"),
                calendar_id=calendar_id,
                ical_uid=uid,
                subject=subject,
                start=start.astimezone(UTC),
                end=end.astimezone(UTC),
                organizer=(organizer or calendar.owner).lower(),
                seq=self._bump(),
                all_day=all_day,
                show_as=show_as,
                attendees=[
                    {"address": email, "name": email.split("@")[0].title(), "response": response}
                    for email, response in attendees
                ],
                transaction_id=transaction_id,
                rrule=rrule,
                omit=omit,
            )
            self._state.events[event.id] = event
            return event

    def find(self, calendar_id: str, uid: str) -> Event:
        """The single event or series in the calendar whose uid (ours, else iCalUId) is ``uid``."""
        with self._lock:
            for event in self._state.events.values():
                if event.calendar_id == calendar_id and uid in (event.ical_uid, *event.properties.values()):
                    return event
        raise KeyError(uid)

    def move(self, calendar_id: str, uid: str, start: datetime, end: datetime) -> None:
        """The owner drags the event to a new time in Outlook."""
        with self._lock:
            event = self.find(calendar_id, uid)
            event.start, event.end, event.seq = start.astimezone(UTC), end.astimezone(UTC), self._bump()

    def delete(self, calendar_id: str, uid: str) -> None:
        """The owner deletes the event in Outlook."""
        with self._lock:
            del self._state.events[self.find(calendar_id, uid).id]

    def edit_occurrence(
        self, calendar_id: str, uid: str, original_start: datetime, start: datetime, end: datetime
    ) -> None:
        """The owner moves one occurrence of a series: it becomes an exception."""
        with self._lock:
            event = self.find(calendar_id, uid)
            event.overrides[original_start.astimezone(UTC)] = Override(
                start=start.astimezone(UTC), end=end.astimezone(UTC), subject=event.subject, seq=self._bump()
            )

    def events(self, calendar_id: str) -> list[Event]:
        """Single events and series masters in the calendar, oldest first."""
        with self._lock:
            return sorted(
                (e for e in self._state.events.values() if e.calendar_id == calendar_id),
                key=lambda e: e.created,
            )

    @property
    def request_count(self) -> int:
        """Requests received so far, failed ones included."""
        return self._state.request_count

    @property
    def log(self) -> list[dict]:
        """Every request: method, path, query arguments and Prefer header."""
        with self._lock:
            return list(self._state.log)

    @property
    def outbox(self) -> list[Message]:
        """Mail sent on organizers' behalf, oldest first."""
        with self._lock:
            return list(self._state.outbox)

    def _bump(self) -> int:
        self._state.seq += 1
        return self._state.seq

    # -- what a user may do ----------------------------------------------------------------------

    def _role(self, email: str, calendar_id: str) -> str | None:
        calendar = self._state.calendars.get(calendar_id)
        if calendar is None:
            return None
        if calendar.owner == email:
            return "owner"
        return self._state.shares.get((calendar_id, email))

    def _calendar_for(self, email: str, calendar_id: str, need: str = "list") -> Calendar:
        role = self._role(email, calendar_id)
        if role is None or role == "none":
            raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        allowed = {"list": None, "read": _READ_ROLES, "write": _WRITE_ROLES}[need]
        if allowed is not None and role not in allowed:
            raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        return self._state.calendars[calendar_id]

    def _visible_calendars(self, email: str) -> list[tuple[Calendar, str]]:
        found = []
        for calendar in self._state.calendars.values():
            role = self._role(email, calendar.id)
            if role and role != "none":
                found.append((calendar, role))
        return sorted(found, key=lambda pair: (pair[1] != "owner", not pair[0].is_default))

    # -- rendering -------------------------------------------------------------------------------

    def _calendar_json(self, calendar: Calendar, role: str) -> dict:
        owner = self._state.users.get(calendar.owner)
        return {
            "id": calendar.id,
            "name": calendar.name,
            "color": "auto",
            "hexColor": "",
            "changeKey": secrets.token_urlsafe(8),
            "canShare": role == "owner",
            "canViewPrivateItems": role in ("owner", "delegateWithPrivateEventAccess"),
            "canEdit": role in _WRITE_ROLES,
            "isDefaultCalendar": calendar.is_default and role == "owner",
            "isRemovable": not (calendar.is_default and role == "owner"),
            "isTallyingResponses": calendar.is_default,
            "allowedOnlineMeetingProviders": ["teamsForBusiness"],
            "defaultOnlineMeetingProvider": "teamsForBusiness",
            "owner": {"name": owner.name if owner else calendar.owner, "address": calendar.owner},
        }

    def _instances(self, calendar_id: str, start: datetime, end: datetime) -> list[tuple[str, int, dict]]:
        """What a calendarView of [start, end) shows: singles, occurrences and exceptions, by start."""
        shown = []
        for event in self._state.events.values():
            if event.calendar_id != calendar_id:
                continue
            if event.rrule is None:
                if event.start < end and event.end > start:
                    shown.append((event.start, event.id, event.seq, self._event_json(event)))
                continue
            length = event.end - event.start
            rule = rrulestr(event.rrule, dtstart=event.start)
            for original in rule.between(start - length - timedelta(days=1), end, inc=True):
                if original in event.cancelled:
                    continue
                override = event.overrides.get(original)
                first, last = (override.start, override.end) if override else (original, original + length)
                if first < end and last > start:
                    item = self._event_json(event, original=original)
                    seq = max(event.seq, override.seq) if override else event.seq
                    shown.append((first, item["id"], seq, item))
        return [(item_id, seq, item) for _, item_id, seq, item in sorted(shown, key=lambda s: (s[0], s[1]))]

    def _event_json(self, event: Event, original: datetime | None = None) -> dict:
        start, end, subject = event.start, event.end, event.subject
        item: dict = {
            "@odata.type": "#microsoft.graph.event",
            "@odata.etag": f'W/"{event.seq}"',
            "id": event.id,
            "iCalUId": event.ical_uid,
            "type": "seriesMaster" if event.rrule else "singleInstance",
            "seriesMasterId": None,
            "originalStart": None,
        }
        if original is not None:
            start, end = original, original + (event.end - event.start)
            override = event.overrides.get(original)
            if override:
                start, end, subject = override.start, override.end, override.subject
            item.update(
                id=f"{event.id[:-1]}_{original:%Y%m%dT%H%M%S}=",
                # Graph documents iCalUId as different for each occurrence of a series.
                iCalUId=f"{event.ical_uid}{original:%Y%m%d}",
                type="exception" if override else "occurrence",
                seriesMasterId=event.id,
                originalStart=_offset(original),
            )
        elif event.rrule:
            item["recurrence"] = self._recurrence(event)
        calendar = self._state.calendars.get(event.calendar_id)
        organizer = self._state.users.get(event.organizer)
        item.update(
            {
                "createdDateTime": _offset(event.created),
                "lastModifiedDateTime": _offset(event.created),
                "subject": subject,
                "bodyPreview": event.body[:255],
                "body": {"contentType": "text", "content": event.body},
                "isAllDay": event.all_day,
                "isCancelled": False,
                "isOrganizer": bool(calendar and calendar.owner == event.organizer),
                "showAs": event.show_as,
                "sensitivity": "normal",
                "start": _dt(start),
                "end": _dt(end),
                "originalStartTimeZone": event.time_zone,
                "originalEndTimeZone": event.time_zone,
                "location": {"displayName": event.location},
                "organizer": {
                    "emailAddress": {"name": organizer.name if organizer else "", "address": event.organizer}
                },
                "attendees": [
                    {
                        "type": "required",
                        "status": {"response": a["response"], "time": "0001-01-01T00:00:00Z"},
                        "emailAddress": {"name": a["name"], "address": a["address"]},
                    }
                    for a in event.attendees
                ],
            }
        )
        if event.transaction_id:
            item["transactionId"] = event.transaction_id  # documented: only returned when an app set it
        for name in event.omit:
            item.pop(name, None)
        return item

    @staticmethod
    def _recurrence(event: Event) -> dict:
        """The series' RRULE as Graph's patternedRecurrence (the parts the emulator's rules use)."""
        parts = dict(p.split("=", 1) for p in event.rrule.removeprefix("RRULE:").split(";"))
        kinds = {
            "DAILY": "daily",
            "WEEKLY": "weekly",
            "MONTHLY": "absoluteMonthly",
            "YEARLY": "absoluteYearly",
        }
        span: dict = {"type": "noEnd", "startDate": event.start.date().isoformat()}
        if "COUNT" in parts:
            span.update(type="numbered", numberOfOccurrences=int(parts["COUNT"]))
        elif "UNTIL" in parts:
            span.update(
                type="endDate", endDate=f"{parts['UNTIL'][:4]}-{parts['UNTIL'][4:6]}-{parts['UNTIL'][6:8]}"
            )
        return {
            "pattern": {"type": kinds[parts["FREQ"]], "interval": int(parts.get("INTERVAL", "1"))},
            "range": span,
        }

    def _find_event(self, calendar_id: str, event_id: str) -> tuple[Event, datetime | None]:
        """The event, or the series and original start an occurrence id names."""
        event = self._state.events.get(event_id)
        if event is not None and event.calendar_id == calendar_id:
            return event, None
        head, _, tail = event_id.rstrip("=").rpartition("_")
        master = self._state.events.get(f"{head}=")
        if master is not None and master.calendar_id == calendar_id and master.rrule:
            try:
                original = datetime.strptime(tail, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
            except ValueError:
                original = None
            if original is not None and original not in master.cancelled:
                return master, original
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

    # -- the HTTP side ---------------------------------------------------------------------------

    def _create_app(self) -> Flask:
        app = Flask(__name__)
        fake = self

        def state() -> _State:
            return fake._state  # looked up on every call: reset replaces it

        def error_response(error: GraphError) -> Response:
            body = {
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "innerError": {"request-id": str(uuid.uuid4()), "date": _offset(datetime.now(UTC))},
                }
            }
            response = jsonify(body)
            response.status_code = error.status
            if error.retry_after is not None:
                response.headers["Retry-After"] = str(error.retry_after)
            return response

        @app.errorhandler(GraphError)
        def graph_error(error: GraphError):
            return error_response(error)

        @app.errorhandler(404)
        def no_route(_error):
            return error_response(
                GraphError(400, "BadRequest", f"Resource not found for the segment '{request.path}'.")
            )

        @app.errorhandler(405)
        def wrong_method(_error):
            return error_response(
                GraphError(405, "Request_BadRequest", "Specified HTTP method is not allowed.")
            )

        @app.before_request
        def gatekeeper():
            with fake._lock:
                current = state()
                current.request_count += 1
                current.log.append(
                    {
                        "method": request.method,
                        "path": request.path,
                        "args": request.args.to_dict(),
                        "prefer": request.headers.get("Prefer", ""),
                    }
                )
                if current.faults:
                    status, retry_after = current.faults.pop(0)
                    code = "TooManyRequests" if status == 429 else "ServiceNotAvailable"
                    raise GraphError(status, code, f"Emulated {status}: try again later.", retry_after)
            scheme, _, token = request.headers.get("Authorization", "").partition(" ")
            email = fake.token_validator(token) if scheme.lower() == "bearer" and token else None
            with fake._lock:
                if email is None or email.lower() in state().revoked:
                    raise GraphError(
                        401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."
                    )
                g.user = email.lower()
                if g.user not in state().users:
                    fake.add_user(g.user)  # a user signed in through the OAuth server gets a mailbox

        def locked(view):
            @wraps(view)
            def run(*args, **kwargs):
                with fake._lock:
                    return view(*args, **kwargs)

            return run

        def arg(name: str) -> str | None:
            # Graph's query option names are case-insensitive (its own samples write startdatetime).
            for key, value in request.args.items():
                if key.lower() == name.lower():
                    return value
            return None

        def page_size() -> int:
            wanted = DEFAULT_PAGE
            for preference in request.headers.get("Prefer", "").split(","):
                key, _, value = preference.strip().partition("=")
                if key == "odata.maxpagesize" and value.isdigit():
                    wanted = int(value)
            top = arg("$top")
            if top and top.isdigit():
                wanted = min(wanted, int(top))
            return max(1, min(wanted, fake.page_size_cap))

        def selected(item: dict) -> dict:
            fields = arg("$select")
            if not fields:
                return item
            keep = {f.strip() for f in fields.split(",")} | {"id", "@odata.type", "@odata.etag"}
            return {k: v for k, v in item.items() if k in keep}

        def expanded(item: dict, event: Event) -> dict:
            expand = arg("$expand")
            if not expand:
                return item
            prefix = "singleValueExtendedProperties($filter=id eq '"
            if not (expand.startswith(prefix) and expand.endswith("')")):
                raise GraphError(400, "BadRequest", f"Unsupported $expand: {expand}")
            wanted = expand[len(prefix) : -2].lower()
            found = [{"id": k, "value": v} for k, v in event.properties.items() if k.lower() == wanted]
            if found:
                item = {**item, "singleValueExtendedProperties": found}
            return item

        def page_of(items: list[dict], link_base: str) -> dict:
            skip_text = arg("$skip") or "0"
            skip = int(skip_text) if skip_text.isdigit() else 0
            size = page_size()
            body: dict = {"value": items[skip : skip + size]}
            if skip + size < len(items):
                query = {k: v for k, v in request.args.items() if k.lower() != "$skip"}
                query["$skip"] = str(skip + size)
                encoded = "&".join(f"{quote(k, safe='$')}={quote(v, safe='')}" for k, v in query.items())
                body["@odata.nextLink"] = f"{link_base}?{encoded}"
            return body

        def base() -> str:
            return f"{request.host_url.rstrip('/')}/v1.0"

        def json_body() -> dict:
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                raise GraphError(400, "BadRequest", "Empty Payload. JSON content expected.")
            return body

        # -- /me and calendars ---------------------------------------------------------------------

        @app.get("/v1.0/me")
        @locked
        def me():
            user = state().users[g.user]
            item = {
                "id": user.id,
                "displayName": user.name,
                "mail": user.email,
                "userPrincipalName": user.email,
            }
            return jsonify(selected(item))

        @app.get("/v1.0/me/calendars")
        @locked
        def list_calendars():
            items = [selected(fake._calendar_json(c, role)) for c, role in fake._visible_calendars(g.user)]
            return jsonify(page_of(items, f"{base()}/me/calendars"))

        @app.post("/v1.0/me/calendars")
        @locked
        def create_calendar():
            name = str(json_body().get("name") or "").strip()
            if not name:
                raise GraphError(400, "ErrorInvalidRequest", "The calendar name is missing.")
            if any(c.name == name for c, role in fake._visible_calendars(g.user) if role == "owner"):
                raise GraphError(409, "ErrorFolderExists", "A folder with the specified name already exists.")
            calendar = fake.add_calendar(g.user, name)
            return jsonify(fake._calendar_json(calendar, "owner")), 201

        @app.get("/v1.0/me/calendars/<calendar_id>")
        @locked
        def get_calendar(calendar_id: str):
            calendar = fake._calendar_for(g.user, calendar_id)
            return jsonify(selected(fake._calendar_json(calendar, fake._role(g.user, calendar_id))))

        # -- reading events ------------------------------------------------------------------------

        @app.get("/v1.0/me/calendars/<calendar_id>/calendarView")
        @locked
        def calendar_view(calendar_id: str):
            fake._calendar_for(g.user, calendar_id, "read")
            start, end = _parse_query_time(arg("startDateTime")), _parse_query_time(arg("endDateTime"))
            items = []
            for item_id, _seq, item in fake._instances(calendar_id, start, end):
                event, _ = fake._find_event(calendar_id, item_id)
                items.append(expanded(selected(item), event))
            return jsonify(
                page_of(items, f"{base()}/me/calendars/{quote(calendar_id, safe='')}/calendarView")
            )

        @app.get("/v1.0/me/calendars/<calendar_id>/calendarView/delta")
        @locked
        def calendar_view_delta(calendar_id: str):
            fake._calendar_for(g.user, calendar_id, "read")
            current = state()
            link = f"{base()}/me/calendars/{quote(calendar_id, safe='')}/calendarView/delta"
            skip_token, delta_token = arg("$skiptoken"), arg("$deltatoken")
            if skip_token:
                pending = current.pending.pop(skip_token, None)
                if pending is None or (pending.user, pending.calendar_id) != (g.user, calendar_id):
                    raise GraphError(410, "SyncStateNotFound", "The sync state is no longer available.")
                return jsonify(deliver(pending.items, pending.then, calendar_id, link))
            if delta_token:
                previous = current.delta_states.get(delta_token)
                if previous is None or (previous.user, previous.calendar_id) != (g.user, calendar_id):
                    raise GraphError(410, "SyncStateNotFound", "The sync state is no longer available.")
                start, end, since, known = previous.start, previous.end, previous.seq, previous.known
            else:
                for option in _DELTA_UNSUPPORTED:
                    if arg(option) is not None:
                        raise GraphError(
                            400,
                            "ErrorInvalidUrlQuery",
                            f"The query parameter '{option}' is not supported with delta on calendarView.",
                        )
                start, end = _parse_query_time(arg("startDateTime")), _parse_query_time(arg("endDateTime"))
                since, known = None, frozenset()
            view = fake._instances(calendar_id, start, end)
            if since is None:
                items = [item for _id, _seq, item in view]
            else:
                items = [item for item_id, seq, item in view if seq > since or item_id not in known]
                shown = {item_id for item_id, _seq, _item in view}
                items += [
                    {"@odata.type": "#microsoft.graph.event", "id": gone, "@removed": {"reason": "deleted"}}
                    for gone in sorted(known - shown)
                ]
            token = secrets.token_urlsafe(18)
            current.delta_states[token] = DeltaState(
                user=g.user,
                calendar_id=calendar_id,
                start=start,
                end=end,
                seq=current.seq,
                known=frozenset(item_id for item_id, _seq, _item in view),
            )
            return jsonify(deliver(items, token, calendar_id, link))

        def deliver(items: list[dict], then: str, calendar_id: str, link: str) -> dict:
            size = page_size()
            body: dict = {
                "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(event)",
                "value": items[:size],
            }
            if len(items) > size:
                skip_token = secrets.token_urlsafe(18)
                state().pending[skip_token] = PendingPages(g.user, calendar_id, items[size:], then)
                body["@odata.nextLink"] = f"{link}?$skiptoken={skip_token}"
            else:
                body["@odata.deltaLink"] = f"{link}?$deltatoken={then}"
            return body

        @app.get("/v1.0/me/calendars/<calendar_id>/events/<event_id>")
        @locked
        def get_event(calendar_id: str, event_id: str):
            fake._calendar_for(g.user, calendar_id, "read")
            event, original = fake._find_event(calendar_id, event_id)
            return jsonify(expanded(selected(fake._event_json(event, original)), event))

        # -- writing events ------------------------------------------------------------------------

        @app.post("/v1.0/me/calendars/<calendar_id>/events")
        @locked
        def create_event(calendar_id: str):
            calendar = fake._calendar_for(g.user, calendar_id, "write")
            body = json_body()
            if not body.get("start") or not body.get("end"):
                raise GraphError(400, "ErrorInvalidRequest", "An event needs a start and an end.")
            transaction_id = body.get("transactionId")
            if transaction_id:
                for existing in current_events(calendar_id):
                    if existing.transaction_id == transaction_id:
                        return jsonify(fake._event_json(existing)), 201  # a retry: nothing new is created
            properties = {}
            for prop in body.get("singleValueExtendedProperties") or []:
                parts = str(prop.get("id", "")).split(" ")
                if len(parts) != 4 or parts[2] != "Name" or not parts[1].startswith("{"):
                    raise GraphError(
                        400, "ErrorInvalidProperty", f"Invalid extended property id: {prop.get('id')}"
                    )
                properties[prop["id"]] = str(prop.get("value", ""))
            event = Event(
                id=_graph_id("AAMkEvt"),
                calendar_id=calendar_id,
                ical_uid=_ical_uid(),
                subject=str(body.get("subject") or ""),
                start=UTC_EPOCH,
                end=UTC_EPOCH,
                organizer=calendar.owner,
                seq=0,
                transaction_id=transaction_id,
                properties=properties,
            )
            apply_fields(event, body)
            event.seq = fake._bump()
            state().events[event.id] = event
            if event.attendees:
                send("invitation", event, [a["address"] for a in event.attendees])
            return jsonify(fake._event_json(event)), 201

        @app.patch("/v1.0/me/calendars/<calendar_id>/events/<event_id>")
        @locked
        def update_event(calendar_id: str, event_id: str):
            fake._calendar_for(g.user, calendar_id, "write")
            event, original = fake._find_event(calendar_id, event_id)
            if original is not None:
                raise GraphError(400, "ErrorInvalidRequest", "This emulator does not update occurrences.")
            body = json_body()
            if "transactionId" in body and body["transactionId"] != event.transaction_id:
                raise GraphError(
                    400, "ErrorInvalidRequest", "The transactionId of an event cannot be changed."
                )
            before = (event.start, event.end, [a["address"] for a in event.attendees])
            apply_fields(event, body)
            event.seq = fake._bump()
            after = (event.start, event.end, [a["address"] for a in event.attendees])
            if event.attendees and before != after and is_organizer(event):
                send("update", event, after[2])
            return jsonify(fake._event_json(event))

        @app.delete("/v1.0/me/calendars/<calendar_id>/events/<event_id>")
        @locked
        def delete_event(calendar_id: str, event_id: str):
            fake._calendar_for(g.user, calendar_id, "write")
            event, original = fake._find_event(calendar_id, event_id)
            # Documented: deleting a meeting in the organizer's calendar sends attendees a cancellation.
            if event.attendees and is_organizer(event):
                send("cancellation", event, [a["address"] for a in event.attendees])
            remove(event, original)
            return "", 204

        @app.post("/v1.0/me/calendars/<calendar_id>/events/<event_id>/cancel")
        @locked
        def cancel_event(calendar_id: str, event_id: str):
            fake._calendar_for(g.user, calendar_id, "write")
            event, original = fake._find_event(calendar_id, event_id)
            if not is_organizer(event):
                raise GraphError(
                    400,
                    "ErrorAccessDenied",
                    "Your request can't be completed. You need to be an organizer to cancel a meeting.",
                )
            body = request.get_json(silent=True) or {}
            comment = str(body.get("comment") or body.get("Comment") or "")
            send("cancellation", event, [a["address"] for a in event.attendees], comment)
            remove(event, original)
            return "", 202

        def current_events(calendar_id: str) -> list[Event]:
            return [e for e in state().events.values() if e.calendar_id == calendar_id]

        def is_organizer(event: Event) -> bool:
            calendar = state().calendars[event.calendar_id]
            return event.organizer == calendar.owner

        def remove(event: Event, original: datetime | None) -> None:
            if original is None:
                del state().events[event.id]
            else:
                event.cancelled.add(original)
                event.seq = fake._bump()

        def send(kind: str, event: Event, recipients: list[str], comment: str = "") -> None:
            state().outbox.append(
                Message(kind, event.id, event.subject, tuple(recipients), comment, uid=event.ical_uid)
            )

        def apply_fields(event: Event, body: dict) -> None:
            if "subject" in body:
                event.subject = str(body["subject"] or "")
            if "isAllDay" in body:
                event.all_day = bool(body["isAllDay"])
            if "start" in body or "end" in body or "isAllDay" in body:
                start, zone = _parse_body_time(body.get("start") or as_body(event.start), "start")
                end, _ = _parse_body_time(body.get("end") or as_body(event.end), "end")
                if event.all_day:
                    if (
                        start.timetz().replace(tzinfo=None) != time.min
                        or end.timetz().replace(tzinfo=None) != time.min
                    ):
                        raise GraphError(
                            400,
                            "ErrorPropertyValidationFailure",
                            "All-day events must start and end at midnight in the same time zone.",
                        )
                    start, end = _floating_day(start), _floating_day(end)
                if end < start:
                    raise GraphError(400, "ErrorInvalidRequest", "The event ends before it starts.")
                event.start, event.end, event.time_zone = start.astimezone(UTC), end.astimezone(UTC), zone
            if "attendees" in body:
                event.attendees = [
                    {
                        "address": str(a["emailAddress"]["address"]).lower(),
                        "name": a["emailAddress"].get("name") or "",
                        "response": "none",
                    }
                    for a in body["attendees"] or []
                ]
            if "showAs" in body:
                event.show_as = body["showAs"]
            if "body" in body:
                event.body = str((body["body"] or {}).get("content") or "")
            if "location" in body:
                event.location = str((body["location"] or {}).get("displayName") or "")

        def as_body(moment: datetime) -> dict:
            return {"dateTime": moment.astimezone(UTC).replace(tzinfo=None).isoformat(), "timeZone": "UTC"}

        # -- free/busy -----------------------------------------------------------------------------

        @app.post("/v1.0/me/calendar/getSchedule")
        @locked
        def get_schedule():
            body = json_body()
            start, _ = _parse_body_time(body.get("startTime"), "startTime")
            end, _ = _parse_body_time(body.get("endTime"), "endTime")
            interval = int(body.get("availabilityViewInterval") or 30)
            answers = []
            for address in body.get("schedules") or []:
                owner = state().users.get(str(address).lower())
                if owner is None:
                    answers.append(
                        {
                            "scheduleId": address,
                            "availabilityView": "",
                            "error": {
                                "message": f"{address} was not found.",
                                "responseCode": "ErrorMailRecipientNotFound",
                            },
                        }
                    )
                    continue
                calendar = fake.default_calendar(owner.email)
                items = [
                    {
                        "isPrivate": False,
                        "status": item["showAs"],
                        "start": item["start"],
                        "end": item["end"],
                    }
                    for _id, _seq, item in fake._instances(calendar.id, start, end)
                ]
                answers.append(
                    {
                        "scheduleId": address,
                        "availabilityView": availability(items, start, end, interval),
                        "scheduleItems": items,
                    }
                )
            return jsonify({"value": answers})

        def availability(items: list[dict], start: datetime, end: datetime, minutes: int) -> str:
            view = []
            slot = start
            while slot < end:
                slot_end = slot + timedelta(minutes=minutes)
                code = "0"
                for item in items:
                    first = datetime.fromisoformat(item["start"]["dateTime"][:19]).replace(tzinfo=UTC)
                    last = datetime.fromisoformat(item["end"]["dateTime"][:19]).replace(tzinfo=UTC)
                    if first < slot_end and last > slot:
                        code = max(code, _AVAILABILITY.get(item["status"], "0"))
                view.append(code)
                slot = slot_end
            return "".join(view)

        return app


# -- the harness ---------------------------------------------------------------------------------


@dataclass
class GraphHarness:
    """tests/sync/harness.py's ProviderHarness over the emulator, plus the emulator itself."""

    emulator: GraphEmulator
    provider: GraphCalendarProvider
    session: requests.Session
    primary_id: str
    second_id: str
    shared_readonly_id: str
    freebusy_id: str | None
    account_email: str = ACCOUNT_EMAIL

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
        """Create an event as a person would in Outlook (or, with by_integration, as another app would)."""
        self.emulator.seed_event(
            calendar_id,
            uid=uid,
            subject=summary,
            start=start,
            end=end,
            attendees=[(a.email, _SEED_RESPONSES.get(a.response, "notResponded")) for a in attendees],
            show_as="free" if transparent else "busy",
            all_day=all_day,
            rrule=rrule,
            # An app writing through Graph sets transactionId, which Outlook itself never does.
            transaction_id=str(uuid.uuid4()).upper() if by_integration else None,
        )

    def move_event(self, calendar_id: str, uid: str, start: datetime, end: datetime) -> None:
        """The owner moves the event in Outlook."""
        self.emulator.move(calendar_id, uid, start, end)

    def delete_event(self, calendar_id: str, uid: str) -> None:
        """The owner deletes the event in Outlook."""
        self.emulator.delete(calendar_id, uid)

    def server_events(self, calendar_id: str) -> list[dict]:
        """What the server holds: uid, summary, start, end, attendees (emails) and Graph's own fields."""
        return [
            {
                "id": e.id,
                "uid": next(iter(e.properties.values()), e.ical_uid),
                "ical_uid": e.ical_uid,
                "summary": e.subject,
                "start": e.start,
                "end": e.end,
                "all_day": e.all_day,
                "attendees": [a["address"] for a in e.attendees],
                "organizer": e.organizer,
                "show_as": e.show_as,
                "time_zone": e.time_zone,
                "transaction_id": e.transaction_id,
                "properties": dict(e.properties),
            }
            for e in self.emulator.events(calendar_id)
        ]

    def withdraw_access(self, calendar_id: str) -> None:
        """The calendar's owner stops sharing it: the account now gets 404 for it."""
        self.emulator.withdraw(calendar_id, self.account_email)

    def expire_sync_state(self, calendar_id: str) -> None:
        """Graph forgets the calendar's delta tokens: the next incremental call gets 410."""
        self.emulator.expire_delta(calendar_id)

    def fail_next_requests(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` API requests answer ``status`` with Retry-After when given."""
        self.emulator.fail_next(status, count, retry_after)

    def revoke_grant(self) -> None:
        """The account's tokens stop working."""
        self.emulator.revoke(self.account_email)

    @property
    def request_count(self) -> int:
        """API requests the provider made so far."""
        return self.emulator.request_count

    def close(self) -> None:
        """Release the HTTP session's sockets."""
        self.session.close()


def build_graph_harness(emulator: GraphEmulator) -> GraphHarness:
    """A fresh world on ``emulator``: Ana's two calendars, Bob's shared read-only, Carol's free/busy only."""
    emulator.reset()
    emulator.add_user(ACCOUNT_EMAIL, "Ana Alves")
    emulator.add_user("bob@contoso.test", "Bob Berg")
    emulator.add_user("carol@contoso.test", "Carol Cruz")
    primary = emulator.default_calendar(ACCOUNT_EMAIL)
    second = emulator.add_calendar(ACCOUNT_EMAIL, "Side projects")
    shared = emulator.default_calendar("bob@contoso.test")
    freebusy = emulator.default_calendar("carol@contoso.test")
    emulator.share(shared.id, ACCOUNT_EMAIL, "read")
    emulator.share(freebusy.id, ACCOUNT_EMAIL, "freeBusyRead")
    token = emulator.issue_token(ACCOUNT_EMAIL, ACCOUNT_TOKEN)
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    provider = GraphCalendarProvider(
        session, graph_url=emulator.graph_url, timeout=5, clock=lambda: HARNESS_NOW
    )
    return GraphHarness(
        emulator=emulator,
        provider=provider,
        session=session,
        primary_id=primary.id,
        second_id=second.id,
        shared_readonly_id=shared.id,
        freebusy_id=freebusy.id,
    )


_EMULATOR = pytest.StashKey[GraphEmulator]()


def session_emulator(config: pytest.Config) -> GraphEmulator:
    """One emulator per test session, stopped when the session ends.

    Kept in the config's stash rather than a session fixture so importing ``graph_harness`` alone into
    a conftest is enough.
    """
    emulator = config.stash.get(_EMULATOR, None)
    if emulator is None:
        emulator = GraphEmulator().start()
        config.stash[_EMULATOR] = emulator
        config.add_cleanup(emulator.stop)
    return emulator


@pytest.fixture
def graph_harness(request: pytest.FixtureRequest):
    """ProviderHarness for Microsoft Graph: the session's emulator, reset, with a provider pointed at it."""
    harness = build_graph_harness(session_emulator(request.config))
    yield harness
    harness.close()
