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


def seed(database_url: str, rounds: int) -> dict:
    """A tenant, a rep and their default page (Mon-Fri 9-17 Warsaw, 30 minutes); the slots to race for."""
    with seeding(database_url):
        tenant = factories.make_tenant("Race Company")
        rep = factories.make_user(tenant, seat="sales", email="rep@race.example.com")
        page = factories.make_page(rep, slug="race", increment=30, min_notice=0, horizon_days=90)
        # Tomorrow on: no slot turns into the past while the rounds run.
        now = datetime.now(UTC)
        start = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        slots = pages.free_slots(page, start, start + timedelta(days=80), now=now)
        if len(slots) < rounds:
            raise SystemExit(f"the page offers {len(slots)} slots, fewer than {rounds} rounds")
        world = {"rep_id": rep.id, "path": pages.page_path(page), "slots": [s.isoformat() for s in slots]}
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


def check_database(database_url: str, rep_id: int) -> dict:
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url) as connection:
        overlaps = connection.execute(OVERLAPS_SQL).fetchone()[0]
        confirmed = connection.execute(
            "SELECT count(*) FROM bookings WHERE owner_id = %s AND status = 'confirmed'", (rep_id,)
        ).fetchone()[0]
        per_slot = connection.execute(
            "SELECT count(*) FROM (SELECT start_at FROM bookings WHERE owner_id = %s AND status = 'confirmed'"
            " GROUP BY start_at HAVING count(*) > 1) doubled",
            (rep_id,),
        ).fetchone()[0]
    return {"overlapping_pairs": overlaps, "confirmed": confirmed, "slots_booked_twice": per_slot}


# --- The report ---------------------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))] if ordered else 0.0


def summarise(rounds: list[dict], database: dict, clients: int) -> dict:
    statuses = [s for r in rounds for s in r["statuses"]]
    good = [r for r in rounds if r["statuses"].count(201) == 1 and r["statuses"].count(409) == clients - 1]
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
        and database["confirmed"] == summary["rounds"]
    )
    return summary


def table(results: dict) -> str:
    m, p, s = results["machine"], results["parameters"], results["summary"]
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
        f"127.0.0.1; {p['rounds']} rounds of {p['clients']} clients.",
        "",
        "| | figure |",
        "|---|---:|",
        f"| rounds with exactly one 201 and {p['clients'] - 1} x 409 | {s['rounds_ok']} / {s['rounds']} |",
        f"| 201 (booked) | {s['status_201']:,} |",
        f"| 409 (slot taken) | {s['status_409']:,} |",
        f"| 5xx | {s['status_5xx']} |",
        f"| any other answer | {others} |",
        f"| confirmed bookings in the database | {s['confirmed']} |",
        f"| overlapping confirmed bookings (SQL) | {s['overlapping_pairs']} |",
        f"| 201 latency p50 / p99 | {s['p50_201_ms']:.0f} / {s['p99_201_ms']:.0f} ms |",
        f"| 409 latency p50 / p99 | {s['p50_409_ms']:.0f} / {s['p99_409_ms']:.0f} ms |",
        f"| a round (all {p['clients']} answered), median / max | "
        f"{s['round_median_ms']:.0f} / {s['round_max_ms']:.0f} ms |",
        "",
        f"The guarantee (one 201 a round, the rest 409, no 5xx, no overlap): {verdict}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=8, help="threads a worker (1: sync workers)")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--no-docs", action="store_true", help=f"leave {DOCS.relative_to(ROOT)} alone")
    args = parser.parse_args()

    results: dict = {
        "measured_at": measured_at(),
        "machine": {**machine(args.database_url), "load_before": round(os.getloadavg()[0], 2)},
        "parameters": {k: getattr(args, k) for k in ("rounds", "clients", "workers", "threads")},
    }
    with throwaway_database(args.database_url):
        world = seed(args.database_url, args.rounds)
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
                database = check_database(args.database_url, world["rep_id"])
                results["summary"] = summarise(rounds, database, args.clients)
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
    write_results(RESULTS, results)
    if not args.no_docs:
        write_section(BEGIN, END, table(results), heading="## Booking race (`bench/race.py`)")
        log(f"updated {DOCS.relative_to(ROOT)}")
    print(table(results))
    for detail in results["summary"]["details"]:
        log(f"  answer: {detail}")
    return 0 if results["summary"]["guarantee_held"] else 1


if __name__ == "__main__":
    sys.exit(main())
