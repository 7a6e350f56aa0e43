"""Short leases, renewed while a job runs, so a job whose worker died is retried within about a minute.

A job that holds a row for longer than one transaction (a calendar sync's claim,
``calendars.sync_started_at``; an outbox delivery's attempt, ``outbox.next_attempt_at``) writes a moment into
the row when it starts and renews it every ``JOB_LEASE_SECONDS`` / 3 from a thread of its own, on a connection
of its own, while it works. A live job's lease is therefore never older than a third of the lease; a killed
job's stops moving, and once it is ``JOB_LEASE_SECONDS`` old the next sweep (every ``SWEEP_INTERVAL_SECONDS``)
queues the work again: with the defaults (60 s, 15 s) a killed job is retried within 75 s. RQ's own record of
a started job is held the same way (app/sweeper.py reads its heartbeat, which the worker sends every lease /
4).
"""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from app.extensions import db

log = logging.getLogger(__name__)


def lease_length() -> timedelta:
    return timedelta(seconds=float(current_app.config["JOB_LEASE_SECONDS"]))


@contextmanager
def renewing(statement: Callable[[], sa.Executable]) -> Iterator[None]:
    """While the block runs, execute ``statement()`` every lease / 3 in a transaction of its own.

    The statement runs with a short lock timeout: if the job's own transaction holds the row, the renewal
    waits at most a second and tries again next time, rather than queueing behind the job it serves.
    """
    engine = db.engine
    if not isinstance(engine, sa.Engine):
        # The session is bound to a connection the caller shares (the tests' rolled-back transaction):
        # there is no second connection to renew from, and nothing outlives the test anyway.
        yield
        return
    every = float(current_app.config["JOB_LEASE_SECONDS"]) / 3
    stop = threading.Event()

    def renew_until_stopped() -> None:
        while not stop.wait(every):
            try:
                with engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql("SET LOCAL lock_timeout = '1s'")
                    connection.execute(statement())
            except Exception:  # the database is away or the row is busy: the next turn tries again
                log.warning("lease renewal failed; trying again in %.0f s", every, exc_info=True)

    thread = threading.Thread(target=renew_until_stopped, name="termin-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
