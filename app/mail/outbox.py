"""Adding outbox rows and delivering them (app/mail/models.py says why every side effect is a row first).

``add`` flushes a row in the caller's transaction and, once that commits, enqueues the job
``app.mail.jobs.deliver`` for it. ``deliver`` locks the row, calls the handler its kind names in
``HANDLERS`` and records what happened: delivered, to be tried again later, or failed for good.

A handler is ``handler(tenant_id: int, payload: dict) -> None``, named by dotted path so this module
imports no handler's code (only the providers' error types). It flushes, never commits (``deliver``'s
caller commits once), and must be idempotent: a job can crash after the side effect and before the
commit, and is then run again. It says how it went by returning (delivered) or raising:

* ``RateLimited`` or ``TemporarilyUnavailable`` (providers) or ``RetryLater`` (anything else): try again
  after ``retry_after`` seconds, or the back-off if that is longer. ``RetryLater(payload=...)`` also
  replaces the row's payload, for a handler that got part of the way (mail accepted for some recipients).
* ``AuthRevoked``, ``AccessLost``, any other ``ProviderError``, or ``Undeliverable``: failed, with the
  reason. The handler's database changes are kept, so it records what the failure means (a calendar
  inactive, C11) before raising.
* Any other exception is a bug or an outage nobody named: its database changes are rolled back, it is
  logged and tried again with back-off.

A row that keeps failing is marked failed after ``OUTBOX_MAX_ATTEMPTS`` tries; a try whose worker died counts
(``deliver`` says how each attempt is committed before the handler runs).
"""

import copy
import logging
import random
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app import leases, transaction
from app.db import utcnow
from app.extensions import db
from app.mail.models import OutboxMessage
from app.queue import enqueue, resolve
from app.sync.providers.base import ProviderError, RateLimited, TemporarilyUnavailable, bounded_wait

log = logging.getLogger(__name__)

# kind -> the handler that delivers it. A feature registers a kind by adding its line here.
HANDLERS: dict[str, str] = {
    "mail.send": "app.mail.smtp.send_payload",
    "calendar.write_meeting": "app.sync.writes.write_meeting",
    "calendar.cancel_meeting": "app.sync.writes.cancel_meeting",
    "calendar.update_meeting": "app.sync.writes.update_meeting",
    "tasks.sync": "app.sync.tasks.deliver_task_sync",
    "tasks.sync_all": "app.sync.tasks.deliver_task_sync_all",
    "booking.reminder": "app.pages.notifications.send_reminder",
}
# kind -> what to keep of a payload once the row is delivered or failed (secrets out; issue 15).
REDACTORS: dict[str, str] = {"mail.send": "app.mail.smtp.redact"}
DELIVER_JOB = "app.mail.jobs.deliver"
BASE_BACKOFF_SECONDS = 30
MAX_BACKOFF_SECONDS = 3600
LAST_ERROR_LENGTH = 1000  # the column's size


class DeliveryError(Exception):
    """A handler's verdict on one delivery; ``reason`` is kept in ``last_error``."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RetryLater(DeliveryError):
    """Not now (a mail server's 4xx, say): try again after ``retry_after`` seconds or the back-off.

    ``payload``, when given, replaces the row's payload: what is left to do.
    """

    def __init__(self, reason: str, retry_after: float | None = None, payload: dict | None = None):
        super().__init__(reason)
        self.retry_after = retry_after
        self.payload = payload


class Undeliverable(DeliveryError):
    """Never (a mail server's 5xx, a calendar that was removed): the row fails with the reason."""


def queue_for(kind: str) -> str:
    """The RQ queue a kind's deliveries run on: mail apart, so a slow provider never holds up email."""
    return "mail" if kind.startswith("mail.") else "writes"


def job_id_for(message_id: int) -> str:
    """The job id of a row's delivery: one queued job per row, however often it is enqueued."""
    return f"outbox-{message_id}"


def add(
    tenant_id: int | None, kind: str, payload: dict, *, deliver_at: datetime | None = None
) -> OutboxMessage:
    """Add a pending row to the current transaction; its delivery is enqueued once that commits.

    ``deliver_at`` (aware) holds it back until then: no job is enqueued, the sweeper finds it when due.
    """
    if kind not in HANDLERS:
        raise ValueError(f"no outbox handler for kind {kind!r}; add it to app.mail.outbox.HANDLERS")
    now = utcnow()
    message = OutboxMessage(
        tenant_id=tenant_id,
        kind=kind,
        payload=copy.deepcopy(payload),
        status="pending",
        attempts=0,
        next_attempt_at=deliver_at or now,
    )
    db.session.add(message)
    db.session.flush()
    if message.next_attempt_at <= now:
        enqueue(queue_for(kind), DELIVER_JOB, message.id, job_id=job_id_for(message.id))
    return message


def get_message(tenant_id: int, message_id: int) -> OutboxMessage | None:
    """One row of the tenant's outbox."""
    return db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.tenant_id == tenant_id, OutboxMessage.id == message_id)
    )


def due_messages(now: datetime, limit: int = 100) -> list[OutboxMessage]:
    """Pending rows whose time has come, oldest first: what the sweeper enqueues again.

    For each: ``app.queue.dispatch(app, queue_for(m.kind), DELIVER_JOB, [m.id], job_id_for(m.id))``.
    A row a worker is delivering right now may be among them; its second job finds it locked and leaves.
    """
    return list(
        db.session.scalars(
            sa.select(OutboxMessage)
            .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
            .limit(limit)
        )
    )


def retry_delay(failures: int, retry_after: float | None = None) -> timedelta:
    """The wait after the ``failures``-th failed try: full-jitter exponential back-off (30 s doubling, at
    most an hour), never shorter than the server's Retry-After (itself at most an hour)."""
    ceiling = min(MAX_BACKOFF_SECONDS, BASE_BACKOFF_SECONDS * 2 ** min(max(failures - 1, 0), 20))
    # Full jitter spreads the retries of many rows that failed together; randomness, not security.
    delay = random.uniform(0, ceiling)  # noqa: S311
    # bounded_wait: a RetryLater's own figure (an SMTP server's, say) is capped as the providers' are.
    return timedelta(seconds=max(delay, bounded_wait(retry_after) or 0))


def deliver(message_id: int, *, now: datetime) -> OutboxMessage | None:
    """Deliver one row if it is pending and due. Commits the attempt before the handler runs; the caller
    commits the outcome (or it is already committed, when the handler called ``accepted``).

    1. The row is locked (FOR UPDATE SKIP LOCKED on PostgreSQL: a second job for it returns None at once),
       ``attempts`` goes up and ``next_attempt_at`` becomes the attempt's lease (app/leases.py), and that is
       **committed before anything leaves**: a crash from here on still counts as an attempt, so a message
       that crashes its worker every time reaches ``OUTBOX_MAX_ATTEMPTS`` and fails instead of looping.
    2. The handler runs, the lease renewed meanwhile; a second job for the row finds it not due and leaves.
       A worker killed here leaves the lease to run out, and the sweeper offers the row again.
    3. Its outcome is written; a handler that talks to a peer which can accept once (an SMTP server taking
       the DATA) calls ``accepted()`` at that moment, which commits "delivered" before the handler hangs
       up, so the window in which a crash sends the same message twice is as small as the protocol allows.
    """
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.id == message_id).with_for_update(skip_locked=True)
    )  # SQLite (the one-process demo) has no row locks; SQLAlchemy leaves the clause out there.
    if message is None or message.status != "pending" or message.next_attempt_at > now:
        return message
    path = HANDLERS.get(message.kind)
    if path is None:
        _fail(message, f"No handler is registered for the kind {message.kind!r}.")
        return message
    if message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        # Every attempt ends in an outcome below, except one whose worker died: that one counted too.
        _fail(message, f"Gave up after {message.attempts} attempts. The last one did not finish.")
        return message
    handler = resolve(path)
    message.attempts += 1
    message.next_attempt_at = now + leases.lease_length()
    attempt = message.attempts
    transaction.checkpoint()  # "sending, attempt n" is on record before the handler talks to anyone
    log.info("outbox %s (%s, tenant %s): attempt %s", message.id, message.kind, message.tenant_id, attempt)
    token = _current.set(_Attempt(message, now))
    # The savepoint keeps a handler's half-done writes out of the row's outcome when it crashes.
    savepoint = db.session.begin_nested()
    try:
        with leases.renewing(lambda: _renewed_attempt(message_id, attempt)):
            handler(message.tenant_id, copy.deepcopy(message.payload))
    except (RateLimited, TemporarilyUnavailable, RetryLater) as error:
        _end(savepoint, commit=True)
        if isinstance(error, RetryLater) and error.payload is not None:
            message.payload = error.payload
        _retry(message, now, error.reason, error.retry_after)
    except (ProviderError, Undeliverable) as error:
        _end(savepoint, commit=True)
        _fail(message, error.reason)
    except Exception as error:
        _end(savepoint, commit=False)
        log.exception("outbox %s (%s, tenant %s) crashed", message.id, message.kind, message.tenant_id)
        if message.status == "delivered":
            return message  # accepted before the crash: it was delivered, whatever came after
        _retry(message, now, f"{type(error).__name__}: {error}", None)
    else:
        _end(savepoint, commit=True)
        _mark_delivered(message, now)
    finally:
        _current.reset(token)
    if message.status != "pending":
        _redact(message)
    db.session.flush()
    return message


@dataclass
class _Attempt:
    message: OutboxMessage
    now: datetime


_current: ContextVar[_Attempt | None] = ContextVar("outbox_attempt", default=None)


def accepted(remaining: dict | None = None) -> None:
    """Called by a handler the moment its peer has accepted what was sent: commits the outcome now.

    Without ``remaining`` the row is delivered. With it (the server took the message for some recipients and
    deferred the others) the row's payload becomes ``remaining``, what is left to do, so a crash before the
    handler's ``RetryLater`` never sends again to those who have it. Outside a delivery it does nothing.
    """
    attempt = _current.get()
    if attempt is None:
        return
    if remaining is None:
        _mark_delivered(attempt.message, attempt.now)
        _redact(attempt.message)
    else:
        attempt.message.payload = copy.deepcopy(remaining)
    transaction.checkpoint()


def _mark_delivered(message: OutboxMessage, now: datetime) -> None:
    message.status, message.delivered_at, message.last_error = "delivered", now, None


def _end(savepoint, *, commit: bool) -> None:
    if not savepoint.is_active:  # ``accepted()`` committed it with everything else
        return
    if commit:
        savepoint.commit()
    else:
        savepoint.rollback()


def _renewed_attempt(message_id: int, attempt: int) -> sa.Update:
    # Only this attempt, while it is still pending: a written outcome is never pushed back.
    return (
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == "pending",
            OutboxMessage.attempts == attempt,
        )
        .values(next_attempt_at=utcnow() + leases.lease_length())
    )


def _redact(message: OutboxMessage) -> None:
    """A row that is done keeps no secret (a live manage link, a reset token) in its payload."""
    path = REDACTORS.get(message.kind)
    if path is not None and not message.payload.get("redacted"):
        message.payload = resolve(path)(copy.deepcopy(message.payload))


def _retry(message: OutboxMessage, now: datetime, reason: str, retry_after: float | None) -> None:
    if message.attempts >= current_app.config["OUTBOX_MAX_ATTEMPTS"]:
        _fail(message, f"Gave up after {message.attempts} attempts. Last error: {reason}")
        return
    message.next_attempt_at = now + retry_delay(message.attempts, retry_after)
    message.last_error = reason[:LAST_ERROR_LENGTH]
    log.warning(
        "outbox %s (%s, tenant %s) attempt %s failed, next at %s: %s",
        message.id,
        message.kind,
        message.tenant_id,
        message.attempts,
        message.next_attempt_at.isoformat(),
        reason,
    )


def _fail(message: OutboxMessage, reason: str) -> None:
    message.status, message.last_error = "failed", reason[:LAST_ERROR_LENGTH]
    _redact(message)
    log.error("outbox %s (%s, tenant %s) failed: %s", message.id, message.kind, message.tenant_id, reason)
    db.session.flush()
