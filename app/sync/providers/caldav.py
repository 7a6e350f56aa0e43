"""CalDAV accounts (RFC 4791, RFC 6578, RFC 6764) through the ``caldav`` library.

The library carries the HTTP (niquests), authentication negotiation and the sync-collection and
calendar-query REPORTs; the properties Termin needs (privileges, ctags, the calendar home) are asked
for with small PROPFINDs of our own, because servers differ there and we want every answer typed.

A CalDAV server is any address a rep types in, so every request first passes ``check_server_url``:
nothing leaves for a private, loopback or link-local address unless the deployment allows it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import re
import secrets
import socket
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from urllib.parse import quote, unquote, urljoin, urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import caldav
import icalendar
from caldav.lib import error as caldav_error
from caldav.lib import http_sync
from lxml import etree

from app.sync.providers.base import (
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

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CALSERVER = "http://calendarserver.org/ns/"
APPLE = "http://apple.com/ns/ical/"
NSMAP = {"d": DAV, "c": CALDAV, "cs": CALSERVER, "ical": APPLE}


def _clark(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


CURRENT_USER_PRINCIPAL = _clark(DAV, "current-user-principal")
PRIVILEGE_SET = _clark(DAV, "current-user-privilege-set")
RESOURCETYPE = _clark(DAV, "resourcetype")
DISPLAYNAME = _clark(DAV, "displayname")
OWNER = _clark(DAV, "owner")
GETETAG = _clark(DAV, "getetag")
HREF = _clark(DAV, "href")
CALENDAR_HOME_SET = _clark(CALDAV, "calendar-home-set")
CALENDAR_USER_ADDRESS_SET = _clark(CALDAV, "calendar-user-address-set")
SCHEDULE_INBOX_URL = _clark(CALDAV, "schedule-inbox-URL")
SCHEDULE_DEFAULT_CALENDAR_URL = _clark(CALDAV, "schedule-default-calendar-URL")
CALENDAR_TIMEZONE = _clark(CALDAV, "calendar-timezone")
CALENDAR_TIMEZONE_ID = _clark(CALDAV, "calendar-timezone-id")
SUPPORTED_COMPONENTS = _clark(CALDAV, "supported-calendar-component-set")
CALENDAR_DATA = _clark(CALDAV, "calendar-data")
GETCTAG = _clark(CALSERVER, "getctag")
CALENDAR_ORDER = _clark(APPLE, "calendar-order")

VALID_SYNC_TOKEN = _clark(DAV, "valid-sync-token")
SUPPORTED_REPORT = _clark(DAV, "supported-report")
UID_CONFLICT = frozenset(caldav_error.UID_CONFLICT_PRECONDITIONS)
WRITE_PRIVILEGES = frozenset(_clark(DAV, p) for p in ("all", "write", "write-content", "bind"))
READ_PRIVILEGES = frozenset({_clark(DAV, "read"), _clark(DAV, "all")})
FREEBUSY_PRIVILEGE = _clark(CALDAV, "read-free-busy")

PRODID = "-//Termin//Termin//EN"
ICS_CONTENT_TYPE = "text/calendar; charset=utf-8"
# Deleted resources carry no times any more; callers only read id, uid and status of those.
NO_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MULTIGET_BATCH = 100
MAX_REDIRECTS = 5

# Products that write events into people's calendars on their behalf: booking pages, meeting tools,
# CRMs. Matched as whole words against PRODID, which names the software that wrote the object. A PRODID
# naming a calendar client (Apple, Thunderbird, DAVx5, Outlook, Google Calendar, ...) or none at all
# means a person wrote the event; unknown products are taken as people too, so a rare client never
# has its owner's meetings mistaken for tool-made ones.
INTEGRATION_PRODUCTS = (
    "acuity",
    "cal.com",
    "calendly",
    "chili piper",
    "doodle",
    "hubspot",
    "microsoft bookings",
    "pipedrive",
    "salesforce",
    "savvycal",
    "setmore",
    "simplybook",
    "youcanbook.me",
    "zoho",
    "zoom",
)
_INTEGRATION_RE = re.compile(
    r"(?<![a-z0-9])(" + "|".join(re.escape(p) for p in INTEGRATION_PRODUCTS) + r")(?![a-z0-9])"
)
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._+=-]{0,150}")


class UnsafeServerURL(ValueError):
    """The server address is not http(s) or points into a private network; the message says which."""


class DiscoveryFailed(ValueError):
    """No CalDAV service was found where the rep pointed; the message says what to try next."""


class ServerNotFound(DiscoveryFailed):
    """The server's name does not exist in DNS (a typo, most often); ``host`` is the name."""

    def __init__(self, host: str):
        super().__init__(f"{host} was not found: no such server name. Check the address for typos.")
        self.host = host


class RefusedAddress(UnsafeServerURL):
    """The server's name resolves to an address Termin does not reach (private, loopback, ...)."""


class ServerAddressRefused(AuthRevoked):
    """A stored account's server now resolves to a refused address: nothing can reach it until the rep
    reconnects it to a public server, so the account goes inactive (C11) like a revoked grant."""


# Answers of getaddrinfo that mean "no such name" rather than "DNS did not answer right now".
_NO_SUCH_NAME = {socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)}


# --- the SSRF guard -----------------------------------------------------------------------------


def _refusal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    for label, hit in (
        ("loopback", ip.is_loopback),
        ("private", ip.is_private),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("reserved", ip.is_reserved),
        ("unspecified", ip.is_unspecified),
        ("not publicly routable", not ip.is_global),
    ):
        if hit:
            return label
    return None


def check_server_url(url: str, allow_private: bool) -> None:
    """Raise UnsafeServerURL unless ``url`` is http(s) on a public address (any address, when allowed).

    Every address the host resolves to is checked, so a name with one public and one internal record is
    refused (``RefusedAddress``). A name that does not exist raises ``ServerNotFound``; a lookup that
    fails for another reason (no answer from DNS) raises ``socket.gaierror`` (an OSError): unreachable,
    not unsafe. The check cannot pin the address the connection then uses, so it narrows DNS rebinding
    to the moment between the two lookups rather than closing it.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UnsafeServerURL(f"{url!r} is not a valid server address ({error}).") from error
    if parts.scheme not in ("http", "https"):
        raise UnsafeServerURL(
            f"Only http:// and https:// server addresses are allowed, not {parts.scheme or 'none'!r}."
        )
    host = parts.hostname
    if not host:
        raise UnsafeServerURL(f"{url!r} names no server.")
    if allow_private:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(
                host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM
            )
        except socket.gaierror as error:
            if error.errno in _NO_SUCH_NAME:
                raise ServerNotFound(host) from error
            raise
        # An IPv6 answer may carry a zone ("fe80::1%eth0"), which ip_address() does not take.
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    for address in addresses:
        reason = _refusal(address)
        if reason:
            shown = host if str(address) == host else f"{host} ({address})"
            raise RefusedAddress(
                f"{shown} is a {reason} address; Termin only connects to CalDAV servers on the public "
                "internet."
            )


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or {"https": 443, "http": 80}.get(scheme)


class _Guard:
    """A niquests pre_request hook: checks every URL (redirects included) and counts requests.

    With an ``origin`` it also keeps the account's password on the account's server: a calendar URL
    on another host (a "shared calendar" link someone sent the rep, say) is refused before it is asked.
    """

    def __init__(self, allow_private: bool, origin: tuple | None = None):
        self.allow_private = allow_private
        self.origin = origin
        self.count = 0
        self.last_url: str | None = None

    def __call__(self, request, **_kwargs):
        check_server_url(request.url, self.allow_private)
        if self.origin is not None and _origin(request.url) != self.origin:
            scheme, host, port = self.origin
            raise UnsafeServerURL(
                f"{request.url} is not on this account's server ({scheme}://{host}:{port}); Termin sends "
                "the account's password nowhere else."
            )
        self.count += 1
        self.last_url = request.url


def _make_client(url: str, username: str, password: str, allow_private: bool, timeout: float):
    guard = _Guard(allow_private, _origin(url))
    # RFC 6764 lookups inside the library would connect before our guard could see them; discover()
    # does that part itself. Rate limits are answered by the caller, never slept on inside a request.
    client = caldav.DAVClient(
        url,
        username=username,
        password=password,
        timeout=timeout,
        enable_rfc6764=False,
        rate_limit_handle=False,
    )
    client.session.hooks["pre_request"].append(guard)
    return client, guard


# --- URLs and XML -------------------------------------------------------------------------------


def _canonical(url: str, *, collection: bool = False) -> str:
    """One spelling per resource: servers disagree on which characters to percent-encode."""
    parts = urlsplit(url)
    path = quote(unquote(parts.path), safe="/") or "/"
    if collection and not path.endswith("/"):
        path += "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


def _is_under(url: str, collection: str) -> bool:
    return url.startswith(collection) and url != collection


def _propfind_body(props: Iterable[str]) -> str:
    root = etree.Element(_clark(DAV, "propfind"), nsmap=NSMAP)
    holder = etree.SubElement(root, _clark(DAV, "prop"))
    for prop in props:
        etree.SubElement(holder, prop)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8").decode()


def _status_code(text: str | None) -> int | None:
    match = re.search(r"\s(\d{3})(\s|$)", text or "")
    return int(match.group(1)) if match else None


@dataclass
class _Entry:
    href: str
    status: int | None
    props: dict[str, etree._Element] = field(default_factory=dict)


def _multistatus(tree, base: str) -> list[_Entry]:
    if tree is None:
        return []
    entries = []
    for response in tree.iter(_clark(DAV, "response")):
        href = (response.findtext(HREF) or "").strip()
        if not href:
            continue
        entry = _Entry(urljoin(base, href), _status_code(response.findtext(_clark(DAV, "status"))))
        for propstat in response.findall(_clark(DAV, "propstat")):
            code = _status_code(propstat.findtext(_clark(DAV, "status")))
            prop = propstat.find(_clark(DAV, "prop"))
            if prop is not None and code is not None and 200 <= code < 300:
                for element in prop:
                    entry.props[element.tag] = element
        entries.append(entry)
    return entries


def _hrefs(element: etree._Element | None) -> list[str]:
    if element is None:
        return []
    return [(h.text or "").strip() for h in element.iter(HREF) if (h.text or "").strip()]


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def _utc_stamp(moment: datetime) -> str:
    return _as_utc(moment).strftime("%Y%m%dT%H%M%SZ")


# --- reading iCalendar --------------------------------------------------------------------------


def _as_utc(value: date | datetime) -> datetime:
    """UTC for a DATE-TIME; a DATE becomes its midnight UTC; floating times are read as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime.combine(value, time(), tzinfo=UTC)


def _email(value) -> str:
    text = str(value or "").strip()
    return text[7:] if text.lower().startswith("mailto:") else ""


def _values(component, name: str) -> list:
    value = component.get(name)
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


_RESPONSES = {"ACCEPTED": "accepted", "DECLINED": "declined", "TENTATIVE": "tentative"}
_STATUSES = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}


def _created_by(calendar, event) -> str | None:
    prodid = str(calendar.get("PRODID") or "")
    if "-//termin//" in prodid.lower() or event.get("X-TERMIN-UID") is not None:
        return "termin"
    if _INTEGRATION_RE.search(prodid.lower()):
        return "integration"
    return None


def _event(resource_id: str, calendar, component) -> RemoteEvent:
    dtstart = component.get("DTSTART")
    if dtstart is None:
        raise ValueError("VEVENT without DTSTART")
    raw_start = dtstart.dt
    all_day = not isinstance(raw_start, datetime)
    start = _as_utc(raw_start)
    if component.get("DTEND") is not None:
        end = _as_utc(component.get("DTEND").dt)
    elif component.get("DURATION") is not None:
        end = start + component.get("DURATION").dt
    else:
        # RFC 5545 3.6.1: a DATE start lasts the day, a DATE-TIME start takes no time.
        end = start + timedelta(days=1) if all_day else start
    end = max(end, start)  # an end before the start (seen in the wild) is read as no length at all
    recurrence_id = None
    if component.get("RECURRENCE-ID") is not None:
        original = component.get("RECURRENCE-ID").dt
        recurrence_id = (
            original.isoformat() if not isinstance(original, datetime) else _as_utc(original).isoformat()
        )
    recurrence = tuple(
        str(component.content_line(name, value))
        for name in ("RRULE", "RDATE", "EXDATE")
        for value in _values(component, name)
    )
    attendees = []
    for value in _values(component, "ATTENDEE"):
        email = _email(value)
        if email:
            params = getattr(value, "params", {})
            response = _RESPONSES.get(str(params.get("PARTSTAT", "")).upper(), "needsAction")
            attendees.append(Attendee(email=email, name=str(params.get("CN", "")), response=response))
    uid = str(component.get("UID") or "").strip()
    return RemoteEvent(
        id=resource_id,
        uid=uid or _uid_from_url(resource_id),
        start=start,
        end=end,
        summary=str(component.get("SUMMARY") or ""),
        status=_STATUSES.get(str(component.get("STATUS") or "").upper(), "confirmed"),
        all_day=all_day,
        transparent=str(component.get("TRANSP") or "").upper() == "TRANSPARENT",
        recurrence_id=recurrence_id,
        recurrence=recurrence,
        organizer_email=_email(component.get("ORGANIZER")),
        attendees=tuple(attendees),
        created_by=_created_by(calendar, component),
    )


def events_from_ics(resource_id: str, text: str) -> list[RemoteEvent]:
    """The VEVENTs of one calendar object resource; what cannot be read is logged and skipped."""
    try:
        calendar = icalendar.Calendar.from_ical(text)
    except Exception as error:  # icalendar raises several types for broken input
        log.warning("skipping unreadable calendar object %s: %s", resource_id, error)
        return []
    events = []
    for component in calendar.walk("VEVENT"):
        try:
            events.append(_event(resource_id, calendar, component))
        except Exception as error:  # one broken component must not hide the rest of the calendar
            log.warning("skipping unreadable VEVENT in %s: %s", resource_id, error)
    return events


def _uid_from_url(url: str) -> str:
    name = unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return name[:-4] if name.lower().endswith(".ics") else name


def _cancelled(resource_id: str, uid: str) -> RemoteEvent:
    return RemoteEvent(id=resource_id, uid=uid, start=NO_TIME, end=NO_TIME, status="cancelled")


def _merge(intervals: Iterable[tuple[datetime, datetime]]) -> list[Busy]:
    merged: list[list[datetime]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [Busy(start=s, end=e) for s, e in merged]


# --- writing iCalendar --------------------------------------------------------------------------


def _zone(name: str):
    try:
        return ZoneInfo(name) if name and name.upper() != "UTC" else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def draft_to_ics(draft: EventDraft, sequence: int = 0, uid: str | None = None) -> str:
    """The iCalendar object Termin PUTs for ``draft``."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", uid or draft.uid)
    event.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
    event.add("sequence", sequence)
    event.add("summary", draft.summary)
    if draft.all_day:
        event.add("dtstart", _as_utc(draft.start).date())
        event.add("dtend", max(_as_utc(draft.end).date(), _as_utc(draft.start).date() + timedelta(days=1)))
    else:
        zone = _zone(draft.time_zone)
        start, end = _as_utc(draft.start), _as_utc(draft.end)
        event.add("dtstart", start.astimezone(zone) if zone else start)
        event.add("dtend", end.astimezone(zone) if zone else end)
    if draft.description:
        event.add("description", draft.description)
    if draft.location:
        event.add("location", draft.location)
    event.add("status", "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("x-termin-uid", draft.uid)
    if draft.organizer_email:
        organizer = icalendar.vCalAddress(f"mailto:{draft.organizer_email}")
        # Termin sends its own iMIP invitations; SCHEDULE-AGENT=CLIENT keeps RFC 6638 servers from
        # mailing a second set on our PUT.
        organizer.params["SCHEDULE-AGENT"] = "CLIENT"
        event.add("organizer", organizer)
    partstats = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE"}
    for person in draft.attendees:
        attendee = icalendar.vCalAddress(f"mailto:{person.email}")
        if person.name:
            attendee.params["CN"] = person.name
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = partstats.get(person.response, "NEEDS-ACTION")
        attendee.params["RSVP"] = "TRUE"
        attendee.params["SCHEDULE-AGENT"] = "CLIENT"
        event.add("attendee", attendee)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical().decode()


def _resource_name(uid: str) -> str:
    # The same uid must always map to the same href, or a retried PUT could create a second copy.
    if _SAFE_NAME.fullmatch(uid):
        return f"{uid}.ics"
    return f"termin-{hashlib.sha256(uid.encode()).hexdigest()[:40]}.ics"


# --- errors -------------------------------------------------------------------------------------


def _status_error(
    status: int | None,
    what: str,
    *,
    calendar_id: str | None = None,
    preconditions: Sequence[str] = (),
    retry_after: float | None = None,
) -> ProviderError:
    if VALID_SYNC_TOKEN in preconditions:
        error: ProviderError = SyncStateExpired(
            f"The CalDAV server no longer accepts the saved sync token ({what}); a full sync is needed."
        )
    elif status == 401:
        error = AuthRevoked(
            "The CalDAV server refused the user name or password (HTTP 401). "
            "Reconnect the calendar with a current (app) password."
        )
    elif status in (403, 404, 410) and calendar_id:
        error = AccessLost(
            f"The calendar {calendar_id} is no longer available to this account (HTTP {status}): "
            "it was unshared or deleted.",
            calendar_id,
        )
    elif status == 429:
        error = RateLimited(f"The CalDAV server is rate limiting us (HTTP 429, {what}).", retry_after)
    elif status is not None and (status >= 500 or status == 408):
        error = TemporarilyUnavailable(f"The CalDAV server failed (HTTP {status}, {what}).", retry_after)
    else:
        error = ProviderError(f"The CalDAV server answered HTTP {status} ({what}).")
    error.status = status  # type: ignore[attr-defined]
    error.preconditions = tuple(preconditions)  # type: ignore[attr-defined]
    return error


def _typed(exc: BaseException, what: str, calendar_id: str | None = None) -> BaseException:
    """The ProviderError for a library or transport exception; anything unknown is returned as is."""
    if isinstance(exc, RefusedAddress):
        # The server is (now) at an address Termin refuses, which no retry mends: a stored account goes
        # inactive with this reason; the connect form shows it beside the server address.
        return ServerAddressRefused(str(exc))
    if isinstance(exc, ServerNotFound):
        return TemporarilyUnavailable(f"The CalDAV server's name does not resolve ({what}).")
    if isinstance(exc, ProviderError | UnsafeServerURL):
        return exc
    if isinstance(exc, caldav_error.RateLimitError):
        # The raw header through the one parser Google and Graph use (the library's reads no ``inf``).
        retry_after = parse_retry_after(exc.retry_after) if exc.retry_after else exc.retry_after_seconds
        return _status_error(exc.status or 429, what, retry_after=retry_after)
    if isinstance(exc, caldav_error.DAVError):
        return _status_error(exc.status, what, calendar_id=calendar_id, preconditions=exc.preconditions)
    if isinstance(exc, NotImplementedError):
        return ProviderError(f"The CalDAV server offers no authentication Termin supports ({exc}).")
    if isinstance(exc, etree.XMLSyntaxError):
        return ProviderError(f"The CalDAV server sent XML Termin cannot read ({what}).")
    if isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower():
        return TemporarilyUnavailable(f"The CalDAV server did not answer in time ({what}).")
    if isinstance(exc, socket.gaierror):
        return TemporarilyUnavailable(f"The CalDAV server's name does not resolve ({what}).")
    if isinstance(exc, OSError):  # niquests' RequestException is an OSError too
        return TemporarilyUnavailable(f"Could not connect to the CalDAV server ({what}): {exc}")
    return exc


# --- sync state ---------------------------------------------------------------------------------


@dataclass
class _State:
    """The cursor handed out as ``next_state``: compact JSON.

    ``mode`` "sync" holds the RFC 6578 token; "ctag" (servers without sync-collection) holds the
    collection's ctag and a short digest of each resource's ETag. ``uids`` maps resource names to UIDs
    only where the name does not already say it (we PUT ``<uid>.ics``), because a deletion reports
    nothing but the href.
    """

    mode: str
    token: str | None = None
    ctag: str | None = None
    etags: dict[str, str] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)

    def dump(self) -> str:
        data: dict = {"v": 1, "m": self.mode}
        if self.mode == "sync":
            data["t"] = self.token
        else:
            data["c"] = self.ctag
            data["e"] = self.etags
        if self.uids:
            data["u"] = self.uids
        return json.dumps(data, separators=(",", ":"), sort_keys=True)

    @classmethod
    def load(cls, text: str) -> _State:
        try:
            data = json.loads(text)
            if data.get("v") != 1 or data["m"] not in ("sync", "ctag"):
                raise ValueError("unknown version or mode")
            return cls(
                mode=data["m"],
                token=data.get("t"),
                ctag=data.get("c"),
                etags=dict(data.get("e") or {}),
                uids=dict(data.get("u") or {}),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise SyncStateExpired(f"The saved CalDAV sync state cannot be read ({error}).") from error


def _etag_digest(etag: str) -> str:
    return hashlib.blake2b(etag.encode(), digest_size=8).hexdigest()


# --- the provider -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Principal:
    url: str
    homes: tuple[str, ...]
    addresses: tuple[str, ...]
    name: str
    inbox: str | None


CALENDAR_PROPS = (
    RESOURCETYPE,
    DISPLAYNAME,
    PRIVILEGE_SET,
    OWNER,
    SUPPORTED_COMPONENTS,
    CALENDAR_TIMEZONE,
    CALENDAR_TIMEZONE_ID,
    CALENDAR_ORDER,
)
PRINCIPAL_PROPS = (
    CURRENT_USER_PRINCIPAL,
    CALENDAR_HOME_SET,
    CALENDAR_USER_ADDRESS_SET,
    DISPLAYNAME,
    SCHEDULE_INBOX_URL,
)


class CalDAVProvider:
    """A CalDAV account: a server URL, a user name and an (app) password."""

    name = "caldav"

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        *,
        allow_private: bool = False,
        timeout: float = 20,
        extra_calendar_urls: Sequence[str] = (),
    ):
        self.url = _canonical(url, collection=True)
        self.username = username
        self.allow_private = allow_private
        self.extra_calendar_urls = tuple(_canonical(u, collection=True) for u in extra_calendar_urls if u)
        self._client, self._guard = _make_client(self.url, username, password, allow_private, timeout)
        self._principal: _Principal | None = None
        self._no_freebusy_report: set[str] = set()

    def close(self) -> None:
        """Close pooled connections."""
        self._client.close()

    def __enter__(self) -> CalDAVProvider:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    @property
    def request_count(self) -> int:
        """HTTP requests sent so far, authentication retries and redirects included."""
        return self._guard.count

    # -- plumbing --

    def _own(self, url: str, *, collection: bool = False) -> str:
        """``url`` canonical, refused before any request when it is not on the account's server."""
        canonical = _canonical(url, collection=collection)
        if _origin(canonical) != _origin(self.url):
            raise UnsafeServerURL(
                f"{url} is not on this account's server ({self.url}); Termin sends the account's password "
                "nowhere else."
            )
        return canonical

    @contextmanager
    def _call(self, what: str, calendar_id: str | None = None) -> Iterator[None]:
        # Providers are built per job and never closed by their callers: each call leaves no open
        # sockets behind, at the price of one new connection per call.
        try:
            yield
        except Exception as exc:
            typed = _typed(exc, what, calendar_id)
            if typed is exc:
                raise
            raise typed from exc
        finally:
            self._client.session.close()

    def _send(
        self,
        method: str,
        url: str,
        body: str = "",
        headers: dict | None = None,
        *,
        accept: Sequence[int] = (200, 201, 204, 207),
        calendar_id: str | None = None,
    ):
        what = f"{method} {url}"
        try:
            response = self._client.request(url, method, body, headers)
        except Exception as exc:
            typed = _typed(exc, what, calendar_id)
            if typed is exc:
                raise
            raise typed from exc
        if response.status in accept:
            return response
        raw = response._raw if isinstance(response._raw, bytes | str) else None
        raise _status_error(
            response.status,
            what,
            calendar_id=calendar_id,
            preconditions=caldav_error.parse_preconditions(raw),
        )

    def _propfind(
        self, url: str, props: Sequence[str], depth: int = 0, calendar_id: str | None = None
    ) -> list[_Entry]:
        response = self._send(
            "PROPFIND",
            url,
            _propfind_body(props),
            {"Depth": str(depth)},
            accept=(207,),
            calendar_id=calendar_id,
        )
        return _multistatus(response.tree, url)

    def _propfind_self(self, url: str, props: Sequence[str], calendar_id: str | None = None) -> dict:
        entries = self._propfind(url, props, 0, calendar_id)
        wanted = _canonical(url, collection=True)
        for entry in entries:
            if _canonical(entry.href, collection=True) == wanted:
                return entry.props
        return entries[0].props if entries else {}

    def _principal_info(self) -> _Principal:
        if self._principal is None:
            props = self._propfind_self(self.url, PRINCIPAL_PROPS)
            found = _hrefs(props.get(CURRENT_USER_PRINCIPAL))
            principal = _canonical(urljoin(self.url, found[0]), collection=True) if found else self.url
            if principal != self.url or CALENDAR_HOME_SET not in props:
                props = self._propfind_self(principal, PRINCIPAL_PROPS)
            homes = tuple(
                _canonical(urljoin(principal, h), collection=True)
                for h in _hrefs(props.get(CALENDAR_HOME_SET))
            )
            if not homes:
                raise ProviderError(
                    f"The CalDAV server names no calendar home for {principal} (calendar-home-set): "
                    "is this a calendar (CalDAV) address?"
                )
            inbox = _hrefs(props.get(SCHEDULE_INBOX_URL))
            self._principal = _Principal(
                url=principal,
                homes=homes,
                addresses=tuple(_hrefs(props.get(CALENDAR_USER_ADDRESS_SET))),
                name=_text(props.get(DISPLAYNAME)),
                inbox=_canonical(urljoin(principal, inbox[0]), collection=True) if inbox else None,
            )
        return self._principal

    def _default_calendar(self, principal: _Principal) -> str | None:
        if not principal.inbox:
            return None
        try:
            props = self._propfind_self(principal.inbox, (SCHEDULE_DEFAULT_CALENDAR_URL,))
        except (AccessLost, ProviderError) as error:
            # Only the account-wide failures matter here; an unreadable inbox just means no default.
            if isinstance(error, AuthRevoked | RateLimited | TemporarilyUnavailable):
                raise
            return None
        found = _hrefs(props.get(SCHEDULE_DEFAULT_CALENDAR_URL))
        return _canonical(urljoin(principal.inbox, found[0]), collection=True) if found else None

    # -- account and calendars --

    def account(self) -> Account:
        """The principal behind the credentials; email from its calendar-user-address-set."""
        with self._call("reading the account"):
            principal = self._principal_info()
        mailto = next((_email(a) for a in principal.addresses if _email(a)), "")
        return Account(id=principal.url, email=mailto or self.username, name=principal.name)

    def list_calendars(self) -> list[RemoteCalendar]:
        """Event calendars in the home set, then the shared URLs the rep added that still answer.

        The primary calendar is the server's schedule-default-calendar-URL (RFC 6638) when it names
        one; otherwise the owned calendar with the lowest Apple calendar-order, then the first by URL.
        """
        with self._call("listing calendars"):
            principal = self._principal_info()
            found: dict[str, tuple[dict, bool]] = {}
            for home in principal.homes:
                for entry in self._propfind(home, CALENDAR_PROPS, depth=1):
                    url = _canonical(entry.href, collection=True)
                    if url != home and _is_calendar(entry.props):
                        found.setdefault(url, (entry.props, True))
            for url in self.extra_calendar_urls:
                if url in found:
                    continue
                if _origin(url) != _origin(self.url):
                    log.warning("shared calendar %s is not on the account's server; not asking it", url)
                    continue
                try:
                    props = self._propfind_self(url, CALENDAR_PROPS, calendar_id=url)
                except AccessLost as error:
                    log.info("shared calendar %s is not available: %s", url, error.reason)
                    continue
                if _is_calendar(props):
                    found[url] = (props, False)
            default = self._default_calendar(principal)
        calendars = []
        for url, (props, own_home) in found.items():
            access = _access(props, own_home, principal.url, url)
            if access is not None:
                calendars.append((url, props, access))
        owned = [(url, props) for url, props, access in calendars if access == "owner"]
        primary = default if default in {url for url, _ in owned} else None
        if primary is None and owned:
            primary = min(owned, key=lambda item: (_order(item[1]), item[0]))[0]
        return [
            RemoteCalendar(
                id=url,
                name=_text(props.get(DISPLAYNAME)) or unquote(url.rstrip("/").rsplit("/", 1)[-1]),
                access=access,
                is_primary=url == primary,
                time_zone=_time_zone(props),
            )
            for url, props, access in calendars
        ]

    def create_calendar(self, name: str) -> RemoteCalendar:
        """MKCALENDAR under the account's first calendar home."""
        with self._call("creating a calendar"):
            home = self._principal_info().homes[0]
            slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "calendar"
            url = f"{home}{quote(f'termin-{slug}-{secrets.token_hex(4)}')}/"
            root = etree.Element(_clark(CALDAV, "mkcalendar"), nsmap=NSMAP)
            prop = etree.SubElement(etree.SubElement(root, _clark(DAV, "set")), _clark(DAV, "prop"))
            etree.SubElement(prop, DISPLAYNAME).text = name
            body = etree.tostring(root, xml_declaration=True, encoding="utf-8").decode()
            self._send("MKCALENDAR", url, body, accept=(200, 201))
        return RemoteCalendar(id=url, name=name, access="owner", is_primary=False)

    # -- changes --

    def changes(self, calendar_id: str, state: str | None) -> Changes:
        """sync-collection (RFC 6578) when the server has it, else ctag + ETag comparison."""
        url = self._own(calendar_id, collection=True)
        before = self._guard.count
        with self._call(f"syncing {url}", url):
            previous = _State.load(state) if state else None
            if previous is None or previous.mode == "sync":
                result = self._changes_by_token(url, previous)
                if result is None:
                    result = self._changes_by_ctag(url, None)
            else:
                result = self._changes_by_ctag(url, previous)
        events, next_state = result
        return Changes(
            events=events,
            next_state=next_state.dump(),
            full=previous is None,
            requests=self._guard.count - before,
        )

    def _changes_by_token(self, url: str, previous: _State | None) -> tuple[list[RemoteEvent], _State] | None:
        calendar = caldav.Calendar(client=self._client, url=url)
        try:
            found = calendar.get_objects_by_sync_token(
                previous.token if previous else None, load_objects=False, disable_fallback=True
            )
        except caldav_error.DAVError as exc:
            status = exc.status
            if (
                VALID_SYNC_TOKEN in exc.preconditions
                or isinstance(exc, caldav_error.RateLimitError)
                or status in (401, 404, 410, 429)
                or (status is not None and status >= 500 and status != 501)
            ):
                raise _typed(exc, f"sync-collection on {url}", url) from exc
            # Refusals that could mean "no RFC 6578 here" or "this token is bad" (403 without a
            # precondition, 400, 405, 409, 412, 501): if the calendar itself still answers, it was the
            # report or the token, not our access.
            props = self._propfind_self(url, (RESOURCETYPE, PRIVILEGE_SET), calendar_id=url)
            if _access(props, False, "", url) == "freebusy":
                refusal = f"{url} is shared as free/busy only: its events cannot be listed."
                raise ProviderError(refusal) from exc
            if previous is not None:
                raise SyncStateExpired(
                    f"The CalDAV server refused the saved sync token for {url} (HTTP {status})."
                ) from exc
            log.info("%s does not do sync-collection (HTTP %s); comparing ETags instead", url, status)
            return None
        if not found.sync_token:
            if previous is not None:
                raise SyncStateExpired(f"The CalDAV server sent no new sync token for {url}.")
            log.info("%s answered sync-collection without a token; comparing ETags instead", url)
            return None
        deleted = {_canonical(str(u)) for u in found.deleted_urls}
        listed = [_canonical(str(o.url)) for o in found]
        changed = [u for u in dict.fromkeys(listed) if u not in deleted and _is_under(u, url)]
        uids = dict(previous.uids) if previous else {}
        events = self._load(url, changed, uids, deleted if previous else set())
        if previous is not None:
            events.extend(self._deletions(url, sorted(deleted), uids))
        else:
            for gone in deleted:
                uids.pop(gone[len(url) :], None)
        return events, _State("sync", token=found.sync_token, uids=uids)

    def _changes_by_ctag(self, url: str, previous: _State | None) -> tuple[list[RemoteEvent], _State]:
        ctag = _text(self._propfind_self(url, (GETCTAG,), calendar_id=url).get(GETCTAG)) or None
        if previous is not None and ctag is not None and previous.ctag == ctag:
            return [], previous
        current: dict[str, str] = {}
        for entry in self._propfind(url, (RESOURCETYPE, GETETAG), depth=1, calendar_id=url):
            member = _canonical(entry.href)
            if _is_under(member, url) and not member.endswith("/") and entry.status in (None, 200):
                current[member[len(url) :]] = _etag_digest(_text(entry.props.get(GETETAG)))
        old = previous.etags if previous else {}
        changed = [url + name for name, digest in current.items() if old.get(name) != digest]
        deleted = [url + name for name in old if name not in current]
        uids = dict(previous.uids) if previous else {}
        vanished: set[str] = set()
        events = self._load(url, changed, uids, vanished)
        events.extend(self._deletions(url, sorted(deleted) + sorted(vanished), uids))
        for gone in vanished:
            current.pop(gone[len(url) :], None)
        return events, _State("ctag", ctag=ctag, etags=current, uids=uids)

    def _deletions(self, url: str, resources: Iterable[str], uids: dict[str, str]) -> list[RemoteEvent]:
        events = []
        for resource in resources:
            name = resource[len(url) :]
            events.append(_cancelled(resource, uids.pop(name, None) or _uid_from_url(resource)))
        return events

    def _load(
        self, url: str, resources: Sequence[str], uids: dict[str, str], vanished: set[str]
    ) -> list[RemoteEvent]:
        """Fetch ``resources`` with calendar-multiget; ones gone meanwhile are added to ``vanished``."""
        events: list[RemoteEvent] = []
        for offset in range(0, len(resources), MULTIGET_BATCH):
            batch = resources[offset : offset + MULTIGET_BATCH]
            data = self._multiget(url, batch)
            for resource in batch:
                text = data.get(resource)
                name = resource[len(url) :]
                if text is None:
                    vanished.add(resource)
                    continue
                parsed = events_from_ics(resource, text)
                if parsed and parsed[0].uid != _uid_from_url(resource):
                    uids[name] = parsed[0].uid
                else:
                    uids.pop(name, None)
                events.extend(parsed)
        return events

    def _multiget(self, url: str, resources: Sequence[str]) -> dict[str, str]:
        root = etree.Element(_clark(CALDAV, "calendar-multiget"), nsmap=NSMAP)
        prop = etree.SubElement(root, _clark(DAV, "prop"))
        etree.SubElement(prop, GETETAG)
        etree.SubElement(prop, CALENDAR_DATA)
        for resource in resources:
            etree.SubElement(root, HREF).text = urlsplit(resource).path
        body = etree.tostring(root, xml_declaration=True, encoding="utf-8").decode()
        # RFC 4791 7.9: no Depth header on calendar-multiget.
        response = self._send("REPORT", url, body, {}, accept=(207,), calendar_id=url)
        found = {}
        for entry in _multistatus(response.tree, url):
            data = entry.props.get(CALENDAR_DATA)
            if data is not None and data.text:
                found[_canonical(entry.href)] = data.text
        return found

    # -- free/busy --

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, list[Busy]]:
        """free-busy-query REPORT where the server has it, else a time-range calendar-query."""
        result = {}
        for calendar_id in calendar_ids:
            url = self._own(calendar_id, collection=True)
            with self._call(f"free/busy of {url}", url):
                intervals = None
                if url not in self._no_freebusy_report:
                    intervals = self._busy_by_report(url, start, end)
                if intervals is None:
                    intervals = self._busy_by_query(url, start, end)
            result[calendar_id] = _merge(
                (max(s, _as_utc(start)), min(e, _as_utc(end))) for s, e in intervals if s < end and e > start
            )
        return result

    def _busy_by_report(self, url: str, start: datetime, end: datetime) -> list | None:
        root = etree.Element(_clark(CALDAV, "free-busy-query"), nsmap=NSMAP)
        etree.SubElement(root, _clark(CALDAV, "time-range"), start=_utc_stamp(start), end=_utc_stamp(end))
        body = etree.tostring(root, xml_declaration=True, encoding="utf-8").decode()
        try:
            response = self._send("REPORT", url, body, {"Depth": "1"}, accept=(200,), calendar_id=url)
        except ProviderError as error:
            status = getattr(error, "status", None)
            if status in (207, 400, 403, 405, 415, 422, 501):
                # 403 may be "not supported" or "not allowed": the calendar-query then tells.
                self._no_freebusy_report.add(url)
                return None
            raise
        try:
            calendar = icalendar.Calendar.from_ical(response.raw)
        except Exception:  # an answer that is not iCalendar: treat the report as unsupported
            self._no_freebusy_report.add(url)
            return None
        intervals = []
        for component in calendar.walk("VFREEBUSY"):
            for value in _values(component, "FREEBUSY"):
                if str(value.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                    continue
                intervals.extend(_periods(value))
        return intervals

    def _busy_by_query(self, url: str, start: datetime, end: datetime) -> list:
        calendar = caldav.Calendar(client=self._client, url=url)
        try:
            found = calendar.search(start=_as_utc(start), end=_as_utc(end), event=True, expand=True)
        except caldav_error.DAVError as exc:
            raise _typed(exc, f"calendar-query on {url}", url) from exc
        intervals = []
        for item in found:
            for event in events_from_ics(_canonical(str(item.url)), item.data or ""):
                if event.transparent or event.status == "cancelled" or event.end <= event.start:
                    continue
                intervals.append((event.start, event.end))
        return intervals

    # -- writing --

    def _event_url(self, calendar_url: str, uid: str) -> str:
        return calendar_url + quote(_resource_name(uid), safe="")

    def create_event(self, calendar_id: str, draft: EventDraft) -> str:
        """PUT ``<calendar>/<uid>.ics`` with If-None-Match: a retry finds it there and changes nothing."""
        calendar_url = self._own(calendar_id, collection=True)
        url = self._event_url(calendar_url, draft.uid)
        headers = {"Content-Type": ICS_CONTENT_TYPE, "If-None-Match": "*"}
        with self._call(f"creating {url}", calendar_url):
            try:
                self._send("PUT", url, draft_to_ics(draft, draft.sequence), headers, calendar_id=calendar_url)
            except ProviderError as error:
                status = getattr(error, "status", None)
                if status == 412:
                    return url
                if UID_CONFLICT & set(getattr(error, "preconditions", ())):
                    existing = self._find_by_uid(calendar_url, draft.uid)
                    if existing:
                        return existing
                raise
        return url

    def _find_by_uid(self, calendar_url: str, uid: str) -> str | None:
        root = etree.Element(_clark(CALDAV, "calendar-query"), nsmap=NSMAP)
        etree.SubElement(etree.SubElement(root, _clark(DAV, "prop")), GETETAG)
        calendar_filter = etree.SubElement(root, _clark(CALDAV, "filter"))
        vcalendar = etree.SubElement(calendar_filter, _clark(CALDAV, "comp-filter"), name="VCALENDAR")
        vevent = etree.SubElement(vcalendar, _clark(CALDAV, "comp-filter"), name="VEVENT")
        prop_filter = etree.SubElement(vevent, _clark(CALDAV, "prop-filter"), name="UID")
        etree.SubElement(prop_filter, _clark(CALDAV, "text-match"), collation="i;octet").text = uid
        body = etree.tostring(root, xml_declaration=True, encoding="utf-8").decode()
        response = self._send(
            "REPORT", calendar_url, body, {"Depth": "1"}, accept=(207,), calendar_id=calendar_url
        )
        for entry in _multistatus(response.tree, calendar_url):
            member = _canonical(entry.href)
            if _is_under(member, calendar_url):
                return member
        return None

    def invitation_uid(self, calendar_id: str, event_id: str, uid: str) -> str:
        """The event keeps the uid it was written with (and Termin, not the server, sends invitations)."""
        return uid

    def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> None:
        """PUT the new version over the old one, SEQUENCE past both the server's copy and the draft's, guarded
        by the ETag we read."""
        calendar_url = self._own(calendar_id, collection=True)
        url = self._own(event_id)
        with self._call(f"updating {url}", calendar_url):
            for attempt in range(2):
                try:
                    current = self._send("GET", url, accept=(200,), calendar_id=calendar_url)
                except AccessLost:
                    self._propfind(calendar_url, (RESOURCETYPE,), 0, calendar_id=calendar_url)
                    raise ProviderError(f"The event {url} no longer exists on the CalDAV server.") from None
                sequence, uid = 0, draft.uid
                for event in _vevents(current.raw):
                    with suppress(ValueError, TypeError):  # a garbled SEQUENCE restarts the count
                        sequence = max(sequence, int(event.get("SEQUENCE") or 0))
                    uid = str(event.get("UID") or uid)
                headers = {"Content-Type": ICS_CONTENT_TYPE}
                etag = current.headers.get("ETag")
                if etag:
                    headers["If-Match"] = etag
                try:
                    # Past the server's copy, and never behind what the attendees were sent.
                    version = max(sequence + 1, draft.sequence)
                    self._send(
                        "PUT", url, draft_to_ics(draft, version, uid), headers, calendar_id=calendar_url
                    )
                    return
                except ProviderError as error:
                    # Someone changed it between our GET and PUT: read it again, once.
                    if getattr(error, "status", None) != 412 or attempt:
                        raise

    def cancel_event(self, calendar_id: str, event_id: str, *, notify: bool = True) -> None:
        """DELETE the resource; already gone is fine. Invitations are Termin's own iMIP, not ours."""
        calendar_url = self._own(calendar_id, collection=True)
        url = self._own(event_id)
        with self._call(f"deleting {url}", calendar_url):
            self._send("DELETE", url, accept=(200, 202, 204, 404, 410), calendar_id=calendar_url)


def _vevents(text: str) -> list:
    try:
        return list(icalendar.Calendar.from_ical(text).walk("VEVENT"))
    except Exception:  # an unreadable old version is simply replaced
        return []


def _periods(value) -> list[tuple[datetime, datetime]]:
    periods = []
    for part in value.to_ical().decode().split(","):
        first, _, second = part.partition("/")
        try:
            start = _as_utc(icalendar.vDatetime.from_ical(first))
            if second.upper().startswith(("P", "+P", "-P")):
                end = start + icalendar.vDuration.from_ical(second)
            else:
                end = _as_utc(icalendar.vDatetime.from_ical(second))
        except ValueError:
            log.warning("skipping unreadable FREEBUSY period %r", part)
            continue
        periods.append((start, end))
    return periods


def _is_calendar(props: dict) -> bool:
    kinds = props.get(RESOURCETYPE)
    if kinds is None or kinds.find(_clark(CALDAV, "calendar")) is None:
        return False
    components = props.get(SUPPORTED_COMPONENTS)
    if components is None or not len(components):
        return True
    return any((c.get("name") or "").upper() == "VEVENT" for c in components)


def _access(props: dict, own_home: bool, principal: str, url: str) -> str | None:
    """Owner/writer/reader/freebusy from DAV:current-user-privilege-set (RFC 3744)."""
    privileges = props.get(PRIVILEGE_SET)
    owner = _hrefs(props.get(OWNER))
    owned = own_home and (not owner or _canonical(urljoin(url, owner[0]), collection=True) == principal)
    if privileges is None:
        # No privilege report: what is in our own home is ours; a shared URL is taken as read-only.
        return "owner" if owned else "reader"
    held = {child.tag for privilege in privileges for child in privilege}
    if held & WRITE_PRIVILEGES:
        return "owner" if owned else "writer"
    if held & READ_PRIVILEGES:
        return "reader"
    if FREEBUSY_PRIVILEGE in held:
        return "freebusy"
    return None


def _order(props: dict) -> float:
    try:
        return float(_text(props.get(CALENDAR_ORDER)))
    except ValueError:
        return float("inf")


def _time_zone(props: dict) -> str | None:
    named = _text(props.get(CALENDAR_TIMEZONE_ID))
    if named:
        return named
    match = re.search(r"^TZID:(.+?)\s*$", _text(props.get(CALENDAR_TIMEZONE)), re.MULTILINE)
    return match.group(1) if match else None


# --- discovery (RFC 6764) -----------------------------------------------------------------------


def _candidates(text: str, allow_private: bool, timeout: float) -> list[tuple[str, str]]:
    """(scheme://host[:port], path) pairs to try, best first."""
    if "://" in text:
        parts = urlsplit(text)
        return [(f"{parts.scheme}://{parts.netloc}", parts.path)]
    host_port, _, path = text.partition("/")
    if "@" in host_port:  # an email address: its domain is where the service is announced
        host_port = host_port.rsplit("@", 1)[1]
    path = f"/{path}" if path else ""
    found = []
    host = urlsplit(f"//{host_port}").hostname or host_port
    if "." in host and ":" not in host_port and not _is_ip(host):
        found.extend(_srv_candidates(host, timeout))
    found.append((f"https://{host_port}", path))
    # A typed bare host is never silently downgraded to plain HTTP on the internet, where a network
    # attacker could force it; inside an allowed private network (development, tests) it may.
    if allow_private:
        found.append((f"http://{host_port}", path))
    return found


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _srv_candidates(domain: str, timeout: float) -> list[tuple[str, str]]:
    """RFC 6764 section 3: _caldavs._tcp SRV records, with a TXT path when the domain gives one."""
    import dns.exception
    import dns.resolver

    resolver = dns.resolver.Resolver()
    resolver.lifetime = min(timeout, 5)
    try:
        answers = sorted(
            resolver.resolve(f"_caldavs._tcp.{domain}", "SRV"), key=lambda r: (r.priority, -r.weight)
        )
    except dns.exception.DNSException:
        return []
    path = ""
    try:
        for record in resolver.resolve(f"_caldavs._tcp.{domain}", "TXT"):
            for chunk in record.strings:
                text = chunk.decode(errors="replace")
                if text.startswith("path="):
                    path = text[5:]
    except dns.exception.DNSException:
        pass
    found = []
    for record in answers:
        target = str(record.target).rstrip(".")
        if target:  # "." means the service is decidedly not offered there
            found.append((f"https://{target}:{record.port}", path))
    return found


def _redirect_target(url: str, allow_private: bool, timeout: float) -> str:
    """Where ``url`` leads (RFC 6764 section 5), asked without credentials and one hop at a time."""
    guard = _Guard(allow_private)
    body = _propfind_body((CURRENT_USER_PRINCIPAL,))
    headers = {"Depth": "0", "Content-Type": "application/xml; charset=utf-8"}
    with http_sync.requests.Session() as session:
        session.hooks["pre_request"].append(guard)
        for _hop in range(MAX_REDIRECTS):
            response = session.request(
                "PROPFIND", url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            )
            location = response.headers.get("Location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                return url
            url = urljoin(url, location)
    return url


def _principal_at(url: str, username: str, password: str, allow_private: bool, timeout: float) -> str | None:
    """The principal URL that ``url`` names, or None when no CalDAV answers there."""
    client, guard = _make_client(url, username, password, allow_private, timeout)
    try:
        body = _propfind_body((CURRENT_USER_PRINCIPAL, CALENDAR_HOME_SET, RESOURCETYPE))
        response = client.request(url, "PROPFIND", body, {"Depth": "0"})
        if response.status == 429 or response.status >= 500:
            raise _status_error(response.status, f"PROPFIND {url}")
        if response.status != 207 or response.tree is None:
            return None
        final = guard.last_url or url
        for entry in _multistatus(response.tree, final):
            found = _hrefs(entry.props.get(CURRENT_USER_PRINCIPAL))
            if found:
                principal = _canonical(urljoin(final, found[0]), collection=True)
                if CALENDAR_HOME_SET in entry.props and _canonical(entry.href, collection=True) == principal:
                    return principal
                again = client.request(principal, "PROPFIND", body, {"Depth": "0"})
                homes = again.status == 207 and any(
                    CALENDAR_HOME_SET in e.props for e in _multistatus(again.tree, principal)
                )
                return principal if homes else None
            if CALENDAR_HOME_SET in entry.props:
                return _canonical(entry.href, collection=True)
        return None
    finally:
        client.close()


NAME_DOES_NOT_RESOLVE = "the name does not resolve"


def _reason(exc: BaseException) -> str:
    name = type(exc).__name__.lower()
    text = str(exc).lower()
    if isinstance(exc, socket.gaierror) or "name or service not known" in text or "resolve" in text:
        return NAME_DOES_NOT_RESOLVE
    if "timeout" in name or "timed out" in text:
        return "the connection timed out"
    if "ssl" in name or "certificate" in text or "ssl" in text:
        return "no valid HTTPS (TLS) answer"
    if "refused" in text:
        return "the connection was refused"
    return "the connection failed"


def discover(
    url_or_host: str, username: str, password: str, allow_private: bool = False, timeout: float = 20
) -> str:
    """Find the CalDAV principal from a bare host, an email domain or a URL; returns the URL to store.

    RFC 6764: SRV records for a bare domain, then ``/.well-known/caldav`` (redirects followed), then the
    given path or the root, each asked for its current-user-principal. Raises DiscoveryFailed with
    advice (``ServerNotFound`` when no name exists), AuthRevoked for a refused password, UnsafeServerURL
    for a forbidden address.
    """
    text = (url_or_host or "").strip()
    if not text:
        raise DiscoveryFailed("Enter the CalDAV server's address, for example caldav.example.com.")
    unreachable: list[str] = []
    not_found: list[str] = []
    looked: list[str] = []
    candidates = _candidates(text, allow_private, timeout)
    for base, path in candidates:
        try:
            check_server_url(base, allow_private)
        except ServerNotFound as exc:
            not_found.append(exc.host)
            continue
        except OSError as exc:  # DNS did not answer; UnsafeServerURL is no OSError and goes up
            unreachable.append(f"{urlsplit(base).netloc} ({_reason(exc)})")
            continue
        probes = [base + path] if path.strip("/") else []
        probes += [f"{base}/.well-known/caldav", f"{base}/"]
        try:
            for probe in dict.fromkeys(probes):
                looked.append(probe)
                target = _redirect_target(probe, allow_private, timeout)
                try:
                    principal = _principal_at(target, username, password, allow_private, timeout)
                except caldav_error.AuthorizationError as exc:
                    if exc.status == 401:
                        raise AuthRevoked(
                            f"{urlsplit(target).netloc} refused the user name or password. Check them; many "
                            "providers need an app password for calendar apps."
                        ) from exc
                    continue
                except caldav_error.RateLimitError as exc:
                    raise _typed(exc, f"PROPFIND {probe}") from exc
                except etree.XMLSyntaxError:
                    continue
                if principal:
                    return principal
        except OSError as exc:  # niquests' errors are OSErrors; so is a name that does not resolve
            if _reason(exc) == NAME_DOES_NOT_RESOLVE:
                not_found.append(urlsplit(base).hostname or base)
            else:
                unreachable.append(f"{urlsplit(base).netloc} ({_reason(exc)})")
    if not_found and len(not_found) == len(candidates):
        raise ServerNotFound(not_found[0])
    if len(unreachable) + len(not_found) == len(candidates):
        unreachable += [f"{host} ({NAME_DOES_NOT_RESOLVE})" for host in not_found]
        raise DiscoveryFailed(
            f"Could not connect to {', '.join(dict.fromkeys(unreachable))}. Check the server address and "
            "port, or try again later if the server is down."
        )
    raise DiscoveryFailed(
        f"No CalDAV calendar service answered at {text} (tried {', '.join(looked) or 'nothing'}). "
        "Enter the full CalDAV URL from your provider's help pages, e.g. https://caldav.example.com/dav/."
    )
