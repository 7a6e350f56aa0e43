"""Connected calendar accounts: connect, reconnect, choose calendars, go inactive, disconnect.

Every read takes the tenant *and* the rep: a connection is private to the rep who made it, so another rep
of the same tenant gets nothing, exactly like another tenant. Services flush; callers commit.
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import sqlalchemy as sa
from flask import current_app

from app import queue
from app.db import utcnow
from app.errors import SettingsRefused
from app.extensions import db
from app.mail import outbox
from app.sync import crypto, oauth
from app.sync.factory import build_provider
from app.sync.models import Calendar, CalendarConnection
from app.sync.providers import caldav as caldav_provider
from app.sync.providers.base import Account, AuthRevoked, CalendarProvider, RemoteCalendar
from app.tenants.models import Tenant, User

TASK_SYNC_SEATS = ("sales", "service")


@dataclass(frozen=True)
class ConnectionChoices:
    calendar_sync: bool
    scheduling_pages: bool
    task_sync: bool
    default_calendar_id: int | None
    availability_calendar_ids: frozenset[int]


def list_connections(tenant: Tenant, user: User) -> list[CalendarConnection]:
    return list(
        db.session.scalars(
            sa.select(CalendarConnection)
            .where(CalendarConnection.tenant_id == tenant.id, CalendarConnection.user_id == user.id)
            .order_by(CalendarConnection.created_at, CalendarConnection.id)
        )
    )


def get_connection(tenant: Tenant, user: User, connection_id: int) -> CalendarConnection | None:
    return db.session.scalar(
        sa.select(CalendarConnection).where(
            CalendarConnection.tenant_id == tenant.id,
            CalendarConnection.user_id == user.id,
            CalendarConnection.id == connection_id,
        )
    )


def get_calendar(connection: CalendarConnection, calendar_id: int) -> Calendar | None:
    return next((c for c in connection.calendars if c.id == calendar_id), None)


def task_sync_blocker(user: User, connection: CalendarConnection) -> str | None:
    """Why task sync cannot be turned on for this rep and account (C6), or None when it can."""
    if user.seat not in TASK_SYNC_SEATS:
        return "seat"
    if not connection.calendar_sync:
        return "calendar_sync"
    return None


def connect(
    tenant: Tenant,
    user: User,
    *,
    provider: str,
    account: Account,
    calendars: Sequence[RemoteCalendar],
    secret: dict,
    token_expires_at: datetime | None = None,
    server_url: str | None = None,
    username: str | None = None,
    shared_calendar_urls: Sequence[str] = (),
) -> CalendarConnection:
    """Connect an account, or reconnect it: the same account keeps its row and every choice made on it."""
    connection = db.session.scalar(
        sa.select(CalendarConnection).where(
            CalendarConnection.user_id == user.id,
            CalendarConnection.provider == provider,
            CalendarConnection.account_id == account.id,
        )
    )
    if connection is None:
        connection = CalendarConnection(
            tenant_id=tenant.id,
            user=user,
            provider=provider,
            account_id=account.id,
            calendar_sync=True,
            scheduling_pages=True,
            task_sync=False,
        )
        db.session.add(connection)
    connection.account_email = account.email or account.id
    connection.secret_encrypted = crypto.encrypt(secret)
    connection.token_expires_at = token_expires_at
    connection.server_url, connection.username = server_url, username
    connection.shared_calendar_urls = "\n".join(shared_calendar_urls)
    connection.status, connection.inactive_reason, connection.inactive_since = "active", None, None
    apply_calendar_list(connection, calendars)
    db.session.flush()
    return connection


def request_connection_sync(connection: CalendarConnection) -> None:
    """Sync the account's calendars right after this commit, so availability does not wait for a sweep.

    Called by the rep's own actions (connect, save, check again), not by every service that touches a
    connection: a sync is a provider round-trip the caller decides to pay for.
    """
    queue.enqueue(
        "sync", "app.sync.jobs.sync_connection", connection.id, job_id=f"sync-connection-{connection.id}"
    )


def apply_calendar_list(connection: CalendarConnection, remote: Sequence[RemoteCalendar]) -> None:
    """Bring the stored calendars in line with what the account can see now (C9, C11).

    A calendar that disappeared, or that now shares only free/busy while it feeds availability, goes
    inactive with the reason and keeps its choices; one that comes back becomes active again.
    """
    now = utcnow()
    by_id = {c.external_id: c for c in connection.calendars}
    seen = set()
    for item in remote:
        seen.add(item.id)
        calendar = by_id.get(item.id)
        if calendar is None:
            calendar = Calendar(tenant_id=connection.tenant_id, external_id=item.id, access=item.access)
            connection.calendars.append(calendar)
        calendar.name = item.name[:255] or item.id[:255]
        calendar.is_primary = item.is_primary
        calendar.time_zone = item.time_zone
        if item.access == "freebusy" and calendar.checks_availability:
            _deactivate(
                calendar, "Only free/busy is shared with this account now, so its events cannot be read.", now
            )
            continue
        calendar.access = item.access
        if not calendar.is_active:
            calendar.status, calendar.inactive_reason, calendar.inactive_since = "active", None, None
    for external_id, calendar in by_id.items():
        if external_id not in seen and calendar.is_active:
            _deactivate(calendar, "This calendar is no longer shared with the account, or was deleted.", now)
    _ensure_default(connection)


def _deactivate(target: Calendar | CalendarConnection, reason: str, now: datetime) -> None:
    if target.status != "inactive":
        target.inactive_since = now
    target.status, target.inactive_reason = "inactive", reason[:500]


def _ensure_default(connection: CalendarConnection) -> None:
    """Keep exactly one default calendar when any can take bookings: the primary, else the first writable."""
    if connection.default_calendar is not None:
        connection.default_calendar.checks_availability = True
        return
    # The task sub-calendar (C6) holds only tasks: never where bookings go.
    writable = [
        c
        for c in connection.calendars
        if c.is_active and c.access in ("owner", "writer") and not c.is_task_calendar
    ]
    if writable:
        chosen = next((c for c in writable if c.is_primary), writable[0])
        chosen.is_default = chosen.checks_availability = True


def mark_connection_inactive(connection: CalendarConnection, reason: str) -> None:
    """The account's grant is gone (C11): everything in it is unusable until the rep reconnects."""
    _deactivate(connection, reason, utcnow())
    db.session.flush()


def mark_calendar_inactive(calendar: Calendar, reason: str) -> None:
    _deactivate(calendar, reason, utcnow())
    db.session.flush()


def save_choices(
    tenant: Tenant, user: User, connection: CalendarConnection, choices: ConnectionChoices
) -> None:
    """Apply the checkboxes and calendar choices of one account (C2, C6, C7, C8, C9), all or nothing."""
    calendars = {c.id: c for c in connection.calendars}
    default = calendars.get(choices.default_calendar_id) if choices.default_calendar_id else None
    if choices.default_calendar_id is not None and (
        default is None
        or not default.is_active
        or default.access not in ("owner", "writer")
        or default.is_task_calendar
    ):
        raise SettingsRefused("default_calendar_not_writable", "default_calendar")
    for calendar_id in choices.availability_calendar_ids:
        calendar = calendars.get(calendar_id)
        if calendar is None or calendar.is_task_calendar:  # C6: the task sub-calendar is never busy time
            raise SettingsRefused("calendar_not_in_account", "availability")
        if not calendar.shows_event_details:
            raise SettingsRefused("calendar_free_busy_only", "availability", name=calendar.name)
        if not calendar.is_active:
            raise SettingsRefused("calendar_inactive", "availability", name=calendar.name)
    if choices.task_sync and user.seat not in TASK_SYNC_SEATS:
        raise SettingsRefused("task_sync_seat", "task_sync")

    had_task_sync = connection.task_sync
    connection.calendar_sync = choices.calendar_sync
    connection.scheduling_pages = choices.scheduling_pages
    # Tasks reach the calendar through calendar sync (C6): without it there is nothing to sync them with.
    connection.task_sync = choices.task_sync and choices.calendar_sync
    if connection.task_sync != had_task_sync:
        # C6: create the task sub-calendar and the tasks' events, or remove the events (app.sync.tasks).
        outbox.add(connection.tenant_id, "tasks.sync_all", {"connection_id": connection.id})
    for calendar in connection.calendars:
        if default is not None:
            calendar.is_default = calendar is default
        # Inactive calendars keep their choice so that reconnecting restores it (C11).
        if calendar.is_active and calendar.shows_event_details and not calendar.is_task_calendar:
            calendar.checks_availability = (
                calendar.is_default or calendar.id in choices.availability_calendar_ids
            )
    db.session.flush()


def remove_calendar(tenant: Tenant, user: User, connection: CalendarConnection, calendar: Calendar) -> None:
    """Drop an inactive calendar from the account (C11's second way out)."""
    connection.calendars.remove(calendar)
    db.session.flush()
    _ensure_default(connection)
    db.session.flush()


def disconnect(tenant: Tenant, user: User, connection: CalendarConnection) -> None:
    db.session.delete(connection)
    db.session.flush()


def bookings_destination(tenant: Tenant, user: User) -> str:
    """Where the rep's scheduling pages book into (C7): "calendar" when an account has *Meeting scheduling
    pages* on; "switched_off" when accounts are connected but the option is off on every one (the pages
    are then not bookable, so nothing is booked into no calendar); "no_calendar" with no account at all
    (bookings are still logged in the CRM and emailed, as HubSpot's offline mode does)."""
    connections = list_connections(tenant, user)
    if not connections:
        return "no_calendar"
    if any(connection.scheduling_pages for connection in connections):
        return "calendar"
    return "switched_off"


def booking_paused_reason(tenant: Tenant, user: User) -> str | None:
    """C11: while any integrated calendar of the rep is inactive, nobody may book with them."""
    for connection in list_connections(tenant, user):
        if not connection.scheduling_pages and not connection.calendar_sync:
            continue
        if not connection.is_active:
            return connection.inactive_reason or "A connected calendar account is inactive."
        for calendar in connection.calendars:
            if not calendar.is_active and (calendar.is_default or calendar.checks_availability):
                return calendar.inactive_reason or f"“{calendar.name}” is inactive."
    return None


def connect_oauth(tenant: Tenant, user: User, provider_name: str, token: dict) -> CalendarConnection:
    """Finish connecting a Google or Microsoft account from the token the callback received."""
    secret = oauth.secret_from_token(token)
    expires = oauth.expires_at(token)

    def keep_refreshed(new_token: dict) -> None:
        nonlocal secret, expires
        secret, expires = oauth.secret_from_token(new_token), oauth.expires_at(new_token)

    draft = CalendarConnection(provider=provider_name, shared_calendar_urls="")
    provider = build_provider(current_app.config, draft, secret, keep_refreshed)
    account, calendars = provider.account(), provider.list_calendars()
    return connect(
        tenant,
        user,
        provider=provider_name,
        account=account,
        calendars=calendars,
        secret=secret,
        token_expires_at=expires,
    )


def connect_caldav(
    tenant: Tenant,
    user: User,
    *,
    server_url: str,
    username: str,
    password: str,
    shared_urls: Sequence[str] = (),
) -> CalendarConnection:
    """Connect a CalDAV account: refuse unsafe addresses, discover the server, list its calendars.

    Raises UnsafeServerURL or DiscoveryFailed (ValueErrors with a message for the rep; ServerNotFound, a
    DiscoveryFailed, names the host that does not exist), ServerAddressRefused (an AuthRevoked) when the
    server answers from a refused address, AuthRevoked for a
    refused password, TemporarilyUnavailable when the server cannot be reached.
    """
    allow_private = current_app.config["CALDAV_ALLOW_PRIVATE"]
    timeout = current_app.config["HTTP_TIMEOUT"]
    for url in (server_url, *shared_urls):
        caldav_provider.check_server_url(url if "://" in url else f"https://{url}", allow_private)
    url = caldav_provider.discover(server_url, username, password, allow_private, timeout)
    provider = caldav_provider.CalDAVProvider(
        url,
        username,
        password,
        allow_private=allow_private,
        timeout=timeout,
        extra_calendar_urls=tuple(shared_urls),
    )
    account, calendars = provider.account(), provider.list_calendars()
    return connect(
        tenant,
        user,
        provider="caldav",
        account=account,
        calendars=calendars,
        secret={"password": password},
        server_url=url,
        username=username,
        shared_calendar_urls=shared_urls,
    )


def refresh_calendars(tenant: Tenant, user: User, connection: CalendarConnection) -> None:
    """Ask the provider again which calendars the account sees (after the owner re-shared one, say)."""
    try:
        calendars = provider_for(connection).list_calendars()
    except AuthRevoked as error:
        mark_connection_inactive(connection, error.reason)
        raise
    if not connection.is_active:
        # The stored credentials work again: the account is back (the health probe does the same).
        connection.status, connection.inactive_reason, connection.inactive_since = "active", None, None
    apply_calendar_list(connection, calendars)
    db.session.flush()


def move_caldav_server(tenant: Tenant, user: User, connection: CalendarConnection, origin: str) -> None:
    """A CalDAV account's server now answers at another origin (scheme, host, port) with the same paths:
    point the stored URLs there, keeping every calendar and its choices, and check the calendars again.
    (The embedded demo's Radicale moves when its port was taken by another program.)"""
    old, new = urlsplit(connection.server_url or ""), urlsplit(origin)

    def moved(url: str) -> str:
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != (old.scheme, old.netloc):
            return url
        return urlunsplit((new.scheme, new.netloc, parts.path, parts.query, parts.fragment))

    connection.server_url = moved(connection.server_url or "")
    connection.shared_calendar_urls = "\n".join(
        moved(u) for u in connection.shared_calendar_urls.splitlines()
    )
    for calendar in connection.calendars:
        calendar.external_id, calendar.sync_state = moved(calendar.external_id), None
    db.session.flush()
    refresh_calendars(tenant, user, connection)


def rotate_secrets(batch: int = 500) -> int:
    """Re-encrypt every stored secret with the first configured key; returns how many were rewritten."""
    count, last_id = 0, 0
    while True:
        rows = list(
            db.session.scalars(
                sa.select(CalendarConnection)
                .where(CalendarConnection.id > last_id)
                .order_by(CalendarConnection.id)
                .limit(batch)
            )
        )
        if not rows:
            return count
        for connection in rows:
            connection.secret_encrypted = crypto.rotate(connection.secret_encrypted)
        db.session.flush()
        count, last_id = count + len(rows), rows[-1].id


def secret_of(connection: CalendarConnection) -> dict:
    return crypto.decrypt(connection.secret_encrypted)


def store_refreshed_token(connection: CalendarConnection, secret: dict, expires_at: datetime | None) -> None:
    connection.secret_encrypted = crypto.encrypt(secret)
    connection.token_expires_at = expires_at
    db.session.flush()


@contextmanager
def open_provider(connection: CalendarConnection) -> Iterator[CalendarProvider]:
    """The live provider for ``connection``, closed (with its HTTP connections) afterwards."""
    provider = provider_for(connection)
    try:
        yield provider
    finally:
        provider.close()


def provider_for(connection: CalendarConnection) -> CalendarProvider:
    """The live provider for a stored connection; a renewed OAuth token is stored encrypted again."""

    def on_refresh(token: dict) -> None:
        store_refreshed_token(connection, oauth.secret_from_token(token), oauth.expires_at(token))

    return build_provider(current_app.config, connection, secret_of(connection), on_refresh)
