"""Logging for every process: one JSON object per line in production, readable lines in the demo.

Every record carries ``request_id``, ``tenant_id`` and ``user_id`` (web) or ``job_id`` and ``tenant_id``
(jobs), "-" where there is none, added by ``ContextFilter`` on the handler (so records of every logger pass
through it, the libraries' too). ``configure_logging`` sets it up for the worker and sweeper (called before
``create_app``) and for the demo's ``flask run`` (``create_app`` calls it when nothing has configured the root
logger); gunicorn gets the same set-up through ``dict_config`` (gunicorn.conf.py), so its own lines and the
app's INFO lines come out in the same shape.

The format is ``TERMIN_LOG_FORMAT`` (``json`` or ``text``); by default ``json`` when ``TERMIN_ENV`` is
production, ``text`` otherwise.

A web request's id is the proxy's ``X-Request-ID`` when it sends a sane one (Caddy does, deploy/Caddyfile),
else a fresh one; it goes back in the response's ``X-Request-ID``. A job's tenant is what the job named with
``log_tenant``, or the tenant of the first tenant-owned row it loaded (``log_tenant_of_loaded_rows``).
"""

import logging
import logging.config
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import sqlalchemy as sa
from flask import Flask, g, has_request_context, request
from pythonjsonlogger.json import JsonFormatter
from rq import get_current_job
from sqlalchemy import event

from app.extensions import db

# The tenant a job works for, and the job being performed (rq's ``get_current_job()`` is only set while the
# job function itself runs, not around it).
current_tenant_id: ContextVar[int | None] = ContextVar("current_tenant_id", default=None)
current_job_id: ContextVar[str | None] = ContextVar("current_job_id", default=None)

TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(process)d [req=%(request_id)s job=%(job_id)s tenant=%(tenant_id)s "
    "user=%(user_id)s] %(name)s: %(message)s"
)
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"
JSON_RENAME = {"asctime": "time", "levelname": "level", "name": "logger"}
CONTEXT_FIELDS = ("request_id", "job_id", "tenant_id", "user_id")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
request_log = logging.getLogger("termin.request")


def log_format(environ: os._Environ | dict = os.environ) -> str:
    """``json`` or ``text``: TERMIN_LOG_FORMAT, else json in production."""
    chosen = (environ.get("TERMIN_LOG_FORMAT") or "").strip().strip('"').lower()
    if chosen in ("json", "text"):
        return chosen
    return "json" if environ.get("TERMIN_ENV", "").strip('"') == "production" else "text"


class ContextFilter(logging.Filter):
    """Adds request_id, job_id, tenant_id and user_id to every record ("-" when there is none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = dict.fromkeys(CONTEXT_FIELDS, "-")
        job = get_current_job()
        job_id = job.id if job is not None else current_job_id.get()
        if job_id is not None:
            values["job_id"] = job_id
        if current_tenant_id.get() is not None:
            values["tenant_id"] = current_tenant_id.get()
        if has_request_context():
            values.update(_request_values())
        for name, value in values.items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


def _request_values() -> dict:
    """The request's id, tenant and user, read without any I/O (a log line must never query)."""
    found = {"request_id": g.get("request_id", "-")}
    tenant = g.get("tenant")
    if tenant is not None:
        found["tenant_id"] = _loaded_attribute(tenant, "id")
    user = g.get("_login_user")  # Flask-Login's user of this request, once something has loaded it
    if user is not None and getattr(user, "is_authenticated", False):
        found["user_id"] = _loaded_attribute(user, "id")
        found.setdefault("tenant_id", _loaded_attribute(user, "tenant_id"))
    return {key: value for key, value in found.items() if value is not None}


def _loaded_attribute(obj, name: str):
    """``obj.name`` only if it is loaded: an expired attribute would refresh itself with a query."""
    try:
        state = sa.inspect(obj)
    except sa.exc.NoInspectionAvailable:
        return getattr(obj, name, None)
    if name == "id" and state.identity:
        return state.identity[0]
    return state.dict.get(name)


def json_formatter() -> logging.Formatter:
    return JsonFormatter(JSON_FIELDS, rename_fields=JSON_RENAME, static_fields={}, timestamp=False)


def dict_config(fmt: str | None = None, level: str = "INFO") -> dict:
    """A ``logging.config.dictConfig`` for this process: root to stderr through ``ContextFilter``.

    gunicorn.conf.py hands it to gunicorn as ``logconfig_dict``, so gunicorn's own loggers propagate to the
    same handler instead of printing through theirs.
    """
    fmt = fmt or log_format()
    formatter = {"()": json_formatter} if fmt == "json" else {"format": TEXT_FORMAT}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"termin": formatter},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "filters": ["context"],
                "formatter": "termin",
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": [], "propagate": True},
            "gunicorn.access": {"level": level, "handlers": [], "propagate": True},
        },
    }


def configure_logging(fmt: str | None = None, level: str = "INFO") -> None:
    """Set up the root logger as ``dict_config`` says; a second call changes nothing."""
    root = logging.getLogger()
    if any(isinstance(f, ContextFilter) for handler in root.handlers for f in handler.filters):
        return
    logging.config.dictConfig(dict_config(fmt, level))


def init_app(app: Flask) -> None:
    """Request ids and one line per request; logging itself for ``flask run`` when nothing set it up."""
    if not app.config["TESTING"] and not logging.getLogger().handlers:
        configure_logging(
            app.config.get("LOG_FORMAT") or ("json" if app.config["ENV"] == "production" else "text")
        )
    app.before_request(_start_request)
    app.after_request(_finish_request)


def _start_request() -> None:
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _SANE_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.request_started = time.perf_counter()


def _finish_request(response):
    response.headers["X-Request-ID"] = g.get("request_id", "-")
    started = g.get("request_started")
    elapsed_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
    request_log.info(
        "%s %s %s %s ms",
        request.method,
        request.path,
        response.status_code,
        elapsed_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "ms": elapsed_ms,
        },
    )
    return response


# --- Jobs ---------------------------------------------------------------------------------------------------


def log_tenant(tenant_id: int | None) -> None:
    """Name the tenant the current job works for, so every later line of the job carries it."""
    current_tenant_id.set(tenant_id)


@contextmanager
def job_log_context(job_id: str | None) -> Iterator[None]:
    """While one job runs: its id on every line, and no tenant until the job names (or loads) one."""
    job_token = current_job_id.set(job_id)
    tenant_token = current_tenant_id.set(None)
    try:
        yield
    finally:
        current_tenant_id.reset(tenant_token)
        current_job_id.reset(job_token)


def log_tenant_of_loaded_rows() -> None:
    """Inside a job that has not named its tenant, the first tenant-owned row it loads names it.

    Jobs take ids and load one tenant's rows (app/sync/jobs.py, app/mail/jobs.py), so their lines carry the
    tenant without each job calling ``log_tenant``. Installed by the worker process only; idempotent.
    """
    if not event.contains(db.Model, "load", _note_tenant):
        event.listen(db.Model, "load", _note_tenant, propagate=True)


def _note_tenant(target, context) -> None:
    if current_job_id.get() is None or current_tenant_id.get() is not None:
        return
    tenant_id = getattr(target, "tenant_id", None)
    if isinstance(tenant_id, int):
        current_tenant_id.set(tenant_id)
