"""The RQ worker process: ``flask worker`` or ``python -m workers.worker`` (``make worker``); the sweeper is a
process of its own (``make sweeper``), so either survives the other's death. ``flask worker-check`` is its
health check.

The process is set up once: logging first (every line names its job and tenant, ``app.queue.LOG_FORMAT``),
then ``create_app`` with a ``NullPool`` engine, then an RQ ``Worker`` on the "sync", "writes" and "mail"
queues, taken round-robin so a backlog of syncs never holds up mail, with its own RQ scheduler
(``with_scheduler=True``), all inside ``app.app_context()``.

**Each job gets its own app context.** RQ forks a work horse per job, and a pooled database connection must
not cross a fork: with ``NullPool`` the parent never holds one, and each job opens and closes its own.
``AppWorker.perform_job`` runs in the horse around RQ's bookkeeping and the job function; it pushes a fresh
``app.app_context()`` for that one job, so the job's ``db.session`` is its own and is removed when the job
ends (``BoundaryJob`` commits it once when the job function returns, rolls it back when it raises), and
sets the job's log context (its id; no tenant until the job names one with ``app.queue.log_tenant`` or
loads its first tenant-owned row). The job functions stay plain functions of ids, named by dotted path
(``app.sync.jobs.sync_calendar``): nothing creates an app when they are imported, and the same functions run
under JOBS_MODE "thread" and "eager" through ``app.queue.run``, which pushes the app context the same way.

The job modules are imported here once, before any fork, so a horse does not import them for every job.
Then everything the process holds so far (the app, the imported modules: some hundred thousand objects)
is moved out of the garbage collector's sight with ``gc.freeze()``. A horse then never walks those objects
in its collections: a full sync allocates enough to trigger several, and they were a tenth of its time.
Pages a horse shares with the parent also stay shared, since a collection no longer writes to them.
"""

import gc
import logging
import signal
import socket
import threading
from datetime import UTC, datetime
from importlib import import_module

from flask import Flask
from redis.exceptions import RedisError
from rq import Queue, Worker
from rq.job import Job
from rq.worker import DequeueStrategy
from sqlalchemy.pool import NullPool

from app import create_app, transaction
from app.logs import configure_logging, job_log_context, log_tenant_of_loaded_rows
from app.queue import QUEUES, redis

log = logging.getLogger(__name__)
MAX_RECONNECT_SECONDS = 30
WORKER_TTL = 35
JOB_MODULES = ("app.sync.jobs", "app.mail.jobs", "app.sync.health", "app.domains.jobs")


class BoundaryJob(Job):
    """A job whose function runs inside the job's transaction boundary: one commit at its end, a rollback if
    it raises (app/transaction.py)."""

    def perform(self):
        with transaction.job():
            return super().perform()


class AppWorker(Worker):
    """A forking RQ worker whose horse performs each job inside a fresh app context of ``app``."""

    job_class = BoundaryJob

    def __init__(self, *args, app: Flask | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.app = app

    def perform_job(self, job: Job, queue: Queue) -> bool:
        if self.app is None:
            raise RuntimeError("AppWorker needs the Flask app: AppWorker(queues, connection=..., app=app)")
        with self.app.app_context(), job_log_context(job.id):
            return super().perform_job(job, queue)


def create_worker_app(config: dict | None = None) -> Flask:
    """The app as the worker needs it: no connection pool (horses are forked), jobs on RQ."""
    app = create_app({"SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": NullPool}, **(config or {})})
    if app.config["JOBS_MODE"] != "rq":
        raise SystemExit(
            f"The worker runs RQ jobs, but JOBS_MODE is {app.config['JOBS_MODE']!r}: set REDIS_URL "
            "(the embedded demo runs its jobs in-process and needs no worker)."
        )
    return app


def freeze_imports() -> None:
    """Collect once, then keep what survives out of every later collection (in this process and its forks)."""
    gc.collect()
    gc.freeze()


def main(*, burst: bool = False) -> None:
    """Run the worker until SIGTERM/SIGINT (RQ finishes the current job first; a second signal kills it).

    RQ's loop quits when Redis goes away under it (a lost connection mid-job, a timeout). This process does
    not: it waits with back-off (1 s doubling to ``MAX_RECONNECT_SECONDS``) until Redis answers, then starts
    a fresh RQ worker. A job that was running when the connection broke finishes in its horse; if it could
    not, its lease runs out and the sweeper offers it again (app/leases.py).
    """
    configure_logging()
    app = create_worker_app()
    log_tenant_of_loaded_rows()
    for module in JOB_MODULES:
        import_module(module)
    freeze_imports()
    stop = threading.Event()
    wait = 1.0
    with app.app_context():
        connection = redis(app)
        while not stop.is_set():
            worker = AppWorker(
                list(QUEUES),
                connection=connection,
                app=app,
                job_monitoring_interval=max(1, int(app.config["JOB_LEASE_SECONDS"]) // 4),
                # An idle worker heartbeats every WORKER_TTL - 15 s (RQ's dequeue timeout): often enough for
                # ``check`` to tell a live worker from a dead one within a minute.
                worker_ttl=WORKER_TTL,
            )
            try:
                worker.work(
                    burst=burst,
                    with_scheduler=True,
                    logging_level="INFO",
                    dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
                )
            except RedisError as error:  # raised before RQ's loop catches anything (registering the worker)
                log.error("worker could not start: Redis: %s", error)
            if burst or worker._stop_requested:
                break
            _wait_for_redis(connection, stop, wait)
            wait = min(wait * 2, MAX_RECONNECT_SECONDS)
            if _answers(connection):
                wait = 1.0
    log.info("worker stopped")


def _wait_for_redis(connection, stop: threading.Event, first_wait: float) -> None:
    """Back off until Redis answers; SIGTERM or SIGINT meanwhile ends the wait (and the worker)."""

    def request_stop(signum, frame) -> None:
        log.info("worker stopping on %s", signal.Signals(signum).name)
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        wait = first_wait
        while not stop.is_set():
            log.warning("lost Redis; the worker tries again in %.0f s", wait)
            if stop.wait(wait) or _answers(connection):
                return
            wait = min(wait * 2, MAX_RECONNECT_SECONDS)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _answers(connection) -> bool:
    try:
        return bool(connection.ping())
    except RedisError:
        return False


def check(app: Flask, max_age_seconds: float) -> tuple[bool, str]:
    """The worker health check: Redis answers and an RQ worker on this host heartbeated within
    ``max_age_seconds`` (every 20 s when idle, every ``JOB_LEASE_SECONDS`` / 4 while a job runs)."""
    try:
        connection = redis(app)
        workers = Worker.all(connection=connection)
    except RedisError as error:
        return False, f"Redis does not answer: {error}"
    host = socket.gethostname()
    now = datetime.now(UTC)
    alive = [
        worker
        for worker in workers
        if worker.hostname == host
        and worker.last_heartbeat is not None
        and (now - worker.last_heartbeat).total_seconds() <= max_age_seconds
    ]
    if not alive:
        return False, f"no RQ worker on {host} has sent a heartbeat in the last {max_age_seconds:g} s"
    states = ", ".join(f"{worker.name} ({worker.get_state()})" for worker in alive)
    return True, f"{len(alive)} worker(s) alive on {host}: {states}"


if __name__ == "__main__":
    main()
