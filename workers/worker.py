"""The RQ worker process: ``flask worker`` or ``python -m workers.worker``; ``make worker`` adds the sweeper.

The process is set up once: logging first (every line names its job and tenant, ``app.queue.LOG_FORMAT``),
then ``create_app`` with a ``NullPool`` engine, then an RQ ``Worker`` on the "sync", "writes" and "mail"
queues, taken round-robin so a backlog of syncs never holds up mail, with its own RQ scheduler
(``with_scheduler=True``), all inside ``app.app_context()``.

**Each job gets its own app context.** RQ forks a work horse per job, and a pooled database connection must
not cross a fork: with ``NullPool`` the parent never holds one, and each job opens and closes its own.
``AppWorker.perform_job`` runs in the horse around RQ's bookkeeping and the job function; it pushes a fresh
``app.app_context()`` for that one job, so the job's ``db.session`` is its own and is removed when the job
ends, and sets the job's log context (its id; no tenant until the job names one with ``app.queue.log_tenant``
or loads its first tenant-owned row). The job functions stay plain functions of ids, named by dotted path
(``app.sync.jobs.sync_calendar``): nothing creates an app when they are imported, and the same functions run
under JOBS_MODE "thread" and "eager" through ``app.queue.run``, which pushes the app context the same way.

The job modules are imported here once, before any fork, so a horse does not import them for every job.
Then everything the process holds so far (the app, the imported modules: some hundred thousand objects)
is moved out of the garbage collector's sight with ``gc.freeze()``. A horse then never walks those objects
in its collections: a full sync allocates enough to trigger several, and they were a tenth of its time.
Pages a horse shares with the parent also stay shared, since a collection no longer writes to them.
"""

import gc
from importlib import import_module

from flask import Flask
from rq import Queue, Worker
from rq.job import Job
from rq.worker import DequeueStrategy
from sqlalchemy.pool import NullPool

from app import create_app
from app.logs import configure_logging, job_log_context, log_tenant_of_loaded_rows
from app.queue import QUEUES, redis

JOB_MODULES = ("app.sync.jobs", "app.mail.jobs", "app.sync.health", "app.domains.jobs")


class AppWorker(Worker):
    """A forking RQ worker whose horse performs each job inside a fresh app context of ``app``."""

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
    """Run the worker until SIGTERM/SIGINT (RQ finishes the current job first; a second signal kills it)."""
    configure_logging()
    app = create_worker_app()
    log_tenant_of_loaded_rows()
    for module in JOB_MODULES:
        import_module(module)
    freeze_imports()
    with app.app_context():
        worker = AppWorker(list(QUEUES), connection=redis(app), app=app)
        worker.work(
            burst=burst,
            with_scheduler=True,
            logging_level="INFO",
            dequeue_strategy=DequeueStrategy.ROUND_ROBIN,
        )


if __name__ == "__main__":
    main()
