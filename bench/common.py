"""What the benchmarks that need a database or a server share: the throwaway database, gunicorn, the
machine's description and the writing of results and of a script's table into ``docs/benchmarks.md``.

Not a script of its own; ``bench/race.py``, ``bench/page.py`` and ``bench/sync_ingest.py`` import it (the
project root is on ``sys.path`` by then).
"""

import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests
from flask_migrate import upgrade
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from tests.conftest import TEST_ENCRYPTION_KEY, config_for_tests, recreate_database

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "benchmarks.md"
DATABASE_URL = os.environ.get(
    "TERMIN_BENCH_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/termin_bench"
)
APP_HOST = "app.bench.localhost"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measured_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- The database -------------------------------------------------------------------------------------------


@contextmanager
def throwaway_database(database_url: str) -> Iterator[None]:
    """The database ``database_url`` names, recreated and migrated; dropped when the block ends, failed
    or not."""
    try:
        recreate_database(database_url)
        app = create_app(config_for_tests(database_url))
        with app.app_context():
            upgrade()
            db.engine.dispose()
        yield
    finally:
        drop_database(database_url)


@contextmanager
def seeding(database_url: str) -> Iterator[None]:
    """An app context on the bench database for a seed, committed when the block ends without an error.

    Mail the seed's bookings queue goes to a scratch folder, not the demo's instance/mail.
    """
    with tempfile.TemporaryDirectory(prefix="termin-mail-") as mail_dir:
        app = create_app({**config_for_tests(database_url), "MAIL_DIR": mail_dir})
        with app.app_context():
            yield
            db.session.commit()
            db.engine.dispose()


def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')


def machine(database_url: str) -> dict:
    """The CPU, the CPU count, Python's and PostgreSQL's versions."""
    cpu = ""
    if Path("/proc/cpuinfo").exists():
        cpu = next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    admin = make_url(database_url).set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False)) as connection:
        server = connection.execute("SHOW server_version").fetchone()[0]
    return {
        "cpu": cpu or platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "postgresql": server,
    }


# --- The server ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Gunicorn:
    """``gunicorn <target>`` on 127.0.0.1, started here and stopped by ``close`` (or the ``with`` block)."""

    def __init__(self, target: str, *, workers: int, threads: int, env: dict, log_path: Path, port: int = 0):
        self.port = port or free_port()
        self.log_path = log_path
        command = [
            str(Path(sys.executable).parent / "gunicorn"),
            "--chdir",
            str(ROOT),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread" if threads > 1 else "sync",
            "--threads",
            str(threads),
            "--backlog",
            "2048",
            "--timeout",
            "120",
            "--error-logfile",
            str(log_path),
            target,
        ]
        # The app's own log lines (a traceback) go to the worker's stderr: into the same file.
        self._output = open(log_path.with_suffix(".out"), "wb")  # noqa: SIM115 (closed in close())
        self.process = subprocess.Popen(  # noqa: S603 (our own command line)
            command, env={**os.environ, **env}, stdout=self._output, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{self.port}"
        try:
            self._wait_listening()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Gunicorn":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _wait_listening(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.2)
        raise SystemExit(f"gunicorn did not listen within {seconds} s:\n{self.log_tail()}")

    def warm(self, path: str, host: str, count: int) -> None:
        """Requests until every worker has imported the app and opened its pool (gunicorn forks lazily)."""
        with requests.Session() as session:
            for _ in range(count):
                session.get(self.url + path, headers={"Host": host}, timeout=60)

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for path in (self.log_path, self.log_path.with_suffix(".out")):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._output.close()


def server_env(database_url: str, scratch: Path) -> dict:
    """The served app's settings: the bench database, jobs on an in-process thread, mail into files."""
    return {
        "DATABASE_URL": database_url,
        "TERMIN_APP_HOST": APP_HOST,
        "TERMIN_SECRET_KEY": "bench-secret-key",
        "TERMIN_ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY,
        "TERMIN_JOBS_MODE": "thread",
        "TERMIN_MAIL_DIR": str(scratch / "mail"),
        "REDIS_URL": "",
    }


# --- The report ---------------------------------------------------------------------------------------------


def write_results(path: Path, results: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {path.relative_to(ROOT)}")


def write_section(begin: str, end: str, body: str, *, heading: str = "") -> None:
    """``body`` between the markers ``begin`` and ``end`` in docs/benchmarks.md, the markers (after
    ``heading``) appended when missing. Only that text is the script's; the rest of the file is others'."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if begin not in text or end not in text:
        heading = f"{heading}\n\n" if heading else ""
        text = f"{text.rstrip()}\n\n{heading}{begin}\n{end}\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOCS.write_text(f"{head}{begin}\n{body}\n{end}{tail}")
