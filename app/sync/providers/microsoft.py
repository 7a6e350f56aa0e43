"""Microsoft 365 / Outlook calendars through Microsoft Graph v1.0.

The ``requests.Session`` handed in is already authenticated (a bearer token that the OAuth layer keeps
fresh); this module only speaks Graph. Every request asks for ``Prefer: outlook.timezone="UTC"`` so
times come back in UTC whatever the mailbox's zone.

Decisions, each tied to what Graph documents:

Calendar access (``list_calendars``). Graph shows a sharee no role: ``calendarPermissions`` is empty
for a sharee, and ``canViewPrivateItems`` is false for every non-delegate sharee. So:

* ``canShare`` (only the creator can share) or ``isDefaultCalendar`` → "owner";
* else ``canEdit`` → "writer" (write sharees and delegates);
* else the calendar is read-only, and one probe decides between "reader" and "freebusy": a
  ``calendarView`` of one day (``$top=1``). A calendar that ``/me/calendars`` lists but whose items
  answer 403 gives no item reads, which is what a ``freeBusyRead`` share means; 200 → "reader".
  This costs one request per read-only calendar per listing. That Graph answers 403 there (rather than
  events stripped of details) is our reading of the permission model, not a documented promise: check
  it against a real tenant before relying on C9 for Microsoft accounts.

Incremental sync (``changes``). ``GET /me/calendars/{id}/calendarView/delta`` over a fixed window of
``WINDOW_PAST`` (30 days) back to ``WINDOW_AHEAD`` (365 days) ahead of ``clock()`` at the full sync;
the window is encoded in the delta link, so it moves only when a full sync starts over.
``next_state`` is the whole ``@odata.deltaLink``. ``@removed`` entries (deleted, or moved out of the
window) come back as cancelled events with only the id known: ``uid`` is "" and start/end are
``UNKNOWN_TIME``, so match removals by id. A 410 (``syncStateNotFound``, ``resyncRequired``…) raises
SyncStateExpired.

calendarView expands series: delta returns occurrences and exceptions, never the series master. Each
carries ``recurrence_id`` (its ``originalStart``), and its uid is the master's ``iCalUId`` (an
occurrence's own ``iCalUId`` differs per occurrence), fetched once per series with
``GET .../events/{seriesMasterId}``. Masters are not emitted, so busy time is never counted twice.

Ours and integrations (``created_by``). Delta accepts no ``$expand``, so our marker cannot ride along.
``transactionId`` is documented as "only returned … if an app has set it", which makes it the cue:

* an event without ``transactionId`` was made by a person (or an app that sets none): None;
* with one, we read our single-value extended property (``TERMIN_UID_PROPERTY``): present → "termin"
  and its value is the uid we chose; absent → "integration" (another app, through Graph).

The lookup is one ``GET .../events/{id}?$expand=…`` per candidate when there are at most
``LOOKUP_BY_LISTING_ABOVE``, else one ``calendarView`` listing of the window with the same ``$expand``
(and a GET for any candidate the listing missed).

Writing. ``create_event`` posts to ``/me/calendars/{id}/events`` with a ``transactionId`` derived from the
draft's uid (a UUID5, GUID-shaped like Graph's examples), so a retry returns the same event, and with the
uid in our extended property. Graph invites attendees itself when the organizer creates the event. Its
``iCalUId`` (the UID of those invitations) is read-only and chosen by Exchange, so ``invitation_uid``
hands it back and Termin adopts it as the meeting's UID (app/sync/writes.py). Graph cannot create a
meeting without inviting, so ``send_invitations=False`` writes no attendees (Termin then sends its own
invitation), and an update with it leaves attendees alone. Times go out in the draft's zone when it is one
of the IANA names Graph documents for ``dateTimeTimeZone``, else in UTC. Graph makes the mailbox owner the
organizer, so ``organizer_email`` and ``extra`` are not sent.

``cancel_event(notify=True)`` uses ``POST …/cancel`` (organizer only; a 400 means we are not the
organizer, so it falls back to DELETE); ``notify=False`` uses DELETE, but Graph documents that deleting
a meeting in the organizer's calendar still sends attendees a cancellation: only the custom message is
skipped. A 404 means already gone.

Free/busy. A ``calendarView`` of each calendar, busy unless ``showAs`` is free or workingElsewhere or the
event is cancelled. getSchedule is per mailbox (it cannot tell a rep's second calendar from the
first) and unavailable to personal accounts, so it serves only calendars whose items we may not read
(free/busy-only shares): ``getSchedule`` for the calendar's owner.

A malformed event (no start or end, or a time we cannot read) is logged and skipped; the rest of the
listing still syncs.
"""

import logging
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

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

logger = logging.getLogger(__name__)

DEFAULT_GRAPH_URL = "https://graph.microsoft.com/v1.0"
WINDOW_PAST = timedelta(days=30)
WINDOW_AHEAD = timedelta(days=365)
PAGE_SIZE = 100
# Above this many candidates a listing of the whole window is cheaper than one GET per event.
LOOKUP_BY_LISTING_ABOVE = 20

# Our namespace for the extended property and for transactionIds; fixed forever, since both are
# stored on events in rep's mailboxes.
TERMIN_NAMESPACE = uuid.UUID("ce634d90-0c18-478f-bf77-43986c3b50b3")
TERMIN_UID_PROPERTY = f"String {{{TERMIN_NAMESPACE}}} Name terminUid"
UNKNOWN_TIME = datetime(1970, 1, 1, tzinfo=UTC)

_PREFER_UTC = 'outlook.timezone="UTC"'
_EXPAND_OURS = f"singleValueExtendedProperties($filter=id eq '{TERMIN_UID_PROPERTY}')"
_NOT_BUSY = frozenset({"free", "workingElsewhere"})
_EXPIRED_CODES = frozenset({"syncstatenotfound", "syncstateinvalid", "resyncrequired"})
_RESPONSES = {
    "accepted": "accepted",
    "organizer": "accepted",
    "declined": "declined",
    "tentativelyAccepted": "tentative",
}
_FRACTION = re.compile(r"(\.\d{1,6})\d+")

# The IANA names Graph's dateTimeTimeZone documents besides Windows zone names.
_GRAPH_IANA_ZONE_NAMES = """
Etc/GMT+12 Etc/GMT+11 Pacific/Honolulu America/Anchorage America/Santa_Isabel America/Los_Angeles
America/Phoenix America/Chihuahua America/Denver America/Guatemala America/Chicago
America/Mexico_City America/Regina America/Bogota America/New_York America/Indiana/Indianapolis
America/Caracas America/Asuncion America/Halifax America/Cuiaba America/La_Paz America/Santiago
America/St_Johns America/Sao_Paulo America/Argentina/Buenos_Aires America/Cayenne America/Godthab
America/Montevideo America/Bahia Etc/GMT+2 Atlantic/Azores Atlantic/Cape_Verde Africa/Casablanca
Etc/GMT Europe/London Atlantic/Reykjavik Europe/Berlin Europe/Budapest Europe/Paris Europe/Warsaw
Africa/Lagos Africa/Windhoek Europe/Bucharest Asia/Beirut Africa/Cairo Asia/Damascus
Africa/Johannesburg Europe/Kyiv Europe/Kiev Europe/Istanbul Asia/Jerusalem Asia/Amman Asia/Baghdad
Europe/Kaliningrad Asia/Riyadh Africa/Nairobi Asia/Tehran Asia/Dubai Asia/Baku Europe/Moscow
Indian/Mauritius Asia/Tbilisi Asia/Yerevan Asia/Kabul Asia/Karachi Asia/Tashkent Asia/Kolkata
Asia/Colombo Asia/Kathmandu Asia/Almaty Asia/Dhaka Asia/Yekaterinburg Asia/Yangon Asia/Rangoon
Asia/Bangkok Asia/Novosibirsk Asia/Shanghai Asia/Krasnoyarsk Asia/Singapore Australia/Perth
Asia/Taipei Asia/Ulaanbaatar Asia/Irkutsk Asia/Tokyo Asia/Seoul Australia/Adelaide Australia/Darwin
Australia/Brisbane Australia/Sydney Pacific/Port_Moresby Australia/Hobart Asia/Yakutsk
Pacific/Guadalcanal Asia/Vladivostok Pacific/Auckland Etc/GMT-12 Pacific/Fiji Asia/Magadan
Pacific/Tongatapu Pacific/Apia Pacific/Kiritimati UTC
"""
_GRAPH_IANA_ZONES = frozenset(_GRAPH_IANA_ZONE_NAMES.split())


def transaction_id_for(uid: str) -> str:
    """The transactionId Graph deduplicates creation by: the same uid always gives the same one."""
    return str(uuid.uuid5(TERMIN_NAMESPACE, uid)).upper()


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GraphCalendarProvider:
    """CalendarProvider for Microsoft Graph; one instance per connected account."""

    name = "microsoft"

    def __init__(
        self,
        session: requests.Session,
        *,
        graph_url: str = DEFAULT_GRAPH_URL,
        timeout: float = 20,
        clock: Callable[[], datetime] = _utcnow,
        page_size: int = PAGE_SIZE,
    ):
        self.session = session
        self.graph_url = graph_url.rstrip("/")
        self.timeout = timeout
        self.clock = clock
        self.page_size = page_size
        self.request_total = 0  # every HTTP request made, for Changes.requests and for tests
        self._series_cache: dict[str, tuple[str, str | None, str | None]] = {}
        self._created_uids: dict[str, str] = {}  # event id -> iCalUId, from create_event's answers

    # -- the protocol ------------------------------------------------------------------------------

    def close(self) -> None:
        """Release the HTTP session's pooled connections."""
        self.session.close()

    def account(self) -> Account:
        """The identity behind the credentials."""
        me = self._get(self._url("me"), params={"$select": "id,mail,userPrincipalName,displayName"})
        email = me.get("mail") or me.get("userPrincipalName") or ""
        return Account(id=me["id"], email=email, name=me.get("displayName") or "")

    def list_calendars(self) -> list[RemoteCalendar]:
        """Calendars the account owns or that are shared with it, with the access it has."""
        select = "id,name,canEdit,canShare,canViewPrivateItems,isDefaultCalendar,owner"
        calendars = []
        for item in self._pages(self._url("me", "calendars"), params={"$select": select}):
            access = _declared_access(item)
            if access is None:
                access = self._probe_read_only(item["id"])
                if access is None:
                    continue  # vanished between the listing and the probe
            calendars.append(_calendar(item, access))
        return calendars

    def changes(self, calendar_id: str, state: str | None) -> Changes:
        """Events changed since ``state`` (None: everything). Raises SyncStateExpired for a stale cursor."""
        first = self.request_total
        window = self._window()
        if state is None:
            url = self._url("me", "calendars", calendar_id, "calendarView", "delta")
            params = {"startDateTime": _iso(window[0]), "endDateTime": _iso(window[1])}
        else:
            if not self._is_ours(state):
                # A cursor for another host would carry our bearer token there: start over instead.
                raise SyncStateExpired("saved Graph delta link does not point at this Graph endpoint")
            url, params = state, None
        items: list[dict] = []
        delta_link = None
        while url:
            page = self._get(url, params=params, calendar_id=calendar_id, delta=True, paged=True)
            items.extend(page.get("value", []))
            url, params = self._next_link(page), None
            delta_link = page.get("@odata.deltaLink")
        if not delta_link:
            raise ProviderError("Microsoft Graph ended a delta round without a delta link")
        live = [item for item in items if "@removed" not in item]
        series = self._series(calendar_id, {i["seriesMasterId"] for i in live if i.get("seriesMasterId")})
        candidates = [i["id"] for i in live if i.get("transactionId") and not i.get("seriesMasterId")]
        # An incremental round's window is inside its delta link; today's window is the best guess.
        ours = self._our_uids(calendar_id, candidates, window)
        events = []
        for item in items:
            event = _remote_event(item, ours=ours, series=series)
            if event is not None:
                events.append(event)
        return Changes(
            events=events, next_state=delta_link, full=state is None, requests=self.request_total - first
        )

    def free_busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, list[Busy]]:
        """Busy intervals per calendar between ``start`` and ``end``."""
        result = {}
        for calendar_id in calendar_ids:
            try:
                intervals = self._busy_from_view(calendar_id, start, end)
            except AccessLost as error:
                if _status(error) != 403:
                    raise
                intervals = self._busy_from_schedule(calendar_id, start, end)
            result[calendar_id] = _merge(intervals, start, end)
        return result

    def create_event(self, calendar_id: str, draft: EventDraft) -> str:
        """Write ``draft``; returns the provider's event id. Writing the same uid again changes nothing."""
        body = _event_body(draft, with_attendees=draft.send_invitations)
        body["transactionId"] = transaction_id_for(draft.uid)
        body["singleValueExtendedProperties"] = [{"id": TERMIN_UID_PROPERTY, "value": draft.uid}]
        created = self._send(
            "POST", self._url("me", "calendars", calendar_id, "events"), body, calendar_id=calendar_id
        )
        if created.get("iCalUId"):
            self._created_uids[created["id"]] = created["iCalUId"]
        return created["id"]

    def invitation_uid(self, calendar_id: str, event_id: str, uid: str) -> str:
        """The UID of the invitations Exchange sends for the event: its iCalUId, which Graph sets itself.

        Read from ``create_event``'s answer, else from the event (one GET).
        """
        known = self._created_uids.get(event_id)
        if known:
            return known
        event = self._get(self._event_url(calendar_id, event_id), {"$select": "iCalUId"}, calendar_id)
        return event.get("iCalUId") or uid

    def update_event(self, calendar_id: str, event_id: str, draft: EventDraft) -> None:
        """Replace the event's time, title and attendees with ``draft``'s."""
        body = _event_body(draft, with_attendees=draft.send_invitations)
        self._send("PATCH", self._event_url(calendar_id, event_id), body, calendar_id=calendar_id)

    def cancel_event(self, calendar_id: str, event_id: str, *, notify: bool = True) -> None:
        """Cancel (delete) the event; attendees are told when ``notify``. Already gone is not an error."""
        url = self._event_url(calendar_id, event_id)
        try:
            if notify:
                try:
                    self._send("POST", f"{url}/cancel", {"comment": ""}, calendar_id=calendar_id)
                    return
                except ProviderError as error:
                    # 400: we are not the organizer (or it is no meeting); a delete is all we may do.
                    if _status(error) != 400:
                        raise
            self._send("DELETE", url, None, calendar_id=calendar_id)
        except AccessLost as error:
            if _status(error) != 404:
                raise

    def create_calendar(self, name: str) -> RemoteCalendar:
        """A new calendar owned by the account (the task sub-calendar)."""
        created = self._send("POST", self._url("me", "calendars"), {"name": name})
        return _calendar(created, "owner")

    # -- reading helpers ---------------------------------------------------------------------------

    def _window(self) -> tuple[datetime, datetime]:
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        return now - WINDOW_PAST, now + WINDOW_AHEAD

    def _probe_read_only(self, calendar_id: str) -> Access | None:
        now = self.clock().astimezone(UTC).replace(microsecond=0)
        params = {
            "startDateTime": _iso(now),
            "endDateTime": _iso(now + timedelta(days=1)),
            "$select": "id",
            "$top": "1",
        }
        try:
            self._get(self._url("me", "calendars", calendar_id, "calendarView"), params, calendar_id)
        except AccessLost as error:
            status = _status(error)
            if status == 403:
                return "freebusy"
            if status == 404:
                return None
            raise
        return "reader"

    def _series(
        self, calendar_id: str, master_ids: Iterable[str]
    ) -> dict[str, tuple[str, str | None, str | None]]:
        """Per series master: its iCalUId, our uid if we wrote it, and its transactionId."""
        found = {}
        for master_id in master_ids:
            if master_id not in self._series_cache:
                params = {"$select": "id,iCalUId,transactionId", "$expand": _EXPAND_OURS}
                try:
                    master = self._get(self._event_url(calendar_id, master_id), params, calendar_id)
                except AccessLost as error:
                    if _status(error) != 404:
                        raise
                    continue  # the series went away while we listed it; occurrences keep their own uid
                self._series_cache[master_id] = (
                    master.get("iCalUId") or "",
                    _our_value(master),
                    master.get("transactionId"),
                )
            found[master_id] = self._series_cache[master_id]
        return found

    def _our_uids(
        self, calendar_id: str, event_ids: list[str], window: tuple[datetime, datetime]
    ) -> dict[str, str]:
        """Our uid for each of ``event_ids`` that Termin wrote."""
        wanted = set(event_ids)
        ours: dict[str, str] = {}
        if len(wanted) > LOOKUP_BY_LISTING_ABOVE:
            params = {
                "startDateTime": _iso(window[0]),
                "endDateTime": _iso(window[1]),
                "$select": "id",
                "$expand": _EXPAND_OURS,
            }
            url = self._url("me", "calendars", calendar_id, "calendarView")
            for item in self._pages(url, params=params, calendar_id=calendar_id):
                if item.get("id") in wanted:
                    wanted.discard(item["id"])
                    if value := _our_value(item):
                        ours[item["id"]] = value
        for event_id in sorted(wanted):  # few, or outside the window the listing covered
            params = {"$select": "id", "$expand": _EXPAND_OURS}
            try:
                item = self._get(self._event_url(calendar_id, event_id), params, calendar_id)
            except AccessLost as error:
                if _status(error) != 404:
                    raise
                continue  # deleted since the delta page: the next round reports the removal
            if value := _our_value(item):
                ours[event_id] = value
        return ours

    def _busy_from_view(
        self, calendar_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        params = {
            "startDateTime": _iso(start),
            "endDateTime": _iso(end),
            "$select": "id,start,end,showAs,isCancelled,isAllDay",
        }
        url = self._url("me", "calendars", calendar_id, "calendarView")
        intervals = []
        for item in self._pages(url, params=params, calendar_id=calendar_id):
            if item.get("isCancelled") or item.get("showAs") in _NOT_BUSY:
                continue
            span = _span(item)
            if span is None:
                logger.warning(
                    "Graph event %s has no readable start/end; left out of free/busy", item.get("id")
                )
                continue
            intervals.append(span)
        return intervals

    def _busy_from_schedule(
        self, calendar_id: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, datetime]]:
        calendar = self._get(self._url("me", "calendars", calendar_id), {"$select": "id,owner"}, calendar_id)
        owner = ((calendar.get("owner") or {}).get("address") or "").strip()
        if not owner:
            raise AccessLost("Microsoft Graph names no owner for this free/busy calendar", calendar_id)
        body = {
            "schedules": [owner],
            "startTime": {"dateTime": _naive(start), "timeZone": "UTC"},
            "endTime": {"dateTime": _naive(end), "timeZone": "UTC"},
            "availabilityViewInterval": 15,
        }
        answer = self._send("POST", self._url("me", "calendar", "getSchedule"), body, calendar_id=calendar_id)
        intervals = []
        for schedule in answer.get("value", []):
            if schedule.get("error"):
                message = schedule["error"].get("message") or "free/busy unavailable"
                raise AccessLost(message, calendar_id)
            for item in schedule.get("scheduleItems", []):
                if item.get("status") in _NOT_BUSY:
                    continue
                span = _span(item)
                if span is not None:
                    intervals.append(span)
        return intervals

    # -- HTTP --------------------------------------------------------------------------------------

    def _url(self, *parts: str) -> str:
        return "/".join([self.graph_url, *(quote(part, safe="") for part in parts)])

    def _event_url(self, calendar_id: str, event_id: str) -> str:
        return self._url("me", "calendars", calendar_id, "events", event_id)

    def _is_ours(self, url: str) -> bool:
        return url.startswith(self.graph_url + "/")

    def _next_link(self, page: dict) -> str | None:
        link = page.get("@odata.nextLink")
        if link and not self._is_ours(link):
            raise ProviderError("Microsoft Graph sent a next page on another host")
        return link

    def _pages(self, url: str, params: dict | None = None, calendar_id: str | None = None) -> Iterable[dict]:
        while url:
            page = self._get(url, params, calendar_id, paged=True)
            yield from page.get("value", [])
            url, params = self._next_link(page), None

    def _get(
        self,
        url: str,
        params: dict | None = None,
        calendar_id: str | None = None,
        *,
        delta: bool = False,
        paged: bool = False,
    ) -> dict:
        prefer = f"odata.maxpagesize={self.page_size}, {_PREFER_UTC}" if paged else _PREFER_UTC
        return self._request("GET", url, params=params, prefer=prefer, calendar_id=calendar_id, delta=delta)

    def _send(self, method: str, url: str, body: dict | None, *, calendar_id: str | None = None) -> dict:
        return self._request(method, url, body=body, prefer=_PREFER_UTC, calendar_id=calendar_id)

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: dict | None = None,
        body: dict | None = None,
        prefer: str,
        calendar_id: str | None,
        delta: bool = False,
    ) -> dict:
        self.request_total += 1
        if params:
            # %20 rather than '+' for spaces: OData reads the query per RFC 3986, not as a form.
            url = f"{url}?{urlencode(params, quote_via=quote, safe='$,()')}"
        headers = {"Prefer": prefer, "Accept": "application/json"}
        try:
            with self.session.request(
                method, url, json=body, headers=headers, timeout=self.timeout
            ) as response:
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                payload = _json(response)
                fallback_reason = response.reason or f"HTTP {status}"
        except requests.RequestException as error:
            raise TemporarilyUnavailable(f"Microsoft Graph could not be reached: {error}") from error
        if 200 <= status < 300:
            return payload or {}
        raise _error(status, payload, fallback_reason, retry_after, calendar_id, delta)


# -- mapping ---------------------------------------------------------------------------------------


def _declared_access(item: dict) -> Access | None:
    if item.get("canShare") or item.get("isDefaultCalendar"):
        return "owner"
    if item.get("canEdit"):
        return "writer"
    return None


def _calendar(item: dict, access: Access) -> RemoteCalendar:
    return RemoteCalendar(
        id=item["id"],
        name=item.get("name") or "",
        access=access,
        is_primary=bool(item.get("isDefaultCalendar")),
    )


def _our_value(item: dict) -> str | None:
    for prop in item.get("singleValueExtendedProperties") or []:
        # Graph may echo the property id with different casing than we wrote it.
        if str(prop.get("id", "")).lower() == TERMIN_UID_PROPERTY.lower() and prop.get("value"):
            return prop["value"]
    return None


def _remote_event(
    item: dict, *, ours: dict[str, str], series: dict[str, tuple[str, str | None, str | None]]
) -> RemoteEvent | None:
    event_id = item.get("id")
    if not event_id:
        logger.warning("skipping a Graph event without an id")
        return None
    if "@removed" in item:
        return RemoteEvent(id=event_id, uid="", start=UNKNOWN_TIME, end=UNKNOWN_TIME, status="cancelled")
    span = _span(item)
    if span is None:
        logger.warning("skipping Graph event %s: no readable start/end", event_id)
        return None
    start, end = span
    recurrence_id = None
    uid = item.get("iCalUId") or event_id
    our_uid = ours.get(event_id)
    transaction_id = item.get("transactionId")
    master_id = item.get("seriesMasterId")
    if master_id:
        original = _parse_offset(item.get("originalStart"))
        recurrence_id = (original or start).isoformat()
        if master_id in series:
            uid, our_uid, transaction_id = series[master_id]
            uid = uid or item.get("iCalUId") or event_id
    if our_uid:
        uid, created_by = our_uid, "termin"
    elif transaction_id:
        created_by = "integration"
    else:
        created_by = None
    show_as = item.get("showAs")
    if item.get("isCancelled"):
        status = "cancelled"
    elif show_as == "tentative":
        status = "tentative"
    else:
        status = "confirmed"
    organizer = ((item.get("organizer") or {}).get("emailAddress") or {}).get("address") or ""
    return RemoteEvent(
        id=event_id,
        uid=uid,
        start=start,
        end=end,
        summary=item.get("subject") or "",
        status=status,
        all_day=bool(item.get("isAllDay")),
        transparent=show_as in _NOT_BUSY,
        recurrence_id=recurrence_id,
        organizer_email=organizer,
        attendees=tuple(_attendees(item.get("attendees") or [])),
        created_by=created_by,
    )


def _attendees(items: list[dict]) -> Iterable[Attendee]:
    for item in items:
        address = (item.get("emailAddress") or {}).get("address")
        if not address:
            continue
        response = ((item.get("status") or {}).get("response")) or "none"
        yield Attendee(
            email=address,
            name=(item.get("emailAddress") or {}).get("name") or "",
            response=_RESPONSES.get(response, "needsAction"),
        )


def _span(item: dict) -> tuple[datetime, datetime] | None:
    start, end = _parse_graph_time(item.get("start")), _parse_graph_time(item.get("end"))
    if start is None or end is None:
        return None
    if item.get("isAllDay"):
        # All-day events are dates; the base contract carries them as midnight UTC.
        start = datetime.combine(start.date(), datetime.min.time(), tzinfo=UTC)
        end = datetime.combine(end.date(), datetime.min.time(), tzinfo=UTC)
    if end < start:
        return None
    return start, end


def _parse_graph_time(value: Any) -> datetime | None:
    if not isinstance(value, dict) or not value.get("dateTime"):
        return None
    parsed = _parse_offset(value["dateTime"])
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        zone = value.get("timeZone") or "UTC"
        try:
            parsed = parsed.replace(tzinfo=UTC if zone.upper() == "UTC" else ZoneInfo(zone))
        except (KeyError, ValueError):
            return None  # a Windows zone name: we asked for UTC, so this is not a time we can trust
    return parsed.astimezone(UTC)


def _parse_offset(text: Any) -> datetime | None:
    """An ISO 8601 string as Graph writes it (seven fractional digits, maybe a Z), or None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        parsed = datetime.fromisoformat(_FRACTION.sub(r"\1", text, count=1))
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed


def _event_body(draft: EventDraft, *, with_attendees: bool) -> dict:
    zone_name = draft.time_zone if draft.time_zone in _GRAPH_IANA_ZONES else "UTC"
    zone = UTC if zone_name == "UTC" else ZoneInfo(zone_name)
    if draft.all_day:
        first = draft.start.astimezone(UTC).date()
        last = max(draft.end.astimezone(UTC).date(), first + timedelta(days=1))
        start = {"dateTime": f"{first.isoformat()}T00:00:00", "timeZone": zone_name}
        end = {"dateTime": f"{last.isoformat()}T00:00:00", "timeZone": zone_name}
    else:
        start = {"dateTime": _naive(draft.start, zone), "timeZone": zone_name}
        end = {"dateTime": _naive(draft.end, zone), "timeZone": zone_name}
    body: dict[str, Any] = {
        "subject": draft.summary,
        "body": {"contentType": "text", "content": draft.description},
        "start": start,
        "end": end,
        "isAllDay": draft.all_day,
        "location": {"displayName": draft.location},
    }
    if with_attendees:
        body["attendees"] = [
            {"emailAddress": {"address": a.email, "name": a.name or a.email}, "type": "required"}
            for a in draft.attendees
        ]
    return body


def _merge(intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime) -> list[Busy]:
    merged: list[list[datetime]] = []
    for first, last in sorted(intervals):
        first, last = max(first, start), min(last, end)
        if first >= last:
            continue
        if merged and first <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], last)
        else:
            merged.append([first, last])
    return [Busy(first, last) for first, last in merged]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _naive(moment: datetime, zone: Any = UTC) -> str:
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


# -- errors ----------------------------------------------------------------------------------------


def _json(response: requests.Response) -> dict | None:
    if not response.content:
        return None
    try:
        payload = response.json()
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _status(error: ProviderError) -> int | None:
    """The HTTP status behind ``error``, for callers that treat 403, 404 or 400 differently."""
    return getattr(error, "status", None)


def _error(
    status: int,
    payload: dict | None,
    fallback_reason: str,
    retry_after: float | None,
    calendar_id: str | None,
    delta: bool,
) -> ProviderError:
    error = (payload or {}).get("error") or {}
    reason = error.get("message") or fallback_reason
    code = str(error.get("code") or "").lower()
    raised: ProviderError
    if status == 401:
        raised = AuthRevoked(reason)
    elif status == 429:
        raised = RateLimited(reason, retry_after)
    elif delta and (status == 410 or code in _EXPIRED_CODES):
        raised = SyncStateExpired(reason)
    elif status in (403, 404) and calendar_id is not None:
        raised = AccessLost(reason, calendar_id)
    elif status >= 500:
        raised = TemporarilyUnavailable(reason, retry_after)
    else:
        raised = ProviderError(reason)
    raised.status = status  # base.py's errors carry no status; see _status
    return raised
