"""Calendar → CRM sync: one calendar's changes become synced events, busy blocks (C8) and meetings (C3, C4).

``sync_calendar(calendar, provider, now=...)`` asks ``provider.changes()`` for what changed since the saved
cursor and applies it inside the caller's transaction (it flushes; the job commits). Running it twice, or
again after a run whose transaction rolled back, leaves the same rows. Rows are written in bulk (synced
events, busy blocks, new meetings and their contacts): on PostgreSQL one ``INSERT ... SELECT FROM
unnest(arrays)`` per few thousand rows, the arrays sent in binary, an upsert for synced events; on the demo's
SQLite an executemany. Existing rows are read once per run into a dict, only the columns the rules read.

**Keys.** Every event the provider lists is one ``SyncedEvent`` per (calendar, iCalendar UID, recurrence id),
"" for single events and series masters; recurrence ids are stored as the UTC ISO 8601 of the original
start (a date for all-day occurrences). Each row keeps a digest of everything the rules below read, prefixed
by the rules' version and what the calendar feeds (meetings, availability, its time zone): an unchanged
event costs no write, and when that prefix no longer matches (a rule or a choice changed) the next run lists
everything again. Removals are matched by the provider's event id, because Google and Graph send nothing
else for a deleted event; a Google occurrence whose series is known only by id (``<series id>_<start>``) is
tied to that series through the prefix. Events listed again in one calendar object (CalDAV: a master and
its overrides) replace the rows that object produced before.

**Full listings.** None saved, a cursor the provider refuses (410), the digest prefix changed, or a new
week slot for this calendar (spread over the week by calendar id): the provider lists everything, and rows
the listing no longer contains are removed. The weekly listing is what moves the expansion horizon and the
recurring-meeting window forward (series masters are re-expanded on every full listing; only differences
are written), and what renews Graph's delta window, which is fixed when its delta link is made.

**Busy blocks (C8)**, only for calendars that check availability: one block per busy occurrence that has
not ended yet, up to ``SYNC_HORIZON_DAYS`` ahead. Not busy: transparent ("free") events, cancelled ones,
and events the rep declined (an attendee that is the connection's account email or the rep's own email).
Series are expanded from RRULE/RDATE/EXDATE in the calendar's time zone (``Calendar.time_zone``, else the
rep's, else UTC), because providers hand us UTC times only and a weekly 9:00 must stay 9:00 across DST;
occurrences that have their own row (moved, changed or cancelled) are left out of the series. An all-day
event blocks whole local days in that same zone: from midnight of its first day to midnight after its last.

**Meetings (C3, C4)**, only when the account has calendar sync on, from calendars the account owns (events
in calendars merely shared with it belong to someone else's schedule; those only feed availability) and
never from the task calendar. A timed, not cancelled event that the rep did not decline, with an attendee
or organizer who is a contact of the calendar's tenant, is a ``Meeting(source="calendar")`` owned by the
rep and linked to those contacts (at most ``MAX_MEETING_CONTACTS``). Edits and moves update it; deletion,
cancellation, the rep declining or the last contact leaving the invitation cancel it. Not meetings:

* events Termin wrote (``created_by == "termin"``: the CRM already has that meeting) and events another
  integration wrote (``"integration"``, C4). Both rest on each provider's own markers, described in the
  provider modules: our extended property or X-TERMIN-UID; Google's ``source``/private properties, Graph's
  ``transactionId``, and known integration PRODIDs on CalDAV;
* all-day events: they mark days (holidays, travel, deadlines), not a conversation at a time, and the CRM's
  meetings need a start and an end;
* events ending more than ``MEETING_LOOKBACK`` ago when first seen, so connecting a calendar does not
  import years of history.

Recurring events give one meeting per occurrence, as HubSpot logs them, for occurrences starting within
``RECURRING_MEETING_AHEAD`` (later ones are logged as the weekly listing reaches them). Meetings are keyed by
tenant, rep, the event's own iCalendar ``uid`` and ``recurrence_id`` (the occurrence's original start in
UTC; NULL for a single event), and two partial unique indexes on ``meetings`` hold that key for
``source = 'calendar'``: the same event in two of the rep's calendars is one meeting. New meetings are
inserted with ``ON CONFLICT DO NOTHING`` and the winner is read back, so two syncs racing to create the
same meeting (two calendars, or a job re-run while the first still runs) never duplicate it and never
fail. The calendar that made it keeps it up to date, and when it loses the event a calendar still holding
it takes over instead of cancelling. When a full listing no longer contains an event, meetings that
already ended are left as history.

**Bad input never stops a sync.** An event without a uid, without a length (no DTEND), with an unreadable
recurrence or an unknown time zone in it, or with values too long to store, is logged with the calendar
and tenant ids, counted in ``SyncReport.skipped`` and left out; the rest goes on. Contacts are matched for
a whole batch of events with one ``IN`` query (``= ANY(array)`` on PostgreSQL) per chunk of addresses, however
many attendees an event has.
"""

import hashlib
import logging
import time as stopwatch
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from dateutil.rrule import rruleset, rrulestr
from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from app.crm.models import Contact, Meeting, MeetingContact
from app.db import utcnow
from app.extensions import db
from app.sync import services
from app.sync.models import BusyBlock, Calendar, SyncedEvent
from app.sync.providers.base import (
    AccessLost,
    AuthRevoked,
    CalendarProvider,
    Changes,
    ProviderError,
    RateLimited,
    RemoteEvent,
    SyncStateExpired,
    TemporarilyUnavailable,
    bounded_wait,
)

log = logging.getLogger(__name__)

DEFAULT_SYNC_INTERVAL_SECONDS = 300
DEFAULT_SYNC_HORIZON_DAYS = 400
# Bump when a rule below changes what is stored: every calendar then lists everything once more.
RULES_VERSION = "1"
FULL_SYNC_EVERY = timedelta(days=7)
MEETING_LOOKBACK = timedelta(days=30)
RECURRING_MEETING_AHEAD = timedelta(days=90)
MAX_MEETING_CONTACTS = 50
MAX_MATCHED_ADDRESSES = 10_000  # per event; a 5,000-guest webinar is still matched in full
MAX_OCCURRENCES = 5_000  # per series inside the horizon
MAX_RECURRENCE_STEPS = 50_000  # a MINUTELY rule from years ago must not stall the worker
MIN_BACKOFF = timedelta(seconds=60)
MAX_BACKOFF = timedelta(hours=1)
CHUNK = 900  # bound parameters per IN list and rows per statement: fits SQLite's limits too
PG_CHUNK = 5_000  # rows per array statement on PostgreSQL
EARLIEST, LATEST = datetime(1900, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC)

Key = tuple[str, str]  # (uid, recurrence id or "")
MeetingKey = tuple[str, datetime | None]  # (uid, the occurrence's original start in UTC, or None)


@dataclass
class SyncReport:
    """What one run did; ``outcome`` is "synced", "access_lost", "auth_revoked", "retry_later", "failed" or
    "inactive", and ``skipped`` counts events left out by reason."""

    calendar_id: int
    outcome: str = "synced"
    full: bool = False
    expired: bool = False
    events_seen: int = 0
    rows_written: int = 0
    blocks_written: int = 0
    requests: int = 0
    meetings_created: int = 0
    meetings_updated: int = 0
    meetings_cancelled: int = 0
    skipped: Counter = field(default_factory=Counter)
    error: str | None = None
    fetch_seconds: float = 0.0
    apply_seconds: float = 0.0


def makes_meetings(calendar: Calendar) -> bool:
    """C3: the calendar's events become CRM meetings (calendar sync on, owned by the account, not tasks)."""
    return (
        bool(calendar.connection.calendar_sync)
        and calendar.access == "owner"
        and not calendar.is_task_calendar
    )


def needs_sync(calendar: Calendar) -> bool:
    """Whether the engine reads this calendar: active, readable, and feeding meetings or availability."""
    connection = calendar.connection
    return (
        calendar.is_active
        and connection.is_active
        and not calendar.is_task_calendar
        and calendar.shows_event_details
        and (calendar.checks_availability or makes_meetings(calendar))
    )


def forget_calendar(calendar: Calendar) -> int:
    """Drop what the engine stored for a calendar it no longer reads; the next sync starts from scratch.

    Its busy blocks would otherwise keep blocking the rep's pages after the calendar was unticked. Meetings
    stay: they are CRM history. Returns how many rows were deleted.
    """
    deleted = db.session.execute(sa.delete(BusyBlock).where(BusyBlock.calendar_id == calendar.id)).rowcount
    deleted += db.session.execute(
        sa.delete(SyncedEvent).where(SyncedEvent.calendar_id == calendar.id)
    ).rowcount
    calendar.sync_state = None
    db.session.flush()
    return deleted


def meeting_key(uid: str, recurrence_id: str = "") -> MeetingKey:
    """A calendar meeting's ``(Meeting.uid, Meeting.recurrence_id)``: the event's own UID and, for one
    occurrence of a series, its original start in UTC (midnight UTC for a date); None for a single event."""
    return uid, (_rid_instant(recurrence_id) if recurrence_id else None)


def sync_calendar(calendar: Calendar, provider: CalendarProvider, *, now: datetime) -> SyncReport:
    """Pull the calendar's changes from ``provider`` and apply them; flushes, the caller commits.

    Provider failures end the run cleanly: lost access makes the calendar inactive (C11), a revoked grant
    the connection; rate limits and outages set ``next_sync_at`` after Retry-After (or a doubling back-off)
    and record ``last_error``. Only unexpected errors (bugs, the database) propagate.
    """
    report = SyncReport(calendar_id=calendar.id)
    connection = calendar.connection
    if not (calendar.is_active and connection.is_active):
        report.outcome = "inactive"
        return report
    config = current_app.config
    interval = timedelta(seconds=int(config.get("SYNC_INTERVAL_SECONDS", DEFAULT_SYNC_INTERVAL_SECONDS)))
    horizon = timedelta(days=int(config.get("SYNC_HORIZON_DAYS", DEFAULT_SYNC_HORIZON_DAYS)))
    try:
        applier = _Applier(calendar, now, horizon, report)
        state = calendar.sync_state
        if state is not None and applier.full_listing_due():
            state = None
        changes = _fetch(provider, calendar, state, report)
        applier.apply(changes)
        if applier.relist and not changes.full:
            # A moved occurrence was put back into its series without the series in hand: list it all.
            calendar.sync_state = None
            db.session.flush()
            applier = _Applier(calendar, now, horizon, report)
            changes = _fetch(provider, calendar, None, report)
            applier.apply(changes)
    except AccessLost as error:
        _record_error(calendar, error.reason, now)
        services.mark_calendar_inactive(calendar, error.reason)
        # Reconnecting must start from a full listing; polling a calendar we cannot read is pointless.
        calendar.sync_state, calendar.next_sync_at = None, None
        return _failed(report, "access_lost", error.reason)
    except AuthRevoked as error:
        _record_error(calendar, error.reason, now)
        services.mark_connection_inactive(connection, error.reason)
        calendar.next_sync_at = None
        return _failed(report, "auth_revoked", error.reason)
    except (RateLimited, TemporarilyUnavailable) as error:
        delay = (
            retry_delay(calendar)
            if error.retry_after is None
            else timedelta(seconds=max(bounded_wait(error.retry_after) or 0, 1))
        )
        _record_error(calendar, error.reason, now)
        calendar.next_sync_at = now + delay
        return _failed(report, "retry_later", error.reason)
    except ProviderError as error:
        delay = retry_delay(calendar)
        _record_error(calendar, error.reason, now)
        calendar.next_sync_at = now + delay
        return _failed(report, "failed", error.reason)
    calendar.sync_state = changes.next_state
    calendar.last_synced_at = now
    calendar.next_sync_at = now + interval
    calendar.last_error = calendar.last_error_at = None
    db.session.flush()
    return report


# --- Provider calls and bookkeeping -------------------------------------------------------------------------


def _fetch(provider: CalendarProvider, calendar: Calendar, state: str | None, report: SyncReport) -> Changes:
    started = stopwatch.perf_counter()
    try:
        try:
            changes = provider.changes(calendar.external_id, state)
        except SyncStateExpired as expired:
            if state is None:
                raise
            log.info(
                "calendar %s (tenant %s): saved cursor refused (%s); listing everything",
                calendar.id,
                calendar.tenant_id,
                expired.reason,
            )
            report.expired = True
            report.requests += 1
            changes = provider.changes(calendar.external_id, None)
    finally:
        report.fetch_seconds += stopwatch.perf_counter() - started
    report.requests += changes.requests
    report.full = report.full or changes.full
    return changes


def _record_error(calendar: Calendar, reason: str, now: datetime) -> None:
    calendar.last_error = (reason or "unknown provider error")[:500]
    calendar.last_error_at = now
    log.warning("calendar %s (tenant %s): sync stopped: %s", calendar.id, calendar.tenant_id, reason)


def retry_delay(calendar: Calendar) -> timedelta:
    """Double the previous wait while the calendar keeps failing (read back from the stored times)."""
    previous = timedelta(0)
    if calendar.last_error and calendar.last_error_at and calendar.next_sync_at:
        previous = calendar.next_sync_at - calendar.last_error_at
    return min(max(MIN_BACKOFF, previous * 2), MAX_BACKOFF)


def _failed(report: SyncReport, outcome: str, reason: str) -> SyncReport:
    report.outcome, report.error = outcome, reason
    db.session.flush()
    return report


# --- Reading events -----------------------------------------------------------------------------------------


class _Skip(Exception):
    """An event the engine cannot use; ``reason`` is the report's counter name."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass
class _Series:
    """A parsed recurrence: the rule set anchored in the calendar's zone, and the length of one occurrence."""

    rules: rruleset
    all_day: bool
    duration: timedelta


@dataclass
class _Item:
    """One event (or one cancelled occurrence, ``tombstone``) to store under ``key``."""

    event: RemoteEvent
    uid: str
    rid: str
    digest: str
    series: _Series | None = None
    tombstone: bool = False
    emails: tuple[str, ...] = ()
    declined: bool = False  # by the rep
    key: Key = field(init=False)

    def __post_init__(self) -> None:
        self.key = (self.uid, self.rid)


@dataclass(slots=True)
class _Row:
    """A stored ``SyncedEvent``, as far as the run needs it."""

    id: int
    uid: str
    rid: str
    provider_event_id: str
    digest: str
    meeting_id: int | None
    ended: bool  # before the run's ``now``


@dataclass
class _Spec:
    """The meeting an event (or one occurrence) should be."""

    key: MeetingKey
    start: datetime
    end: datetime
    title: str
    provider_event_id: str
    contacts: list[Contact]
    creatable: bool


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _rid_instant(rid: str) -> datetime:
    if len(rid) == 10:
        day = date.fromisoformat(rid)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    return datetime.fromisoformat(rid)


def _normalised_rid(value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        return ""
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _Skip("bad_recurrence_id", text[:80]) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def _split_line(line: str) -> tuple[str, dict[str, str], str]:
    head, sep, value = line.partition(":")
    if not sep:
        raise _Skip("bad_recurrence", line[:80])
    name, *params = head.split(";")
    parsed = {}
    for param in params:
        key, _, val = param.partition("=")
        parsed[key.strip().upper()] = val.strip().strip('"')
    return name.strip().upper(), parsed, value.strip()


def _date_value(text: str, params: dict[str, str], zone: ZoneInfo, all_day: bool) -> datetime:
    """An RDATE/EXDATE value as the series' own kind: aware for timed series, naive midnight for all-day."""
    try:
        if params.get("VALUE") == "DATE" or len(text) == 8:
            day = datetime.strptime(text, "%Y%m%d")  # noqa: DTZ007 (a DATE has no zone)
            return day if all_day else day.replace(tzinfo=zone)
        if text.endswith("Z"):
            moment = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        else:
            local = datetime.strptime(text, "%Y%m%dT%H%M%S")  # noqa: DTZ007 (zone comes from TZID)
            own = zone
            if params.get("TZID"):
                own = _zone(params["TZID"])
                if own is None:
                    raise _Skip("unknown_time_zone", params["TZID"][:80])
            moment = local.replace(tzinfo=own)
    except ValueError:
        raise _Skip("bad_recurrence", text[:80]) from None
    if all_day:
        return datetime.combine(moment.astimezone(zone).date(), time())
    return moment


def _rrule_text(value: str, zone: ZoneInfo, all_day: bool) -> str:
    """The RRULE value with UNTIL in the form dateutil accepts for this series' kind of start."""
    parts = []
    for part in value.split(";"):
        name, _, until = part.partition("=")
        if name.strip().upper() == "UNTIL" and until:
            until = until.strip()
            try:
                if len(until) == 8:
                    day = datetime.strptime(until, "%Y%m%d")  # noqa: DTZ007 (a DATE has no zone)
                    moment = day if all_day else datetime.combine(day.date(), time(23, 59, 59), zone)
                elif until.endswith("Z"):
                    moment = datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
                else:
                    moment = datetime.strptime(until, "%Y%m%dT%H%M%S").replace(tzinfo=zone)
            except ValueError:
                raise _Skip("bad_recurrence", value[:80]) from None
            if all_day:
                if moment.tzinfo is not None:
                    moment = datetime.combine(moment.astimezone(zone).date(), time(23, 59, 59))
                part = f"UNTIL={moment:%Y%m%dT%H%M%S}"
            else:
                part = f"UNTIL={moment.astimezone(UTC):%Y%m%dT%H%M%SZ}"
        parts.append(part)
    return ";".join(parts)


def _series(event: RemoteEvent, zone: ZoneInfo) -> _Series | None:
    """The event's recurrence, or None when it has no RRULE or RDATE (a plain event)."""
    if event.all_day:
        dtstart: datetime = datetime.combine(event.start.date(), time())
    else:
        dtstart = event.start.astimezone(zone)
    rules = rruleset()
    recurring = False
    for line in event.recurrence:
        name, params, value = _split_line(line)
        try:
            if name in ("RRULE", "EXRULE"):
                rule = rrulestr(_rrule_text(value, zone, event.all_day), dtstart=dtstart)
                if name == "RRULE":
                    rules.rrule(rule)
                    recurring = True
                else:
                    rules.exrule(rule)
            elif name in ("RDATE", "EXDATE"):
                if params.get("VALUE") == "PERIOD":
                    raise _Skip("bad_recurrence", "RDATE periods are not supported")
                for text in value.split(","):
                    moment = _date_value(text.strip(), params, zone, event.all_day)
                    if name == "RDATE":
                        rules.rdate(moment)
                        recurring = True
                    else:
                        rules.exdate(moment)
        except _Skip:
            raise
        except (ValueError, TypeError, OverflowError) as error:
            raise _Skip("bad_recurrence", f"{line[:80]} ({error})") from None
    if not recurring:
        return None
    # RFC 5545: DTSTART is always the first instance, whether or not the rule matches it.
    rules.rdate(dtstart)
    return _Series(rules=rules, all_day=event.all_day, duration=event.end - event.start)


# --- Applying one listing -----------------------------------------------------------------------------------


class _Applier:
    """Applies one ``Changes`` to one calendar. Keeps the calendar's stored rows in memory for the run."""

    def __init__(self, calendar: Calendar, now: datetime, horizon: timedelta, report: SyncReport):
        self.calendar = calendar
        self.connection = calendar.connection
        self.user = self.connection.user
        self.tenant_id = calendar.tenant_id
        self.now = now
        self.horizon_end = now + horizon
        self.report = report
        self.zone = self._time_zone()
        self.blocks_on = bool(calendar.checks_availability)
        self.meetings_on = makes_meetings(calendar)
        self.postgres = db.session.get_bind().dialect.name == "postgresql"
        # Rows per IN lookup: one array parameter takes any number on PostgreSQL; SQLite takes 999 binds.
        self.chunk = PG_CHUNK if self.postgres else CHUNK
        zone_tag = hashlib.sha256(self.zone.key.encode()).hexdigest()[:4]
        self.mode = f"{RULES_VERSION}{int(self.meetings_on)}{int(self.blocks_on)}{zone_tag}"
        self.rep_emails = {e.strip().lower() for e in (self.connection.account_email, self.user.email) if e}
        self.relist = False
        self.rows: dict[Key, _Row] = {}
        self.rows_by_pid: dict[str, list[Key]] = defaultdict(list)
        self.rows_by_uid: dict[str, list[Key]] = defaultdict(list)
        table = SyncedEvent.__table__
        # Only what the rules read: a calendar's every row is loaded on every run, changes or not.
        for r in db.session.execute(
            sa.select(
                table.c.id,
                table.c.uid,
                table.c.recurrence_id,
                table.c.provider_event_id,
                table.c.digest,
                table.c.meeting_id,
                table.c.end_at <= now,
            ).where(table.c.calendar_id == calendar.id)
        ).all():
            row = _Row(*r)
            key = (row.uid, row.rid)
            self.rows[key] = row
            self.rows_by_pid[row.provider_event_id].append(key)
            self.rows_by_uid[row.uid].append(key)
        self._series_meetings: dict[str, list[Meeting]] | None = None
        # key -> removed by the provider itself (rather than just missing from a full listing)
        self._removals: dict[Key, bool] = {}
        self._removed: set[Key] = set()
        self._own: dict[str, set[str]] = {}  # uid -> recurrence ids with a row of their own after this run

    def _time_zone(self) -> ZoneInfo:
        for name in (self.calendar.time_zone, self.user.time_zone):
            zone = _zone(name)
            if zone is not None:
                return zone
            if name:
                log.warning(
                    "calendar %s (tenant %s): unknown time zone %r", self.calendar.id, self.tenant_id, name
                )
        return ZoneInfo("UTC")

    def full_listing_due(self) -> bool:
        """A rule or choice changed since the rows were written, or this calendar's weekly turn came."""
        if any(not row.digest.startswith(self.mode) for row in self.rows.values()):
            log.info("calendar %s (tenant %s): sync rules changed; listing everything", *self._ids())
            return True
        last = self.calendar.last_synced_at
        if last is None:
            return True
        period = FULL_SYNC_EVERY.total_seconds()
        offset = (self.calendar.id * 7919) % period  # calendars take their weekly turn at different times
        return (self.now.timestamp() + offset) // period != (last.timestamp() + offset) // period

    def _ids(self) -> tuple[int, int]:
        return self.calendar.id, self.tenant_id

    def _among(self, column: sa.ColumnElement, values: Sequence) -> sa.ColumnElement[bool]:
        """``column IN values``; on PostgreSQL ``= ANY(array)``, one parameter instead of one per value."""
        if self.postgres:
            return column == sa.any_(sa.bindparam(None, list(values), type_=postgresql.ARRAY(column.type)))
        return column.in_(values)

    # -- triage --

    def apply(self, changes: Changes) -> None:
        started = stopwatch.perf_counter()
        items = self._triage(changes.events)
        removed: set[Key] = self._removed
        forget_meetings: dict[Key, bool] = {}  # key -> cancel meetings even if they already ended
        for key, explicit in self._removals.items():
            if key not in items:
                removed.add(key)
                forget_meetings[key] = explicit
        self._replace_objects(items, removed, forget_meetings)
        if changes.full:
            seen = set(items)
            for key in self.rows:
                if key not in seen and key not in removed:
                    removed.add(key)
                    forget_meetings[key] = False
        for key in list(removed):
            if key[1] == "":  # a series is gone with its overrides
                for other in self.rows_by_uid.get(key[0], ()):
                    if other not in items and other not in removed:
                        removed.add(other)
                        forget_meetings[other] = forget_meetings[key]
        changed = [
            item
            for item in items.values()
            if (row := self.rows.get(item.key)) is None or row.digest != item.digest
        ]
        self._own: dict[str, set[str]] = defaultdict(set)
        for uid, rid in [*self.rows, *items]:
            if rid and (uid, rid) not in removed:
                self._own[uid].add(rid)
        forced = self._forced(items, changed, removed, changes.full)
        work = {item.key: item for item in [*changed, *forced]}
        links = self._meetings(list(work.values()), removed, forget_meetings) if self.meetings_on else {}
        self._delete_rows(removed)
        ids = self._upsert(list(work.values()), links)
        self._blocks(list(work.values()), ids, changed_keys={item.key for item in changed})
        db.session.flush()
        self.report.apply_seconds += stopwatch.perf_counter() - started

    def _triage(self, events: Sequence[RemoteEvent]) -> dict[Key, _Item]:
        items: dict[Key, _Item] = {}
        cancelled: list[RemoteEvent] = []
        for event in events:
            self.report.events_seen += 1
            if event.status == "cancelled":
                cancelled.append(event)
                continue
            try:
                item = self._item(event)
            except _Skip as skip:
                self._skipped(event, skip)
                continue
            items[item.key] = item
        masters_by_pid = {item.event.id: item for item in items.values() if item.rid == ""}
        series_uids = {item.uid for item in items.values() if item.series is not None}
        for event in cancelled:
            try:
                self._cancelled(event, items, masters_by_pid, series_uids)
            except _Skip as skip:
                self._skipped(event, skip)
        return items

    def _skipped(self, event: RemoteEvent, skip: _Skip) -> None:
        self.report.skipped[skip.reason] += 1
        log.warning(
            "calendar %s (tenant %s): skipping event %s: %s", *self._ids(), (event.id or "?")[:200], skip
        )

    def _item(self, event: RemoteEvent) -> _Item:
        uid = (event.uid or "").strip()
        if not event.id:
            raise _Skip("no_id")
        if not uid:
            raise _Skip("no_uid")
        if len(uid) > 1024 or len(event.id) > 1024:
            raise _Skip("too_long", "uid or event id over 1024 characters")
        if event.start.tzinfo is None or event.end.tzinfo is None:
            raise _Skip("bad_time", "naive datetime")
        if not (EARLIEST <= event.start <= LATEST and EARLIEST <= event.end <= LATEST):
            raise _Skip("bad_time", f"{event.start.isoformat()} - {event.end.isoformat()}")
        if event.end <= event.start:
            raise _Skip("no_duration", "no end (DTEND) or an end not after the start")
        rid = _normalised_rid(event.recurrence_id)
        if len(rid) > 64:
            raise _Skip("too_long", "recurrence id")
        series = _series(event, self.zone) if event.recurrence and not rid else None
        emails = self._emails(event) if self.meetings_on else ()
        return _Item(
            event, uid, rid, self._digest(event), series, emails=emails, declined=self._declined(event)
        )

    def _emails(self, event: RemoteEvent) -> tuple[str, ...]:
        found = dict.fromkeys(
            address
            for address in (
                (raw or "").strip().lower()
                for raw in (event.organizer_email, *(a.email for a in event.attendees))
            )
            if "@" in address and len(address) <= 254 and address not in self.rep_emails
        )
        return tuple(found)[:MAX_MATCHED_ADDRESSES]

    def _digest(self, event: RemoteEvent) -> str:
        attendees = sorted(f"{a.email.strip().lower()}\x1f{a.response}" for a in event.attendees)
        parts = [
            event.id,
            event.start.isoformat(),
            event.end.isoformat(),
            event.status,
            str(event.all_day),
            str(event.transparent),
            "\x1e".join(event.recurrence),
            event.summary,
            event.organizer_email.strip().lower(),
            event.created_by or "",
            "\x1e".join(attendees),
        ]
        text = "\x1d".join(parts).encode("utf-8", "surrogatepass")
        return self.mode + hashlib.sha256(text).hexdigest()[: 64 - len(self.mode)]

    def _cancelled(
        self,
        event: RemoteEvent,
        items: dict[Key, _Item],
        masters_by_pid: dict[str, _Item],
        series_uids: set[str],
    ) -> None:
        """A deleted event (match by provider id), or one cancelled occurrence of a series."""
        rid = _normalised_rid(event.recurrence_id)
        uid = (event.uid or "").strip()
        known = self.rows_by_pid.get(event.id, [])
        if not rid:
            keys = set(known) or ({(uid, "")} & self.rows.keys())
            for key in keys:
                self._removals[key] = True
            return
        if not uid and known:
            uid = known[0][0]
        if not uid and "_" in event.id:
            series_id = event.id.rsplit("_", 1)[0]
            master = masters_by_pid.get(series_id)
            if master is not None:
                uid = master.uid
            else:
                uid = next((k[0] for k in self.rows_by_pid.get(series_id, ()) if k[1] == ""), "")
        if not uid:
            return  # never stored, and no series of ours: nothing to undo
        key = (uid, rid)
        if key in items:
            return
        has_series = (uid, "") in self.rows or uid in series_uids
        if not has_series:
            if key in self.rows:
                self._removals[key] = True
            return
        instant = _rid_instant(rid)
        tombstone = RemoteEvent(id=event.id, uid=uid, start=instant, end=instant, status="cancelled")
        digest = (
            self.mode
            + hashlib.sha256(f"x\x1d{event.id}\x1d{rid}".encode()).hexdigest()[: 64 - len(self.mode)]
        )
        items[key] = _Item(tombstone, uid, rid, digest, tombstone=True)

    def _replace_objects(self, items: dict[Key, _Item], removed: set[Key], explicit: dict[Key, bool]) -> None:
        """A calendar object listed again (CalDAV: master + overrides) replaces what it produced before."""
        listed: dict[str, set[Key]] = defaultdict(set)
        for item in items.values():
            listed[item.event.id].add(item.key)
        for pid, keys in listed.items():
            for key in self.rows_by_pid.get(pid, ()):
                if key not in keys and key not in items and key not in removed:
                    removed.add(key)
                    explicit[key] = True

    def _forced(
        self, items: dict[Key, _Item], changed: list[_Item], removed: set[Key], full: bool
    ) -> list[_Item]:
        """Unchanged events to look at again: series whose overrides changed, and on full listings every
        series (horizon and meeting window move) and every occurrence still without its meeting."""
        touched = {item.uid for item in changed if item.rid} | {key[0] for key in removed if key[1]}
        changed_keys = {item.key for item in changed}
        forced = []
        for item in items.values():
            if item.key in changed_keys:
                continue
            if item.series is not None and (full or item.uid in touched):
                forced.append(item)
            elif full and self.meetings_on and item.rid and not item.tombstone:
                row = self.rows.get(item.key)
                if row is not None and row.meeting_id is None:
                    forced.append(item)
        for key in removed:
            uid, rid = key
            if rid and (uid, "") in self.rows and (uid, "") not in removed:
                master = items.get((uid, ""))
                if master is None or master.series is None:
                    self.relist = True  # the occurrence must come back into its series; see sync_calendar
        return forced

    # -- meetings --

    def _meetings(
        self, work: list[_Item], removed: set[Key], explicit: dict[Key, bool]
    ) -> dict[Key, int | None]:
        """Create, update and cancel meetings for ``work`` and ``removed``; returns each row's meeting id."""
        wants: dict[MeetingKey, _Spec | None] = {}
        row_key_of: dict[Key, MeetingKey] = {}
        series_removed: dict[str, bool] = {}
        for key in removed:
            uid, rid = key
            row = self.rows.get(key)
            if rid == "":
                series_removed.setdefault(uid, explicit.get(key, False))
            if not explicit.get(key) and row is not None and row.ended:
                continue  # gone from a full listing after it ended: keep the meeting as history
            wants.setdefault(meeting_key(uid, rid), None)
        contacts = self._contacts(work)
        series_items = []
        for item in work:
            if item.series is not None:
                series_items.append(item)
                wants[(item.uid, None)] = None  # was it a single event before? then that meeting is over
                continue
            key = meeting_key(item.uid, item.rid)
            row_key_of[item.key] = key
            wants[key] = (
                None if item.tombstone else self._spec(item, key, item.event.start, item.event.end, contacts)
            )
        overridden = self._overridden_keys(work, removed)
        for item in series_items:
            desired = self._series_specs(item, contacts, overridden)
            wants.update(desired)
            low, high = self.now - MEETING_LOOKBACK, self.now + RECURRING_MEETING_AHEAD
            for meeting in self._occurrence_meetings(item.uid):
                key = (meeting.uid, meeting.recurrence_id)
                if key in desired or key in overridden:
                    continue
                if low <= meeting.recurrence_id <= high:
                    wants.setdefault(key, None)
        for uid, explicit_removal in series_removed.items():
            for meeting in self._occurrence_meetings(uid):
                if explicit_removal or meeting.start_at >= self.now:
                    wants.setdefault((meeting.uid, meeting.recurrence_id), None)
        existing = self._load_meetings(list(wants))
        new: list[_Spec] = []
        for key, spec in wants.items():
            meeting = existing.get(key)
            if spec is None:
                if meeting is not None:
                    self._cancel(meeting)
            elif meeting is None:
                if spec.creatable:
                    new.append(spec)
            else:
                self._update(meeting, spec)
        db.session.flush()
        created = self._create(new)
        links: dict[Key, int | None] = {}
        for row_key, key in row_key_of.items():
            meeting = existing.get(key)
            if key in created:
                links[row_key] = created[key]
            else:
                links[row_key] = meeting.id if meeting is not None and meeting.status == "scheduled" else None
        return links

    def _contacts(self, work: list[_Item]) -> dict[str, Contact]:
        wanted = {
            address
            for item in work
            if not item.tombstone and item.event.created_by is None and not item.event.all_day
            for address in item.emails
        }
        found: dict[str, Contact] = {}
        for chunk in _chunks(sorted(wanted)):
            for contact in db.session.scalars(
                sa.select(Contact).where(
                    Contact.tenant_id == self.tenant_id, self._among(Contact.email, chunk)
                )
            ):
                found[contact.email] = contact
        return found

    def _declined(self, event: RemoteEvent) -> bool:
        return any(
            a.response == "declined" and a.email.strip().lower() in self.rep_emails for a in event.attendees
        )

    def _spec(
        self, item: _Item, key: MeetingKey, start: datetime, end: datetime, contacts: dict[str, Contact]
    ) -> _Spec | None:
        event = item.event
        if event.created_by is not None or event.all_day or event.status == "cancelled" or item.declined:
            return None
        matched = [contacts[a] for a in item.emails if a in contacts][:MAX_MEETING_CONTACTS]
        if not matched:
            return None
        creatable = end >= self.now - MEETING_LOOKBACK
        if item.rid:
            creatable = creatable and start <= self.now + RECURRING_MEETING_AHEAD
        title = event.summary.strip()[:200] or "(no title)"
        return _Spec(key, start, end, title, event.id, matched, creatable)

    def _overridden_keys(self, work: list[_Item], removed: set[Key]) -> set[MeetingKey]:
        keys = {meeting_key(*key) for key in self.rows if key[1] and key not in removed}
        keys |= {meeting_key(item.uid, item.rid) for item in work if item.rid}
        return keys

    def _series_specs(
        self, item: _Item, contacts: dict[str, Contact], overridden: set[MeetingKey]
    ) -> dict[MeetingKey, _Spec | None]:
        if item.series is None or item.series.all_day:
            return {}
        low, high = self.now - MEETING_LOOKBACK, self.now + RECURRING_MEETING_AHEAD
        specs: dict[MeetingKey, _Spec | None] = {}
        for start in self._occurrences(item, low, high):
            key = (item.uid, start)
            if key not in overridden:
                specs[key] = self._spec(item, key, start, start + item.series.duration, contacts)
        return specs

    def _occurrence_meetings(self, uid: str) -> list[Meeting]:
        """This calendar's meetings for occurrences of ``uid`` (loaded once per run, only when needed)."""
        if self._series_meetings is None:
            self._series_meetings = defaultdict(list)
            for meeting in db.session.scalars(
                sa.select(Meeting)
                .where(
                    Meeting.tenant_id == self.tenant_id,
                    Meeting.owner_id == self.user.id,
                    Meeting.source == "calendar",
                    Meeting.calendar_id == self.calendar.id,
                    Meeting.recurrence_id.is_not(None),
                )
                .options(selectinload(Meeting.contacts))
            ):
                self._series_meetings[meeting.uid].append(meeting)
        return self._series_meetings.get(uid, [])

    def _load_meetings(self, keys: list[MeetingKey]) -> dict[MeetingKey, Meeting]:
        """The rep's calendar meetings with these keys (the unique indexes allow one per key)."""
        wanted = set(keys)
        found: dict[MeetingKey, Meeting] = {}
        for chunk in _chunks(sorted({uid for uid, _ in wanted}), self.chunk):
            for meeting in db.session.scalars(
                sa.select(Meeting)
                .where(
                    Meeting.tenant_id == self.tenant_id,
                    Meeting.owner_id == self.user.id,
                    Meeting.source == "calendar",
                    self._among(Meeting.uid, chunk),
                )
                .options(selectinload(Meeting.contacts))
            ):
                key = (meeting.uid, meeting.recurrence_id)
                if key in wanted:
                    found[key] = meeting
        return found

    def _winners(self, keys: list[MeetingKey]) -> dict[MeetingKey, tuple[int, str]]:
        """Id and status of the meetings another sync inserted under ``keys`` while this one ran."""
        wanted = set(keys)
        table = Meeting.__table__
        found: dict[MeetingKey, tuple[int, str]] = {}
        for chunk in _chunks(sorted({uid for uid, _ in wanted}), self.chunk):
            for meeting_id, uid, rid, status in db.session.execute(
                sa.select(table.c.id, table.c.uid, table.c.recurrence_id, table.c.status).where(
                    table.c.tenant_id == self.tenant_id,
                    table.c.owner_id == self.user.id,
                    table.c.source == "calendar",
                    self._among(table.c.uid, chunk),
                )
            ):
                if (uid, rid) in wanted:
                    found[(uid, rid)] = (meeting_id, status)
        return found

    def _mine(self, meeting: Meeting) -> bool:
        return meeting.calendar_id in (self.calendar.id, None)

    def _create(self, specs: list[_Spec]) -> dict[MeetingKey, int]:
        """Insert a scheduled meeting and its contact links per spec in bulk; returns meeting ids by key.

        A full listing creates thousands at once: plain rows, not ORM objects (the session never needs them).
        The insert does nothing where the unique key (tenant, rep, uid, recurrence id) is taken: another
        sync (the same event in another of the rep's calendars, or a re-run job) got there first, since
        this run read the meetings. Those keys map to that winner's meeting (when it is scheduled), which
        its calendar keeps up to date, and get no contact links from us. Rows go in key order, so two
        syncs inserting the same keys wait for each other on PostgreSQL instead of deadlocking.
        """
        constants = {
            "tenant_id": self.tenant_id,
            "owner_id": self.user.id,
            "calendar_id": self.calendar.id,
            "source": "calendar",
            "status": "scheduled",
            "notes": "",
            "created_at": utcnow(),
        }
        specs = sorted(specs, key=lambda s: (s.key[0], s.key[1] or EARLIEST))
        ids: dict[MeetingKey, int] = {}
        for chunk in _chunks(specs, self.chunk):
            rows = [(s.title, s.start, s.end, *s.key, s.provider_event_id) for s in chunk]
            written = self._insert(
                _PG_MEETINGS, Meeting.__table__, constants, rows, returning=("id", "uid", "recurrence_id")
            )
            ids.update(((uid, _utc(rid)), meeting_id) for meeting_id, uid, rid in written)
        mine = [spec for spec in specs if spec.key in ids]
        links = [(ids[spec.key], contact.id) for spec in mine for contact in spec.contacts]
        for chunk in _chunks(links, self.chunk):
            self._insert(_PG_MEETING_CONTACTS, MeetingContact.__table__, {}, chunk)
        lost = [spec.key for spec in specs if spec.key not in ids]
        if lost:
            log.info(
                "calendar %s (tenant %s): %d meetings made meanwhile by another sync", *self._ids(), len(lost)
            )
            for key, (meeting_id, status) in self._winners(lost).items():
                if status == "scheduled":
                    ids[key] = meeting_id
        self.report.meetings_created += len(mine)
        self.report.rows_written += len(mine)
        return ids

    def _update(self, meeting: Meeting, spec: _Spec) -> None:
        if not self._mine(meeting):
            return  # another of the rep's calendars holds the same event and keeps this meeting
        values = {
            "title": spec.title,
            "start_at": spec.start,
            "end_at": spec.end,
            "status": "scheduled",
            "calendar_id": self.calendar.id,
            "provider_event_id": spec.provider_event_id,
        }
        dirty = False
        for name, value in values.items():
            if getattr(meeting, name) != value:
                setattr(meeting, name, value)
                dirty = True
        if [c.id for c in meeting.contacts] != [c.id for c in sorted(spec.contacts, key=lambda c: c.id)]:
            meeting.contacts = sorted(spec.contacts, key=lambda c: c.id)
            dirty = True
        if dirty:
            self.report.meetings_updated += 1
            self.report.rows_written += 1

    def _cancel(self, meeting: Meeting) -> None:
        if meeting.status != "scheduled" or not self._mine(meeting):
            return
        elsewhere = db.session.execute(
            sa.select(SyncedEvent.calendar_id, SyncedEvent.provider_event_id)
            .where(SyncedEvent.meeting_id == meeting.id, SyncedEvent.calendar_id != self.calendar.id)
            .limit(1)
        ).first()
        if elsewhere is not None:
            # The rep's other calendar still holds this event: it takes the meeting over.
            meeting.calendar_id, meeting.provider_event_id = elsewhere
            self.report.meetings_updated += 1
        else:
            meeting.status = "cancelled"
            self.report.meetings_cancelled += 1
        self.report.rows_written += 1

    # -- rows --

    def _delete_rows(self, removed: set[Key]) -> None:
        ids = [self.rows[key].id for key in removed if key in self.rows]
        for chunk in _chunks(ids, self.chunk):
            gone = db.session.execute(
                sa.delete(BusyBlock).where(self._among(BusyBlock.synced_event_id, chunk))
            ).rowcount
            self.report.blocks_written += gone
            self.report.rows_written += gone
            self.report.rows_written += db.session.execute(
                sa.delete(SyncedEvent).where(self._among(SyncedEvent.id, chunk))
            ).rowcount

    def _upsert(self, work: list[_Item], links: dict[Key, int | None]) -> dict[Key, int]:
        """Write the rows of ``work`` whose digest or meeting link changed; returns every item's row id."""
        ids = {item.key: self.rows[item.key].id for item in work if item.key in self.rows}
        rows = []
        for item in work:
            row = self.rows.get(item.key)
            meeting_id = links.get(item.key) if self.meetings_on else (row.meeting_id if row else None)
            if item.tombstone:
                meeting_id = None
            if row is not None and row.digest == item.digest and row.meeting_id == meeting_id:
                continue
            event = item.event
            rows.append(
                (
                    item.uid,
                    item.rid,
                    event.id,
                    meeting_id,
                    event.start,
                    event.end,
                    self._busy(item),
                    item.digest,
                )
            )
        constants = {"tenant_id": self.tenant_id, "calendar_id": self.calendar.id}
        for chunk in _chunks(rows, self.chunk):
            for row_id, uid, rid in self._insert(
                _PG_UPSERT, SyncedEvent.__table__, constants, chunk, returning=("id", "uid", "recurrence_id")
            ):
                ids[(uid, rid)] = row_id
            self.report.rows_written += len(chunk)
        return ids

    def _insert(
        self,
        pg_statement: str,
        table: sa.Table,
        constants: dict,
        rows: Sequence[tuple],
        returning: Sequence[str] = (),
    ) -> Sequence[sa.Row]:
        """Insert ``rows`` (tuples in ``_COLUMNS[table]`` order), each with ``constants``, in one statement.

        PostgreSQL gets ``pg_statement``, with one binary array per column: a short statement to parse and
        plan, and no value formatted as text on our side. The embedded demo's SQLite (3.35+) gets an
        executemany of the same rows (an upsert for ``synced_events``, the only table written twice).
        """
        names = _COLUMNS[table.name]
        if self.postgres:
            arrays = {name: list(values) for name, values in zip(names, zip(*rows, strict=True), strict=True)}
            db.session.flush()  # what session.execute() would do first
            result = db.session.connection().exec_driver_sql(pg_statement, {**constants, **arrays})
            return result.all() if returning else []
        statement = sqlite.insert(table)
        if table.name == "synced_events":
            updated = ("provider_event_id", "meeting_id", "start_at", "end_at", "is_busy", "digest")
            statement = statement.on_conflict_do_update(
                index_elements=["calendar_id", "uid", "recurrence_id"],
                set_={name: statement.excluded[name] for name in updated},
            )
        elif table.name == "meetings":
            statement = statement.on_conflict_do_nothing()  # see _create
        if returning:
            statement = statement.returning(*(table.c[name] for name in returning))
        params = [{**constants, **dict(zip(names, row, strict=True))} for row in rows]
        result = db.session.execute(statement, params)
        return result.all() if returning else []

    def _busy(self, item: _Item) -> bool:
        event = item.event
        return not (item.tombstone or event.status == "cancelled" or event.transparent or item.declined)

    # -- busy blocks --

    def _blocks(self, work: list[_Item], ids: dict[Key, int], changed_keys: set[Key]) -> None:
        """Make each work item's blocks what its event says, writing only the difference."""
        desired: dict[int, set[tuple[datetime, datetime]]] = {}
        for item in work:
            if item.key in ids:
                desired[ids[item.key]] = set(self._spans(item)) if self.blocks_on else set()
        stored: dict[int, dict[tuple[datetime, datetime], int]] = defaultdict(dict)
        known = [row_id for key, row_id in ids.items() if key in self.rows]
        for chunk in _chunks(known, self.chunk):
            for block_id, owner, start, end in db.session.execute(
                sa.select(
                    BusyBlock.id, BusyBlock.synced_event_id, BusyBlock.start_at, BusyBlock.end_at
                ).where(self._among(BusyBlock.synced_event_id, chunk))
            ):
                stored[owner][(start, end)] = block_id
        stale: list[int] = []
        fresh: list[tuple[int, datetime, datetime]] = []
        for row_id, spans in desired.items():
            have = stored.get(row_id, {})
            stale.extend(block_id for span, block_id in have.items() if span not in spans)
            fresh.extend((row_id, start, end) for start, end in sorted(spans) if (start, end) not in have)
        for chunk in _chunks(stale, self.chunk):
            self._count_blocks(
                db.session.execute(sa.delete(BusyBlock).where(self._among(BusyBlock.id, chunk))).rowcount
            )
        constants = {"tenant_id": self.tenant_id, "user_id": self.user.id, "calendar_id": self.calendar.id}
        for chunk in _chunks(fresh, self.chunk):
            self._insert(_PG_BLOCKS, BusyBlock.__table__, constants, chunk)
            self._count_blocks(len(chunk))
        if self.blocks_on:
            self._release_overridden(work, changed_keys)

    def _count_blocks(self, count: int) -> None:
        self.report.blocks_written += count
        self.report.rows_written += count

    def _release_overridden(self, work: list[_Item], changed_keys: set[Key]) -> None:
        """A new or changed override takes its occurrence out of a series we did not expand this run."""
        expanded = {item.uid for item in work if item.series is not None}
        for item in work:
            if not item.rid or item.key not in changed_keys or item.uid in expanded:
                continue
            master = self.rows.get((item.uid, ""))
            if master is None:
                continue
            instant = _rid_instant(item.rid)
            starts = {instant, datetime.combine(instant.date(), time(), self.zone).astimezone(UTC)}
            self._count_blocks(
                db.session.execute(
                    sa.delete(BusyBlock).where(
                        BusyBlock.synced_event_id == master.id, BusyBlock.start_at.in_(sorted(starts))
                    )
                ).rowcount
            )

    def _spans(self, item: _Item) -> list[tuple[datetime, datetime]]:
        if not self._busy(item):
            return []
        event = item.event
        if item.series is not None:
            spans: Iterable[tuple[datetime, datetime]] = (
                self._span_of(start, start + item.series.duration, item.series.all_day)
                for start in self._occurrences(item, self.now, self.horizon_end)
            )
        else:
            spans = [self._span_of(event.start, event.end, event.all_day)]
        return [span for span in spans if span[1] > self.now]

    def _span_of(self, start: datetime, end: datetime, all_day: bool) -> tuple[datetime, datetime]:
        if not all_day:
            return start, end
        first, last = start.date(), end.date()
        if last <= first:
            last = first + timedelta(days=1)
        return (
            datetime.combine(first, time(), self.zone).astimezone(UTC),
            datetime.combine(last, time(), self.zone).astimezone(UTC),
        )

    def _occurrences(self, item: _Item, low: datetime, high: datetime) -> Iterator[datetime]:
        """UTC starts of the series' occurrences overlapping [low, high), minus those with a row of their own.

        All-day occurrences come as midnight UTC of their date, like the providers give all-day times.
        """
        series = item.series
        if series is None:
            return
        skip = self._own_rows(item.uid, series.all_day)
        steps = found = 0
        for moment in series.rules:
            steps += 1
            if steps > MAX_RECURRENCE_STEPS or found >= MAX_OCCURRENCES:
                self.report.skipped["recurrence_truncated"] += 1
                log.warning(
                    "calendar %s (tenant %s): series %s expanded only in part", *self._ids(), item.uid[:200]
                )
                return
            if series.all_day:
                start = datetime.combine(moment.date(), time(), UTC)
                first, last = self._span_of(start, start + series.duration, True)
                if first >= high:
                    return
                if last <= low or moment.date() in skip:
                    continue
            else:
                start = moment.astimezone(UTC)
                if start >= high:
                    return
                if start + series.duration <= low or start in skip:
                    continue
            found += 1
            yield start

    def _own_rows(self, uid: str, all_day: bool) -> set:
        """Occurrences of ``uid`` with a row of their own (moved, changed or cancelled) after this run."""
        instants = {_rid_instant(rid) for rid in self._own.get(uid, ())}
        return {moment.date() for moment in instants} if all_day else instants


def _chunks(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for first in range(0, len(values), size):
        yield values[first : first + size]


# What each bulk insert writes per row, in the order of the row tuples (the rest is the same in every row).
_COLUMNS = {
    "synced_events": (
        "uid",
        "recurrence_id",
        "provider_event_id",
        "meeting_id",
        "start_at",
        "end_at",
        "is_busy",
        "digest",
    ),
    "busy_blocks": ("synced_event_id", "start_at", "end_at"),
    "meetings": ("title", "start_at", "end_at", "uid", "recurrence_id", "provider_event_id"),
    "meeting_contacts": ("meeting_id", "contact_id"),
}
# On PostgreSQL a batch travels as one binary array per column (%(name)b: psycopg sends it without formatting
# each value as text), and what every row shares as plain parameters.
_PG_UPSERT = (
    "INSERT INTO synced_events (tenant_id, calendar_id, uid, recurrence_id, provider_event_id, meeting_id, "
    "start_at, end_at, is_busy, digest) "
    "SELECT %(tenant_id)s, %(calendar_id)s, r.* FROM unnest("
    "CAST(%(uid)b AS text[]), CAST(%(recurrence_id)b AS text[]), CAST(%(provider_event_id)b AS text[]), "
    "CAST(%(meeting_id)b AS bigint[]), CAST(%(start_at)b AS timestamptz[]), "
    "CAST(%(end_at)b AS timestamptz[]), CAST(%(is_busy)b AS boolean[]), CAST(%(digest)b AS text[])) AS r "
    "ON CONFLICT (calendar_id, uid, recurrence_id) DO UPDATE SET "
    "provider_event_id = excluded.provider_event_id, meeting_id = excluded.meeting_id, "
    "start_at = excluded.start_at, end_at = excluded.end_at, is_busy = excluded.is_busy, "
    "digest = excluded.digest "
    "RETURNING id, uid, recurrence_id"
)
_PG_BLOCKS = (
    "INSERT INTO busy_blocks (tenant_id, user_id, calendar_id, synced_event_id, start_at, end_at) "
    "SELECT %(tenant_id)s, %(user_id)s, %(calendar_id)s, r.* FROM unnest("
    "CAST(%(synced_event_id)b AS bigint[]), CAST(%(start_at)b AS timestamptz[]), "
    "CAST(%(end_at)b AS timestamptz[])) AS r"
)
_PG_MEETINGS = (
    "INSERT INTO meetings (tenant_id, owner_id, calendar_id, source, status, notes, created_at, "
    "title, start_at, end_at, uid, recurrence_id, provider_event_id) "
    "SELECT %(tenant_id)s, %(owner_id)s, %(calendar_id)s, %(source)s, %(status)s, %(notes)s, "
    "%(created_at)s, r.* FROM unnest("
    "CAST(%(title)b AS text[]), CAST(%(start_at)b AS timestamptz[]), CAST(%(end_at)b AS timestamptz[]), "
    "CAST(%(uid)b AS text[]), CAST(%(recurrence_id)b AS timestamptz[]), "
    "CAST(%(provider_event_id)b AS text[])) AS r "
    "ON CONFLICT DO NOTHING "  # the calendar-event key: see _Applier._create
    "RETURNING id, uid, recurrence_id"
)
_PG_MEETING_CONTACTS = (
    "INSERT INTO meeting_contacts (meeting_id, contact_id) "
    "SELECT * FROM unnest(CAST(%(meeting_id)b AS bigint[]), CAST(%(contact_id)b AS bigint[]))"
)
