"""The slot engine: a page's rules and the rep's busy time in, the free start instants out (P1, C8).

Pure on purpose: no database, no Flask, no provider call. The caller hands in the busy intervals the sync
keeps (``BusyBlock`` rows of *every* calendar checked for availability, C8) and the rep's existing bookings,
so a page never waits on Google, Microsoft or a CalDAV server.

How a page's settings become slots
----------------------------------
* Availability is wall-clock time in the rep's IANA zone: weekly rules (several ranges a day allowed) and
  date overrides, an override replacing every weekly range of its local date (no ranges: a day off). Ranges
  are expanded per local date with :mod:`zoneinfo`, so 9:00-17:00 stays 9:00-17:00 across a DST change.
* A range ``[start, end)`` of local date *d* covers the **span** of instants from the first instant at which
  the rep's clock shows a time in the range to the last one (``end`` of ``time(0)`` means 24:00). This one
  rule settles the days the clock jumps:

  - *Gap* (spring forward): a start the clock skips begins at the first instant after the gap (02:30 on the
    day Warsaw skips 02:00-03:00 begins at 03:00 CEST); an end inside the gap ends there too, so a range
    lying wholly inside the gap is empty.
  - *Fold* (fall back): an ambiguous start is taken at its first occurrence, an ambiguous end at its last,
    except an end exactly at the start of the repeated hour (02:00 in Warsaw), which ends at the first 02:00
    because the clock never shows a time before 02:00 again that night.

* Slot starts lie on the **increment grid of local wall-clock time**, counted from each range's start
  (``start``, ``start + increment``, ... while before ``end``); the increment defaults to the duration
  booked. A grid time the clock skips gives no slot (so 02:30-05:00 every 30 minutes starts at 03:00 on the
  spring day, every 60 minutes at 03:30); a grid time the clock shows twice gives two candidate starts, one
  per instant. Where the jump is a multiple of the increment (an hour-long change, an increment dividing 60
  minutes) this is the same as stepping through elapsed time; where it is not (Lord Howe's 30-minute change,
  hourly starts) the starts stay on the hour. A slot lasts ``duration`` of elapsed time and must end within
  its range's span.
* A slot ``[s, e)`` is free when ``[s - buffer_before, e + buffer_after)`` overlaps no busy interval; it
  starts no earlier than ``now + min_notice``, within the requested window, and on a local date inside the
  horizon: ``horizon_days`` counts local dates from the rep's today (today included), ``date_range`` is a
  fixed inclusive range of local dates; with both set, both apply.

Cost: the busy intervals starting before the window ends are sorted and merged once (``O(B log B)``,
about linear on rows read in start order). Each range of each date is then walked run by run: one
bisection finds the next busy interval, a run of free grid starts is emitted up to it and the starts it
blocks are skipped, so a range costs ``O(log B)`` per busy interval inside it plus its output:
``O((R + B) log B)`` with ``R`` the ranges expanded over the window, never ``slots x busy``.
``bench/slots.py`` checks it against a minute-grid oracle.
"""

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import islice
from operator import attrgetter, itemgetter
from zoneinfo import ZoneInfo

_ZERO = timedelta(0)
_MINUTE = timedelta(minutes=1)
_DAY = timedelta(days=1)
_EPSILON = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
_MIDNIGHT = time(0)
_DEFAULT_DURATIONS = (timedelta(minutes=30),)
_by_start = itemgetter(0)
_tzinfo = attrgetter("tzinfo")
_FLOOR = datetime.min.replace(tzinfo=UTC)

Range = tuple[time, time]


# --- Page settings ------------------------------------------------------------------------------------------


def _check_wall_time(value: time, what: str) -> None:
    # The grid and the settings forms work in whole minutes; a naive time is a wall-clock reading of the
    # page's zone, an aware one would bring a second, conflicting zone.
    if not isinstance(value, time) or value.tzinfo is not None or value.second or value.microsecond:
        raise ValueError(f"{what} must be a naive wall-clock time on a whole minute, got {value!r}")


def _check_range(start: time, end: time) -> None:
    _check_wall_time(start, "a range's start")
    _check_wall_time(end, "a range's end")
    if end != _MIDNIGHT and end <= start:
        raise ValueError(f"a range must end after it starts (time(0) as the end means 24:00): {start}-{end}")


def _check_minutes(value: timedelta, what: str, *, positive: bool) -> None:
    if not isinstance(value, timedelta) or value % _MINUTE or value < _ZERO or (positive and not value):
        kind = "a positive" if positive else "a non-negative"
        raise ValueError(f"{what} must be {kind} whole number of minutes, got {value!r}")


@dataclass(frozen=True)
class WeeklyRule:
    """Available every ``weekday`` (0 = Monday ... 6 = Sunday) from ``start`` to ``end``, rep's wall clock.

    ``end`` of ``time(0)`` means midnight at the end of the day (24:00); a range over midnight is two rules.
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if self.weekday not in range(7):
            raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {self.weekday!r}")
        _check_range(self.start, self.end)


@dataclass(frozen=True)
class DateOverride:
    """The ranges of one local ``day``, replacing that weekday's rules; no ranges makes it a day off."""

    day: date
    ranges: tuple[Range, ...] = ()

    def __post_init__(self) -> None:
        ranges = tuple((start, end) for start, end in self.ranges)
        for start, end in ranges:
            _check_range(start, end)
        object.__setattr__(self, "ranges", ranges)


@dataclass(frozen=True)
class PageRules:
    """A scheduling page's availability settings (P1), all in the rep's ``time_zone`` (an IANA name).

    ``durations``: the meeting lengths a visitor may pick, the first being the default. ``increment``: the
    step of the start-time grid (``None``: the duration booked). ``buffer_before`` / ``buffer_after``: free
    time needed around busy intervals. ``min_notice``: no start before ``now + min_notice``.
    ``horizon_days``: how many local dates ahead, today included (``None``: no limit). ``date_range``: a
    fixed inclusive range of local dates (``None``: none). Durations, increment and buffers are whole
    minutes. Invalid settings raise ``ValueError`` (an unknown zone ``ZoneInfoNotFoundError``).
    """

    time_zone: str
    rules: tuple[WeeklyRule, ...] = ()
    overrides: tuple[DateOverride, ...] = ()
    durations: tuple[timedelta, ...] = _DEFAULT_DURATIONS
    increment: timedelta | None = None
    buffer_before: timedelta = _ZERO
    buffer_after: timedelta = _ZERO
    min_notice: timedelta = _ZERO
    horizon_days: int | None = 60
    date_range: tuple[date, date] | None = None

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)  # an unknown zone fails here, when the page is saved, not when it is viewed
        for name in ("rules", "overrides", "durations"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.durations:
            raise ValueError("a page needs at least one duration")
        for duration in self.durations:
            _check_minutes(duration, "a duration", positive=True)
        if self.increment is not None:
            _check_minutes(self.increment, "the increment", positive=True)
        _check_minutes(self.buffer_before, "buffer_before", positive=False)
        _check_minutes(self.buffer_after, "buffer_after", positive=False)
        if not isinstance(self.min_notice, timedelta) or self.min_notice < _ZERO:
            raise ValueError(f"min_notice must be a non-negative timedelta, got {self.min_notice!r}")
        if self.horizon_days is not None and self.horizon_days < 1:
            raise ValueError(f"horizon_days must be at least 1 (today) or None, got {self.horizon_days!r}")
        if self.date_range is not None:
            first, last = self.date_range
            if first > last:
                raise ValueError(f"date_range ends before it starts: {first} > {last}")
            object.__setattr__(self, "date_range", (first, last))
        days = [override.day for override in self.overrides]
        if len(days) != len(set(days)):
            raise ValueError("two overrides for the same date")

    @property
    def zone(self) -> ZoneInfo:
        """The rep's zone (``ZoneInfo`` caches instances, so this is a dictionary look-up)."""
        return ZoneInfo(self.time_zone)


# --- Local wall-clock time -> instants ----------------------------------------------------------------------


def _utc(naive: datetime, offset: timedelta) -> datetime:
    # combine() rather than replace(): replace() with keywords costs several times more on the hot path.
    return datetime.combine(naive.date(), naive.time(), UTC) - offset


def _twin(naive: datetime) -> datetime:
    """``naive`` with fold=1: the later of two readings in a fold, the post-transition offset in a gap."""
    return datetime.combine(naive.date(), naive.time().replace(fold=1))


def _reading(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the rep's clock shows at ``instant`` (a naive local datetime)."""
    local = instant.astimezone(zone)
    return datetime.combine(local.date(), local.time())


def _occurrences(naive: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """Every instant at which the clock shows ``naive``: none in a gap, two in a fold, else one (sorted)."""
    first = _utc(naive, zone.utcoffset(naive))
    second = _utc(naive, zone.utcoffset(_twin(naive)))
    if first == second:
        return (first,)
    # The offsets differ, so a transition is near: a fold when both instants read back as ``naive``, a gap
    # when neither does (zoneinfo then maps fold=0 past the gap and fold=1 before it).
    if _reading(first, zone) == naive and _reading(second, zone) == naive:
        return (min(first, second), max(first, second))
    return ()


def _gap_end(naive: datetime, zone: ZoneInfo) -> datetime:
    """The first instant after the gap that swallows ``naive``: where the clock jumps past it."""
    low = _utc(naive, zone.utcoffset(_twin(naive)))  # the post-transition offset: reads before ``naive``
    high = _utc(naive, zone.utcoffset(naive))  # the pre-transition offset: reads after ``naive``
    if low > high:
        low, high = high, low
    # Transitions fall on whole seconds: bisect on them (a dozen steps for an hour-long gap; gap days only).
    while high - low > _SECOND:
        middle = low + _SECOND * (((high - low) // _SECOND) // 2)
        if _reading(middle, zone) >= naive:
            high = middle
        else:
            low = middle
    return high


def _span_start(naive: datetime, zone: ZoneInfo) -> datetime:
    """The first instant the clock shows ``naive`` or later: its first occurrence, or the gap's end."""
    found = _occurrences(naive, zone)
    return found[0] if found else _gap_end(naive, zone)


def _span_end(naive: datetime, zone: ZoneInfo) -> datetime:
    """The instant after which the clock never again shows a time before ``naive``."""
    found = _occurrences(naive, zone)
    if not found:
        return _gap_end(naive, zone)
    # The later occurrence of an ambiguous end, unless the clock read ``naive`` or later right before it (an
    # end at the very start of the repeated hour): then the range was over at the first occurrence.
    for instant in reversed(found):
        if _reading(instant - _EPSILON, zone) < naive:
            return instant
    return found[0]


# A range ready for expansion: start, end, the end with fold=1, and how many days after its date it ends.
_Prepared = tuple[time, time, time, timedelta]


def _prepare(ranges: Iterable[Range]) -> list[_Prepared]:
    # Worked out once per call rather than once per date.
    return [(start, end, end.replace(fold=1), _DAY if end == _MIDNIGHT else _ZERO) for start, end in ranges]


def _range_candidates(
    zone: ZoneInfo, day: date, prepared: _Prepared, step: timedelta, length: timedelta
) -> tuple[datetime, int] | list[datetime]:
    """The candidate starts of one range on one local date: the grid times whose meeting fits in the span.

    Usually ``(first, count)``, the starts ``first + k * step`` for ``k < count`` (one offset over the whole
    range, elapsed and wall-clock steps coincide); on a day a transition touches the range, the list of them.
    """
    start, end, end_twin, shift = prepared
    end_day = day + shift
    first = datetime.combine(day, start)
    stop = datetime.combine(end_day, end)
    count = -((first - stop) // step)  # grid times first + k * step strictly before stop
    offset = zone.utcoffset(first)
    # A transition between the ends, or a gap or fold at either end, shows as the start read before it
    # (fold=0: the earlier offset) disagreeing with the end read after it (fold=1: the later offset). A range
    # is shorter than a day and tzdata has no pair of opposite changes hours apart, so agreement means one
    # offset throughout, where wall-clock and elapsed steps coincide.
    if zone.utcoffset(datetime.combine(end_day, end_twin)) == offset:
        room = stop - first - length
        fitting = min(count, room // step + 1) if room >= _ZERO else 0
        return datetime.combine(day, start, UTC) - offset, fitting
    # A transition touches this range: map each grid time on its own (gap: none, fold: both instants).
    last = _span_end(stop, zone) - length
    found = [
        instant for k in range(count) for instant in _occurrences(first + k * step, zone) if instant <= last
    ]
    return sorted(found)


def _first_instant(day: date, zone: ZoneInfo) -> datetime:
    return _span_start(datetime.combine(day, _MIDNIGHT), zone)


# --- Busy time ----------------------------------------------------------------------------------------------


def _as_utc(value: datetime, what: str) -> datetime:
    if value.tzinfo is UTC:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _merge_busy(
    busy: Iterable[tuple[datetime, datetime]], hi: datetime
) -> tuple[list[datetime], list[datetime]]:
    """The union of the ``busy`` intervals starting before ``hi``: disjoint, sorted ``(starts, ends)`` lists.

    Intervals from several calendars may overlap and come in any order; zero-length and inverted ones are
    ignored. Touching intervals merge, which leaves every overlap test on half-open slots unchanged, and so
    do intervals that ended long before the window: a bisection skips them for free.
    """
    # Zoned datetimes add and, within one zone, compare by wall clock: wrong across a fold. Starts decide the
    # order, so any start not in UTC (the store hands back UTC) sends every row through a conversion first;
    # the check runs without a Python-level loop.
    if not isinstance(busy, list | tuple):
        busy = list(busy)
    if set(map(_tzinfo, map(_by_start, busy))) - {UTC}:
        busy = [(_as_utc(start, "a busy start"), _as_utc(end, "a busy end")) for start, end in busy]
    # Sorting on the start alone skips tuple comparisons; rows read in start order (one run per calendar)
    # sort in about linear time.
    rows = sorted(busy, key=_by_start)
    starts: list[datetime] = []
    ends: list[datetime] = []
    # The sweep opens on an empty sentinel interval, dropped at the end, so the loop has no first-row case.
    # The running end is kept in UTC, so an end in another zone compares against it by instant, and only
    # the ends that extend it are converted.
    current_start = current_end = _FLOOR
    try:
        for start, end in islice(rows, bisect_left(rows, hi, key=_by_start)):
            if start <= current_end:
                if end > current_end:
                    current_end = end if end.tzinfo is UTC else _as_utc(end, "a busy end")
            elif start < end:  # an inverted or zero-length interval never opens a merged one
                starts.append(current_start)
                ends.append(current_end)
                current_start, current_end = start, end if end.tzinfo is UTC else _as_utc(end, "a busy end")
    except TypeError as error:  # a naive end met an aware datetime
        raise ValueError(f"busy intervals must be aware datetimes: {error}") from error
    starts.append(current_start)
    ends.append(current_end)
    if ends[0] == _FLOOR:  # still empty (a real interval from datetime.min would have grown it)
        del starts[0], ends[0]
    return starts, ends


def _free_on_grid(
    found: list[datetime],
    begin: datetime,
    size: int,
    step: timedelta,
    lo: datetime,
    hi: datetime,
    before: timedelta,
    reach: timedelta,
    starts: list[datetime],
    ends: list[datetime],
) -> None:
    """Append to ``found`` the free starts among ``begin + k * step`` (``k < size``) within ``[lo, hi)``.

    Walks runs instead of candidates: each turn either emits a run of free starts up to the next busy interval
    or jumps past the starts that interval blocks, so a range costs one bisection per busy interval inside
    it, not one per candidate (with ``lo >= begin``).
    """
    k = -((begin - lo) // step)  # the first start at or after lo
    stop = min(size, -((begin - hi) // step))  # past the last start before hi
    count = len(starts)
    index = 0
    while k < stop:
        instant = begin + k * step
        # The first merged busy interval ending after this start's buffer opens; earlier ones are behind us.
        index = bisect_right(ends, instant - before, index)
        if index == count:
            found += [begin + step * i for i in range(k, stop)]
            return
        # Starts whose meeting and after-buffer end by the interval's start are free.
        blocked = min(stop, (starts[index] - reach - begin) // step + 1)
        if blocked > k:
            found += [begin + step * i for i in range(k, blocked)]
        # Starts whose before-buffer opens before the interval ends are not: go to the first that opens after.
        k = max(blocked, -((begin - ends[index] - before) // step))


# --- The engine ---------------------------------------------------------------------------------------------


def free_slots(
    rules: PageRules,
    busy: Sequence[tuple[datetime, datetime]],
    *,
    window_start: datetime,
    window_end: datetime,
    now: datetime,
    duration: timedelta | None = None,
) -> list[datetime]:
    """The free starts (sorted, aware UTC) of a ``duration`` meeting within ``[window_start, window_end)``.

    ``busy``: aware ``(start, end)`` intervals, the busy blocks of every calendar checked for availability and
    the rep's existing bookings, in any order and overlapping freely. ``duration``: one of ``rules.durations``
    (default: the first). See the module docstring for how gaps, folds, the grid, buffers, notice and horizon
    are handled. Raises ``ValueError`` for a duration the page does not offer or a naive datetime.
    """
    length = rules.durations[0] if duration is None else duration
    if length not in rules.durations:
        raise ValueError(f"this page does not offer a {length} meeting (it offers {rules.durations})")
    step = rules.increment or length
    now = _as_utc(now, "now")
    lo = max(_as_utc(window_start, "window_start"), now + rules.min_notice)
    hi = _as_utc(window_end, "window_end")
    if lo >= hi:
        return []
    zone = rules.zone
    before, after = rules.buffer_before, rules.buffer_after

    # Local dates whose ranges may hold a start in [lo, hi): a day of margin each side, because a fold or gap
    # over midnight lets an instant read as the neighbouring date.
    first_day = _reading(lo, zone).date() - _DAY
    last_day = _reading(hi, zone).date() + _DAY
    if rules.horizon_days is not None:
        last_day = min(last_day, _reading(now, zone).date() + timedelta(days=rules.horizon_days - 1))
    if rules.date_range is not None:
        first_day = max(first_day, rules.date_range[0])
        last_day = min(last_day, rules.date_range[1])
    if first_day > last_day:
        return []

    starts, ends = _merge_busy(busy, hi + length + after)
    count = len(starts)
    weekly = [_prepare((rule.start, rule.end) for rule in rules.rules if rule.weekday == d) for d in range(7)]
    overrides = {override.day: _prepare(override.ranges) for override in rules.overrides}

    reach = length + after
    found: list[datetime] = []
    reordered = False  # several ranges in a day, or a folded grid time, can repeat or reorder starts
    day = first_day
    while day <= last_day:
        ranges = overrides[day] if day in overrides else weekly[day.weekday()]
        reordered = reordered or len(ranges) > 1
        for prepared in ranges:
            candidates = _range_candidates(zone, day, prepared, step, length)
            if isinstance(candidates, list):
                reordered = True
                # A transition day: few candidates, each checked on its own. The first merged busy interval
                # ending after the buffered start is the only one that can overlap: later ones start after it.
                for instant in candidates:
                    if lo <= instant < hi:
                        index = bisect_right(ends, instant - before)
                        if index == count or starts[index] >= instant + reach:
                            found.append(instant)
                continue
            _free_on_grid(found, *candidates, step, max(lo, candidates[0]), hi, before, reach, starts, ends)
        day += _DAY
    if not reordered:
        return found
    # Sorting and comparing neighbours, rather than a set: hashing an aware datetime costs an offset look-up.
    found.sort()
    return [instant for instant, previous in zip(found, [None, *found], strict=False) if instant != previous]


# --- The rep's own limits (T1, T4) --------------------------------------------------------------------------


@dataclass(frozen=True)
class RepHours:
    """A rep's limits on every page they are booked through, in the rep's ``time_zone`` (an IANA name).

    ``weekly``: the rep's working hours (``None``: no limit beyond each page's hours); ``time_off``:
    inclusive ranges of local dates with no meetings at all (vacations, holidays). A page's slot is kept
    when the whole meeting lies in the rep's working time: the spans of the working ranges (read at DST
    changes as a page's ranges are) of the dates not off, touching spans joined, so a meeting may run past
    midnight from one working day into the next.
    """

    time_zone: str
    weekly: tuple[WeeklyRule, ...] | None = None
    time_off: tuple[tuple[date, date], ...] = ()

    def __post_init__(self) -> None:
        ZoneInfo(self.time_zone)
        if self.weekly is not None:
            object.__setattr__(self, "weekly", tuple(self.weekly))
        time_off = tuple((first, last) for first, last in self.time_off)
        for first, last in time_off:
            if first > last:
                raise ValueError(f"time off ends before it starts: {first} > {last}")
        object.__setattr__(self, "time_off", time_off)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def is_off(self, day: date) -> bool:
        return any(first <= day <= last for first, last in self.time_off)


def _working_spans(hours: RepHours, first_day: date, last_day: date) -> tuple[list[datetime], list[datetime]]:
    """The rep's working time over local dates ``first_day..last_day``: disjoint sorted ``(starts, ends)``."""
    zone = hours.zone
    whole_day = [(_MIDNIGHT, _MIDNIGHT)]
    weekly = None
    if hours.weekly is not None:
        weekly = [[(r.start, r.end) for r in hours.weekly if r.weekday == d] for d in range(7)]
    spans: list[tuple[datetime, datetime]] = []
    day = first_day
    while day <= last_day:
        if not hours.is_off(day):
            for start, end in whole_day if weekly is None else weekly[day.weekday()]:
                end_day = day + _DAY if end == _MIDNIGHT else day
                begin = _span_start(datetime.combine(day, start), zone)
                finish = _span_end(datetime.combine(end_day, end), zone)
                if begin < finish:
                    spans.append((begin, finish))
        day += _DAY
    spans.sort()
    starts: list[datetime] = []
    ends: list[datetime] = []
    for begin, finish in spans:
        if ends and begin <= ends[-1]:
            ends[-1] = max(ends[-1], finish)
        else:
            starts.append(begin)
            ends.append(finish)
    return starts, ends


def within_rep_hours(
    slots: Sequence[datetime],
    length: timedelta,
    hours: RepHours,
    *,
    full_days: Collection[date] = (),
) -> list[datetime]:
    """The ``slots`` (aware starts of ``length`` meetings, sorted) the rep's own limits leave.

    A slot stays when its meeting lies wholly in the rep's working time (``RepHours``) and it starts on a
    local date of the rep not in ``full_days`` (the dates already at the rep's daily maximum of meetings).
    Costs ``O(D x R)`` for the ``D`` dates the slots cover, plus ``O(log)`` a slot.
    """
    if not slots:
        return []
    zone = hours.zone
    first_day = _reading(_as_utc(slots[0], "a slot"), zone).date() - _DAY
    last_day = _reading(_as_utc(slots[-1], "a slot") + length, zone).date() + _DAY
    starts, ends = _working_spans(hours, first_day, last_day)
    full = set(full_days)
    kept = []
    for slot in slots:
        index = bisect_right(starts, slot) - 1
        if index < 0 or ends[index] < slot + length:
            continue
        if full and _reading(slot, zone).date() in full:
            continue
        kept.append(slot)
    return kept


def combine(per_member: Iterable[Sequence[datetime]], *, every: bool) -> list[datetime]:
    """Combine members' free starts (each sorted): ``every`` False is the union (a round-robin page, one
    free member is enough), True the intersection (a group page, every member free). ``O(N log M)`` for
    ``N`` starts over ``M`` members, by a heap merge."""
    lists = [list(starts) for starts in per_member]
    if not lists:
        return []
    if every:
        common = set(lists[0]).intersection(*lists[1:])
        return sorted(common)
    merged = []
    for instant in heapq.merge(*lists):
        if not merged or merged[-1] != instant:
            merged.append(instant)
    return merged


# --- The visitor's side -------------------------------------------------------------------------------------


def visitor_window(first_day: date, days: int, time_zone: str) -> tuple[datetime, datetime]:
    """The UTC instants bounding ``days`` local dates from ``first_day`` in the visitor's ``time_zone``.

    Each bound is the first instant of its date (a midnight the clock skips starts when the date does).
    """
    if days < 0:
        raise ValueError(f"days must be non-negative, got {days!r}")
    zone = ZoneInfo(time_zone)
    return _first_instant(first_day, zone), _first_instant(first_day + timedelta(days=days), zone)


def group_by_local_date(slots: Iterable[datetime], time_zone: str) -> dict[date, list[datetime]]:
    """``slots`` grouped by the visitor's local date, as aware datetimes in ``time_zone``, in input order."""
    zone = ZoneInfo(time_zone)
    groups: dict[date, list[datetime]] = {}
    for slot in slots:
        local = slot.astimezone(zone)
        groups.setdefault(local.date(), []).append(local)
    return groups
