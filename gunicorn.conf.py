"""gunicorn settings for Termin's web process: ``gunicorn -c gunicorn.conf.py wsgi:app`` (deploy/).

* **Workers from the CPU count**: ``2 x cores + 1`` sync workers (gunicorn's own advice for I/O-bound apps),
  or ``WEB_CONCURRENCY``; ``TERMIN_WEB_THREADS`` > 1 makes them gthread workers.
* **The app preloaded** (``preload_app``): the master imports and builds it once, then collects and freezes
  what it holds (``gc.freeze``), so every forked worker shares those pages instead of copying them; the
  database pool is dropped after the fork (a pooled connection must never cross one). docs/benchmarks.md
  measures RSS and PSS per worker against a bare Flask app (``bench/memory.py``).
* **Logs** through ``app.logs``: one JSON object per line in production, gunicorn's own lines included; the
  app's ``termin.request`` line replaces gunicorn's access log.
* ``TERMIN_BIND`` (``127.0.0.1:8000``): Caddy (deploy/Caddyfile) proxies to it on the same machine.
"""

import gc
import multiprocessing
import os

from app import logs
from app.extensions import db

bind = os.environ.get("TERMIN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or multiprocessing.cpu_count() * 2 + 1)
threads = int(os.environ.get("TERMIN_WEB_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"
preload_app = True
timeout = 30
graceful_timeout = 30
keepalive = 5
# A worker is replaced after this many requests (jittered so they do not all restart together): any slow
# growth of a long-lived process is bounded.
max_requests = 5000
max_requests_jitter = 500
accesslog = None
logconfig_dict = logs.dict_config()


def when_ready(server) -> None:
    """In the master, once the app is loaded and before any fork: keep its objects out of later collections,
    so a collection in a worker never writes to (and so copies) the pages it shares with the master."""
    gc.collect()
    gc.freeze()


def post_fork(server, worker) -> None:
    """In each new worker: forget any pooled connection the master may hold (``close=False``: the master's
    sockets stay the master's); the worker opens its own on first use."""
    app = server.app.wsgi()
    if "sqlalchemy" in getattr(app, "extensions", {}):  # the Termin app (a benchmark may serve another)
        with app.app_context():
            db.engine.dispose(close=False)
