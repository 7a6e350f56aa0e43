"""Throwaway Redis and PostgreSQL servers of the test process's own: a temporary directory, a free port.

Tests that need a Redis of their own (the RQ runtime) or must stop and restart the database under the app
(tests/faults) start one of these instead of sharing the machine's: two pytest-xdist workers, or two
checkouts testing side by side, never see each other's keys, and a restart hurts nobody else. Both servers
run without persistence tuning beyond what a restart test needs (Redis keeps no snapshot, so a restart
empties it, as a Redis without persistence does in production).
"""

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import psycopg
from redis import Redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout} s")
        time.sleep(0.05)


class RedisServer:
    """``redis-server`` on 127.0.0.1:<free port>, no snapshots; ``url(db)``, ``stop()``, ``start()``."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        arguments = ["--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [binary, *arguments, "--dir", str(self.root), "--logfile", str(self.root / "redis.log")],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self.answers, f"redis-server on port {self.port}")
        return self

    def answers(self) -> bool:
        client = Redis(port=self.port, socket_connect_timeout=0.2)
        try:
            return bool(client.ping())
        except Exception:  # redis.ConnectionError and friends while it starts
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


def _postgres_bin(name: str) -> str:
    """A PostgreSQL server program: Debian keeps them under /usr/lib/postgresql/<version>/bin."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_key)
    if found:
        return found[-1]
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: apt-get install postgresql (make services does)")
    return path


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parts[-3]
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class PostgresServer:
    """A PostgreSQL cluster made by ``initdb`` in a temporary directory, run as the postgres user on its own
    port (the server refuses to run as root); trust authentication on 127.0.0.1 only."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.data = self.root / "data"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _as_postgres(self, *command: str, check: bool = True) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            command = ("runuser", "-u", "postgres", "--", *command)
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def init(self) -> "PostgresServer":
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(
            _postgres_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        return self

    def start(self) -> "PostgresServer":
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root}"
        options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        self._as_postgres(
            _postgres_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "pg.log"),
            "-w", "-t", "60", "start",
        )  # fmt: skip
        _wait(self._answers, f"PostgreSQL on port {self.port}")
        return self

    def _answers(self) -> bool:
        try:
            with psycopg.connect(
                f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", connect_timeout=1
            ):
                return True
        except psycopg.OperationalError:
            return False

    def stop(self, mode: str = "fast") -> None:
        if (self.data / "postmaster.pid").exists():
            self._as_postgres(
                _postgres_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False
            )

    def destroy(self) -> None:
        self.stop("immediate")
        with contextlib.suppress(OSError):
            shutil.rmtree(self.root)
