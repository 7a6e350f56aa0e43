"""A deliberately simple minute-grid oracle for the slot engine (``app.pages.availability``).

It shares none of the engine's logic: no offset arithmetic, no fold or gap handling, no sorting or merging of
busy time. It walks every UTC minute around the window, asks zoneinfo only what the rep's clock shows then
(UTC -> local, which is never ambiguous), and derives everything from those readings:

* a range ``[start, end)`` of local date *d* spans from the first minute whose reading is on *d* within the
  range to just after the last such minute;
* a minute is a candidate start when its reading is on the increment grid of such a range, and the meeting
  ends within the span;
* every minute touched by a busy interval is marked in a bytearray, and a candidate is free when each
  minute of ``[start - buffer_before, end + buffer_after)`` is unmarked, checked one by one.

It assumes what the engine's settings guarantee (whole-minute durations, increment and buffers) and zones
whose offsets are whole minutes (every zone since the 1970s). It is slow by design; the tests and
``bench/slots.py`` compare the engine's output with it.
"""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from app.pages.availability import PageRules, RepHours

MINUTE = timedelta(minutes=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _minutes(value: timedelta) -> int:
    return int(value / MINUTE)


def _minute_floor(instant: datetime) -> int:
    """Whole minutes from the epoch to ``instant``, rounded down."""
    return (instant.astimezone(UTC) - EPOCH) // MINUTE


def _minute_ceil(instant: datetime) -> int:
    return -((EPOCH - instant.astimezone(UTC)) // MINUTE)


def oracle_slots(rules: PageRules, busy, *, window_start, window_end, now, duration=None) -> list[datetime]:
    """The free starts of ``free_slots(rules, busy, ...)``, computed minute by minute."""
    zone = ZoneInfo(rules.time_zone)
    length = _minutes(rules.durations[0] if duration is None else duration)
    step = _minutes(rules.increment) if rules.increment is not None else length
    before = _minutes(rules.buffer_before)
    after = _minutes(rules.buffer_after)
    earliest = now + rules.min_notice
    today = now.astimezone(zone).date()

    # Two days of margin hold every local date a start in the window can belong to, whole.
    if window_end <= window_start:
        return []
    margin = 2 * 24 * 60 + before + after + length
    origin = _minute_floor(window_start) - margin
    size = _minute_ceil(window_end) + margin - origin

    taken = bytearray(size)
    for start, end in busy:
        if end <= start:
            continue
        for minute in range(max(_minute_floor(start) - origin, 0), min(_minute_ceil(end) - origin, size)):
            taken[minute] = 1

    def ranges_of(day):
        for override in rules.overrides:
            if override.day == day:
                return list(override.ranges)
        return [(rule.start, rule.end) for rule in rules.rules if rule.weekday == day.weekday()]

    def minute_of_day(value) -> int:
        return value.hour * 60 + value.minute

    readings = [(EPOCH + (origin + minute) * MINUTE).astimezone(zone) for minute in range(size)]

    # Pass 1: where the span of every (date, range) ends, from the readings alone (a candidate's own reading
    # puts it inside the span, so where the span starts never matters).
    last_seen: dict[tuple, int] = {}
    ranges_cache: dict = {}
    for minute, reading in enumerate(readings):
        day = reading.date()
        if day not in ranges_cache:
            ranges_cache[day] = ranges_of(day)
        clock = minute_of_day(reading)
        for index, (start, end) in enumerate(ranges_cache[day]):
            stop = 24 * 60 if minute_of_day(end) == 0 else minute_of_day(end)
            if minute_of_day(start) <= clock < stop:
                last_seen[(day, index)] = minute

    # Pass 2: every minute whose reading sits on a range's grid, tested minute by minute.
    slots = []
    for minute, reading in enumerate(readings):
        day = reading.date()
        instant = EPOCH + (origin + minute) * MINUTE
        if not (window_start <= instant < window_end) or instant < earliest:
            continue
        if rules.horizon_days is not None and (day - today).days >= rules.horizon_days:
            continue
        if rules.date_range is not None and not (rules.date_range[0] <= day <= rules.date_range[1]):
            continue
        clock = minute_of_day(reading)
        for index, (start, end) in enumerate(ranges_cache[day]):
            stop = 24 * 60 if minute_of_day(end) == 0 else minute_of_day(end)
            if not (minute_of_day(start) <= clock < stop) or (clock - minute_of_day(start)) % step:
                continue
            if minute + length > last_seen[(day, index)] + 1:
                continue
            if all(taken[other] == 0 for other in range(minute - before, minute + length + after)):
                slots.append(instant)
                break
    return slots


def oracle_rep_hours(slots, length, hours: RepHours, *, full_days=()) -> list[datetime]:
    """``within_rep_hours(slots, length, hours, full_days=...)``, minute by minute: a slot stays when every
    minute of its meeting reads, on the rep's clock, as a time inside a working range of a date not off,
    and its start reads as a date not in ``full_days``."""
    zone = ZoneInfo(hours.time_zone)

    def working(instant) -> bool:
        reading = instant.astimezone(zone)
        day = reading.date()
        if any(first <= day <= last for first, last in hours.time_off):
            return False
        if hours.weekly is None:
            return True
        clock = reading.hour * 60 + reading.minute
        for rule in hours.weekly:
            stop = (
                24 * 60
                if (rule.end.hour, rule.end.minute) == (0, 0)
                else rule.end.hour * 60 + rule.end.minute
            )
            if rule.weekday == day.weekday() and rule.start.hour * 60 + rule.start.minute <= clock < stop:
                return True
        return False

    steps = _minutes(length)
    return [
        slot
        for slot in slots
        if slot.astimezone(zone).date() not in set(full_days)
        and all(working(slot + k * MINUTE) for k in range(steps))
    ]


def oracle_combine(per_member, *, every: bool) -> list[datetime]:
    """Union (``every`` False) or intersection of members' starts, by counting."""
    counts: dict[datetime, int] = {}
    for starts in per_member:
        for start in set(starts):
            counts[start] = counts.get(start, 0) + 1
    needed = len(per_member) if every else 1
    return sorted(start for start, count in counts.items() if count >= needed)
