"""Background jobs. PostgreSQL holds what is due; this module only says "now" to whoever runs jobs.

Jobs are referred to by dotted path ("app.sync.jobs.sync_calendar") and take ids, so the same call
works on RQ (production: `make worker`), on an in-process thread (the embedded demo) and eagerly (tests).
Everything is dispatched after the current transaction commits, so a job never looks for a row that is
not there yet, and a rolled-back request enqueues nothing.
"""

import logging
import queue as stdlib_queue
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from importlib import import_module

from flask import Flask, current_app
from redis import Redis
from rq import Queue, get_current_job
from sqlalchemy import event

from app import transaction
from app.extensions import db

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
        rq_queue(app, queue).enqueue(func, *args, job_id=job_id, result_ttl=0, failure_ttl=7 * 24 * 3600)
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


# --- Logging: every line a job writes names the job and the tenant it works for -----------------------------

# The tenant a job works for. ``log_tenant`` sets it; the worker also fills it from the first tenant-owned row
# a job loads (``log_tenant_of_loaded_rows``), and empties it before each job.
current_tenant_id: ContextVar[int | None] = ContextVar("current_tenant_id", default=None)
# The job being performed, for the worker's own lines around a job (rq's ``get_current_job()`` is only set
# while the job function itself runs).
current_job_id: ContextVar[str | None] = ContextVar("current_job_id", default=None)
LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(process)d [job=%(job_id)s tenant=%(tenant_id)s] %(name)s: %(message)s"
)


def log_tenant(tenant_id: int | None) -> None:
    """Name the tenant the current job works for, so every later line of the job carries it."""
    current_tenant_id.set(tenant_id)


class JobLogFilter(logging.Filter):
    """Adds ``job_id`` (RQ's current job) and ``tenant_id`` to every record, "-" when there is none."""

    def filter(self, record: logging.LogRecord) -> bool:
        job = get_current_job()
        record.job_id = job.id if job is not None else (current_job_id.get() or "-")
        tenant_id = current_tenant_id.get()
        record.tenant_id = "-" if tenant_id is None else tenant_id
        return True


def configure_logging(level: int | str = logging.INFO) -> None:
    """Log to stderr in ``LOG_FORMAT`` (job and tenant on every line): for the worker and sweeper processes.

    Call it before ``create_app`` so Flask does not add its own handler. Calling it again changes nothing.
    """
    root = logging.getLogger()
    root.setLevel(level)
    if any(isinstance(f, JobLogFilter) for handler in root.handlers for f in handler.filters):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(JobLogFilter())  # on the handler, so records of every child logger pass through it
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)


@contextmanager
def job_log_context(job_id: str | None) -> Iterator[None]:
    """While one job runs: its id on every line, and no tenant until the job names (or loads) one."""
    job_token = current_job_id.set(job_id)
    tenant_token = current_tenant_id.set(None)
    try:
        yield
    finally:
        current_tenant_id.reset(tenant_token)
        current_job_id.reset(job_token)


def log_tenant_of_loaded_rows() -> None:
    """Inside a job that has not named its tenant, the first tenant-owned row it loads names it.

    Jobs take ids and load one tenant's rows (app/sync/jobs.py, app/mail/jobs.py), so their lines carry the
    tenant without each job calling ``log_tenant``. Installed by the worker process only; idempotent.
    """
    if not event.contains(db.Model, "load", _note_tenant):
        event.listen(db.Model, "load", _note_tenant, propagate=True)


def _note_tenant(target, context) -> None:
    if current_job_id.get() is None or current_tenant_id.get() is not None:
        return
    tenant_id = getattr(target, "tenant_id", None)
    if isinstance(tenant_id, int):
        current_tenant_id.set(tenant_id)
