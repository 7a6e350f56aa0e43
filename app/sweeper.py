"""The sweeper: PostgreSQL says what is due, Redis only carries the trigger.

``sweep(app, now)`` reads every due thing from the database and hands it to ``app.queue.dispatch`` with a
stable job id. Whatever Redis lost (flushed, restarted without persistence, a worker killed mid-job) is
therefore queued again by the next sweep, and a job that is already waiting is not queued twice:

* calendars the sync engine reads (``engine.needs_sync``, in SQL) whose ``next_sync_at`` has come or was never
  set, unless a sync holds them (``sync_started_at``, renewed while the sync runs, newer than
  ``JOB_LEASE_SECONDS``): queue "sync",
  ``app.sync.jobs.sync_calendar``, job id ``sync-calendar-<id>`` (the id ``jobs.request_sync`` uses);
* pending outbox rows whose ``next_attempt_at`` has come (for a row being delivered it is the attempt's
  lease, renewed while the attempt runs, so an attempt whose worker died is offered again once its lease runs
  out): ``app.mail.jobs.deliver`` on "mail" for mail.* kinds and "writes" for the rest
  (``outbox.queue_for``), job id ``outbox-<id>`` (``outbox.job_id_for``);
* connections not probed for ``HEALTH_INTERVAL_SECONDS`` (or never): queue "sync",
  ``app.sync.health.probe_connection``, job id ``probe-connection-<id>``;
* domains whose DNS record is due for another look (``app.domains.services.due_for_check``): queue "sync",
  ``app.domains.jobs.check_domain``, job id ``check-domain-<id>``.

Each kind is read in batches of ``SWEEP_BATCH_SIZE`` ids (keyset on the primary key), each batch in its own
short transaction. Under RQ the jobs' hashes are then read in one pipeline per batch and a job is left alone
when it is

* queued, unless it has waited longer than ``SYNC_STALE_SECONDS`` and is in neither its queue's list nor its
  intermediate list (lost with part of Redis);
* scheduled or deferred (RQ itself will queue it);
* started, unless RQ's last heartbeat of it (or its start) is older than ``JOB_LEASE_SECONDS``: its worker
  died (the worker heartbeats a running job every lease / 4, app/leases.py). Its stale entry in the started
  registry is dropped first, so RQ's own clean-up cannot later mark the new run as abandoned.

Anything else (no such job, finished, failed, stopped, canceled) is dispatched; a failed one leaves the
failed registry. Jobs are idempotent (``app/sync/jobs.py`` claims the calendar, ``app/mail/outbox.py`` locks
the row), so a job that does slip through twice costs a no-op, never a duplicate.

With ``JOBS_MODE`` "thread" (the embedded demo) a job still waiting in the in-process queue is skipped;
"eager" (tests) runs each job on the spot. ``start_in_process(app)`` gives the demo its sweeper thread.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import Flask
from rq import Queue
from rq.job import Job, parse_job_id
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.utils import utcparse

from app.db import utcnow
from app.domains import services as domains
from app.extensions import db
from app.mail import outbox
from app.mail.models import OutboxMessage
from app.queue import dispatch, redis
from app.sync.models import Calendar, CalendarConnection

log = logging.getLogger(__name__)

SYNC_JOB = "app.sync.jobs.sync_calendar"
DELIVER_JOB = outbox.DELIVER_JOB
PROBE_JOB = "app.sync.health.probe_connection"
DOMAIN_JOB = "app.domains.jobs.check_domain"
_LONG_AGO = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Due:
    """One job the database says should run: ``func(row_id)`` on ``queue`` as ``job_id``."""

    queue: str
    func: str
    row_id: int
    job_id: str


Finder = Callable[[dict, datetime, int, int], list[Due]]


def sweep(app: Flask, now: datetime) -> dict[str, int]:
    """Dispatch every due job not already waiting or running; returns how many of each kind, and skipped."""
    counts = {"calendars": 0, "outbox": 0, "connections": 0, "domains": 0, "skipped": 0}
    batch = int(app.config["SWEEP_BATCH_SIZE"])
    finders: dict[str, Finder] = {
        "calendars": _due_calendars,
        "outbox": _due_outbox,
        "connections": _due_connections,
        "domains": _due_domains,
    }
    for kind, finder in finders.items():
        after = 0
        while True:
            with app.app_context():  # its own session, closed before any job runs (eager mode runs them here)
                dues = finder(app.config, now, after, batch)
            fresh = _not_waiting(app, dues, now)
            for due in fresh:
                dispatch(app, due.queue, due.func, [due.row_id], due.job_id)
            counts[kind] += len(fresh)
            counts["skipped"] += len(dues) - len(fresh)
            if len(dues) < batch:
                break
            after = dues[-1].row_id
    return counts


# --- What the database says is due --------------------------------------------------------------------------


def _due_calendars(config: dict, now: datetime, after: int, limit: int) -> list[Due]:
    stale = now - timedelta(seconds=float(config["JOB_LEASE_SECONDS"]))
    ids = db.session.scalars(
        sa.select(Calendar.id)
        .join(CalendarConnection, Calendar.connection_id == CalendarConnection.id)
        .where(
            Calendar.id > after,
            # engine.needs_sync in SQL: active, readable, not the task calendar, feeding meetings or busy time
            Calendar.status == "active",
            CalendarConnection.status == "active",
            Calendar.is_task_calendar.is_(False),
            Calendar.access != "freebusy",
            sa.or_(
                Calendar.checks_availability.is_(True),
                sa.and_(CalendarConnection.calendar_sync.is_(True), Calendar.access == "owner"),
            ),
            sa.or_(Calendar.next_sync_at.is_(None), Calendar.next_sync_at <= now),
            sa.or_(Calendar.sync_started_at.is_(None), Calendar.sync_started_at < stale),
        )
        .order_by(Calendar.id)
        .limit(limit)
    )
    return [Due("sync", SYNC_JOB, calendar_id, f"sync-calendar-{calendar_id}") for calendar_id in ids]


def _due_outbox(config: dict, now: datetime, after: int, limit: int) -> list[Due]:
    rows = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.kind)
        .where(
            OutboxMessage.id > after,
            OutboxMessage.status == "pending",
            OutboxMessage.next_attempt_at <= now,
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return [
        Due(outbox.queue_for(kind), DELIVER_JOB, row_id, outbox.job_id_for(row_id)) for row_id, kind in rows
    ]


def _due_connections(config: dict, now: datetime, after: int, limit: int) -> list[Due]:
    checked_before = now - timedelta(seconds=int(config["HEALTH_INTERVAL_SECONDS"]))
    ids = db.session.scalars(
        sa.select(CalendarConnection.id)
        .where(
            CalendarConnection.id > after,
            sa.or_(
                CalendarConnection.health_checked_at.is_(None),
                CalendarConnection.health_checked_at < checked_before,
            ),
        )
        .order_by(CalendarConnection.id)
        .limit(limit)
    )
    return [
        Due("sync", PROBE_JOB, connection_id, f"probe-connection-{connection_id}") for connection_id in ids
    ]


def _due_domains(config: dict, now: datetime, after: int, limit: int) -> list[Due]:
    return [
        Due("sync", DOMAIN_JOB, domain_id, f"check-domain-{domain_id}")
        for domain_id in domains.due_for_check(now, after, limit)
    ]


# --- What the job runner already holds ----------------------------------------------------------------------


def _not_waiting(app: Flask, dues: list[Due], now: datetime) -> list[Due]:
    mode = app.config["JOBS_MODE"]
    if not dues or mode == "eager":
        return dues
    if mode == "thread":
        return _not_in_thread_queue(app, dues)
    return _not_in_rq(app, dues, now)


def _not_in_thread_queue(app: Flask, dues: list[Due]) -> list[Due]:
    jobs = app.extensions.get("termin_jobs")  # app.queue's in-process queue of (func, args)
    if jobs is None:
        return dues
    with jobs.mutex:
        waiting = set(jobs.queue)
    return [due for due in dues if (due.func, (due.row_id,)) not in waiting]


JOB_FIELDS = ("status", "origin", "enqueued_at", "started_at", "last_heartbeat")


def _not_in_rq(app: Flask, dues: list[Due], now: datetime) -> list[Due]:
    connection = redis(app)
    with connection.pipeline(transaction=False) as pipeline:
        for due in dues:
            pipeline.hmget(Job.key_for(due.job_id), JOB_FIELDS)
        states = pipeline.execute()
    stale = now - timedelta(seconds=int(app.config["SYNC_STALE_SECONDS"]))
    dead = now - timedelta(seconds=float(app.config["JOB_LEASE_SECONDS"]))
    fresh = []
    for due, values in zip(dues, states, strict=True):
        status, origin, enqueued_at, started_at, heartbeat = (_text(v) for v in values)
        origin = origin or due.queue
        if status == "queued":
            if _moment(enqueued_at) > stale or _in_queue(connection, origin, due.job_id):
                continue
            log.warning("job %s was queued at %s but is in no queue: queued again", due.job_id, enqueued_at)
        elif status in ("scheduled", "deferred"):
            continue
        elif status == "started":
            last_seen = max(_moment(started_at), _moment(heartbeat))
            if last_seen > dead:
                continue
            log.warning(
                "job %s started but was last seen at %s: its worker died, queued again",
                due.job_id,
                last_seen.isoformat(),
            )
            _drop_started_entries(connection, origin, due.job_id)
        elif status == "failed":
            FailedJobRegistry(origin, connection=connection).remove(due.job_id)
        fresh.append(due)
    return fresh


def _text(value: bytes | None) -> str | None:
    return value.decode() if value else None


def _moment(value: str | None) -> datetime:
    if not value:
        return _LONG_AGO
    try:
        return utcparse(value)
    except ValueError:
        return _LONG_AGO


def _in_queue(connection, origin: str, job_id: str) -> bool:
    queue = Queue(origin, connection=connection)
    return any(connection.lpos(key, job_id) is not None for key in (queue.key, queue.intermediate_queue_key))


def _drop_started_entries(connection, origin: str, job_id: str) -> None:
    key = StartedJobRegistry(origin, connection=connection).key
    entries = [entry for entry in connection.zrange(key, 0, -1) if parse_job_id(entry.decode()) == job_id]
    if entries:
        connection.zrem(key, *entries)


# --- Running it ---------------------------------------------------------------------------------------------


def run_forever(app: Flask, stop: threading.Event) -> None:
    """Sweep now and then every ``SWEEP_INTERVAL_SECONDS`` until ``stop`` is set; a failed sweep is logged."""
    interval = float(app.config["SWEEP_INTERVAL_SECONDS"])
    while not stop.is_set():
        try:
            counts = sweep(app, utcnow())
        except Exception:  # the database or Redis is away: say so and try again next time
            log.exception("sweep failed; trying again in %s s", interval)
        else:
            _log_counts(counts)
        stop.wait(interval)


def _log_counts(counts: dict[str, int]) -> None:
    queued = {kind: n for kind, n in counts.items() if kind != "skipped" and n}
    if queued:
        log.info("sweep queued %s (%d already waiting or running)", queued, counts["skipped"])
    else:
        log.debug("sweep: nothing new is due (%d already waiting or running)", counts["skipped"])


def start_in_process(app: Flask) -> None:
    """Embedded demo (JOBS_MODE "thread"): a daemon sweeper thread, started by the first request served.

    Starting on a request, not here, keeps it out of every process that never serves one: ``flask`` commands
    (``db upgrade`` before the tables exist) and the reloader's watching parent of ``flask run --debug``.
    Setting ``app.extensions["termin_sweeper_stop"]`` ends the thread.
    """
    lock = threading.Lock()
    stop = app.extensions["termin_sweeper_stop"] = threading.Event()
    started: list[threading.Thread] = []

    def start_once() -> None:
        if started:
            return
        with lock:
            if started:
                return
            thread = threading.Thread(
                target=run_forever, args=(app, stop), name="termin-sweeper", daemon=True
            )
            started.append(thread)
            thread.start()

    app.before_request(start_once)
