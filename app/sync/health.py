"""Is each connected account and calendar still usable, and is its sync alive (C11)?

``probe_connection(connection_id)`` is a job: the scheduler runs it for every connection now and then, and
it is safe to run any number of times.

* A probe lists the account's calendars. ``AuthRevoked`` puts the connection inactive with the provider's
  reason; a calendar missing from the list (or down to free/busy while it feeds availability) goes inactive
  through ``apply_calendar_list``. When the stored credentials work again the connection is active again.
  Rate limits and outages change nothing but ``health_checked_at``.
* **Told once per outage, and told when it ends.** When the connection, or a calendar in use (the default,
  one checked for availability, or the task sub-calendar), is inactive and its ``inactive_notified_at`` is
  NULL, the rep gets one email naming everything newly inactive, the provider's reason and the two ways
  out, and ``inactive_notified_at`` is set, so probing again sends nothing. When what they were told of is
  active again (the probe, or *Check calendars again*, found it reachable: a 404 that was a foreign or
  absent server, a re-shared calendar, a restored password) they get one email saying it works again and
  the flag is cleared, so the next outage is told again. Calendars that feed nothing go inactive without
  an email: the settings page lists them.
* **Stuck syncs.** A calendar whose ``sync_started_at`` is older than ``SYNC_STALE_SECONDS`` gets
  ``last_error`` "sync did not finish"; the sweeper queues it again.
* A task-sync account that is (again) active but whose task events drifted from the tasks (an outage, a
  write that was skipped) gets one "tasks.sync_all" outbox row (C6).
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from app.db import utcnow
from app.extensions import db
from app.mail import smtp
from app.sync import engine, jobs, tasks
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from app.sync.providers.base import AuthRevoked, ProviderError

log = logging.getLogger(__name__)

STUCK_SYNC_ERROR = "sync did not finish"
PROVIDER_LABELS = {"google": "Google Calendar", "microsoft": "Microsoft 365", "caldav": "CalDAV"}


@dataclass(frozen=True)
class Outage:
    """One thing the rep is told about: the whole account, or one calendar of it."""

    what: str  # "account" or "calendar"
    name: str
    reason: str


def probe_connection(connection_id: int) -> None:
    """Job: look at one account now, record what changed, tell the rep once about what stopped working."""
    connection = db.session.get(CalendarConnection, connection_id)
    if connection is None:
        return  # disconnected since the probe was queued
    check_connection(connection)


def check_connection(connection: CalendarConnection) -> list[Outage]:
    """The probe's work on a loaded connection; flushes, the caller commits. Returns what the rep was told."""
    now = utcnow()
    try:
        with sync.open_provider(connection) as provider:
            remote = provider.list_calendars()
    except AuthRevoked as error:
        sync.mark_connection_inactive(connection, error.reason)
    except ProviderError as error:
        # Rate limits, outages, an unreadable answer: no verdict on the account either way.
        log.warning("health probe of connection %s: %s", connection.id, error.reason)
    else:
        if not connection.is_active:
            connection.status, connection.inactive_reason, connection.inactive_since = "active", None, None
        sync.apply_calendar_list(connection, remote)
    connection.health_checked_at = now
    _flag_stuck_syncs(connection.calendars, now)
    told = notify_once(connection, now)
    if tasks.needs_reconcile(connection):
        tasks.queue_task_resync(connection)
    db.session.flush()
    return told


def _flag_stuck_syncs(calendars: Sequence[Calendar], now) -> None:
    stale = now - timedelta(seconds=current_app.config["SYNC_STALE_SECONDS"])
    for calendar in calendars:
        started = calendar.sync_started_at
        if started is not None and started < stale and calendar.last_error != STUCK_SYNC_ERROR:
            calendar.last_error, calendar.last_error_at = STUCK_SYNC_ERROR, now


def _in_use(calendar: Calendar) -> bool:
    return calendar.is_default or calendar.checks_availability or calendar.is_task_calendar


def notify_once(connection: CalendarConnection, now) -> list[Outage]:
    """Email the rep about what went inactive since they were last told, and about what they were told of
    that works again (an outage that ended); flushes nothing, the caller does."""
    outages: list[Outage] = []
    recovered: list[str] = []
    if connection.is_active:
        if connection.inactive_notified_at is not None:
            recovered.append(connection.account_email)
        connection.inactive_notified_at = None
    elif connection.inactive_notified_at is None:
        outages.append(Outage("account", connection.account_email, connection.inactive_reason or ""))
        connection.inactive_notified_at = now
    # While the whole account is out its calendars cannot be listed, so they cannot change either.
    for calendar in connection.calendars if connection.is_active else ():
        if calendar.is_active:
            if calendar.inactive_notified_at is not None:
                recovered.append(calendar.name)
            calendar.inactive_notified_at = None
        elif calendar.inactive_notified_at is None and _in_use(calendar):
            calendar.inactive_notified_at = now
            outages.append(Outage("calendar", calendar.name, calendar.inactive_reason or ""))
    if outages:
        _send_outage_mail(connection, outages)
    if recovered:
        _send_recovery_mail(connection, recovered)
    return outages


def _send_recovery_mail(connection: CalendarConnection, names: list[str]) -> None:
    user = connection.user
    provider = PROVIDER_LABELS.get(connection.provider, connection.provider)
    with force_locale(user.locale or "en"):
        listed = ", ".join(f"“{name}”" for name in names)
        subject = _("Your calendar works again in Termin: %(names)s", names=listed)
        body = [
            _(
                "Termin can reach %(names)s in your %(provider)s account %(account)s again. Its busy times "
                "count again, and prospects can book you unless another calendar is still inactive.",
                names=listed,
                provider=provider,
                account=connection.account_email,
            ),
            _("Your calendar settings page:"),
            tasks.app_url("settings.calendars"),
        ]
    smtp.send_mail(connection.tenant_id, to=user.email, subject=subject, text="\n\n".join(body) + "\n")


def _send_outage_mail(connection: CalendarConnection, outages: list[Outage]) -> None:
    user = connection.user
    settings_url = tasks.app_url("settings.calendars")
    provider = PROVIDER_LABELS.get(connection.provider, connection.provider)
    with force_locale(user.locale or "en"):
        if outages[0].what == "account":
            subject = _(
                "Termin lost access to your calendar account %(account)s", account=connection.account_email
            )
            body = [
                _(
                    "Termin can no longer reach your %(provider)s account %(account)s, so prospects cannot "
                    "book you until it is fixed.",
                    provider=provider,
                    account=connection.account_email,
                ),
                _("What %(provider)s said: %(reason)s", provider=provider, reason=outages[0].reason),
                _("To fix it, reconnect the account on your calendar settings page:"),
                settings_url,
            ]
        else:
            names = ", ".join(f"“{outage.name}”" for outage in outages)
            subject = _("A calendar of yours is inactive in Termin: %(names)s", names=names)
            body = [
                _(
                    "Termin lost access to %(names)s in your %(provider)s account %(account)s. Prospects "
                    "cannot book you until it is fixed.",
                    names=names,
                    provider=provider,
                    account=connection.account_email,
                )
            ]
            body += [
                _("“%(name)s”: %(reason)s", name=outage.name, reason=outage.reason) for outage in outages
            ]
            body += [
                _(
                    "To fix it, ask the calendar's owner to share it with you again (with all event details) "
                    "and reconnect it, or remove the inactive calendar, on your calendar settings page:"
                ),
                settings_url,
            ]
    smtp.send_mail(connection.tenant_id, to=user.email, subject=subject, text="\n\n".join(body) + "\n")


# --- Sync status (settings page) ----------------------------------------------------------------------------


def synced_calendars(connection: CalendarConnection) -> list[Calendar]:
    """The account's calendars the sync engine reads (``engine.needs_sync``), whose status the rep sees."""
    return [c for c in connection.calendars if engine.needs_sync(c)]


def is_syncing(connection: CalendarConnection) -> bool:
    """True while a sync of one of the account's calendars runs or is due (the status block keeps polling)."""
    now = utcnow()
    return any(
        c.sync_started_at is not None or (c.next_sync_at is not None and c.next_sync_at <= now)
        for c in synced_calendars(connection)
    )


def sync_now(connection: CalendarConnection) -> list[Calendar]:
    """The rep asked: sync the account's calendars now (each job is queued after the commit)."""
    calendars = synced_calendars(connection)
    for calendar in calendars:
        jobs.request_sync(calendar)
    return calendars
