"""Health endpoints for load balancers and supervisors, served on every host (a balancer probes by address).

* ``GET /healthz``: the process is alive and serving. No I/O at all, so it stays cheap and says nothing about
  PostgreSQL or Redis: restart the process when it fails.
* ``GET /readyz``: PostgreSQL answers ``SELECT 1`` and (when jobs run on RQ) Redis answers ``PING``, each
  within ``READY_TIMEOUT_SECONDS``; 503 otherwise. Take the process out of rotation while it fails, do not
  restart it.

Both answer JSON with ``Cache-Control: no-store``; tenancy (app/web/tenancy.py, ``@any_host``) lets them
through on any host before it looks the host up, so neither touches the database for that.
"""

from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import sqlalchemy as sa
from flask import Blueprint, current_app, jsonify
from redis import Redis

from app.extensions import db
from app.web.tenancy import any_host

bp = Blueprint("health", __name__)
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="termin-readyz")


@bp.get("/healthz")
@any_host
def healthz():
    """Alive: answers without touching anything else."""
    return _answer({"status": "ok"}, 200)


@bp.get("/readyz")
@any_host
def readyz():
    """Ready: PostgreSQL and Redis reachable within READY_TIMEOUT_SECONDS; 503 naming what is not."""
    timeout = float(current_app.config["READY_TIMEOUT_SECONDS"])
    engine = db.engine
    checks = {"database": _checks.submit(_ping_database, engine, timeout)}
    if current_app.config["JOBS_MODE"] == "rq":
        checks["redis"] = _checks.submit(_ping_redis, current_app.config["REDIS_URL"], timeout)
    results = {}
    for name, future in checks.items():
        try:
            future.result(timeout=timeout)
        except FutureTimeout:
            results[name] = f"no answer within {timeout:g} s"
        except Exception as error:  # unreachable, refused, failing: which one is for the logs
            current_app.logger.warning("readyz: %s is not ready: %s", name, error)
            results[name] = f"unavailable ({type(error).__name__})"
        else:
            results[name] = "ok"
    ready = all(result == "ok" for result in results.values())
    body = {"status": "ready" if ready else "unavailable", "checks": results}
    return _answer(body, 200 if ready else 503)


def _ping_database(engine: sa.Engine | sa.Connection, timeout: float) -> None:
    if isinstance(engine, sa.Connection):  # the tests' shared, rolled-back connection: ask it as it is
        engine.execute(sa.text("SELECT 1"))
        return
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SET statement_timeout = {int(timeout * 1000)}")
        connection.execute(sa.text("SELECT 1"))
        connection.rollback()


def _ping_redis(url: str, timeout: float) -> None:
    client = Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _answer(body: dict, status: int):
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    if status == 503:
        response.headers["Retry-After"] = "5"
    return response
