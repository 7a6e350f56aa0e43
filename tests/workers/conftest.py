"""The job runtime for real: RQ worker subprocesses on a Redis database of their own and a committed database.

A worker is another process, so it cannot see the rolled-back savepoint connection the other tests use: this
module gets its own PostgreSQL database (migrated once, tables emptied after each test) and the test
process's own redis-server (``own_redis``, tests/servers.py; emptied before and after each test), and hands
both to each worker through the environment, as a deployment would. Every worker process (and its work horse
and scheduler) is ended at teardown.
"""

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade
from redis import Redis
from rq import Queue

from app import create_app
from app.db import utcnow
from app.extensions import db
from app.mail import outbox
from app.queue import QUEUES, redis
from app.sweeper import sweep
from tests.conftest import (
    APP_HOST,
    TEST_DATABASE_URL,
    TEST_ENCRYPTION_KEY,
    config_for_tests,
    recreate_database,
    worker_database,
)
from tests.fakes.google_calendar import google_harness  # noqa: F401
from tests.workers.jobs import EFFECTS_DDL, EFFECTS_TABLE, HANDLER, KIND

ROOT = Path(__file__).resolve().parents[2]
# A job lease (a sync claim, an outbox attempt, RQ's heartbeat) older than this is a dead worker's; low, so a
# test can wait for it.
STALE_SECONDS = 3


@dataclass
class WorkerProcess:
    """One ``python -m tests.workers.worker_main`` process; its output goes to ``log_path``."""

    process: subprocess.Popen
    log_path: Path
    _log_file: object = field(repr=False)

    def log(self) -> str:
        return self.log_path.read_text()

    def kill(self) -> None:
        """SIGKILL the worker and all it started (the work horse runs in a process group of its own)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGSTOP)  # no new horse between listing the tree and killing it
            for pid in [self.process.pid, *descendants(self.process.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._log_file.close()

    def stop(self) -> None:
        """SIGTERM (RQ's warm shutdown); SIGKILL if it is not gone in a few seconds."""
        if self.process.poll() is None:
            tree = descendants(self.process.pid)
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=5)
            for pid in tree:  # the scheduler, or a horse left behind
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.kill()


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid``, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Runtime:
    app: Flask
    database_url: str
    redis_url: str
    redis: Redis
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def use_google(self, harness) -> None:
        """Workers started from now on talk to the Google emulator of ``harness``."""
        emulator = harness.emulator
        self.env |= {
            "TERMIN_GOOGLE_API_URL": emulator.api_url,
            "TERMIN_GOOGLE_USERINFO_URL": emulator.userinfo_url,
        }

    def worker_env(self, **extra: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TERMIN_")}
        return {
            **inherited,
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "TERMIN_SECRET_KEY": "rq-runtime-test-secret",
            "TERMIN_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
            "TERMIN_JOBS_MODE": "rq",
            "TERMIN_APP_HOST": APP_HOST,
            "TERMIN_CALDAV_ALLOW_PRIVATE": "true",
            "TERMIN_SYNC_STALE_SECONDS": str(STALE_SECONDS),
            "TERMIN_JOB_LEASE_SECONDS": str(STALE_SECONDS),
            "TERMIN_MAIL_DIR": str(self.tmp / "mail"),
            "TERMIN_HTTP_TIMEOUT": "10",
            "PYTHONUNBUFFERED": "1",
            **self.env,
            **extra,
        }

    def start_worker(
        self, *args: str, module: str = "tests.workers.worker_main", **env: str
    ) -> WorkerProcess:
        """A worker like ``flask worker``'s (or another process: ``module="workers.sweeper"``), on this
        module's databases; ``env`` adds TERMIN_ settings."""
        log_path = self.tmp / f"{module.rsplit('.', 1)[-1]}-{len(self.workers) + 1}.log"
        log_file = log_path.open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=self.worker_env(**env),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        worker = WorkerProcess(process, log_path, log_file)
        self.workers.append(worker)
        return worker

    def sweep(self) -> dict[str, int]:
        return sweep(self.app, utcnow())

    def queued(self) -> dict[str, list[str]]:
        """Job ids waiting in each queue, in order."""
        return {name: Queue(name, connection=self.redis).get_job_ids() for name in QUEUES}

    def running(self) -> int:
        """Jobs RQ lists as started, in all queues."""
        return sum(Queue(name, connection=self.redis).started_job_registry.count for name in QUEUES)

    def wait_for(self, condition: Callable[[], object], timeout: float = 90, what: str = "") -> object:
        """Poll ``condition`` (in a fresh app context each time) until it is truthy; fail with worker logs."""
        deadline = time.monotonic() + timeout
        while True:
            with self.app.app_context():
                value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {w.log_path.name}\n{w.log()[-4000:]}" for w in self.workers)
                pytest.fail(f"timed out waiting for {what or condition}\n{logs}")
            time.sleep(0.1)


@pytest.fixture(scope="module")
def runtime_app(tmp_path_factory, own_redis) -> Iterator[tuple[Flask, str, Path]]:
    url = worker_database(TEST_DATABASE_URL, "_rq")
    recreate_database(url)
    tmp = tmp_path_factory.mktemp("rq")
    config = {
        **config_for_tests(url),
        "JOBS_MODE": "rq",
        "REDIS_URL": own_redis.url(),
        "SYNC_STALE_SECONDS": STALE_SECONDS,
        "JOB_LEASE_SECONDS": STALE_SECONDS,
        "MAIL_DIR": str(tmp / "mail"),
    }
    app = create_app(config)
    with app.app_context():
        upgrade()
        db.session.execute(sa.text(EFFECTS_DDL))
        db.session.commit()
    yield app, url, tmp
    with app.app_context():
        db.engine.dispose()
    redis(app).close()


@pytest.fixture
def runtime(runtime_app, monkeypatch) -> Iterator[Runtime]:
    """The module's app (JOBS_MODE rq), empty databases, and the workers a test starts (ended after it)."""
    app, url, tmp = runtime_app
    monkeypatch.setitem(outbox.HANDLERS, KIND, HANDLER)  # the workers register it too (worker_main.py)
    connection = redis(app)
    connection.flushdb()
    rt = Runtime(app, url, app.config["REDIS_URL"], connection, tmp)
    try:
        yield rt
    finally:
        for worker in rt.workers:
            worker.stop()
        connection.flushdb()
        with app.app_context():
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {tables}, {EFFECTS_TABLE} RESTART IDENTITY CASCADE"))
            db.session.commit()
