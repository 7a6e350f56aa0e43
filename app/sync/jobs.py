"""Background jobs of calendar sync: they load by id, run the engine, and commit.

Jobs are the one place without a tenant argument: they load a calendar or connection by its id, and all
the work below happens on ``calendar.tenant_id``. Each log line names the calendar and its tenant.

A calendar sync first **claims** the calendar: ``sync_started_at`` is set and committed on its own, so the
settings page and the health probe see a sync running, and a second worker that picks the same calendar
meanwhile leaves it alone. Everything the sync reads and writes is then committed once, together with the
cleared claim; a run killed half-way commits none of it, and the next run does the same work again. The
claim is a lease (app/leases.py): renewed while the sync runs, so one older than ``JOB_LEASE_SECONDS`` is a
dead worker's, which the sweeper queues again and the next run takes over.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from app import leases, queue, transaction
from app.db import utcnow
from app.extensions import db
from app.sync import engine, services
from app.sync.engine import SyncReport
from app.sync.models import Calendar, CalendarConnection
from app.sync.providers.base import CalendarProvider

log = logging.getLogger(__name__)


def request_sync(calendar: Calendar) -> None:
    """Sync ``calendar`` soon: due now, and queued once the caller commits (one queued job per calendar)."""
    calendar.next_sync_at = utcnow()
    db.session.flush()
    queue.enqueue("sync", "app.sync.jobs.sync_calendar", calendar.id, job_id=f"sync-calendar-{calendar.id}")


def sync_calendar(calendar_id: int) -> SyncReport | None:
    """Job: pull one calendar's changes into synced events, busy blocks and meetings; safe to run twice."""
    calendar = _claim(calendar_id)
    if calendar is None:
        return None
    return _run(calendar, lambda: services.open_provider(calendar.connection))


def sync_connection(connection_id: int) -> list[SyncReport]:
    """Job: sync every calendar of an active account that feeds meetings or availability (not task ones).

    One provider serves all of them; each calendar is committed on its own, so one that fails leaves the
    others synced. The first failure is raised at the end, after every calendar had its turn.
    """
    connection = db.session.get(CalendarConnection, connection_id)
    if connection is None or not connection.is_active:
        log.info("sync of connection %s skipped: gone or inactive", connection_id)
        return []
    calendar_ids = [calendar.id for calendar in connection.calendars]
    reports: list[SyncReport] = []
    failure: Exception | None = None
    with services.open_provider(connection) as provider:
        for calendar_id in calendar_ids:
            calendar = _claim(calendar_id)
            if calendar is None:
                continue
            try:
                reports.append(_run(calendar, lambda p=provider: _shared(p)))
            except Exception as error:  # the next calendar still gets its turn; raised below
                failure = failure or error
    if failure is not None:
        raise failure
    return reports


def _claim(calendar_id: int) -> Calendar | None:
    """The calendar, marked as syncing and committed; None when there is nothing to do or it is taken."""
    now = utcnow()
    calendar = db.session.scalar(sa.select(Calendar).where(Calendar.id == calendar_id).with_for_update())
    if calendar is None:
        log.info("sync of calendar %s skipped: it no longer exists", calendar_id)
        transaction.rollback()
        return None
    ids = (calendar.id, calendar.tenant_id)
    if not engine.needs_sync(calendar):
        if calendar.is_active and calendar.connection.is_active:
            # Unticked (or calendar sync turned off): its busy blocks must stop blocking the rep's pages.
            engine.forget_calendar(calendar)
            calendar.next_sync_at = None
            log.info("calendar %s (tenant %s): not synced any more; its stored events were dropped", *ids)
        transaction.checkpoint()
        return None
    if calendar.sync_started_at is not None and calendar.sync_started_at > now - leases.lease_length():
        log.info("calendar %s (tenant %s): a sync is already running", *ids)
        transaction.checkpoint()
        return None
    calendar.sync_started_at = now
    transaction.checkpoint()
    return calendar


def _run(calendar: Calendar, provider_for: Callable) -> SyncReport:
    calendar_id, tenant_id = calendar.id, calendar.tenant_id
    try:
        with leases.renewing(lambda: _renewed_claim(calendar_id)), provider_for() as provider:
            report = engine.sync_calendar(calendar, provider, now=utcnow())
        calendar.sync_started_at = None
        transaction.checkpoint()
    except Exception as error:
        transaction.rollback()
        log.exception("calendar %s (tenant %s): sync failed", calendar_id, tenant_id)
        _release(calendar_id, error)
        raise
    log.info(
        "calendar %s (tenant %s): %s%s, %d events seen, %d rows written (%d busy blocks), %d requests, "
        "meetings +%d ~%d -%d, skipped %s",
        calendar_id,
        tenant_id,
        report.outcome,
        " (full)" if report.full else "",
        report.events_seen,
        report.rows_written,
        report.blocks_written,
        report.requests,
        report.meetings_created,
        report.meetings_updated,
        report.meetings_cancelled,
        dict(report.skipped) or "none",
    )
    return report


def _renewed_claim(calendar_id: int) -> sa.Update:
    # Only a claim still held: once the sync has committed (claim cleared), a late renewal changes nothing.
    return (
        sa.update(Calendar)
        .where(Calendar.id == calendar_id, Calendar.sync_started_at.is_not(None))
        .values(sync_started_at=utcnow())
    )


def _release(calendar_id: int, error: Exception) -> None:
    """After a failed run: drop the claim and try again later, so a bug does not look like a running sync."""
    try:
        calendar = db.session.get(Calendar, calendar_id)
        if calendar is None:
            return
        now = utcnow()
        delay = engine.retry_delay(calendar)
        calendar.sync_started_at = None
        calendar.last_error = f"sync failed: {type(error).__name__}"[:500]
        calendar.last_error_at = now
        calendar.next_sync_at = now + delay
        transaction.checkpoint()
    except Exception:  # the database itself may be what failed; the original error is what matters
        transaction.rollback()
        log.exception("calendar %s: could not record the failed sync", calendar_id)


@contextmanager
def _shared(provider: CalendarProvider) -> Iterator[CalendarProvider]:
    """A provider owned by the caller, which closes it."""
    yield provider
