"""The slot engine on its own (no database, no app): DST in five zones, the page settings one by one, and the
engine against the minute-grid oracle on random pages, busy calendars and windows around clock changes."""

import functools
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.pages.availability import (
    DateOverride,
    PageRules,
    WeeklyRule,
    free_slots,
    group_by_local_date,
    visitor_window,
)
from tests.pages.oracle import oracle_slots

WARSAW = "Europe/Warsaw"
NEW_YORK = "America/New_York"
KOLKATA = "Asia/Kolkata"
LORD_HOWE = "Australia/Lord_Howe"

# "now" long before every window unless a test is about notice or horizon.
EARLY = datetime(2029, 1, 1, tzinfo=UTC)


def minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


def every_day(start: time, end: time) -> tuple[WeeklyRule, ...]:
    return tuple(WeeklyRule(weekday, start, end) for weekday in range(7))


def page(zone: str = WARSAW, rules=None, **settings) -> PageRules:
    settings.setdefault("horizon_days", None)
    return PageRules(zone, rules=every_day(time(9), time(17)) if rules is None else rules, **settings)


def local(zone: str, day: date, hour: int, minute: int = 0, fold: int = 0) -> datetime:
    """The UTC instant of a wall-clock time (fold picks the occurrence of an ambiguous one)."""
    naive = datetime.combine(day, time(hour, minute, fold=fold))
    return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def slots_on(rules: PageRules, day: date, busy=(), *, now=EARLY, duration=None) -> list[datetime]:
    """The free slots of one local date of the rep's zone."""
    start, end = visitor_window(day, 1, rules.time_zone)
    return free_slots(rules, list(busy), window_start=start, window_end=end, now=now, duration=duration)


def clock(slots, zone: str) -> list[str]:
    return [slot.astimezone(ZoneInfo(zone)).strftime("%H:%M") for slot in slots]


def utc_clock(slots) -> list[str]:
    return [slot.strftime("%d %H:%M") for slot in slots]


def grid(start: str, end: str, step: int) -> list[str]:
    """Wall-clock times from start (inclusive) to end (exclusive) every ``step`` minutes."""
    first, stop = (int(text[:2]) * 60 + int(text[3:]) for text in (start, end))
    return [f"{value // 60:02d}:{value % 60:02d}" for value in range(first, stop, step)]


# --- DST: 9:00-17:00 stays 9:00-17:00 on both sides of every change -----------------------------------------

CHANGES = [
    pytest.param(WARSAW, date(2030, 3, 31), minutes(60), id="warsaw-spring"),
    pytest.param(WARSAW, date(2030, 10, 27), minutes(-60), id="warsaw-autumn"),
    pytest.param(NEW_YORK, date(2030, 3, 10), minutes(60), id="new-york-spring"),
    pytest.param(NEW_YORK, date(2030, 11, 3), minutes(-60), id="new-york-autumn"),
    pytest.param(LORD_HOWE, date(2030, 10, 6), minutes(30), id="lord-howe-spring"),
    pytest.param(LORD_HOWE, date(2030, 4, 7), minutes(-30), id="lord-howe-autumn"),
]


@pytest.mark.parametrize(("zone", "change_day", "shift"), CHANGES)
def test_nine_to_five_stays_nine_to_five_across_a_change(zone, change_day, shift):
    rules = page(zone)
    first, last = visitor_window(change_day - timedelta(days=1), 3, zone)
    slots = free_slots(rules, [], window_start=first, window_end=last, now=EARLY)

    days = group_by_local_date(slots, zone)
    assert list(days) == [change_day - timedelta(days=1), change_day, change_day + timedelta(days=1)]
    for starts in days.values():
        assert [start.strftime("%H:%M") for start in starts] == grid("09:00", "17:00", 30)
    before = days[change_day - timedelta(days=1)][0]
    after = days[change_day + timedelta(days=1)][0]
    # The same wall-clock 9:00, under offsets that differ by exactly the change.
    assert after.utcoffset() - before.utcoffset() == shift
    assert after.astimezone(UTC) - before.astimezone(UTC) == timedelta(days=2) - shift
    assert all(slot.tzinfo is UTC for slot in slots)


def test_kolkata_has_no_change_and_a_half_hour_offset():
    rules = page(KOLKATA)
    slots = slots_on(rules, date(2030, 3, 31))
    assert clock(slots, KOLKATA) == grid("09:00", "17:00", 30)
    assert slots[0] == datetime(2030, 3, 31, 3, 30, tzinfo=UTC)
    # A year later, and across Warsaw's and New York's changes, the same UTC grid: Kolkata never shifts.
    for day in (date(2030, 3, 9), date(2030, 10, 27), date(2030, 11, 3)):
        assert [slot.strftime("%H:%M") for slot in slots_on(rules, day)] == [
            slot.strftime("%H:%M") for slot in slots
        ]


def test_a_visitor_window_crossing_their_own_change():
    """A New York visitor's week over New York's spring change, a Warsaw rep who does not change then."""
    rules = page(WARSAW, rules=tuple(WeeklyRule(weekday, time(15), time(17)) for weekday in range(5)))
    start, end = visitor_window(date(2030, 3, 8), 5, NEW_YORK)
    assert start == datetime(2030, 3, 8, 5, tzinfo=UTC)  # midnight EST
    assert end == datetime(2030, 3, 13, 4, tzinfo=UTC)  # midnight EDT
    slots = free_slots(rules, [], window_start=start, window_end=end, now=EARLY)
    days = group_by_local_date(slots, NEW_YORK)
    # Friday, Monday and Tuesday; the rep's 15:00-17:00 CET is 9:00 EST before the change, 10:00 EDT after.
    assert [day.isoformat() for day in days] == ["2030-03-08", "2030-03-11", "2030-03-12"]
    assert [slot.strftime("%H:%M") for slot in days[date(2030, 3, 8)]] == ["09:00", "09:30", "10:00", "10:30"]
    assert [slot.strftime("%H:%M") for slot in days[date(2030, 3, 11)]] == [
        "10:00",
        "10:30",
        "11:00",
        "11:30",
    ]
    assert clock(slots, WARSAW) == grid("15:00", "17:00", 30) * 3


def test_a_rep_window_crossing_the_reps_change_in_utc_instants():
    """UTC window bounds in the middle of days; the grid stays on the rep's wall clock across the change."""
    rules = page(NEW_YORK, rules=every_day(time(8), time(10)))
    slots = free_slots(
        rules,
        [],
        window_start=datetime(2030, 3, 9, 13, 30, tzinfo=UTC),  # 8:30 EST on Saturday
        window_end=datetime(2030, 3, 11, 12, 30, tzinfo=UTC),  # 8:30 EDT on Monday
        now=EARLY,
    )
    assert utc_clock(slots) == [
        "09 13:30", "09 14:00", "09 14:30", "10 12:00", "10 12:30", "10 13:00", "10 13:30", "11 12:00"
    ]  # fmt: skip
    assert utc_clock(slots) == utc_clock(
        oracle_slots(
            rules,
            [],
            window_start=datetime(2030, 3, 9, 13, 30, tzinfo=UTC),
            window_end=datetime(2030, 3, 11, 12, 30, tzinfo=UTC),
            now=EARLY,
        )
    )


# --- Gaps and folds: ranges over the repeated or skipped hour -----------------------------------------------

SPRING = date(2030, 3, 31)  # Warsaw skips 02:00-03:00 (01:00 UTC)
AUTUMN = date(2030, 10, 27)  # Warsaw shows 02:00-03:00 twice (00:00-01:00 and 01:00-02:00 UTC)


def night(start: time, end: time, **settings) -> PageRules:
    return page(WARSAW, rules=every_day(start, end), **settings)


def test_gap_a_range_starting_inside_it_starts_at_the_first_instant_after_it():
    slots = slots_on(night(time(2, 30), time(5)), SPRING)
    assert clock(slots, WARSAW) == ["03:00", "03:30", "04:00", "04:30"]
    assert slots[0] == datetime(2030, 3, 31, 1, tzinfo=UTC)  # the instant the clock jumps
    # Grid times lie on the rep's wall clock from the range's start: 02:30 does not exist, 03:30 does.
    hourly = slots_on(night(time(2, 30), time(5), increment=minutes(60)), SPRING)
    assert clock(hourly, WARSAW) == ["03:30", "04:30"]


def test_gap_a_range_ending_inside_it_ends_where_the_clock_jumps():
    rules = night(time(0), time(2, 30), durations=(minutes(90),), increment=minutes(30))
    # 00:30 + 90 minutes ends exactly at the jump (02:00 CET = 03:00 CEST); 01:00 would end after it.
    assert clock(slots_on(rules, SPRING), WARSAW) == ["00:00", "00:30"]
    assert clock(slots_on(rules, SPRING - timedelta(days=7)), WARSAW) == ["00:00", "00:30", "01:00"]


def test_gap_a_range_inside_it_is_empty_and_its_grid_time_gives_no_slot():
    assert slots_on(night(time(2), time(3)), SPRING) == []
    assert clock(slots_on(night(time(1), time(4), increment=minutes(60)), SPRING), WARSAW) == [
        "01:00",
        "03:00",
    ]


def test_fold_a_range_over_the_repeated_hour_offers_both_occurrences():
    slots = slots_on(night(time(1), time(4)), AUTUMN)
    assert clock(slots, WARSAW) == ["01:00", "01:30", "02:00", "02:30", "02:00", "02:30", "03:00", "03:30"]
    # In UTC an unbroken half-hour grid: four hours of elapsed time for three on the clock.
    assert utc_clock(slots) == [
        "26 23:00", "26 23:30", "27 00:00", "27 00:30", "27 01:00", "27 01:30", "27 02:00", "27 02:30"
    ]  # fmt: skip


def test_fold_an_ambiguous_start_is_taken_at_its_first_occurrence():
    slots = slots_on(night(time(2, 30), time(5)), AUTUMN)
    assert slots[0] == local(WARSAW, AUTUMN, 2, 30, fold=0)
    # The second 02:00 (01:00 UTC) reads before 02:30, so it is not in the range; the second 02:30 is.
    assert utc_clock(slots) == ["27 00:30", "27 01:30", "27 02:00", "27 02:30", "27 03:00", "27 03:30"]


def test_fold_an_ambiguous_end_is_taken_at_its_last_occurrence():
    rules = night(time(0), time(2, 30))
    slots = slots_on(rules, AUTUMN)
    assert clock(slots, WARSAW) == ["00:00", "00:30", "01:00", "01:30", "02:00", "02:00"]
    assert slots[-1] == local(WARSAW, AUTUMN, 2, 0, fold=1)  # ends at the second 02:30
    longer = slots_on(night(time(0), time(2, 30), durations=(minutes(60),), increment=minutes(30)), AUTUMN)
    # The first 02:00 + 60 minutes is the second 02:00, inside the range; the second 02:00 + 60 is not.
    assert longer[-1] == local(WARSAW, AUTUMN, 2, 0, fold=0)


def test_fold_an_end_at_the_start_of_the_repeated_hour_ends_at_its_first_occurrence():
    # Until 02:00: the clock never shows a time before 02:00 again after the first 02:00.
    rules = night(time(0), time(2), durations=(minutes(90),), increment=minutes(60))
    assert clock(slots_on(rules, AUTUMN), WARSAW) == ["00:00"]
    rules = night(time(0), time(2), durations=(minutes(60),))
    slots = slots_on(rules, AUTUMN)
    assert clock(slots, WARSAW) == ["00:00", "01:00"]
    assert slots[-1] + minutes(60) == local(WARSAW, AUTUMN, 2, 0, fold=0)


def test_lord_howe_half_hour_gap_and_fold_keep_the_hourly_grid():
    rules = page(LORD_HOWE, rules=every_day(time(0), time(4)), durations=(minutes(60),))
    # Spring (2:00 -> 2:30): 01:00 + 60 minutes ends at 02:30 LHDT; 02:00 does not exist.
    spring = slots_on(rules, date(2030, 10, 6))
    assert clock(spring, LORD_HOWE) == ["00:00", "01:00", "03:00"]
    assert spring[1] + minutes(60) == local(LORD_HOWE, date(2030, 10, 6), 2, 30)
    # Autumn (2:00 -> 1:30): 01:30-02:00 happens twice; the hourly grid still starts on the hour.
    autumn = slots_on(rules, date(2030, 4, 7))
    assert clock(autumn, LORD_HOWE) == ["00:00", "01:00", "02:00", "03:00"]
    assert autumn[2] - autumn[1] == minutes(90)


def test_midnight_changes_and_the_24_00_end():
    # Santiago leaves DST at 24:00 on Saturday 6 April 2030: 23:00-24:00 happens twice.
    santiago = "America/Santiago"
    rules = page(santiago, rules=every_day(time(22), time(0)), durations=(minutes(60),))
    saturday = date(2030, 4, 6)
    slots = slots_on(rules, saturday)
    assert clock(slots, santiago) == ["22:00", "23:00", "23:00"]
    assert slots == oracle_slots(
        rules, [], window_start=slots[0] - timedelta(hours=2), window_end=slots[-1] + minutes(1), now=EARLY
    )
    # And enters DST at 24:00 on Saturday 7 September: Sunday's midnight does not exist, it starts at 01:00.
    start, end = visitor_window(date(2030, 9, 8), 1, santiago)
    assert start.astimezone(ZoneInfo(santiago)).strftime("%H:%M") == "01:00"
    assert end - start == timedelta(hours=23)


def test_a_fold_across_midnight_reads_back_into_the_previous_date():
    """St. John's fell back at 00:01 until 2011: Sunday's first minute, then Saturday 23:01-24:00 again."""
    st_johns = "America/St_Johns"
    rules = page(
        st_johns,
        rules=(WeeklyRule(5, time(22), time(0)), WeeklyRule(6, time(0), time(1))),
        durations=(minutes(30),),
    )
    then = datetime(2006, 1, 1, tzinfo=UTC)
    sunday = date(2006, 10, 29)
    first_midnight = local(st_johns, sunday, 0, 0, fold=0)
    # From Sunday's first minute on: Saturday's second 23:30 (a Saturday slot after a Sunday instant), then
    # Sunday's midnight again.
    window = {"window_start": first_midnight, "window_end": first_midnight + minutes(75)}
    slots = free_slots(rules, [], **window, now=then)
    assert slots == [
        first_midnight,
        local(st_johns, sunday - timedelta(days=1), 23, 30, fold=1),
        local(st_johns, sunday, 0, 0, fold=1),
    ]
    # Up to Saturday's second 23:45, Sunday's first 00:00 (a Sunday slot before a Saturday instant).
    second_evening = local(st_johns, sunday - timedelta(days=1), 23, 45, fold=1)
    slots = free_slots(rules, [], window_start=first_midnight, window_end=second_evening, now=then)
    assert slots == [first_midnight, local(st_johns, sunday - timedelta(days=1), 23, 30, fold=1)]
    start, end = first_midnight - timedelta(hours=3), first_midnight + timedelta(hours=3)
    assert free_slots(rules, [], window_start=start, window_end=end, now=then) == oracle_slots(
        rules, [], window_start=start, window_end=end, now=then
    )


# --- The page settings --------------------------------------------------------------------------------------

MONDAY = date(2030, 6, 3)
WORKWEEK = tuple(WeeklyRule(weekday, time(9), time(17)) for weekday in range(5))


def at(hour: int, minute: int = 0, day: date = MONDAY) -> datetime:
    return local(WARSAW, day, hour, minute)


def test_buffers_apply_around_busy_time():
    rules = page(rules=WORKWEEK, increment=minutes(15), buffer_before=minutes(15), buffer_after=minutes(10))
    slots = slots_on(rules, MONDAY, [(at(12), at(13))])
    # [s - 15, s + 30 + 10) must clear 12:00-13:00: s <= 11:20 (grid: 11:15) or s >= 13:15.
    assert "11:15" in clock(slots, WARSAW)
    assert [t for t in clock(slots, WARSAW) if "11:15" < t < "13:15"] == []
    assert "13:15" in clock(slots, WARSAW)
    # Buffers are about busy time only: the first and last starts of the day are untouched.
    assert clock(slots, WARSAW)[0] == "09:00"
    assert clock(slots, WARSAW)[-1] == "16:30"


def test_minimum_notice():
    rules = page(rules=WORKWEEK, increment=minutes(15), min_notice=timedelta(hours=2))
    slots = slots_on(rules, MONDAY, now=at(10, 7))
    assert clock(slots, WARSAW)[0] == "12:15"  # 10:07 + 2 h = 12:07, the next grid time
    assert slots_on(rules, MONDAY, now=at(16, 31)) == []
    assert clock(slots_on(rules, MONDAY, now=at(14, 30)), WARSAW)[0] == "16:30"  # exactly now + notice


def test_rolling_horizon_counts_local_dates_from_today():
    rules = page(rules=every_day(time(9), time(10)), horizon_days=3)
    now = local(WARSAW, MONDAY, 23, 30)  # 21:30 UTC: still Monday in Warsaw
    slots = free_slots(rules, [], window_start=now, window_end=now + timedelta(days=10), now=now)
    assert sorted(group_by_local_date(slots, WARSAW)) == [
        MONDAY + timedelta(days=1),
        MONDAY + timedelta(days=2),
    ]
    one = page(rules=every_day(time(9), time(10)), horizon_days=1)
    assert free_slots(one, [], window_start=at(0), window_end=at(0) + timedelta(days=5), now=at(0)) == [
        at(9),
        at(9, 30),
    ]


def test_fixed_date_range_and_both_limits():
    rules = page(rules=every_day(time(9), time(10)), date_range=(date(2030, 6, 5), date(2030, 6, 6)))
    slots = free_slots(rules, [], window_start=at(0), window_end=at(0) + timedelta(days=30), now=at(0))
    assert sorted(group_by_local_date(slots, WARSAW)) == [date(2030, 6, 5), date(2030, 6, 6)]
    both = page(
        rules=every_day(time(9), time(10)), date_range=(date(2030, 6, 5), date(2030, 6, 6)), horizon_days=3
    )
    slots = free_slots(both, [], window_start=at(0), window_end=at(0) + timedelta(days=30), now=at(0))
    assert sorted(group_by_local_date(slots, WARSAW)) == [date(2030, 6, 5)]


def test_overrides_replace_the_day():
    saturday = MONDAY + timedelta(days=5)
    tuesday = MONDAY + timedelta(days=1)
    rules = page(
        rules=WORKWEEK,
        overrides=(
            DateOverride(MONDAY),  # a day off
            DateOverride(tuesday, ((time(13), time(14)),)),  # other hours, not extra ones
            DateOverride(saturday, ((time(18), time(19)), (time(20), time(21)))),  # extra hours on a day off
        ),
    )
    assert slots_on(rules, MONDAY) == []
    assert clock(slots_on(rules, tuesday), WARSAW) == ["13:00", "13:30"]
    assert clock(slots_on(rules, saturday), WARSAW) == ["18:00", "18:30", "20:00", "20:30"]
    assert clock(slots_on(rules, MONDAY + timedelta(days=2)), WARSAW) == grid("09:00", "17:00", 30)


def test_several_ranges_a_day_and_overlapping_ones():
    split = page(rules=(WeeklyRule(0, time(9), time(11)), WeeklyRule(0, time(13), time(14))))
    assert clock(slots_on(split, MONDAY), WARSAW) == ["09:00", "09:30", "10:00", "10:30", "13:00", "13:30"]
    # Overlapping ranges with their own grids: the union, sorted, each start once.
    overlapping = page(
        rules=(WeeklyRule(0, time(9), time(11)), WeeklyRule(0, time(10, 15), time(11, 30))),
        increment=minutes(45),
    )
    assert clock(slots_on(overlapping, MONDAY), WARSAW) == ["09:00", "09:45", "10:15", "10:30", "11:00"]
    same = page(rules=(WeeklyRule(0, time(9), time(10)), WeeklyRule(0, time(9), time(10))))
    assert clock(slots_on(same, MONDAY), WARSAW) == ["09:00", "09:30"]


def test_multiple_durations():
    rules = page(rules=WORKWEEK, durations=(minutes(15), minutes(30), minutes(60)))
    busy = [(at(10), at(11))]
    assert clock(slots_on(rules, MONDAY, busy), WARSAW)[:5] == ["09:00", "09:15", "09:30", "09:45", "11:00"]
    hour = slots_on(rules, MONDAY, busy, duration=minutes(60))
    assert clock(hour, WARSAW) == ["09:00", "11:00", "12:00", "13:00", "14:00", "15:00", "16:00"]
    with pytest.raises(ValueError, match="does not offer"):
        slots_on(rules, MONDAY, duration=minutes(45))


def test_increments_that_do_not_divide_the_range():
    rules = page(rules=(WeeklyRule(0, time(9), time(10)),), durations=(minutes(20),), increment=minutes(25))
    assert clock(slots_on(rules, MONDAY), WARSAW) == ["09:00", "09:25"]  # 09:50 + 20 > 10:00
    rules = page(rules=WORKWEEK, increment=minutes(45))
    slots = clock(slots_on(rules, MONDAY), WARSAW)
    assert slots[:3] == ["09:00", "09:45", "10:30"]
    assert slots[-1] == "16:30"  # 9:00 + 10 x 45 minutes, ending 17:00 exactly
    # A meeting longer than the increment: starts every 15 minutes, each 60 minutes long.
    rules = page(
        rules=(WeeklyRule(0, time(9), time(10, 10)),), durations=(minutes(60),), increment=minutes(15)
    )
    assert clock(slots_on(rules, MONDAY), WARSAW) == ["09:00"]


def test_busy_time_overlapping_several_slots():
    rules = page(rules=WORKWEEK)
    slots = clock(slots_on(rules, MONDAY, [(at(10, 10), at(11, 50))]), WARSAW)
    assert slots == ["09:00", "09:30", *grid("12:00", "17:00", 30)]
    # A busy interval ending exactly at a start, and one starting exactly at an end, block nothing.
    assert clock(slots_on(rules, MONDAY, [(at(8), at(9)), (at(17), at(18))]), WARSAW) == grid(
        "09:00", "17:00", 30
    )
    # An all-day event blocks the whole day.
    assert slots_on(rules, MONDAY, [(at(0), at(0, day=MONDAY + timedelta(days=1)))]) == []


def test_messy_busy_input_from_several_calendars():
    rules = page(rules=WORKWEEK, increment=minutes(15))
    clean = [(at(10), at(12)), (at(14), at(14, 30))]
    messy = [
        (at(14, 10), at(14, 30)),  # calendar 2, out of order
        (at(11), at(12)),  # overlaps the next one
        (at(10), at(11, 30)),
        (at(14), at(14, 20)),  # calendar 3: overlaps the first
        (at(9, 30), at(9, 30)),  # zero-length: ignored
        (at(16), at(15)),  # inverted: ignored
        (at(12), at(12)),
        (local(WARSAW, MONDAY, 10).astimezone(ZoneInfo(NEW_YORK)), at(10, 30)),  # another zone, same instant
    ]
    assert slots_on(rules, MONDAY, messy) == slots_on(rules, MONDAY, clean)
    assert slots_on(rules, MONDAY, messy) == oracle_slots(
        rules, messy, window_start=at(0), window_end=at(0, day=MONDAY + timedelta(days=1)), now=EARLY
    )
    assert "09:30" in clock(slots_on(rules, MONDAY, messy), WARSAW)
    with pytest.raises(ValueError, match="aware"):
        slots_on(rules, MONDAY, [(datetime(2030, 6, 3, 10), datetime(2030, 6, 3, 11))])  # noqa: DTZ001


def test_busy_times_in_another_zone_across_its_fold():
    """Zoned datetimes compare and add by wall clock within their zone; the engine works in instants."""
    rules = page(
        "UTC", rules=every_day(time(5), time(7)), durations=(minutes(15),), buffer_before=minutes(15)
    )
    autumn = date(2030, 11, 3)  # New York shows 01:00-02:00 twice: 05:00-06:00 and 06:00-07:00 UTC
    new_york = ZoneInfo(NEW_YORK)
    busy = [
        (
            datetime.combine(autumn, time(1, 45), new_york),  # 05:45 UTC
            datetime.combine(autumn, time(1, 15, fold=1), new_york),  # 06:15 UTC, though it reads earlier
        )
    ]
    slots = slots_on(rules, autumn, busy)
    assert utc_clock(slots) == ["03 05:00", "03 05:15", "03 05:30", "03 06:30", "03 06:45"]
    as_utc = [(start.astimezone(UTC), end.astimezone(UTC)) for start, end in busy]
    assert slots == slots_on(rules, autumn, as_utc)
    # A UTC start with a zoned end, merged with a UTC interval it overlaps.
    mixed = [(as_utc[0][0], busy[0][1]), (as_utc[0][0] - minutes(5), as_utc[0][0] + minutes(1))]
    assert slots_on(rules, autumn, mixed) == slots_on(
        rules, autumn, [(as_utc[0][0] - minutes(5), as_utc[0][1])]
    )
    with pytest.raises(ValueError, match="aware"):
        slots_on(rules, autumn, [(as_utc[0][0], as_utc[0][1].replace(tzinfo=None))])


def test_windows_and_grouping():
    rules = page(rules=WORKWEEK)
    assert free_slots(rules, [], window_start=at(12), window_end=at(12), now=EARLY) == []
    slots = free_slots(rules, [], window_start=at(12, 10), window_end=at(13, 30), now=EARLY)
    assert clock(slots, WARSAW) == ["12:30", "13:00"]  # starts in the window; the window's end is exclusive
    grouped = group_by_local_date(slots_on(rules, MONDAY), "Pacific/Auckland")  # 19:00-03:00 there
    assert [day.isoformat() for day in grouped] == ["2030-06-03", "2030-06-04"]
    assert all(str(slot.tzinfo) == "Pacific/Auckland" for slots in grouped.values() for slot in slots)
    with pytest.raises(ValueError, match="aware"):
        free_slots(rules, [], window_start=datetime(2030, 6, 3), window_end=at(12), now=EARLY)  # noqa: DTZ001


@pytest.mark.parametrize(
    "make",
    [
        lambda: WeeklyRule(7, time(9), time(17)),
        lambda: WeeklyRule(0, time(17), time(9)),
        lambda: WeeklyRule(0, time(9), time(9)),
        lambda: WeeklyRule(0, time(9, 0, 30), time(17)),
        lambda: DateOverride(MONDAY, ((time(12), time(11)),)),
        lambda: PageRules("Mars/Olympus_Mons"),
        lambda: PageRules(WARSAW, durations=()),
        lambda: PageRules(WARSAW, durations=(timedelta(seconds=90),)),
        lambda: PageRules(WARSAW, increment=timedelta(0)),
        lambda: PageRules(WARSAW, buffer_before=minutes(-5)),
        lambda: PageRules(WARSAW, min_notice=minutes(-1)),
        lambda: PageRules(WARSAW, horizon_days=0),
        lambda: PageRules(WARSAW, date_range=(date(2030, 2, 1), date(2030, 1, 1))),
        lambda: PageRules(WARSAW, overrides=(DateOverride(MONDAY), DateOverride(MONDAY))),
    ],
)
def test_invalid_settings_are_refused(make):
    with pytest.raises((ValueError, LookupError)):
        make()


# --- Against the oracle -------------------------------------------------------------------------------------

ZONES = [
    WARSAW,
    NEW_YORK,
    KOLKATA,
    LORD_HOWE,
    "America/Santiago",  # changes at midnight
    "Asia/Beirut",  # changes at midnight, back into the previous date
    "Asia/Kathmandu",  # +05:45
    "UTC",
]


@functools.cache
def transitions(zone_name: str, year: int) -> list[datetime]:
    """The instants (to the hour) around which the zone's offset changes in ``year``."""
    zone = ZoneInfo(zone_name)
    found = []
    instant = datetime(year, 1, 1, tzinfo=UTC)
    previous = instant.astimezone(zone).utcoffset()
    while instant.year == year:
        instant += timedelta(hours=1)
        offset = instant.astimezone(zone).utcoffset()
        if offset != previous:
            found.append(instant)
        previous = offset
    return found


def random_ranges(rng: random.Random, night_owl: bool) -> list[tuple[time, time]]:
    """One to three ranges on a 5-minute grid; night owls work through the hours clocks change in."""
    ranges = []
    for _ in range(rng.randint(1, 3)):
        first = rng.randrange(0, 6 * 60 if night_owl else 22 * 60, 5)
        last = min(first + rng.randrange(30, 10 * 60, 5), 24 * 60)
        ranges.append(
            (time(first // 60, first % 60), time(0) if last == 24 * 60 else time(last // 60, last % 60))
        )
    return ranges


def random_page(rng: random.Random, zone_name: str, around: date) -> PageRules:
    night_owl = rng.random() < 0.6
    rules = tuple(
        WeeklyRule(weekday, start, end)
        for weekday in range(7)
        if rng.random() < 0.85
        for start, end in random_ranges(rng, night_owl)
    )
    overrides = tuple(
        DateOverride(
            around + timedelta(days=offset), random_ranges(rng, night_owl) if rng.random() < 0.6 else ()
        )
        for offset in rng.sample(range(-3, 4), rng.randint(0, 2))
    )
    durations = tuple(
        minutes(value) for value in rng.sample([10, 15, 20, 30, 45, 60, 90, 120], rng.randint(1, 3))
    )
    return PageRules(
        zone_name,
        rules=rules,
        overrides=overrides,
        durations=durations,
        increment=rng.choice(
            [None, minutes(5), minutes(15), minutes(20), minutes(25), minutes(30), minutes(60)]
        ),
        buffer_before=minutes(rng.choice([0, 0, 5, 10, 15, 30])),
        buffer_after=minutes(rng.choice([0, 0, 5, 10, 15, 30])),
        min_notice=rng.choice([timedelta(0), minutes(90), timedelta(hours=26, seconds=17)]),
        horizon_days=rng.choice([None, None, 2, 5, 30]),
        date_range=rng.choice([None, None, (around - timedelta(days=1), around + timedelta(days=1))]),
    )


def random_busy(rng: random.Random, center: datetime, count: int) -> list[tuple[datetime, datetime]]:
    busy = []
    for _ in range(count):
        start = center + timedelta(seconds=rng.randrange(-4 * 86400, 4 * 86400))
        if rng.random() < 0.5:
            start = start.replace(second=0)  # most events start on a minute, some do not
        kind = rng.random()
        if kind < 0.05:
            end = start  # zero-length
        elif kind < 0.08:
            end = start - minutes(rng.randrange(1, 120))  # inverted
        elif kind < 0.13:
            end = start + timedelta(days=1)  # all-day-ish
        else:
            end = start + timedelta(seconds=rng.randrange(60, 3 * 3600))
        if rng.random() < 0.2:
            start, end = start.astimezone(ZoneInfo(NEW_YORK)), end.astimezone(ZoneInfo(KOLKATA))
        busy.append((start, end))
    return busy


@pytest.mark.parametrize("seed", range(8))
def test_engine_matches_the_minute_grid_oracle(seed):
    rng = random.Random(seed)
    checked = 0
    for _ in range(25):
        zone_name = rng.choice(ZONES)
        zone = ZoneInfo(zone_name)
        changes = transitions(zone_name, 2030) or [datetime(2030, 6, 1, tzinfo=UTC)]
        center = rng.choice(changes) + timedelta(minutes=rng.randrange(-36 * 60, 36 * 60))
        rules = random_page(rng, zone_name, center.astimezone(zone).date())
        busy = random_busy(rng, center, rng.choice([0, 3, 20, 60]))
        rng.shuffle(busy)
        if rng.random() < 0.5:
            start, end = visitor_window(
                (center - timedelta(days=2)).date(),
                rng.randint(1, 5),
                rng.choice([*ZONES, "Pacific/Chatham"]),
            )
        else:
            start = center - timedelta(seconds=rng.randrange(0, 3 * 86400))
            end = start + timedelta(seconds=rng.randrange(0, 5 * 86400))
        now = center - timedelta(seconds=rng.randrange(-86400, 3 * 86400))
        duration = rng.choice(rules.durations)
        expected = oracle_slots(rules, busy, window_start=start, window_end=end, now=now, duration=duration)
        got = free_slots(rules, busy, window_start=start, window_end=end, now=now, duration=duration)
        assert got == expected, (zone_name, rules, start, end, now, duration)
        checked += bool(expected)
    assert checked  # the random pages are not all empty
