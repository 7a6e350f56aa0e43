"""The rep's own limits in the slot engine (T1, T4): working hours, time off, full days, and combining
members' free starts (union for round robin, intersection for group), against the minute-grid oracle on the
weeks clocks change."""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.pages.availability import (
    PageRules,
    RepHours,
    WeeklyRule,
    combine,
    free_slots,
    visitor_window,
    within_rep_hours,
)
from tests.pages.oracle import oracle_combine, oracle_rep_hours

WARSAW = "Europe/Warsaw"
NEW_YORK = "America/New_York"
EARLY = datetime(2029, 1, 1, tzinfo=UTC)
# The weeks the clocks change in 2030: Warsaw 31 March / 27 October, New York 10 March / 3 November.
DST_WEEKS = [
    (WARSAW, date(2030, 3, 28)),
    (WARSAW, date(2030, 10, 24)),
    (NEW_YORK, date(2030, 3, 7)),
    (NEW_YORK, date(2030, 10, 31)),
]


def minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


def all_day_page(zone: str, step: int = 30) -> PageRules:
    """A page open round the clock every day, so only the rep's limits decide."""
    rules = tuple(WeeklyRule(d, time(0), time(0)) for d in range(7))
    return PageRules(zone, rules=rules, durations=(minutes(step),), horizon_days=None)


def week_slots(rules: PageRules, first: date, busy=()) -> list[datetime]:
    start, end = visitor_window(first, 7, rules.time_zone)
    return free_slots(rules, list(busy), window_start=start, window_end=end, now=EARLY)


def local(zone: str, day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZoneInfo(zone)).astimezone(UTC)


def test_working_hours_cut_a_page_open_all_day():
    rules = all_day_page(WARSAW)
    hours = RepHours(WARSAW, weekly=(WeeklyRule(0, time(9), time(11)),))
    kept = within_rep_hours(week_slots(rules, date(2030, 1, 7)), minutes(30), hours)
    assert [slot.astimezone(ZoneInfo(WARSAW)).strftime("%a %H:%M") for slot in kept] == [
        "Mon 09:00",
        "Mon 09:30",
        "Mon 10:00",
        "Mon 10:30",
    ]


def test_time_off_removes_whole_dates_and_no_working_hours_means_no_limit():
    rules = all_day_page(WARSAW, step=60)
    hours = RepHours(WARSAW, time_off=((date(2030, 1, 8), date(2030, 1, 12)),))
    kept = within_rep_hours(week_slots(rules, date(2030, 1, 7)), minutes(60), hours)
    days = sorted({slot.astimezone(ZoneInfo(WARSAW)).date().day for slot in kept})
    assert days == [7, 13]
    assert len(kept) == 48


def test_a_meeting_runs_past_midnight_only_into_another_working_day():
    rules = PageRules(
        WARSAW,
        rules=(WeeklyRule(0, time(23), time(0)),),
        durations=(minutes(60),),
        increment=minutes(30),
        horizon_days=None,
    )
    through = RepHours(WARSAW, weekly=(WeeklyRule(0, time(22), time(0)), WeeklyRule(1, time(0), time(2))))
    slots = week_slots(rules, date(2030, 1, 7))
    assert len(within_rep_hours(slots, minutes(60), through)) == 1
    off_next_day = RepHours(WARSAW, weekly=through.weekly, time_off=((date(2030, 1, 8), date(2030, 1, 8)),))
    assert within_rep_hours(slots, minutes(60), off_next_day) == [local(WARSAW, date(2030, 1, 7), 23)]


def test_full_days_drop_the_starts_of_that_local_date():
    rules = all_day_page(WARSAW, step=60)
    slots = week_slots(rules, date(2030, 1, 7))
    kept = within_rep_hours(slots, minutes(60), RepHours(WARSAW), full_days={date(2030, 1, 9)})
    assert len(kept) == len(slots) - 24
    assert all(slot.astimezone(ZoneInfo(WARSAW)).date() != date(2030, 1, 9) for slot in kept)


def test_invalid_time_off_is_refused():
    with pytest.raises(ValueError, match="time off"):
        RepHours(WARSAW, time_off=((date(2030, 1, 9), date(2030, 1, 8)),))


def _random_hours(rng: random.Random, zone: str, week: date) -> RepHours:
    weekly = None
    if rng.random() < 0.8:
        weekly = []
        for weekday in range(7):
            if rng.random() < 0.2:
                continue
            first = rng.randrange(0, 20 * 60, 30)
            last = min(first + rng.randrange(60, 12 * 60, 30), 24 * 60)
            end = time(0) if last == 24 * 60 else time(last // 60, last % 60)
            weekly.append(WeeklyRule(weekday, time(first // 60, first % 60), end))
        weekly = tuple(weekly)
    time_off = tuple(
        (week + timedelta(days=offset), week + timedelta(days=offset + rng.randint(0, 1)))
        for offset in rng.sample(range(7), rng.randint(0, 2))
    )
    return RepHours(zone, weekly=weekly, time_off=time_off)


@pytest.mark.parametrize(("zone", "week"), DST_WEEKS)
def test_rep_hours_match_the_oracle_on_dst_weeks(zone, week):
    rng = random.Random(f"{zone}{week}")
    for _ in range(6):
        length = rng.choice([15, 30, 60, 90])
        rules = all_day_page(zone, step=length)
        slots = week_slots(rules, week - timedelta(days=1))
        # Someone else's zone: a rep in Warsaw on a page kept in New York's hours, and the other way round.
        hours = _random_hours(rng, rng.choice([WARSAW, NEW_YORK]), week)
        full = set(rng.sample([week + timedelta(days=k) for k in range(7)], rng.randint(0, 2)))
        got = within_rep_hours(slots, minutes(length), hours, full_days=full)
        assert got == oracle_rep_hours(slots, minutes(length), hours, full_days=full), (hours, full)


@pytest.mark.parametrize(("zone", "week"), DST_WEEKS)
def test_union_and_intersection_match_counting_on_dst_weeks(zone, week):
    rng = random.Random(f"combine{zone}{week}")
    rules = all_day_page(zone, step=30)
    members = []
    for _ in range(rng.randint(2, 5)):
        busy = []
        for _event in range(rng.randint(0, 40)):
            start = local(zone, week, 0) + timedelta(minutes=rng.randrange(0, 7 * 24 * 60, 15))
            busy.append((start, start + minutes(rng.randrange(15, 240, 15))))
        hours = _random_hours(rng, zone, week)
        members.append(within_rep_hours(week_slots(rules, week, busy), minutes(30), hours))
    assert combine(members, every=False) == oracle_combine(members, every=False)
    assert combine(members, every=True) == oracle_combine(members, every=True)
    assert combine([], every=True) == []
