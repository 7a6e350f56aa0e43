"""Memory of one web worker: Termin under gunicorn.conf.py against a bare Flask hello, in the same run.

Termin is served the way production serves it (``gunicorn -c gunicorn.conf.py``: preloaded, the master's
objects frozen before the fork, ``--workers`` sync workers), hello (``bench/hello.py``) preloaded with as
many; each worker is warmed with requests to the sign-in page, a public scheduling page and /readyz (Termin)
or / (hello). Then, per worker, from
``/proc/<pid>/smaps_rollup``: **RSS** (every page the worker maps, shared ones too) and **PSS** (shared pages
divided among the processes sharing them: what a worker really costs). The table in docs/benchmarks.md gives
the mean per worker and Termin's ratio to hello; the target is a PSS ratio of at most 3.

``make bench-memory`` (~1 min). Its own throwaway database (TERMIN_BENCH_DATABASE_URL), dropped at the end.
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import (  # noqa: E402
    APP_HOST,
    DATABASE_URL,
    free_port,
    log,
    machine,
    measured_at,
    seeding,
    server_env,
    throwaway_database,
    write_results,
    write_section,
)
from tests import factories  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "memory.json"
BEGIN, END = "<!-- memory:begin -->", "<!-- memory:end -->"
TARGET_RATIO = 3.0
DOMAIN = "meet.memory.localhost"


def seed(database_url: str) -> str:
    with seeding(database_url):
        tenant = factories.make_tenant("Memory Company")
        factories.make_domain(tenant, DOMAIN)
        rep = factories.make_user(tenant, seat="sales", email="rep@memory.example.com")
        page = factories.make_page(rep, slug="intro")
        path = f"/meetings/{rep.page_slug}/{page.slug}"
    return path


def smaps(pid: int) -> dict[str, float]:
    """RSS and PSS of one process in MiB."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key.lower()] = int(rest.split()[0]) / 1024
    return values


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def serve(target: str, workers: int, env: dict, log_path: Path, paths: list[tuple[str, str]]) -> dict:
    """Start gunicorn, warm every worker, measure each, stop it.

    Termin runs with gunicorn.conf.py; hello with the same settings given on the command line (preloaded,
    same workers), since gunicorn.conf.py itself imports Termin's logging and so the whole package.
    """
    port = free_port()
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    if target == "wsgi:app":
        command = [gunicorn, "-c", str(ROOT / "gunicorn.conf.py"), target]
    else:
        command = [gunicorn, "--preload", "--workers", str(workers), "--bind", f"127.0.0.1:{port}", target]
    with open(log_path, "wb") as output:
        process = subprocess.Popen(  # noqa: S603 (our own command line)
            command,
            cwd=ROOT,
            env={**os.environ, **env, "TERMIN_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": str(workers)},
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while len(children(process.pid)) < workers or not _answers(port):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"gunicorn did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            with requests.Session() as session:
                for _ in range(workers * 30):  # enough for every worker to serve each path several times
                    for path, host in paths:
                        response = session.get(
                            f"http://127.0.0.1:{port}{path}", headers={"Host": host}, timeout=30
                        )
                        if response.status_code != 200:
                            raise SystemExit(f"{path} on {host} answered {response.status_code}")
            time.sleep(1)
            per_worker = [smaps(pid) for pid in children(process.pid)]
            return {
                "workers": len(per_worker),
                "rss_mib": round(statistics.mean(w["rss"] for w in per_worker), 1),
                "pss_mib": round(statistics.mean(w["pss"] for w in per_worker), 1),
                "master": {k: round(v, 1) for k, v in smaps(process.pid).items()},
            }
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code in (200, 404)
    except requests.RequestException:
        return False


def table(results: dict) -> str:
    t, h, r, m = results["termin"], results["hello"], results["ratio"], results["machine"]
    verdict = "met" if results["met"] else "NOT met"
    return "\n".join(
        [
            f"Measured {results['measured_at']} on {m['cpus']} x {m['cpu']}, Python {m['python']}; "
            f"Termin under gunicorn.conf.py (preload, gc.freeze), hello with --preload; {t['workers']} sync "
            "workers each, warmed with requests; mean per worker.",
            "",
            "| app | RSS per worker (MiB) | PSS per worker (MiB) |",
            "|---|---:|---:|",
            f"| bare Flask hello | {h['rss_mib']} | {h['pss_mib']} |",
            f"| Termin (`wsgi:app`) | {t['rss_mib']} | {t['pss_mib']} |",
            f"| ratio Termin / hello | {r['rss']} | {r['pss']} |",
            "",
            f"Target: PSS ratio <= {TARGET_RATIO:g}: **{verdict}**. RSS counts the pages a worker shares"
            " with its master (the preloaded app) in full; PSS divides them among the processes sharing"
            " them, which is what each extra worker costs the machine.",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default=DATABASE_URL)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    results = {"measured_at": measured_at(), "machine": machine(args.database_url)}
    with (
        tempfile.TemporaryDirectory(prefix="termin-memory-") as scratch,
        throwaway_database(args.database_url),
    ):
        scratch = Path(scratch)
        page_path = seed(args.database_url)
        env = {**server_env(args.database_url, scratch), "TERMIN_LOG_FORMAT": "json"}
        log("serving bare Flask hello")
        results["hello"] = serve(
            "bench.hello:app", args.workers, env, scratch / "hello.log", [("/", "127.0.0.1")]
        )
        log("serving Termin")
        results["termin"] = serve(
            "wsgi:app",
            args.workers,
            env,
            scratch / "termin.log",
            [("/login", APP_HOST), (page_path, APP_HOST), ("/readyz", APP_HOST)],
        )
    results["ratio"] = {
        key: round(results["termin"][f"{key}_mib"] / results["hello"][f"{key}_mib"], 2)
        for key in ("rss", "pss")
    }
    results["met"] = results["ratio"]["pss"] <= TARGET_RATIO
    write_results(RESULTS, results)
    if not args.no_docs:
        write_section(BEGIN, END, table(results), heading="## Web worker memory (`bench/memory.py`)")
    print(table(results))


if __name__ == "__main__":
    main()
