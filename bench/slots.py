"""Slot engine benchmark: ``app.pages.availability.free_slots`` against the minute-grid oracle.

Run it with ``make bench-slots`` or ``.venv/bin/python bench/slots.py`` (``--help`` for the knobs). Pure
Python, no database, no network. It measures, on one page (Europe/Warsaw, weekday hours in two ranges,
30-minute meetings every 15 minutes, buffers of 10 and 5 minutes, 4 hours' notice) and a rep's busy time
over three calendars:

* a density sweep, 0 to 12,000 busy events over 30 to 240 days: the engine's output must equal the oracle's
  (``tests/pages/oracle.py``) on every input, and the engine must be at least 4x faster (medians of
  ``--runs`` engine runs and ``--oracle-runs`` oracle runs);
* 3 calendars x 2,000 events over 60 days, as the store hands them back: p50/p95/max of ``--repeats``
  calls over the 60-day window (bar: p95 <= 5 ms);
* scaling: t(12,000 events) / t(1,200 events) over the same 60 days (bar: <= 15).

The windows start on the visitor's date in America/New_York, so the long ones cross both zones' DST
changes. The busy time is shuffled in the sweep and the scaling run (the sort does real work) and sorted per
calendar in the p95 run (one run per calendar, as rows read by start), which is also timed shuffled. The
results go to ``bench/results/slots.json`` and, as a table, into ``docs/benchmarks.md`` between the
``slots`` markers; ``docs/slots.png`` is drawn when matplotlib is importable.
"""

# ruff: noqa: E402, S311  (the project root goes on sys.path first; random here is test data, not crypto)

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock
from functools import partial
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.pages.oracle is not an installed package

from app.pages.availability import PageRules, WeeklyRule, free_slots, visitor_window
from tests.pages.oracle import oracle_slots

RESULTS = ROOT / "bench" / "results" / "slots.json"
DOCS = ROOT / "docs" / "benchmarks.md"
PLOT = ROOT / "docs" / "slots.png"
BEGIN, END = "<!-- slots:start -->", "<!-- slots:end -->"

REP_ZONE = "Europe/Warsaw"
VISITOR_ZONE = "America/New_York"
NOW = datetime(2030, 3, 10, 7, 0, tzinfo=UTC)  # 240 days from here cross every March and October change
CALENDARS = 3
EVENTS = (0, 100, 1_000, 4_000, 12_000)
DAYS = (30, 60, 120, 240)
P95_EVENTS, P95_DAYS = 3 * 2_000, 60
SCALE_SMALL, SCALE_LARGE, SCALE_DAYS = 1_200, 12_000, 60
BARS = {"speedup_min": 4.0, "p95_ms_max": 5.0, "scaling_max": 15.0}


def page(days: int) -> PageRules:
    workweek = [
        WeeklyRule(weekday, start, end)
        for weekday in range(5)
        for start, end in ((clock(9), clock(12)), (clock(13), clock(17, 30)))
    ]
    return PageRules(
        REP_ZONE,
        rules=tuple(workweek),
        durations=(timedelta(minutes=30), timedelta(minutes=60)),
        increment=timedelta(minutes=15),
        buffer_before=timedelta(minutes=10),
        buffer_after=timedelta(minutes=5),
        min_notice=timedelta(hours=4),
        horizon_days=days + 1,
    )


def window(days: int) -> tuple[datetime, datetime]:
    return visitor_window(NOW.astimezone(ZoneInfo(VISITOR_ZONE)).date(), days, VISITOR_ZONE)


def busy_time(events: int, days: int, seed: int) -> list[list[tuple[datetime, datetime]]]:
    """``events`` busy intervals over ``days`` in ``CALENDARS`` calendars, each sorted by start (as stored).

    Mostly meetings in office hours on 5-minute marks, some at any hour and second, 3 % all-day, and a few
    zero-length or inverted ones (which the engine must ignore). Deterministic for a seed.
    """
    rng = random.Random(seed)
    zone = ZoneInfo(REP_ZONE)
    first = NOW.astimezone(zone).date() - timedelta(days=1)
    calendars: list[list[tuple[datetime, datetime]]] = [[] for _ in range(CALENDARS)]
    for n in range(events):
        day = first + timedelta(days=rng.randrange(days + 2))
        kind = rng.random()
        if kind < 0.03:
            start = datetime.combine(day, clock(0), zone)
            end = datetime.combine(day + timedelta(days=1), clock(0), zone)
        else:
            if rng.random() < 0.7:
                minute = rng.randrange(8 * 60, 18 * 60, 5)
                start = datetime.combine(day, clock(minute // 60, minute % 60), zone)
            else:
                start = datetime.combine(day, clock(0), zone) + timedelta(seconds=rng.randrange(86_400))
            length = timedelta(minutes=rng.choice((15, 30, 30, 45, 60, 60, 90, 120, 180)))
            end = start + (timedelta(0) if kind < 0.04 else -length if kind < 0.045 else length)
        calendars[n % CALENDARS].append((start.astimezone(UTC), end.astimezone(UTC)))
    for calendar in calendars:
        calendar.sort()
    return calendars


def flat(calendars) -> list[tuple[datetime, datetime]]:
    return [interval for calendar in calendars for interval in calendar]


def shuffled(calendars, seed: int) -> list[tuple[datetime, datetime]]:
    rows = flat(calendars)
    random.Random(seed).shuffle(rows)
    return rows


def timed(function, runs: int) -> tuple[list[float], object]:
    """Wall-clock milliseconds of ``runs`` calls (a collection first, none forced in between)."""
    gc.collect()
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = function()
        times.append((time.perf_counter() - started) * 1000)
    return times, result


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- The measurements ---------------------------------------------------------------------------------------


def sweep(events_list, days_list, runs: int, oracle_runs: int) -> list[dict]:
    rows = []
    for days in days_list:
        rules = page(days)
        start, end = window(days)
        for events in events_list:
            busy = shuffled(busy_time(events, days, seed=events * 7 + days), seed=days)
            kwargs = {"window_start": start, "window_end": end, "now": NOW}
            engine_times, slots = timed(partial(free_slots, rules, busy, **kwargs), runs)
            oracle_times, expected = timed(partial(oracle_slots, rules, busy, **kwargs), oracle_runs)
            engine, oracle = statistics.median(engine_times), statistics.median(oracle_times)
            row = {
                "events": events,
                "days": days,
                "slots": len(slots),
                "identical": slots == expected,
                "engine_ms": round(engine, 3),
                "oracle_ms": round(oracle, 1),
                "speedup": round(oracle / engine, 1),
                "engine_runs_ms": [round(value, 3) for value in engine_times],
                "oracle_runs_ms": [round(value, 1) for value in oracle_times],
            }
            log(
                f"sweep {events:>6} events {days:>3} days: {len(slots):>5} slots,"
                f" identical={row['identical']}, engine {engine:8.2f} ms, oracle {oracle:8.1f} ms,"
                f" x{row['speedup']}"
            )
            rows.append(row)
    return rows


def latency(repeats: int) -> dict:
    rules = page(P95_DAYS)
    start, end = window(P95_DAYS)
    calendars = busy_time(P95_EVENTS, P95_DAYS, seed=2_000)
    out = {"events": P95_EVENTS, "calendars": CALENDARS, "days": P95_DAYS, "repeats": repeats}
    for label, busy in (("stored", flat(calendars)), ("shuffled", shuffled(calendars, seed=1))):
        call = partial(free_slots, rules, busy, window_start=start, window_end=end, now=NOW)
        call()  # warm: zoneinfo's cache, the first allocation of the lists
        gc.collect()
        wall, cpu = [], []
        for _ in range(repeats):
            cpu_started, started = time.thread_time(), time.perf_counter()
            call()
            wall.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - cpu_started) * 1000)
        out[label] = {
            "p50_ms": round(statistics.median(wall), 3),
            "p95_ms": round(percentile(wall, 0.95), 3),
            "max_ms": round(max(wall), 3),
            "cpu_p50_ms": round(statistics.median(cpu), 3),
            "cpu_p95_ms": round(percentile(cpu, 0.95), 3),
        }
        log(f"p95 ({label}): {out[label]}")
    out["slots"] = len(call())
    return out


def scaling(runs: int) -> dict:
    rules = page(SCALE_DAYS)
    start, end = window(SCALE_DAYS)
    out = {"days": SCALE_DAYS, "runs": runs}
    for label, events in (("small", SCALE_SMALL), ("large", SCALE_LARGE)):
        busy = shuffled(busy_time(events, SCALE_DAYS, seed=events), seed=3)
        times, _ = timed(
            lambda busy=busy: free_slots(rules, busy, window_start=start, window_end=end, now=NOW), runs
        )
        out[label] = {"events": events, "median_ms": round(statistics.median(times), 3)}
    out["ratio"] = round(out["large"]["median_ms"] / out["small"]["median_ms"], 2)
    log(f"scaling: {out}")
    return out


# --- Reporting ----------------------------------------------------------------------------------------------


def verdicts(results: dict) -> dict:
    sweep_rows = results["sweep"]
    return {
        "identical_everywhere": all(row["identical"] for row in sweep_rows),
        "speedup_min": min(row["speedup"] for row in sweep_rows),
        "speedup_met": all(row["speedup"] >= BARS["speedup_min"] for row in sweep_rows),
        "p95_met": results["latency"]["stored"]["p95_ms"] <= BARS["p95_ms_max"],
        "scaling_met": results["scaling"]["ratio"] <= BARS["scaling_max"],
    }


def section(results: dict) -> str:
    verdict = results["verdicts"]
    machine = results["machine"]
    latency_figures = results["latency"]
    scale = results["scaling"]
    lines = [
        "## Slot engine (`bench/slots.py`)",
        "",
        "`app/pages/availability.py` turns a page's rules and the rep's stored busy intervals into free",
        "starts; `tests/pages/oracle.py` computes the same thing minute by minute (every UTC minute of the",
        "window read on the rep's clock, every busy minute marked in a bytearray, each candidate checked",
        "minute by minute).",
        "The page: Europe/Warsaw, Monday-Friday 9:00-12:00 and 13:00-17:30, 30-minute meetings every 15",
        "minutes, buffers 10/5 minutes, 4 hours' notice; windows of whole days in America/New_York from",
        "10 March 2030, so the long ones cross both zones' spring and autumn changes. Busy time: three",
        "calendars of meetings (70 % in office hours, 3 % all-day, a few zero-length or inverted), shuffled",
        "for the sweep and the scaling run. Times are wall-clock medians in one process, no database:",
        f"`make bench-slots` on {machine['cpus']} CPUs, Python {machine['python']}, load average"
        f" {machine['load_before']} before and {machine['load_after']} after ({results['measured_at']}).",
        "",
        f"**Density sweep** (engine median of {results['parameters']['runs']}, oracle median of"
        f" {results['parameters']['oracle_runs']} runs):",
        "",
        "| busy events | days | slots | identical | engine ms | oracle ms | speed-up |",
        "|---:|---:|---:|:---:|---:|---:|---:|",
    ]
    for row in results["sweep"]:
        lines.append(
            f"| {row['events']:,} | {row['days']} | {row['slots']:,}"
            f" | {'yes' if row['identical'] else '**no**'} | {row['engine_ms']:.2f}"
            f" | {row['oracle_ms']:,.0f} | {row['speedup']:,.0f}x |"
        )
    stored, mixed = latency_figures["stored"], latency_figures["shuffled"]
    lines += [
        "",
        f"**Latency**, {latency_figures['calendars']} calendars x"
        f" {latency_figures['events'] // latency_figures['calendars']:,} events over"
        f" {latency_figures['days']} days, the whole {latency_figures['days']}-day window"
        f" ({latency_figures['slots']:,} slots), {latency_figures['repeats']} calls:",
        "",
        "| busy input | p50 ms | p95 ms | max ms | CPU p95 ms |",
        "|---|---:|---:|---:|---:|",
        f"| as stored (sorted per calendar) | {stored['p50_ms']:.2f} | {stored['p95_ms']:.2f}"
        f" | {stored['max_ms']:.2f} | {stored['cpu_p95_ms']:.2f} |",
        f"| shuffled | {mixed['p50_ms']:.2f} | {mixed['p95_ms']:.2f} | {mixed['max_ms']:.2f}"
        f" | {mixed['cpu_p95_ms']:.2f} |",
        "",
        f"**Scaling**, {scale['days']} days, shuffled, median of {scale['runs']}:"
        f" {scale['small']['events']:,} events {scale['small']['median_ms']:.2f} ms,"
        f" {scale['large']['events']:,} events"
        f" {scale['large']['median_ms']:.2f} ms: t(10N)/t(N) = {scale['ratio']:.1f}.",
        "",
        "| bar (issue #5) | figure | met |",
        "|---|---|:---:|",
        f"| output identical to the oracle on every input | {sum(r['identical'] for r in results['sweep'])}"
        f"/{len(results['sweep'])} inputs | {'yes' if verdict['identical_everywhere'] else '**no**'} |",
        f"| >= {BARS['speedup_min']:.0f}x faster than the oracle | slowest input"
        f" {verdict['speedup_min']:,.0f}x | {'yes' if verdict['speedup_met'] else '**no**'} |",
        f"| 3 x 2,000 events over 60 days: p95 <= {BARS['p95_ms_max']:.0f} ms | {stored['p95_ms']:.2f} ms"
        f" | {'yes' if verdict['p95_met'] else '**no**'} |",
        f"| t(10N)/t(N) <= {BARS['scaling_max']:.0f} | {scale['ratio']:.1f}"
        f" | {'yes' if verdict['scaling_met'] else '**no**'} |",
    ]
    if results.get("plot"):
        lines += ["", f"![engine and oracle times]({Path(results['plot']).name})"]
    return "\n".join(lines)


def write_docs(results: dict) -> None:
    # Only the text between the slots markers is ours; other scripts own their own sections of the file.
    text = (
        DOCS.read_text()
        if DOCS.exists()
        else "# Benchmarks\n\nFigures measured by the scripts in `bench/`.\n"
    )
    if BEGIN not in text or END not in text:
        text = f"{text.rstrip()}\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOCS.write_text(f"{head}{BEGIN}\n{section(results)}\n{END}{tail}")


def plot(results: dict) -> str | None:
    try:
        import matplotlib  # optional: not a dependency of the project

        matplotlib.use("Agg")
        from matplotlib import pyplot
    except ImportError:
        log("matplotlib is not installed: no plot")
        return None
    figure, axes = pyplot.subplots(figsize=(8, 4.5))
    for days in sorted({row["days"] for row in results["sweep"]}):
        rows = [row for row in results["sweep"] if row["days"] == days]
        events = [row["events"] for row in rows]
        axes.plot(events, [row["engine_ms"] for row in rows], marker="o", label=f"engine, {days} days")
        axes.plot(events, [row["oracle_ms"] for row in rows], linestyle="--", label=f"oracle, {days} days")
    axes.set_yscale("log")
    axes.set_xlabel("busy events")
    axes.set_ylabel("ms (median)")
    axes.set_title("Slot engine vs minute-grid oracle")
    axes.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(PLOT, dpi=100)
    return str(PLOT.relative_to(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="engine runs per sweep input (median)")
    parser.add_argument("--oracle-runs", type=int, default=3, help="oracle runs per sweep input (median)")
    parser.add_argument("--repeats", type=int, default=200, help="calls for the p95")
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run (small sweep, few repeats), printed and not saved"
    )
    parser.add_argument("--no-docs", action="store_true", help=f"leave {DOCS.relative_to(ROOT)} alone")
    args = parser.parse_args()
    events_list, days_list = (EVENTS[:3], DAYS[:2]) if args.quick else (EVENTS, DAYS)
    if args.quick:
        args.runs, args.oracle_runs, args.repeats = 3, 1, 20

    results: dict = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_before": round(os.getloadavg()[0], 2),
        },
        "parameters": {
            "runs": args.runs,
            "oracle_runs": args.oracle_runs,
            "repeats": args.repeats,
            "quick": args.quick,
            "now": NOW.isoformat(),
            "rep_zone": REP_ZONE,
            "visitor_zone": VISITOR_ZONE,
        },
        "bars": BARS,
    }
    results["sweep"] = sweep(events_list, days_list, args.runs, args.oracle_runs)
    results["latency"] = latency(args.repeats)
    results["scaling"] = scaling(max(args.runs, 3) * 3)
    results["machine"]["load_after"] = round(os.getloadavg()[0], 2)
    results["verdicts"] = verdicts(results)
    results["plot"] = None if args.quick else plot(results)

    log(f"verdicts: {results['verdicts']}")
    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(results, indent=2) + "\n")
        log(f"results: {RESULTS.relative_to(ROOT)}")
        if not args.no_docs:
            write_docs(results)
            log(f"docs: {DOCS.relative_to(ROOT)}")
    # Identical output is a correctness bar: a mismatch fails the run; the timing bars are reported only.
    return 0 if results["verdicts"]["identical_everywhere"] else 1


if __name__ == "__main__":
    sys.exit(main())
