"""Public page benchmark: a rep's scheduling page on a tenant's domain under ``wrk``, against a bare Flask.

Run it with ``make bench-page`` or ``.venv/bin/python bench/page.py`` (``--help`` for the knobs). It needs
``wrk`` on the PATH and installs nothing: without it, it stops and says ``apt-get install -y wrk``. It
recreates a throwaway PostgreSQL database (``TERMIN_BENCH_DATABASE_URL``, default ``termin_bench`` on
127.0.0.1) with the migrations, creates a tenant with a verified domain and a rep whose default page lives
on it (Mon-Fri 9:00-17:00 Europe/Warsaw, 30 or 60 minutes, a question), with a few dozen bookings over the
next weeks as busy time, and serves with gunicorn on 127.0.0.1, the same way (``--workers`` sync workers,
as docs/operations.md runs production):

* ``wsgi:app``, asked for ``/meetings/<rep>`` with the ``Host`` header of the domain, with the page
  micro-cache on (``PAGE_CACHE_SECONDS``, ``--cache-seconds``, 5 by default: app/pages/cache.py);
* the same app with the cache off (``PAGE_CACHE_SECONDS=0``): every request rendered;
* a bare Flask app answering "Hello, World!" (``hello_app`` below).

``wrk`` (``--connections`` connections, ``--duration`` seconds, ``--latency``) measures each in turn,
alternating, ``--runs`` times; the figures are medians. Bar (issue 5, item 10): the page's requests per
second at least 1/3 of the hello app's; p99 of all reported, and the uncached ratio beside the cached
one. When either is below the bar (or with ``--profile``) it profiles the page request in-process, cache
off (cProfile, the Flask test client), and reports where the time goes.
It exits 1 when any answer was not a 2xx (the figures would be an error page's), not when the bar is
missed. The results go to ``bench/results/page.json``, a table into ``docs/benchmarks.md`` between the
``page`` markers and a bar chart to ``docs/page_bench.svg`` (drawn by hand: matplotlib is not a
dependency). Everything it started (gunicorn, the database) is gone when it ends.
"""

# ruff: noqa: E402  (the project root goes on sys.path before the project's own imports)

import argparse
import cProfile
import io
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # tests.factories and bench.common are not installed packages

import requests
from flask import Flask

from app import create_app
from app.extensions import db
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
from tests.conftest import config_for_tests

RESULTS = ROOT / "bench" / "results" / "page.json"
PLOT = ROOT / "docs" / "page_bench.svg"
BEGIN, END = "<!-- page:begin -->", "<!-- page:end -->"
DOMAIN = "meet.bench.localhost"
TARGET_RATIO = 1 / 3
BOOKINGS = 40


def hello_app() -> Flask:
    """The baseline: the smallest Flask app there is (gunicorn calls this factory)."""
    hello = Flask("hello")

    @hello.get("/")
    def index():
        return "Hello, World!"

    return hello


# --- The world ----------------------------------------------------------------------------------------------


def seed(database_url: str) -> dict:
    """A tenant, its verified domain, a rep with a default page there, and bookings as busy time."""
    with seeding(database_url):
        tenant = factories.make_tenant("Page Company")
        domain = factories.make_domain(tenant, DOMAIN, robots_txt="User-agent: *\nDisallow: /meetings*\n")
        rep = factories.make_user(tenant, seat="sales", email="rep@page.example.com", name="Rita Rep")
        page = factories.make_page(
            rep,
            slug="intro",
            title="Intro call",
            description="A first conversation.",
            durations=[30, 60],
            increment=30,
            min_notice=4 * 60,
            horizon_days=60,
            domain_id=domain.id,
            questions=[{"id": "q1", "label": "Company", "kind": "text", "required": False, "choices": []}],
        )
        now = datetime.now(UTC)
        slots = pages.free_slots(page, now, now + timedelta(days=30), now=now)
        for n, start in enumerate(slots[:: max(1, len(slots) // BOOKINGS)][:BOOKINGS]):
            request = pages.BookingRequest(
                start=start,
                duration=timedelta(minutes=30),
                first_name="Busy",
                last_name=str(n),
                email=f"busy{n}@page.example.org",
                time_zone="Europe/Warsaw",
                idempotency_key=f"seed-{n}",
            )
            pages.book(page, request, now=now)
        world = {"path": paths.page_path(page), "slots_offered": len(slots)}
    return world


# --- wrk ----------------------------------------------------------------------------------------------------

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()
    return float(number) * UNITS[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, the latency percentiles (ms), requests and errors from ``wrk --latency``'s report."""
    figures = {
        "requests_per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
    }
    for percent in ("50", "75", "90", "99"):
        figures[f"p{percent}_ms"] = _ms(re.search(rf"^\s+{percent}%\s+(\S+)", output, re.MULTILINE).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    figures["non_2xx"] = int(bad.group(1)) if bad else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    figures["socket_errors"] = sum(int(n) for n in errors.groups()) if errors else 0
    return figures


def run_wrk(url: str, host: str, args: argparse.Namespace) -> dict:
    command = [
        "wrk",
        f"--threads={args.wrk_threads}",
        f"--connections={args.connections}",
        f"--duration={args.duration}s",
        "--timeout=10s",
        "--latency",
        "--header",
        f"Host: {host}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603 (our own command)
    return parse_wrk(done.stdout)


def check_answers(url: str, host: str, expect: str) -> None:
    """The URL answers 200 with ``expect`` in the body: a benchmark of an error page is no benchmark."""
    response = requests.get(url, headers={"Host": host}, timeout=60)
    if response.status_code != 200 or expect not in response.text:
        raise SystemExit(f"GET {url} (Host: {host}) answered {response.status_code}: {response.text[:500]}")


# --- The profile --------------------------------------------------------------------------------------------


def profile_page(database_url: str, path: str, requests_: int = 200) -> list[dict]:
    """Where one page request's time goes, in-process (the Flask test client): the top functions by their
    own time, and by cumulative time within the project's code."""
    app = create_app({**config_for_tests(database_url), "APP_HOST": APP_HOST})
    client = app.test_client()
    for _ in range(20):  # warm: imports, the pool, Jinja's compiled templates
        client.get(path, base_url=f"http://{DOMAIN}")
    began = time.perf_counter()
    for _ in range(requests_):
        client.get(path, base_url=f"http://{DOMAIN}")
    plain_ms = (time.perf_counter() - began) / requests_ * 1000
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests_):
        client.get(path, base_url=f"http://{DOMAIN}")
    profiler.disable()
    with app.app_context():
        db.engine.dispose()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, own, cumulative, _) in stats.stats.items():
        where = filename.replace(str(ROOT) + "/", "")
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls_per_request": calls / requests_,
                "own_ms": own / requests_ * 1000,
                "cumulative_ms": cumulative / requests_ * 1000,
                "project": where.startswith(("app/", "templates/")),
            }
        )
    total = sum(r["own_ms"] for r in rows)
    top_own = sorted(rows, key=lambda r: r["own_ms"], reverse=True)[:12]
    top_project = sorted((r for r in rows if r["project"]), key=lambda r: r["cumulative_ms"], reverse=True)[
        :12
    ]
    return [
        {"total_ms": total, "plain_ms": plain_ms},
        *[{"kind": "own", **r} for r in top_own],
        *[{"kind": "app", **r} for r in top_project],
    ]


# --- The report ---------------------------------------------------------------------------------------------


def summarise(runs: dict) -> dict:
    summary = {}
    for name, measured in runs.items():
        summary[name] = {
            "requests_per_second": statistics.median(m["requests_per_second"] for m in measured),
            "requests_per_second_runs": [m["requests_per_second"] for m in measured],
            "p50_ms": statistics.median(m["p50_ms"] for m in measured),
            "p99_ms": statistics.median(m["p99_ms"] for m in measured),
            "non_2xx": sum(m["non_2xx"] for m in measured),
            "socket_errors": sum(m["socket_errors"] for m in measured),
        }
    hello = summary["hello"]["requests_per_second"]
    summary["ratio"] = summary["page"]["requests_per_second"] / hello
    summary["met"] = summary["ratio"] >= TARGET_RATIO
    if "uncached" in summary:
        summary["uncached_ratio"] = summary["uncached"]["requests_per_second"] / hello
        summary["uncached_met"] = summary["uncached_ratio"] >= TARGET_RATIO
    return summary


def table(results: dict) -> str:
    m, p, s = results["machine"], results["parameters"], results["summary"]
    lines = [
        f"Measured {results['measured_at']}: {m['cpu']} ({m['cpus']} CPUs), Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}, load average {m['load_before']} before and "
        f"{results.get('load_after', '?')} after; gunicorn {p['workers']} sync "
        f"workers on 127.0.0.1 for both apps; `wrk` {p['wrk_threads']} threads, "
        f"{p['connections']} connections, "
        f"{p['duration']} s a run, {p['runs']} runs of each, alternating; medians. The page: "
        f"`GET {results['world']['path']}` with `Host: {DOMAIN}` ({results['world']['slots_offered']} free "
        f"times in the next 30 days, {BOOKINGS} bookings as busy time), served with the page micro-cache "
        f"on (`PAGE_CACHE_SECONDS={p.get('cache_seconds', 5)}`) and off (`PAGE_CACHE_SECONDS=0`).",
        "",
        "| app | requests/s | the runs | p50 ms | p99 ms | non-2xx |",
        "|---|---:|---|---:|---:|---:|",
    ]
    labels = (
        ("hello", "bare Flask hello"),
        ("page", "scheduling page on a custom host, micro-cache on"),
        ("uncached", "the same page, micro-cache off"),
    )
    for name, label in labels:
        if name not in s:
            continue
        row = s[name]
        runs = ", ".join(f"{v:,.0f}" for v in row["requests_per_second_runs"])
        lines.append(
            f"| {label} | **{row['requests_per_second']:,.0f}** | {runs} | {row['p50_ms']:.1f} "
            f"| {row['p99_ms']:.1f} | {row['non_2xx'] + row['socket_errors']} |"
        )
    verdict = "met" if s["met"] else "**not met**"
    lines += [
        "",
        f"![requests/s and p99 of each]({PLOT.name})",
        "",
        f"Page (micro-cache on) / hello requests per second: **{s['ratio']:.2f}** "
        f"(bar >= {TARGET_RATIO:.2f}): {verdict}.",
    ]
    if "uncached_ratio" in s:
        uncached = "met" if s["uncached_met"] else "**not met**"
        lines += [
            "",
            f"Page (micro-cache off, every request rendered) / hello: **{s['uncached_ratio']:.2f}**: "
            f"{uncached}.",
        ]
    profile = results.get("profile")
    if profile:
        total = profile[0]["total_ms"]
        lines += [
            "",
            "Profile of the page request in-process, micro-cache off (the Flask test client: "
            f"{profile[0]['plain_ms']:.1f} ms a request, {total:.1f} ms under cProfile), the functions "
            "with the most time of their own:",
            "",
            "| function | calls/request | own ms | cumulative ms |",
            "|---|---:|---:|---:|",
        ]
        for row in (r for r in profile if r.get("kind") == "own"):
            lines.append(
                f"| `{row['function']}` | {row['calls_per_request']:g} | {row['own_ms']:.2f} "
                f"| {row['cumulative_ms']:.2f} |"
            )
        lines += ["", "and the project's own functions by cumulative time:", ""]
        lines += ["| function | calls/request | cumulative ms |", "|---|---:|---:|"]
        for row in (r for r in profile if r.get("kind") == "app"):
            lines.append(
                f"| `{row['function']}` | {row['calls_per_request']:g} | {row['cumulative_ms']:.2f} |"
            )
    return "\n".join(lines)


def svg(results: dict) -> str:
    """Two panels of two horizontal bars (requests/s, p99), in plain SVG."""
    s = results["summary"]
    width, bar_left, bar_width = 720, 230, 360
    names = [n for n in ("hello", "page", "uncached") if n in s]
    rows = [("requests/s", n, s[n]["requests_per_second"], "{:,.0f}") for n in names]
    rows += [("p99 ms", n, s[n]["p99_ms"], "{:.1f} ms") for n in names]
    colours = {"hello": "#8da0cb", "page": "#fc8d62", "uncached": "#e78ac3"}
    labels = {
        "hello": "bare Flask hello",
        "page": "page, micro-cache on",
        "uncached": "page, micro-cache off",
    }
    height = 120 + 56 * len(names)
    uncached = f", uncached {s['uncached_ratio']:.2f}" if "uncached_ratio" in s else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="13" role="img">',
        "<title>Scheduling page vs bare Flask hello: requests per second and p99 latency</title>",
        f'<rect width="{width}" height="{height}" fill="#fff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">Public page vs hello (ratio '
        f"{s['ratio']:.2f}{uncached}; bar 0.33)</text>",
    ]
    y = 45
    for metric in ("requests/s", "p99 ms"):
        top = max(value for m, _, value, _ in rows if m == metric) or 1
        parts.append(f'<text x="10" y="{y + 14}" font-weight="bold">{metric}</text>')
        y += 24
        for m, name, value, fmt in rows:
            if m != metric:
                continue
            length = max(1, round(value / top * bar_width))
            label = labels[name]
            parts += [
                f'<text x="20" y="{y + 15}">{label}</text>',
                f'<rect x="{bar_left}" y="{y}" width="{length}" height="20" fill="{colours[name]}"/>',
                f'<text x="{bar_left + length + 6}" y="{y + 15}">{fmt.format(value)}</text>',
            ]
            y += 28
        if metric == "requests/s":  # the bar: a third of the hello app's
            x = bar_left + round(bar_width * TARGET_RATIO)
            parts += [
                f'<line x1="{x}" y1="{y - 28 * len(names) - 4}" x2="{x}" y2="{y - 2}" stroke="#333" '
                'stroke-dasharray="4 3"/>',
                f'<text x="{x + 4}" y="{y + 10}" font-size="11">1/3 of hello (the bar)</text>',
            ]
            y += 10
        y += 14
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers, for both apps")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--duration", type=int, default=10, help="seconds of each wrk run")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs of each app; the figures are medians")
    parser.add_argument(
        "--cache-seconds", type=int, default=5, help="PAGE_CACHE_SECONDS of the cached page server"
    )
    parser.add_argument("--profile", action="store_true", help="profile the page even when the bar is met")
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--no-docs", action="store_true", help=f"leave {DOCS.relative_to(ROOT)} alone")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        log("bench/page.py needs wrk, which is not installed: apt-get install -y wrk (as root)")
        return 2

    results: dict = {
        "measured_at": measured_at(),
        "machine": {**machine(args.database_url), "load_before": round(os.getloadavg()[0], 2)},
        "parameters": {
            k: getattr(args, k)
            for k in ("workers", "connections", "wrk_threads", "duration", "runs", "cache_seconds")
        },
    }
    with throwaway_database(args.database_url):
        world = results["world"] = seed(args.database_url)
        with tempfile.TemporaryDirectory(prefix="termin-page-") as scratch:
            env = server_env(args.database_url, Path(scratch))
            # wrk is one client address asking thousands of times a second: the per-address limit on
            # public reads (300 a minute) would answer it 429, which is not what is measured here.
            env["TERMIN_RATELIMIT_PUBLIC_READ_IP"] = "100000000 per minute"
            cached_env = {**env, "TERMIN_PAGE_CACHE_SECONDS": str(args.cache_seconds)}
            uncached_env = {**env, "TERMIN_PAGE_CACHE_SECONDS": "0"}
            logs = Path(scratch)
            with (
                Gunicorn(
                    "wsgi:app", workers=args.workers, threads=1, env=cached_env, log_path=logs / "p.log"
                ) as page,
                Gunicorn(
                    "wsgi:app", workers=args.workers, threads=1, env=uncached_env, log_path=logs / "u.log"
                ) as uncached,
                Gunicorn(
                    "bench.page:hello_app()",
                    workers=args.workers,
                    threads=1,
                    env=env,
                    log_path=logs / "h.log",
                ) as hello,
            ):
                targets = {
                    "hello": (f"{hello.url}/", "hello.localhost", "Hello, World!"),
                    "page": (f"{page.url}{world['path']}", DOMAIN, "Intro call"),
                    "uncached": (f"{uncached.url}{world['path']}", DOMAIN, "Intro call"),
                }
                for url, host, expect in targets.values():
                    check_answers(url, host, expect)
                    warm = argparse.Namespace(**{**vars(args), "duration": 2})
                    run_wrk(url, host, warm)  # every worker
                runs: dict = {name: [] for name in targets}
                for n in range(args.runs):
                    for name, (url, host, _) in targets.items():
                        measured = run_wrk(url, host, args)
                        runs[name].append(measured)
                        log(
                            f"run {n + 1}/{args.runs} {name}: {measured['requests_per_second']:,.0f} "
                            f"requests/s, p99 {measured['p99_ms']:.1f} ms"
                        )
                results["runs"] = runs
                results["summary"] = summarise(runs)
                results["load_after"] = round(os.getloadavg()[0], 2)
        summary = results["summary"]
        if args.profile or not summary["met"] or not summary.get("uncached_met", True):
            log("profiling the page request")
            results["profile"] = profile_page(args.database_url, world["path"])
    write_results(RESULTS, results)
    if not args.no_docs:
        write_section(BEGIN, END, table(results), heading="## Public page (`bench/page.py`)")
        PLOT.write_text(svg(results))
        log(f"updated {DOCS.relative_to(ROOT)} and {PLOT.relative_to(ROOT)}")
    print(table(results))
    summary = results["summary"]
    clean = all(
        summary[n]["non_2xx"] == 0 and summary[n]["socket_errors"] == 0 for n in ("hello", "page", "uncached")
    )
    # Like bench/sync_ingest.py, a bar not met is reported, not an error; an error answer spoils the figures.
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
