"""Background jobs. PostgreSQL holds what is due; this module only says "now" to whoever runs jobs.

Jobs are referred to by dotted path ("app.sync.jobs.sync_calendar") and take ids, so the same call
works on RQ (production: `make worker`), on an in-process thread (the embedded demo) and eagerly (tests).
Everything is dispatched after the current transaction commits, so a job never looks for a row that is
not there yet, and a rolled-back request enqueues nothing.
"""

import logging
import queue as stdlib_queue
import threading
from collections.abc import Sequence
from importlib import import_module

from flask import Flask, current_app
from redis import Redis
from rq import Queue

from app import transaction

QUEUES = ("sync", "writes", "mail")
log = logging.getLogger(__name__)


def enqueue(queue: str, func: str, *args, job_id: str | None = None) -> None:
    """Run ``func(*args)`` on ``queue`` once the current transaction commits."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    app = current_app._get_current_object()
    transaction.call_after_commit(lambda: _dispatch_or_log(app, queue, func, args, job_id))


def _dispatch_or_log(app: Flask, queue: str, func: str, args: Sequence, job_id: str | None) -> None:
    try:
        dispatch(app, queue, func, args, job_id)
    except Exception:
        # Redis down (or the job failing, when jobs run eagerly): what the job is for is committed, and the
        # sweeper offers it again from the database.
        log.exception("job %s%r not dispatched; the sweeper will offer it again", func, tuple(args))


def dispatch(app: Flask, queue: str, func: str, args: Sequence, job_id: str | None = None) -> None:
    """Hand one job to the configured runner now (the sweeper calls this directly, outside any commit)."""
    mode = app.config["JOBS_MODE"]
    if mode == "rq":
        rq_queue(app, queue).enqueue(
            func,
            *args,
            job_id=job_id,
            result_ttl=0,
            failure_ttl=7 * 24 * 3600,
            # RQ stops a job past its time limit with an exception: the job records a failure, retried later.
            job_timeout=int(app.config["JOB_TIMEOUT_SECONDS"][queue]),
        )
    elif mode == "thread":
        _thread_runner(app).put((func, tuple(args)))
    elif mode == "eager":
        run(app, func, args)
    else:
        raise ValueError(f"unknown JOBS_MODE {mode!r}")


def run(app: Flask, func: str, args: Sequence) -> None:
    """Run one job in its own app context, so it has its own database session, as an RQ worker would, inside
    the job's transaction boundary (one commit at its end, a rollback if it raises)."""
    with app.app_context(), transaction.job():
        resolve(func)(*args)


def resolve(path: str):
    module, _, name = path.rpartition(".")
    return getattr(import_module(module), name)


def redis(app: Flask) -> Redis:
    client = app.extensions.get("termin_redis")
    if client is None:
        client = app.extensions["termin_redis"] = Redis.from_url(app.config["REDIS_URL"])
    return client


def rq_queue(app: Flask, name: str) -> Queue:
    return Queue(name, connection=redis(app))


def _thread_runner(app: Flask) -> stdlib_queue.Queue:
    """One daemon thread per process that runs jobs in order: enough for the single-user demo."""
    jobs = app.extensions.get("termin_jobs")
    if jobs is None:
        jobs = app.extensions["termin_jobs"] = stdlib_queue.Queue()
        threading.Thread(target=_work, args=(app, jobs), name="termin-jobs", daemon=True).start()
    return jobs


def _work(app: Flask, jobs: stdlib_queue.Queue) -> None:
    while True:
        func, args = jobs.get()
        try:
            run(app, func, args)
        except Exception:
            # The outbox and sync rows keep what failed; the sweeper will offer it again.
            log.exception("job %s%r failed", func, args)
