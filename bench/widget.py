"""Chat widget benchmark (issue 13): the widget script's size, and how long a visitor's message takes to show
in the Inbox.

Run it with ``make bench-widget`` or ``.venv/bin/python bench/widget.py`` (``--help`` for the knobs). It
recreates a throwaway PostgreSQL database (``TERMIN_BENCH_DATABASE_URL``, default ``termin_bench``) with the
migrations, creates a tenant with a verified domain, the widget on and a rep who answers, and serves it with
gunicorn on 127.0.0.1 the way gunicorn.conf.py does in production (``--workers`` sync workers), with the
chat limits raised so the benchmark is not cut short (everything else as shipped).

* **Size**: ``GET /widget.js`` on the tenant's domain, as served (unminified, with the tenant's settings),
  in bytes and gzipped. Bar (issue 13): under 15 KB unminified, no framework.
* **Visitor -> Inbox**: one visitor posts ``--messages`` messages to ``/widget/<id>/messages`` (as the
  panel does, ``X-Chat-Secret``), at random gaps (uniform 0 to one interval, so each lands at a random
  moment of the Inbox's polling cycle), while a signed-in rep's Inbox polls ``/inbox/<id>/messages?after=``
  every ``CHAT_POLL_SECONDS`` (``--interval``), as the htmx poller does. The latency of a message is from the
  moment its POST is sent to the moment a poll answer carrying it arrives. Reported: median, p95 and max in
  ms and as a ratio to the polling interval (expected: about 0.5 for the median, under 1 plus a request's
  time for the max, since a message waits at most one interval for the next poll).

Results go to ``bench/results/widget.json`` and a table into ``docs/benchmarks.md`` between the ``widget``
markers. Everything it started (gunicorn, the database) is gone when it ends.
"""

# ruff: noqa: E402  (the project root goes on sys.path before the project's own imports)

import argparse
import gzip
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import requests

from app.chat import services as chat
from bench.common import (
    APP_HOST,
    DATABASE_URL,
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

DOMAIN = "shop-chat.bench.localhost"
RESULTS = ROOT / "bench" / "results" / "widget.json"
BAR_BYTES = 15 * 1024


def seed() -> dict:
    tenant = factories.make_tenant("Bench chat")
    admin = factories.make_user(tenant, role="admin", email="admin@chat.bench.example")
    rep = factories.make_user(tenant, seat="sales", email="rep@chat.bench.example")
    factories.make_domain(tenant, DOMAIN)
    factories.make_page(rep, slug="intro", title="Intro call")
    chat.update_settings(
        tenant,
        admin,
        chat.WidgetSettings(
            enabled=True,
            welcome_message="Hi",
            color=None,
            position="right",
            language="en",
            booking_page_id=None,
            ask_email_after_seconds=86400,
            member_ids=(rep.id,),
        ),
    )
    return {"widget_id": chat.get_settings(tenant).widget_id, "rep_email": rep.email}


def sign_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", headers={"Host": APP_HOST}, timeout=30).text
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    answer = session.post(
        f"{base}/login",
        data={"csrf_token": token, "email": email, "password": factories.PASSWORD},
        headers={"Host": APP_HOST},
        allow_redirects=False,
        timeout=30,
    )
    if answer.status_code != 303:
        raise SystemExit(f"sign-in failed: {answer.status_code}")
    session.headers["X-CSRFToken"] = token
    return session


def measure_latency(base: str, seeded: dict, messages: int, interval: float) -> list[float]:
    visitor = requests.Session()
    widget = seeded["widget_id"]
    url = f"{base}/widget/{widget}/messages"
    first = visitor.post(url, data={"body": "warm-up"}, headers={"Host": DOMAIN}, timeout=30)
    first.raise_for_status()
    secret = first.headers["X-Chat-Secret"]
    inbox = sign_in(base, seeded["rep_email"])
    listing = inbox.get(f"{base}/inbox", headers={"Host": APP_HOST}, timeout=30).text
    conversation_id = int(re.search(r'id="conversation-(\d+)"', listing).group(1))
    after = int(
        re.findall(
            r'data-id="(\d+)"', inbox.get(f"{base}/inbox/{conversation_id}", headers={"Host": APP_HOST}).text
        )[-1]
    )

    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    done = threading.Event()

    def poll() -> None:
        nonlocal after
        next_at = time.monotonic()
        while not done.is_set():
            html = inbox.get(
                f"{base}/inbox/{conversation_id}/messages",
                params={"after": after},
                headers={"Host": APP_HOST},
                timeout=30,
            ).text
            now = time.monotonic()
            for body in re.findall(r"<p>(bench-\d+)</p>", html):
                seen.setdefault(body, now)
            ids = re.findall(r'data-id="(\d+)"', html)
            if ids:
                after = int(ids[-1])
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    rng = random.Random(13)  # noqa: S311 (the gaps between messages, not a secret)
    for n in range(messages):
        time.sleep(rng.uniform(0, interval))
        body = f"bench-{n}"
        sent[body] = time.monotonic()
        answer = visitor.post(
            url, data={"body": body}, headers={"Host": DOMAIN, "X-Chat-Secret": secret}, timeout=30
        )
        answer.raise_for_status()
        if n % 50 == 0:
            log(f"  {n} / {messages} sent")
    deadline = time.monotonic() + 5 * interval + 10
    while len(seen) < messages and time.monotonic() < deadline:
        time.sleep(0.05)
    done.set()
    poller.join(timeout=30)
    missing = [b for b in sent if b not in seen]
    if missing:
        raise SystemExit(f"{len(missing)} messages never reached the Inbox")
    return [seen[b] - sent[b] for b in sent]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--interval", type=float, default=2.0, help="CHAT_POLL_SECONDS (seconds)")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    args = parser.parse_args()
    with throwaway_database(DATABASE_URL), tempfile.TemporaryDirectory(prefix="termin-bench-") as scratch:
        with seeding(DATABASE_URL):
            seeded = seed()
        env = {
            **server_env(DATABASE_URL, Path(scratch)),
            "TERMIN_CHAT_POLL_SECONDS": str(args.interval),
            "TERMIN_RATELIMIT_CHAT_CONVERSATION": "100000 per minute",
            "TERMIN_RATELIMIT_CHAT_IP": "100000 per minute",
            "TERMIN_RATELIMIT_SIGNIN_IP": "1000 per minute",
        }
        with Gunicorn(
            "wsgi:app", workers=args.workers, threads=1, env=env, log_path=Path(scratch) / "g.log"
        ) as server:
            script = requests.get(f"{server.url}/widget.js", headers={"Host": DOMAIN}, timeout=30)
            script.raise_for_status()
            raw = script.content
            log(f"widget.js: {len(raw)} bytes, {len(gzip.compress(raw))} gzipped")
            log(f"{args.messages} messages, Inbox polling every {args.interval} s, {args.workers} workers")
            latencies = measure_latency(server.url, seeded, args.messages, args.interval)
    ordered = sorted(latencies)
    median = statistics.median(ordered)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    results = {
        "measured_at": measured_at(),
        "machine": machine(DATABASE_URL),
        "script_bytes": len(raw),
        "script_gzip_bytes": len(gzip.compress(raw)),
        "script_bar_bytes": BAR_BYTES,
        "messages": args.messages,
        "interval_seconds": args.interval,
        "workers": args.workers,
        "latency_ms": {
            "median": median * 1000,
            "p95": p95 * 1000,
            "max": ordered[-1] * 1000,
            "min": ordered[0] * 1000,
        },
        "latency_ratio": {
            "median": median / args.interval,
            "p95": p95 / args.interval,
            "max": ordered[-1] / args.interval,
        },
    }
    write_results(RESULTS, results)
    m = results["machine"]
    lat, ratio = results["latency_ms"], results["latency_ratio"]
    body = (
        f"Measured {results['measured_at']}: {m['cpu']} ({m['cpus']} CPUs), Python {m['python']}, PostgreSQL "
        f"{m['postgresql']}; gunicorn {args.workers} sync workers on 127.0.0.1.\n\n"
        "| | figure |\n|---|---:|\n"
        f"| `widget.js` as served (unminified, with the settings) | {len(raw):,} bytes "
        f"(bar: < {BAR_BYTES:,}) |\n"
        f"| `widget.js` gzipped | {results['script_gzip_bytes']:,} bytes |\n"
        f"| messages, Inbox polling interval | {args.messages}, {args.interval:g} s |\n"
        f"| visitor's message -> in the Inbox, median | {lat['median']:,.0f} ms "
        f"= {ratio['median']:.2f} x interval |\n"
        f"| p95 | {lat['p95']:,.0f} ms = {ratio['p95']:.2f} x interval |\n"
        f"| max | {lat['max']:,.0f} ms = {ratio['max']:.2f} x interval |\n\n"
        f"Script under the bar: **{'yes' if len(raw) < BAR_BYTES else 'no'}**."
    )
    write_section(
        "<!-- widget:begin -->", "<!-- widget:end -->", body, heading="## Chat widget (`bench/widget.py`)"
    )


if __name__ == "__main__":
    main()
