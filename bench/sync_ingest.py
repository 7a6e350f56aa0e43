"""Sync ingest benchmark: how fast one worker turns a provider's listing into synced rows.

Run it with ``make bench`` or ``.venv/bin/python bench/sync_ingest.py`` (``--help`` for the knobs). It
recreates a throwaway PostgreSQL database (``TERMIN_BENCH_DATABASE_URL``, default ``termin_bench`` on
127.0.0.1) with the migrations, serves the Google Calendar emulator from this process and starts a
Radicale of its own, both on 127.0.0.1, seeds ``--calendars`` calendars of ``--events`` events in each,
and measures:

* full syncs of every calendar (nothing stored yet), with meetings off (calendars feeding availability
  only) and on (calendar sync on, ~1/3 of the events with a contact of the tenant among the guests):
  events per second, the fetch (HTTP + parsing) and apply (database) seconds, and memory: the peak of
  what the sync allocated (tracemalloc, in a separate untimed run: tracing slows Python down) and the
  worker process's peak RSS (``ru_maxrss``; its growth during the sync is no measure here, because
  importing the application peaks higher than a sync of these sizes does);
* incremental syncs after 0, 3 and 30 changes (meetings on): requests, rows written, and their time as a
  fraction of the full sync of the same world, so that the ratio holds across machines.

Every sync runs in a fresh worker process (the way an RQ worker runs a job, minus the queue and the fork;
like the worker, it freezes what the app's start left for the garbage collector), so a run's
memory figures are its own and neither server shares the worker's interpreter. A sync is timed from the
first provider request to the commit of the last calendar. Each figure is the median of ``--runs`` runs.
The results go to ``bench/results/sync_ingest.json`` and, as a table, into ``docs/benchmarks.md`` between
the ``sync_ingest`` markers. Everything it started (servers, database, files) is gone when it ends.
"""

# ruff: noqa: E402  (the project root goes on sys.path before the project's own imports)

import argparse
import cProfile
import json
import multiprocessing
import os
import platform
import random
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.fakes (the emulator, Radicale) is not an installed package

import requests
import sqlalchemy as sa

from app import create_app
from app.crm.models import Contact
from app.extensions import db
from app.sync import engine
from app.sync import services as sync
from app.sync.models import Calendar
from app.sync.providers.caldav import CalDAVProvider
from app.sync.providers.google import GoogleCalendarProvider
from bench.common import (
    DATABASE_URL,
    DOCS,
    log,
    machine,
    measured_at,
    throwaway_database,
    write_results,
    write_section,
)
from tests import factories
from tests.conftest import config_for_tests
from tests.fakes.google_calendar import GoogleCalendarEmulator
from tests.fakes.radicale import REP, RadicaleServer
from workers.worker import freeze_imports

RESULTS = ROOT / "bench" / "results" / "sync_ingest.json"
BEGIN, END = "<!-- sync_ingest:begin -->", "<!-- sync_ingest:end -->"
TARGET_EVENTS_PER_SECOND = 5_000

NOW = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)
ZONE_NAME = "Europe/Warsaw"
ZONE = ZoneInfo(ZONE_NAME)
GOOGLE_ACCOUNT = "rep@bench.example.com"
GOOGLE_TOKEN = "ya29.bench-token"  # noqa: S105 (the emulator's, like the tests' own)
CONTACTS = 300
CHANGES = (0, 3, 30)
# What Apple Calendar and Thunderbird send along with TZID times.
VTIMEZONE = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Warsaw\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\n"
    "DTSTART:19810329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\n"
    "DTSTART:19961027T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


# --- The calendars' contents --------------------------------------------------------------------------------


def contact_email(n: int) -> str:
    return f"client{n}@customer.example"


def event_specs(calendar_index: int, count: int) -> list[dict]:
    """A working calendar: mostly timed meetings, some all-day, free and weekly ones (deterministic)."""
    rng = random.Random(7919 * (calendar_index + 1))  # noqa: S311 (seeded data, not secrets)
    specs = []
    for n in range(count):
        kind = rng.random()
        start = NOW - timedelta(days=60) + timedelta(minutes=15 * rng.randrange(360 * 96))
        spec: dict = {
            "uid": f"bench-{calendar_index}-{n}@bench.example.com",
            "summary": f"Bench event {calendar_index}-{n}",
            "all_day": False,
            "transparent": False,
            "rrule": None,
            "attendees": [],
        }
        if kind < 0.03:
            day = start.date()
            spec |= {"all_day": True, "start": day, "end": day + timedelta(days=rng.choice((1, 1, 2, 3)))}
        else:
            end = start + timedelta(minutes=rng.choice((15, 30, 45, 60, 90)))
            while start.astimezone(ZONE).fold or end.astimezone(ZONE).fold:
                # The repeated hour when DST ends: a TZID time there names the first of the two.
                start, end = start + timedelta(hours=2), end + timedelta(hours=2)
            spec |= {"start": start, "end": end}
            spec["transparent"] = kind > 0.95
            if 0.03 <= kind < 0.05:
                spec["rrule"] = f"FREQ=WEEKLY;COUNT={rng.randrange(4, 30)}"
        guests = []
        if rng.random() < 0.35:
            guests.append((contact_email(rng.randrange(CONTACTS)), "accepted"))
        guests += [
            (f"guest{rng.randrange(10_000)}@elsewhere.example", "needsAction")
            for _ in range(rng.randrange(3))
        ]
        if guests:
            guests.append((GOOGLE_ACCOUNT, "declined" if rng.random() < 0.03 else "accepted"))
        spec["attendees"] = list(dict.fromkeys(guests))
        specs.append(spec)
    return specs


def google_resource(spec: dict) -> dict:
    if spec["all_day"]:
        times = {"start": {"date": spec["start"].isoformat()}, "end": {"date": spec["end"].isoformat()}}
    else:
        times = {
            key: {"dateTime": spec[key].astimezone(ZONE).isoformat(), "timeZone": ZONE_NAME}
            for key in ("start", "end")
        }
    resource_: dict = {"iCalUID": spec["uid"], "summary": spec["summary"], **times}
    if spec["attendees"]:
        resource_["attendees"] = [{"email": e, "responseStatus": r} for e, r in spec["attendees"]]
    if spec["transparent"]:
        resource_["transparency"] = "transparent"
    if spec["rrule"]:
        resource_["recurrence"] = [f"RRULE:{spec['rrule']}"]
    return resource_


def vevent(spec: dict, account: str, sequence: int = 0) -> str:
    if spec["all_day"]:
        times = f"DTSTART;VALUE=DATE:{spec['start']:%Y%m%d}\r\nDTEND;VALUE=DATE:{spec['end']:%Y%m%d}\r\n"
    else:
        start, end = (spec[key].astimezone(ZONE) for key in ("start", "end"))
        times = (
            f"DTSTART;TZID={ZONE_NAME}:{start:%Y%m%dT%H%M%S}\r\n"
            f"DTEND;TZID={ZONE_NAME}:{end:%Y%m%dT%H%M%S}\r\n"
        )
    lines = [
        f"BEGIN:VEVENT\r\nUID:{spec['uid']}\r\nDTSTAMP:20300101T000000Z\r\n{times}",
        f"SUMMARY:{spec['summary']}\r\nSEQUENCE:{sequence}\r\n",
        f"TRANSP:{'TRANSPARENT' if spec['transparent'] else 'OPAQUE'}\r\n",
    ]
    if spec["rrule"]:
        lines.append(f"RRULE:{spec['rrule']}\r\n")
    if spec["attendees"]:
        lines.append(f"ORGANIZER:mailto:{account}\r\n")
        partstats = {"accepted": "ACCEPTED", "declined": "DECLINED"}
        for email, response in spec["attendees"]:
            email = account if email == GOOGLE_ACCOUNT else email
            lines.append(f"ATTENDEE;PARTSTAT={partstats.get(response, 'NEEDS-ACTION')}:mailto:{email}\r\n")
    lines.append("END:VEVENT\r\n")
    return "".join(lines)


def ics(body: str) -> str:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Apple Inc.//macOS 14.4//EN\r\n"
    return f"{head}{VTIMEZONE}{body}END:VCALENDAR\r\n"


def changed(spec: dict, n: int) -> dict:
    """The n-th change of a run: moved an hour later, renamed, or a contact invited (or uninvited)."""
    spec = dict(spec)
    if n % 3 == 0 and not spec["all_day"]:
        spec["start"] += timedelta(hours=1)
        spec["end"] += timedelta(hours=1)
    elif n % 3 == 1:
        spec["summary"] += " (renamed)"
    else:
        guest = (contact_email(n % CONTACTS), "accepted")
        others = [a for a in spec["attendees"] if a != guest]
        spec["attendees"] = others if len(others) < len(spec["attendees"]) else [*others, guest]
    return spec


# --- The peers ----------------------------------------------------------------------------------------------


class GooglePeer:
    """The emulator in this process (the worker processes reach it over loopback HTTP)."""

    name = "google"
    label = "Google emulator"

    def __init__(self, calendars: int, events: int):
        self.emulator = GoogleCalendarEmulator().start()
        self.emulator.add_account(GOOGLE_ACCOUNT, name="Bench Rep", token=GOOGLE_TOKEN, time_zone=ZONE_NAME)
        self.calendar_ids = [GOOGLE_ACCOUNT]
        for n in range(1, calendars):
            self.calendar_ids.append(self.emulator.add_calendar(GOOGLE_ACCOUNT, f"Bench {n}"))
        self.specs = [event_specs(n, events) for n in range(calendars)]
        self.event_ids: list[list[str]] = []
        for calendar_id, specs in zip(self.calendar_ids, self.specs, strict=True):
            self.event_ids.append(
                [self.emulator.insert(calendar_id, google_resource(s), creator=GOOGLE_ACCOUNT) for s in specs]
            )

    def endpoint(self) -> dict:
        return {
            "provider": "google",
            "api_url": self.emulator.api_url,
            "userinfo_url": self.emulator.userinfo_url,
        }

    def change(self, count: int, round_: int) -> None:
        for n in range(count):
            c = n % len(self.calendar_ids)
            index = (round_ * 97 + n * 31) % len(self.specs[c])
            self.specs[c][index] = spec = changed(self.specs[c][index], n)
            patch = google_resource(spec)
            patch.setdefault("attendees", None)
            self.emulator.modify(self.calendar_ids[c], self.event_ids[c][index], patch)

    @property
    def requests(self) -> int:
        return self.emulator.request_count

    def close(self) -> None:
        self.emulator.stop()


class RadicalePeer:
    """A Radicale process of our own, reached directly (not through the tests' fault proxy)."""

    name = "caldav"
    label = "Radicale (CalDAV)"

    def __init__(self, calendars: int, events: int, root: Path):
        self.server = RadicaleServer(root=root, shares={})
        self.server.start()
        slugs = {f"bench{n}": f"Bench {n}" for n in range(calendars)}
        self.server.reset_home(REP, slugs)
        self.paths = [f"/{REP}/{slug}/" for slug in slugs]
        self.specs = [event_specs(n, events) for n in range(calendars)]
        for path, specs in zip(self.paths, self.specs, strict=True):
            # Radicale takes ~60 ms per PUT (it parses and re-serialises every object), so the seed is
            # written straight into its file storage, one object per file as Radicale keeps them, while
            # nothing else uses it. One listing then fills Radicale's cache, as a server that has been
            # running a while has it filled.
            folder = self.server.collection_dir(path)
            for spec in specs:
                (folder / item_name(spec)).write_text(ics(vevent(spec, REP)), newline="")
            self.server.objects(path)

    def endpoint(self) -> dict:
        return {
            "provider": "caldav",
            "url": self.server.direct_url + "/",
            "password": self.server.passwords[REP],
        }

    def change(self, count: int, round_: int) -> None:
        for n in range(count):
            c = n % len(self.paths)
            index = (round_ * 97 + n * 31) % len(self.specs[c])
            self.specs[c][index] = spec = changed(self.specs[c][index], n)
            self.server.put_event(self.paths[c], ics(vevent(spec, REP, sequence=round_ + 1)), item_name(spec))

    @property
    def requests(self) -> None:
        return None  # counted by the provider only

    def close(self) -> None:
        self.server.close()


def item_name(spec: dict) -> str:
    return f"{spec['uid']}.ics"  # named after the UID, as calendar apps name what they PUT


# --- One worker process -------------------------------------------------------------------------------------


def _provider(endpoint: dict, session: requests.Session):
    if endpoint["provider"] == "google":
        session.headers["Authorization"] = f"Bearer {GOOGLE_TOKEN}"
        return GoogleCalendarProvider(
            session, api_url=endpoint["api_url"], userinfo_url=endpoint["userinfo_url"], timeout=60
        )
    return CalDAVProvider(endpoint["url"], REP, endpoint["password"], allow_private=True, timeout=60)


def _world(provider, meetings: bool) -> list[int]:
    """A tenant, its rep and contacts, and the rep's account with every calendar; returns calendar ids."""
    db.session.execute(sa.text("TRUNCATE tenants RESTART IDENTITY CASCADE"))
    tenant = factories.make_tenant("Bench")
    rep = factories.make_user(tenant, seat="sales", email=GOOGLE_ACCOUNT, time_zone=ZONE_NAME)
    db.session.add_all(
        Contact(
            tenant_id=tenant.id, email=contact_email(n), first_name="Client", last_name=str(n), company=""
        )
        for n in range(CONTACTS)
    )
    connection = sync.connect(
        tenant,
        rep,
        provider=provider.name,
        account=provider.account(),
        calendars=provider.list_calendars(),
        secret={"token": "bench"},
    )
    connection.calendar_sync = meetings
    for calendar in connection.calendars:
        calendar.checks_availability = True
    db.session.commit()
    return sorted(c.id for c in connection.calendars)


def run_worker(task: dict) -> dict:
    """One sync of every calendar in a fresh process; "full" builds the world first. Returns the figures."""
    app = create_app(config_for_tests(task["database_url"]))
    freeze_imports()  # as the RQ worker does before it forks a job's horse
    with app.app_context(), requests.Session() as session:
        provider = _provider(task["endpoint"], session)
        full = task["phase"] == "full"
        calendar_ids = _world(provider, task["meetings"]) if full else task["calendar_ids"]
        calendars = [db.session.get(Calendar, calendar_id) for calendar_id in calendar_ids]
        if task["trace"]:
            tracemalloc.start()
        profiler = cProfile.Profile() if task.get("profile") else None
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        reports = []
        for calendar in calendars:
            reports.append(engine.sync_calendar(calendar, provider, now=NOW))
            db.session.commit()
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(task["profile"])
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        traced_peak = tracemalloc.get_traced_memory()[1] if task["trace"] else None
        tracemalloc.stop()
        if hasattr(provider, "close"):
            provider.close()
        db.engine.dispose()
    bad = [r for r in reports if r.outcome != "synced" or r.skipped]
    if bad:
        raise RuntimeError(f"a benchmark sync did not go through cleanly: {bad}")
    return {
        "calendar_ids": calendar_ids,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "events": sum(r.events_seen for r in reports),
        "fetch_seconds": sum(r.fetch_seconds for r in reports),
        "apply_seconds": sum(r.apply_seconds for r in reports),
        "requests": sum(r.requests for r in reports),
        "rows_written": sum(r.rows_written for r in reports),
        "blocks_written": sum(r.blocks_written for r in reports),
        "meetings_created": sum(r.meetings_created for r in reports),
        "meetings_updated": sum(r.meetings_updated for r in reports),
        "full": all(r.full for r in reports),
        "peak_rss_mib": peak_rss / 1024,
        "tracemalloc_peak_mib": traced_peak / 2**20 if traced_peak is not None else None,
    }


# --- The orchestration --------------------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        context = multiprocessing.get_context("spawn")
        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=context, max_tasks_per_child=1)

    def worker(self, peer, phase: str, **task) -> dict:
        before = peer.requests
        load = os.getloadavg()[0]  # the machine's 1-minute load when the run starts
        result = self.pool.submit(
            run_worker,
            {
                "database_url": self.args.database_url,
                "endpoint": peer.endpoint(),
                "phase": phase,
                "trace": False,
                "meetings": True,
                "profile": None,
                **task,
            },
        ).result()
        if before is not None and phase != "full" and peer.requests - before != result["requests"]:
            # The emulator's own count: the report must not leave a request out.
            raise RuntimeError(f"{peer.requests - before} requests reached the emulator, {result}")
        result["load"] = load
        return result

    def measure(self, peer) -> dict:
        runs = self.args.runs
        out: dict = {"provider": peer.label, "full": {}, "incremental": {}}
        for meetings in (False, True):
            mode = "meetings_on" if meetings else "meetings_off"
            full, rounds = [], []
            for run in range(runs):
                profile = None
                if self.args.profile:
                    profile = str(Path(self.args.profile) / f"{peer.name}-{mode}-{run + 1}.prof")
                result = self.worker(peer, "full", meetings=meetings, profile=profile)
                full.append(result)
                log(
                    f"{peer.name} full sync, {mode}, run {run + 1}: {rate(result):,.0f} events/s "
                    f"(fetch {result['fetch_seconds']:.2f} s, apply {result['apply_seconds']:.2f} s, "
                    f"worker CPU {result['cpu_seconds']:.2f} s)"
                )
                if not meetings or self.args.quick:
                    continue
                ids = result["calendar_ids"]
                incremental = {}
                for count in CHANGES:
                    peer.change(count, round_=run)
                    incremental[count] = self.worker(peer, "incremental", calendar_ids=ids)
                    incremental[count]["fraction_of_full"] = incremental[count]["seconds"] / result["seconds"]
                rounds.append(incremental)
            if self.args.quick:
                out["full"][mode] = summarise_full(full, None)
                continue
            traced = self.worker(peer, "full", meetings=meetings, trace=True)
            out["full"][mode] = summarise_full(full, traced)
            if meetings:
                out["incremental"] = {
                    str(count): summarise_incremental([r[count] for r in rounds]) for count in CHANGES
                }
        return out

    def close(self) -> None:
        self.pool.shutdown()


def rate(result: dict) -> float:
    return result["events"] / result["seconds"]


def median(values) -> float:
    return statistics.median(values)


def summarise_full(runs: list[dict], traced: dict | None) -> dict:
    rates = [rate(r) for r in runs]
    return {
        "events": runs[0]["events"],
        "requests": runs[0]["requests"],
        "rows_written": runs[0]["rows_written"],
        "blocks_written": runs[0]["blocks_written"],
        "meetings_created": runs[0]["meetings_created"],
        "events_per_second": median(rates),
        "events_per_second_runs": rates,
        "spread": (max(rates) - min(rates)) / median(rates),
        "seconds": median(r["seconds"] for r in runs),
        "cpu_seconds": median(r["cpu_seconds"] for r in runs),
        "fetch_seconds": median(r["fetch_seconds"] for r in runs),
        "apply_seconds": median(r["apply_seconds"] for r in runs),
        "fetch_share": median(r["fetch_seconds"] / r["seconds"] for r in runs),
        "peak_rss_mib": median(r["peak_rss_mib"] for r in runs),
        "load": [min(r["load"] for r in runs), max(r["load"] for r in runs)],
        "tracemalloc_peak_mib": traced["tracemalloc_peak_mib"] if traced else None,
    }


def summarise_incremental(runs: list[dict]) -> dict:
    return {
        "requests": median(r["requests"] for r in runs),
        "rows_written": median(r["rows_written"] for r in runs),
        "events_seen": median(r["events"] for r in runs),
        "seconds": median(r["seconds"] for r in runs),
        "fraction_of_full": median(r["fraction_of_full"] for r in runs),
        "full": any(r["full"] for r in runs),
    }


# --- The report ---------------------------------------------------------------------------------------------


def table(results: dict) -> str:
    """The Markdown that goes between the markers in docs/benchmarks.md."""
    machine_, args = results["machine"], results["parameters"]
    lines = [
        f"Measured {results['measured_at']}: {machine_['cpu']} ({machine_['cpus']} CPUs), "
        f"Python {machine_['python']}, PostgreSQL {machine_['postgresql']}; {args['calendars']} calendars "
        f"x {args['events']:,} events; median of {args['runs']} runs, each in a fresh worker process.",
        "",
        "**Full sync**, nothing stored yet. Events/s = events listed / seconds from the first request to the "
        "last commit: fetch (HTTP on loopback + parsing) and apply (rules + writes + commit) together. "
        "Worker CPU is the worker process's own CPU time in that span (the rest it waits for the peer and "
        "PostgreSQL, which share the machine); load is the machine's 1-minute load average as the runs "
        "started (lowest-highest).",
        "",
        "| peer | meetings | events/s | the runs | fetch s | apply s | worker CPU s | rows written "
        "| requests | tracemalloc peak | worker peak RSS | load |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for peer in results["peers"].values():
        for mode, row in peer["full"].items():
            runs = ", ".join(f"{value:,.0f}" for value in row["events_per_second_runs"])
            meetings = mode.removeprefix("meetings_")
            lines.append(
                f"| {peer['provider']} | {meetings} | **{row['events_per_second']:,.0f}** "
                f"| {runs} | {row['fetch_seconds']:.2f} | {row['apply_seconds']:.2f} "
                f"| {row['cpu_seconds']:.2f} | {row['rows_written']:,} | {row['requests']} "
                f"| {row['tracemalloc_peak_mib']:.1f} MiB | {row['peak_rss_mib']:.0f} MiB "
                f"| {row['load'][0]:.1f}-{row['load'][1]:.1f} |"
            )
    lines += [
        "",
        "**Incremental sync** of every calendar (meetings on) after the full sync of the same run, the time "
        "as a fraction of that full sync's:",
        "",
        "| peer | changes | requests | rows written | time | fraction of the full sync |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for peer in results["peers"].values():
        for count, row in peer["incremental"].items():
            lines.append(
                f"| {peer['provider']} | {count} | {row['requests']:g} | {row['rows_written']:g} "
                f"| {row['seconds'] * 1000:.0f} ms | {row['fraction_of_full']:.1%} |"
            )
    google = results["peers"].get("google")
    if google:
        verdicts = [
            f"meetings {mode.removeprefix('meetings_')}: "
            f"{'met' if row['events_per_second'] >= TARGET_EVENTS_PER_SECOND else '**not met**'} "
            f"({row['events_per_second']:,.0f} events/s)"
            for mode, row in google["full"].items()
        ]
        target = f"Target {TARGET_EVENTS_PER_SECOND:,} events/s per worker on the emulator"
        lines += ["", f"{target}: {'; '.join(verdicts)}."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calendars", type=int, default=3)
    parser.add_argument("--events", type=int, default=2000, help="per calendar")
    parser.add_argument("--runs", type=int, default=3, help="the figures are the median of these")
    parser.add_argument("--peers", default="google,caldav", help="comma-separated: google, caldav")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--no-docs", action="store_true", help=f"leave {DOCS.relative_to(ROOT)} alone")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="the Google emulator's full syncs only (no memory trace, no incremental syncs); implies "
        "--no-docs and leaves the results file alone",
    )
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile of each timed full sync into DIR")
    args = parser.parse_args()
    if args.quick:
        args.peers, args.no_docs = "google", True
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)

    peers = args.peers.split(",")
    if not set(peers) <= {"google", "caldav"}:
        parser.error(f"unknown peer in {args.peers!r}: google, caldav")
    results: dict = {
        "measured_at": measured_at(),
        "machine": {**machine(args.database_url), "platform": platform.platform()},
        "parameters": {"calendars": args.calendars, "events": args.events, "runs": args.runs},
        "peers": {},
    }
    with throwaway_database(args.database_url):
        bench = Bench(args)
        try:
            with tempfile.TemporaryDirectory(prefix="termin-bench-") as scratch:
                for name in peers:
                    log(f"seeding {name}: {args.calendars} x {args.events} events")
                    if name == "google":
                        peer = GooglePeer(args.calendars, args.events)
                    else:
                        peer = RadicalePeer(args.calendars, args.events, Path(scratch) / "radicale")
                    try:
                        results["peers"][name] = bench.measure(peer)
                    finally:
                        peer.close()
        finally:
            bench.close()
    if args.quick:
        print(json.dumps(results["peers"], indent=2))
        return
    write_results(RESULTS, results)
    if not args.no_docs:
        write_section(BEGIN, END, table(results))
        log(f"updated {DOCS.relative_to(ROOT)}")
    print(table(results))


if __name__ == "__main__":
    main()
