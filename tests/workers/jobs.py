"""A job that is slow on purpose, for the runtime tests: the outbox handler of the kind ``test.effect``.

It records each run in Redis (the horse's pid, outside any transaction, so a test sees it at once), adds one
row to ``rq_test_effects`` in the delivery's transaction and, on its first run only, sleeps
``payload["sleep"]`` seconds before returning, so a test can kill the worker while the row is written but not
committed.
"""

import logging
import os
import time

import sqlalchemy as sa
from flask import current_app
from redis import Redis

from app.extensions import db
from app.logs import log_tenant

KIND = "test.effect"
HANDLER = "tests.workers.jobs.write_effect"
EFFECTS_TABLE = "rq_test_effects"
EFFECTS_DDL = f"CREATE TABLE {EFFECTS_TABLE} (id serial PRIMARY KEY, key text NOT NULL, pid integer NOT NULL)"
_effects = sa.table(EFFECTS_TABLE, sa.column("key"), sa.column("pid"))
log = logging.getLogger(__name__)


def runs_key(key: str) -> str:
    return f"rqtest:runs:{key}"


def write_effect(tenant_id: int, payload: dict) -> None:
    key = payload["key"]
    log_tenant(tenant_id)
    redis = Redis.from_url(current_app.config["REDIS_URL"])
    try:
        redis.rpush(runs_key(key), os.getpid())
        db.session.execute(sa.insert(_effects).values(key=key, pid=os.getpid()))
        db.session.flush()
        log.info("effect %s written", key)
        if redis.set(f"rqtest:slept:{key}", 1, nx=True):
            time.sleep(float(payload.get("sleep", 0)))
    finally:
        redis.close()
