"""Fault injection on a deployment of the test's own: a PostgreSQL cluster made by initdb in a temporary
directory (run as the postgres user, its own port) and a redis-server on its own port, both started for this
package and destroyed after it, so a test may kill, stop and restart them without touching anyone else's.

Workers are the production entry point in subprocesses (``tests/workers/worker_main.py``, through the
``Runtime`` of tests/workers/conftest.py), with short leases (``STALE_SECONDS``) so a test waits seconds, not
minutes, for a dead worker's job to come back. Every wait is bounded (``Runtime.wait_for``'s timeout).
"""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from app.mail import outbox
from app.queue import redis
from tests.conftest import config_for_tests
from tests.fakes.smtp import SmtpSink
from tests.servers import PostgresServer, RedisServer
from tests.workers.conftest import STALE_SECONDS, Runtime
from tests.workers.jobs import EFFECTS_DDL, EFFECTS_TABLE, HANDLER, KIND


@pytest.fixture(scope="package")
def postgres() -> Iterator[PostgresServer]:
    # Not under pytest's tmp dir: that one is root's alone, and the server runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="termin-faults-pg-"))
    server = PostgresServer(root).init().start()
    yield server
    server.destroy()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="package")
def redis_server(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("faults-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture(scope="package")
def faults_app(postgres, redis_server, smtp_sink, tmp_path_factory) -> Iterator[tuple[Flask, str, Path]]:
    with psycopg.connect(
        f"host=127.0.0.1 port={postgres.port} user=postgres dbname=postgres", autocommit=True
    ) as c:
        c.execute("CREATE DATABASE termin")
    url = postgres.url("termin")
    tmp = tmp_path_factory.mktemp("faults")
    app = create_app(
        {
            **config_for_tests(url),
            "JOBS_MODE": "rq",
            "REDIS_URL": redis_server.url(),
            "SYNC_STALE_SECONDS": STALE_SECONDS,
            "JOB_LEASE_SECONDS": STALE_SECONDS,
            "MAIL_DIR": str(tmp / "mail"),
            # One client books 25 times from one address: the booking limits are not what is tested here.
            "RATELIMIT_BOOKING_IP": "1000 per hour",
            "RATELIMIT_VISITOR_MAIL": "1000 per day",
            **smtp_sink.settings(),
        }
    )
    with app.app_context():
        upgrade()
        db.session.execute(sa.text(EFFECTS_DDL))
        db.session.commit()
    yield app, url, tmp
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def runtime(faults_app, redis_server, smtp_sink, monkeypatch) -> Iterator[Runtime]:
    """Empty databases, an empty SMTP sink, and worker processes that send mail to it (ended after it)."""
    app, url, tmp = faults_app
    monkeypatch.setitem(outbox.HANDLERS, KIND, HANDLER)
    smtp_sink.reset()
    connection = redis(app)
    connection.flushdb()
    rt = Runtime(app, url, redis_server.url(), connection, tmp)
    rt.env |= {
        "TERMIN_SMTP_HOST": smtp_sink.host,
        "TERMIN_SMTP_PORT": str(smtp_sink.port),
        "TERMIN_SMTP_STARTTLS": "false",
        "TERMIN_SMTP_TIMEOUT": "10",
    }
    try:
        yield rt
    finally:
        for worker in rt.workers:
            worker.stop()
        smtp_sink.reset()
        if redis_server.answers():
            connection.flushdb()
        with app.app_context():
            tables = ", ".join(f'"{t.name}"' for t in db.metadata.sorted_tables)
            db.session.execute(sa.text(f"TRUNCATE {tables}, {EFFECTS_TABLE} RESTART IDENTITY CASCADE"))
            db.session.commit()
