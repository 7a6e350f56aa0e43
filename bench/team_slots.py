"""Team slot benchmark (T1): a round-robin and a group page of 10 members against one member, same run.

Run it with ``make bench-team-slots`` or ``.venv/bin/python bench/team_slots.py``. Pure Python, no database.
Each member has their own busy time (``--events`` intervals over 60 days, as ``bench/slots.py`` makes them,
sorted per calendar as the store hands them back), their own working hours and a week of time off. A team's
free starts are what ``services.free_slots`` computes for a team page: each member's ``free_slots`` within
their ``within_rep_hours``, combined by ``combine`` (union for round robin, intersection for group), so the
cost is ``O(members x (rules + busy) log busy)``. It reports p50/p95 of ``--repeats`` calls for one member,
for the round-robin and for the group page, the ratio of the team p95 to the one-member p95 (bar: <= 10 for
10 members), and checks the combined starts against ``tests/pages/oracle.py``'s counting union and
intersection (a mismatch fails the run). Figures go to ``bench/results/team_slots.json`` and between the
``team-slots`` markers of ``docs/benchmarks.md``.
"""

# ruff: noqa: E402, S311  (the project root goes on sys.path first; random here is test data, not crypto)

import argparse
import gc
import json
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from app.pages.availability import RepHours, WeeklyRule, combine, free_slots, within_rep_hours
from bench.common import write_section
from bench.slots import NOW, REP_ZONE, page, percentile, window
from tests.pages.oracle import oracle_combine

RESULTS = ROOT / "bench" / "results" / "team_slots.json"
BEGIN, END = "<!-- team-slots:begin -->", "<!-- team-slots:end -->"
DAYS, MEMBERS, EVENTS = 60, 10, 2_000
RATIO_MAX = 10.0


def member_busy(events: int, seed: int) -> list[tuple[datetime, datetime]]:
    """``events`` short meetings (15 or 30 minutes) on 5-minute marks at any hour of ``DAYS`` days, in start
    order as the store hands them back: about 12 busy hours a day, so members differ and overlap."""
    rng = random.Random(seed)
    first = NOW - timedelta(days=1)
    starts = sorted(first + timedelta(minutes=5 * rng.randrange((DAYS + 2) * 288)) for _ in range(events))
    return [(start, start + timedelta(minutes=rng.choice((15, 30)))) for start in starts]


def member_hours(n: int) -> RepHours:
    """Staggered working hours (member n starts n/2 hours after 7:00) and a week off each."""
    start = 7 * 60 + 30 * n
    rules = tuple(
        WeeklyRule(d, clock(start // 60, start % 60), clock(min(start // 60 + 8, 23), start % 60))
        for d in range(5)
    )
    first = NOW.date() + timedelta(days=7 + 3 * n)
    return RepHours(REP_ZONE, weekly=rules, time_off=((first, first + timedelta(days=6)),))


def team_starts(rules, members, lo, hi, *, every: bool):
    """The team's starts as ``services.free_slots`` combines them (a group stops once nothing is common),
    and each member's own (all of them for the union, for the oracle check)."""
    length = rules.durations[0]
    per_member, common = [], None
    for busy, hours in members:
        own = within_rep_hours(
            free_slots(rules, busy, window_start=lo, window_end=hi, now=NOW), length, hours
        )
        per_member.append(own)
        if every:
            common = own if common is None else combine([common, own], every=True)
            if not common:
                return [], per_member
    return (common if every else combine(per_member, every=False)), per_member


def interleaved(calls: dict, repeats: int) -> dict:
    """Milliseconds of ``repeats`` calls of each, taken in turn, so a change of machine load hits all
    alike; and each call's last result."""
    gc.collect()
    times = {name: [] for name in calls}
    results = {}
    for _ in range(repeats):
        for name, call in calls.items():
            started = time.perf_counter()
            results[name] = call()
            times[name].append((time.perf_counter() - started) * 1000)
    return times, results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=MEMBERS)
    parser.add_argument("--events", type=int, default=EVENTS, help="busy intervals a member")
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()

    rules = page(DAYS)
    lo, hi = window(DAYS)
    members = [(member_busy(args.events, seed=100 + n), member_hours(n)) for n in range(args.members)]
    one = members[:1]
    times, answers = interleaved(
        {
            "one": lambda: team_starts(rules, one, lo, hi, every=False),
            "union": lambda: team_starts(rules, members, lo, hi, every=False),
            "group": lambda: team_starts(rules, members, lo, hi, every=True),
        },
        args.repeats,
    )
    one_ms, union_ms, group_ms = times["one"], times["union"], times["group"]
    union, per_member = answers["union"]
    group, _ = answers["group"]
    identical = union == oracle_combine(per_member, every=False) and group == oracle_combine(
        per_member, every=True
    )
    p95 = {
        name: percentile(values, 0.95)
        for name, values in (("one", one_ms), ("union", union_ms), ("group", group_ms))
    }
    results = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load_before": round(os.getloadavg()[0], 2),
        "parameters": {"members": args.members, "events": args.events, "days": DAYS, "repeats": args.repeats},
        "p50_ms": {
            "one": percentile(one_ms, 0.5),
            "union": percentile(union_ms, 0.5),
            "group": percentile(group_ms, 0.5),
        },
        "p95_ms": p95,
        "ratio_union": p95["union"] / p95["one"],
        "ratio_group": p95["group"] / p95["one"],
        "starts": {"one": len(per_member[0]), "union": len(union), "group": len(group)},
        "identical_to_oracle": identical,
    }
    results["within_bar"] = max(results["ratio_union"], results["ratio_group"]) <= RATIO_MAX
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    p = results["parameters"]
    body = "\n".join(
        [
            f"Measured {results['measured_at']} (load average {results['load_before']} before): "
            f"{p['members']} members x {p['events']:,} busy events over {p['days']} days, each with own "
            f"working hours and a week off; {p['repeats']} calls each.",
            "",
            "| | p50 | p95 | starts | p95 / one member |",
            "|---|---:|---:|---:|---:|",
            f"| one member | {results['p50_ms']['one']:.1f} ms | {p95['one']:.1f} ms | "
            f"{results['starts']['one']:,} | 1.0 |",
            f"| round robin (union) | {results['p50_ms']['union']:.1f} ms | {p95['union']:.1f} ms | "
            f"{results['starts']['union']:,} | {results['ratio_union']:.1f} |",
            f"| group (intersection) | {results['p50_ms']['group']:.1f} ms | {p95['group']:.1f} ms | "
            f"{results['starts']['group']:,} | {results['ratio_group']:.1f} |",
            "",
            f"Bar: team p95 within {RATIO_MAX:.0f}x of one member's: "
            f"{'**held**' if results['within_bar'] else '**FAILED**'}; union and intersection equal to the "
            f"counting oracle: {'yes' if identical else '**NO**'}.",
        ]
    )
    if not args.no_docs:
        write_section(BEGIN, END, body, heading="## Team slots (`bench/team_slots.py`)")
    print(body)
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
