"""Booking race benchmark: many visitors booking the same slot at the same moment, over HTTP.

Run it with ``make bench-race`` or ``.venv/bin/python bench/race.py`` (``--help`` for the knobs). It
recreates a throwaway PostgreSQL database (``TERMIN_BENCH_DATABASE_URL``, default ``termin_bench`` on
127.0.0.1) with the migrations, creates a tenant, a rep and the rep's default page in it, and serves
``wsgi:app`` with gunicorn (``--workers`` processes of ``--threads`` threads) on 127.0.0.1. Then, for each of
``--rounds`` rounds, ``--clients`` clients (threads, each with its own keep-alive ``requests.Session``) are
released together by a barrier and POST the same slot, a new one each round, to ``/meetings/<path>/book``
with ``Accept: application/json`` (form fields; JSON clients need no CSRF token).

The guarantee (issue 5, item 10): every round exactly one 201 and the rest 409, no 5xx (nor any other
answer), and at the end no two confirmed bookings of the rep overlap in the database (checked in SQL) and
there is one confirmed booking per round. The script exits 1 when any of that fails. The results go to
``bench/results/race.json`` and, as a table, into ``docs/benchmarks.md`` between the ``race`` markers.
Everything it started (gunicorn, the database, its files) is gone when it ends.

``--mode round-robin`` races for one slot of a round-robin page of three members (T1): every round exactly
three 201s, each booking a different member, the rest 409. ``--mode group``: a group page of the same three,
exactly one 201 a round (holding all three members). Their tables go between the ``race-round-robin`` and
``race-group`` markers.
"""

# ruff: noqa: E402  (the project root goes on sys.path before the project's own imports)

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.factories is not an installed package

import psycopg
import requests
from sqlalchemy.engine import make_url

from app.pages import paths
from app.pages import services as pages
from bench.common import (
    APP_HOST,
    DATABASE_URL,
    DOCS,
    Gunicorn,
    log,
    machine,
    measured_at,
    seeding,
    server_env,
    throwaway_database,
    write_results,
    write_section,
)
from tests import factories

RESULTS = ROOT / "bench" / "results" / "race.json"
BEGIN, END = "<!-- race:begin -->", "<!-- race:end -->"
# Two confirmed bookings of one rep whose times overlap: must be none.
OVERLAPS_SQL = """
    SELECT count(*) FROM bookings a JOIN bookings b
      ON a.owner_id = b.owner_id AND a.id < b.id
     AND a.status = 'confirmed' AND b.status = 'confirmed'
     AND a.start_at < b.end_at AND b.start_at < a.end_at
"""


# --- The world -------------------------------------------------------------------------------------


MODES = {"personal": 1, "round-robin": 3, "group": 1}  # the 201s a round must get
TEAM_SIZE = 3


def seed(database_url: str, rounds: int, mode: str = "personal") -> dict:
    """A tenant, a rep and their default page (Mon-Fri 9-17 Warsaw, 30 minutes); the slots to race for.
    In a team mode, an admin and three reps on a round-robin or group page with the same hours."""
    with seeding(database_url):
        tenant = factories.make_tenant("Race Company")
        rep = factories.make_user(tenant, seat="sales", email="rep@race.example.com")
        reps = [rep]
        if mode == "personal":
            page = factories.make_page(rep, slug="race", increment=30, min_notice=0, horizon_days=90)
        else:
            admin = factories.make_user(tenant, role="admin", email="admin@race.example.com")
            reps += [
                factories.make_user(tenant, seat="sales", email=f"rep{n}@race.example.com")
                for n in range(2, TEAM_SIZE + 1)
            ]
            page = factories.make_page(
                admin,
                slug="race",
                increment=30,
                min_notice=0,
                horizon_days=90,
                kind=mode.replace("-", "_"),
                members=[{"user_id": member.id} for member in reps],
            )
        # Tomorrow on: no slot turns into the past while the rounds run.
        now = datetime.now(UTC)
        start = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        slots = pages.free_slots(page, start, start + timedelta(days=80), now=now)
        if len(slots) < rounds:
            raise SystemExit(f"the page offers {len(slots)} slots, fewer than {rounds} rounds")
        world = {
            "rep_ids": [member.id for member in reps],
            "path": paths.page_path(page),
            "slots": [s.isoformat() for s in slots],
        }
    world["slots"] = world["slots"][:rounds]
    return world


# --- The race -----------------------------------------------------------------------------------------------


class Client:
    """One visitor: a keep-alive session. JSON clients need no cookie nor CSRF token (the contract)."""

    def __init__(self, base_url: str, path: str, n: int):
        self.n = n
        self.url = f"{base_url}{path}/book"
        self.session = requests.Session()
        self.session.headers.update({"Host": APP_HOST, "Accept": "application/json"})

    def book(self, start: str, round_: int) -> tuple[int, float, str]:
        data = {
            "start": start,
            "duration": "30",
            "first_name": "Visitor",
            "last_name": str(self.n),
            "email": f"visitor{self.n}.{round_}@race.example.org",
            "tz": "Europe/Warsaw",
            "idempotency_key": f"race-{round_}-{self.n}",
        }
        began = time.perf_counter()
        try:
            try:
                response = self.session.post(self.url, data=data, timeout=120)
            except requests.ConnectionError:
                # gunicorn closes a keep-alive connection idle for 2 s, which a slow round (a loaded machine)
                # leaves behind; the same idempotency key makes sending again safe: one booking at most.
                response = self.session.post(self.url, data=data, timeout=120)
        except requests.RequestException as error:
            return 0, time.perf_counter() - began, f"{type(error).__name__}: {error}"
        seconds = time.perf_counter() - began
        detail = "" if response.status_code in (201, 409) else response.text[:300]
        return response.status_code, seconds, detail


def race(base_url: str, path: str, slots: list[str], clients: int) -> list[dict]:
    """Every round: all clients released together on one slot; each round's answers."""
    visitors = [Client(base_url, path, n) for n in range(clients)]
    start_gate = threading.Barrier(clients + 1, timeout=600)
    end_gate = threading.Barrier(clients + 1, timeout=600)
    current: dict = {}
    answers: list[tuple[int, float, str]] = [(0, 0.0, "")] * clients

    def visitor(client: Client) -> None:
        while True:
            try:
                start_gate.wait()
            except threading.BrokenBarrierError:
                return
            if current.get("stop"):
                return
            try:
                answers[client.n] = client.book(current["slot"], current["round"])
            except Exception as error:  # counted as a failed answer, never lost
                answers[client.n] = (0, 0.0, f"{type(error).__name__}: {error}")
            try:
                end_gate.wait()
            except threading.BrokenBarrierError:
                return

    threads = [threading.Thread(target=visitor, args=(c,), daemon=True) for c in visitors]
    for thread in threads:
        thread.start()
    rounds = []
    try:
        for round_, slot in enumerate(slots):
            current.update(slot=slot, round=round_)
            began = time.perf_counter()
            start_gate.wait()
            end_gate.wait()
            wall = time.perf_counter() - began
            statuses = [a[0] for a in answers]
            rounds.append(
                {
                    "slot": slot,
                    "statuses": statuses,
                    "seconds": [a[1] for a in answers],
                    "details": sorted({a[2] for a in answers if a[2]}),
                    "wall_seconds": wall,
                }
            )
            if (round_ + 1) % 20 == 0 or round_ == 0:
                log(
                    f"round {round_ + 1}/{len(slots)}: "
                    f"{statuses.count(201)} x 201, {statuses.count(409)} x 409, {wall * 1000:.0f} ms"
                )
    except BaseException:
        start_gate.abort()
        end_gate.abort()
        raise
    else:
        current["stop"] = True
        start_gate.wait()
    finally:
        for client in visitors:
            client.session.close()
    return rounds


def check_database(database_url: str, rep_ids: list[int]) -> dict:
    """Overlaps of any rep's confirmed rows (none allowed), the visitors' confirmed bookings (a group's
    companion rows not counted), and slots where one rep holds two of them."""
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as connection:
        overlaps = connection.execute(OVERLAPS_SQL).fetchone()[0]
        confirmed = connection.execute(
            "SELECT count(*) FROM bookings WHERE owner_id = ANY(%s) AND status = 'confirmed'"
            " AND parent_id IS NULL",
            (rep_ids,),
        ).fetchone()[0]
        per_slot = connection.execute(
            "SELECT count(*) FROM (SELECT owner_id, start_at FROM bookings"
            " WHERE owner_id = ANY(%s) AND status = 'confirmed'"
            " GROUP BY owner_id, start_at HAVING count(*) > 1) doubled",
            (rep_ids,),
        ).fetchone()[0]
        held = connection.execute(
            "SELECT count(*) FROM bookings WHERE owner_id = ANY(%s) AND status = 'confirmed'", (rep_ids,)
        ).fetchone()[0]
    return {
        "overlapping_pairs": overlaps,
        "confirmed": confirmed,
        "member_rows": held,
        "slots_booked_twice": per_slot,
    }


# --- The report ---------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else 0.0


def summarise(rounds: list[dict], database: dict, clients: int, winners: int = 1, holds: int = 1) -> dict:
    """``winners``: the 201s a round must get; ``holds``: the member rows each booking holds (a group's)."""
    statuses = [s for r in rounds for s in r["statuses"]]
    good = [
        r
        for r in rounds
        if r["statuses"].count(201) == winners and r["statuses"].count(409) == clients - winners
    ]
    won = [t for r in rounds for s, t in zip(r["statuses"], r["seconds"], strict=True) if s == 201]
    lost = [t for r in rounds for s, t in zip(r["statuses"], r["seconds"], strict=True) if s == 409]
    others = sorted({s for s in statuses if s not in (201, 409)})
    summary = {
        "rounds": len(rounds),
        "rounds_ok": len(good),
        "status_201": statuses.count(201),
        "status_409": statuses.count(409),
        "status_5xx": sum(1 for s in statuses if 500 <= s < 600),
        "other_statuses": {str(s): statuses.count(s) for s in others},
        "details": sorted({d for r in rounds for d in r["details"]})[:10],
        "p50_201_ms": percentile(won, 0.5) * 1000,
        "p99_201_ms": percentile(won, 0.99) * 1000,
        "p50_409_ms": percentile(lost, 0.5) * 1000,
        "p99_409_ms": percentile(lost, 0.99) * 1000,
        "round_median_ms": statistics.median(r["wall_seconds"] for r in rounds) * 1000 if rounds else 0,
        "round_max_ms": max((r["wall_seconds"] for r in rounds), default=0) * 1000,
        **database,
    }
    summary["guarantee_held"] = (
        summary["rounds_ok"] == summary["rounds"]
        and summary["status_5xx"] == 0
        and not summary["other_statuses"]
        and database["overlapping_pairs"] == 0
        and database["slots_booked_twice"] == 0
        and database["confirmed"] == summary["rounds"] * winners
        and database["member_rows"] == summary["rounds"] * winners * holds
    )
    return summary


def table(results: dict) -> str:
    m, p, s = results["machine"], results["parameters"], results["summary"]
    winners = MODES[p.get("mode", "personal")]
    page = {
        "personal": "a rep's page",
        "round-robin": f"a round-robin page of {TEAM_SIZE} members",
        "group": f"a group page of {TEAM_SIZE} members",
    }[p.get("mode", "personal")]
    server = (
        f"{p['workers']} sync workers"
        if p["threads"] == 1
        else f"{p['workers']} workers x {p['threads']} threads (gthread)"
    )
    others = ", ".join(f"{count} x {status}" for status, count in s["other_statuses"].items()) or "none"
    verdict = "**held**" if s["guarantee_held"] else "**FAILED**"
    lines = [
        f"Measured {results['measured_at']}: {m['cpu']} ({m['cpus']} CPUs), Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, load average {m['load_before']} before; gunicorn {server} on "
        f"127.0.0.1; {p['rounds']} rounds of {p['clients']} clients on one slot of {page}.",
        "",
        "| | figure |",
        "|---|---:|",
        f"| rounds with exactly {winners} x 201 and {p['clients'] - winners} x 409 | "
        f"{s['rounds_ok']} / {s['rounds']} |",
        f"| 201 (booked) | {s['status_201']:,} |",
        f"| 409 (slot taken) | {s['status_409']:,} |",
        f"| 5xx | {s['status_5xx']} |",
        f"| any other answer | {others} |",
        f"| confirmed bookings in the database (member rows) | {s['confirmed']} ({s['member_rows']}) |",
        f"| a member holding two bookings of one slot (SQL) | {s['slots_booked_twice']} |",
        f"| overlapping confirmed bookings (SQL) | {s['overlapping_pairs']} |",
        f"| 201 latency p50 / p99 | {s['p50_201_ms']:.0f} / {s['p99_201_ms']:.0f} ms |",
        f"| 409 latency p50 / p99 | {s['p50_409_ms']:.0f} / {s['p99_409_ms']:.0f} ms |",
        f"| a round (all {p['clients']} answered), median / max | "
        f"{s['round_median_ms']:.0f} / {s['round_max_ms']:.0f} ms |",
        "",
        f"The guarantee ({winners} x 201 a round, each a different member, the rest 409, no 5xx, "
        f"no overlap): {verdict}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads a worker (1: sync workers)")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument(
        "--mode", choices=sorted(MODES), default="personal", help="whose page: a rep's or a team's"
    )
    parser.add_argument("--no-docs", action="store_true", help=f"leave {DOCS.relative_to(ROOT)} alone")
    args = parser.parse_args()

    results: dict = {
        "measured_at": measured_at(),
        "machine": {**machine(args.database_url), "load_before": round(os.getloadavg()[0], 2)},
        "parameters": {k: getattr(args, k) for k in ("rounds", "clients", "workers", "threads", "mode")},
    }
    with throwaway_database(args.database_url):
        world = seed(args.database_url, args.rounds, args.mode)
        with tempfile.TemporaryDirectory(prefix="termin-race-") as scratch:
            env = server_env(args.database_url, Path(scratch))
            log_path = Path(scratch) / "gunicorn.log"
            with Gunicorn(
                "wsgi:app", workers=args.workers, threads=args.threads, env=env, log_path=log_path
            ) as server:
                day = world["slots"][0][:10]
                server.warm(
                    f"{world['path']}/slots.json?start={day}&days=1&tz=Europe/Warsaw",
                    APP_HOST,
                    4 * args.workers,
                )
                log(f"racing {args.clients} clients for {args.rounds} slots on {server.url}{world['path']}")
                try:
                    rounds = race(server.url, world["path"], world["slots"], args.clients)
                except SystemExit:
                    log(f"server log:\n{server.log_tail()}")
                    raise
                database = check_database(args.database_url, world["rep_ids"])
                holds = TEAM_SIZE if args.mode == "group" else 1
                results["summary"] = summarise(rounds, database, args.clients, MODES[args.mode], holds)
                results["rounds"] = [
                    {
                        "slot": r["slot"],
                        "statuses": r["statuses"],
                        "wall_ms": round(r["wall_seconds"] * 1000, 1),
                    }
                    for r in rounds
                ]
                if not results["summary"]["guarantee_held"]:
                    log(f"server log:\n{server.log_tail()}")
    suffix = "" if args.mode == "personal" else f"-{args.mode}"
    write_results(RESULTS.with_name(f"race{suffix}.json"), results)
    if not args.no_docs:
        heading = "## Booking race (`bench/race.py`)"
        if args.mode != "personal":
            heading = f"## Booking race, {args.mode} page (`bench/race.py --mode {args.mode}`)"
        write_section(
            f"<!-- race{suffix}:begin -->", f"<!-- race{suffix}:end -->", table(results), heading=heading
        )
        log(f"updated {DOCS.relative_to(ROOT)}")
    print(table(results))
    for detail in results["summary"]["details"]:
        log(f"  answer: {detail}")
    return 0 if results["summary"]["guarantee_held"] else 1


if __name__ == "__main__":
    sys.exit(main())
