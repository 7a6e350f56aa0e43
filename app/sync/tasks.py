"""Task sync (C6): a rep's open CRM tasks with a due date, as events in a "Termin tasks" sub-calendar.

Rules this module keeps:

* **Who.** A rep with a Sales or Service seat whose account has both calendar sync and task sync on. With
  several such accounts, the oldest one carries the tasks.
* **The sub-calendar** is created in that account once, on first need, and stored as a ``Calendar`` with
  ``is_task_calendar``: never the default, never checked for availability, never a source of meetings or
  busy time (the sync engine skips it). A calendar of that name the account already owns (left from an
  earlier connection of the same account, or created by a write whose commit was lost) is taken over
  instead of making a second one. If the sub-calendar goes inactive (deleted or unshared at the
  provider), nothing is written until the rep removes it on the settings page; the next change then
  creates a new one.
* **The event** is 15 minutes long from the due time, in the rep's time zone (a task always has a time:
  the form defaults to 9:00). The summary is the task's title; the description names the contact and
  links to their record on the app host. No attendees, no invitations.
* **When.** An open task with a due date has an event; a completed, undated or deleted task has none; a
  reopened task gets one again. Turning task sync off removes every event and leaves the sub-calendar in
  place, empty and unused (Termin does not delete calendars in the rep's account; turning task sync on
  again reuses it). The settings page says so.
* **Outbox only.** Nothing here calls a provider from a request. Each task change adds a "tasks.sync"
  row ``{task_id}`` and each task-sync toggle a "tasks.sync_all" row ``{connection_id}``; their handlers
  reconcile the stored task with its event, so delivering a row twice, late or out of order converges on
  the same state. The task row is locked while its event is written (one provider call), so two
  deliveries cannot race. "tasks.sync_all" makes sure of the sub-calendar and then adds a "tasks.sync"
  row for every task of the rep that has or should have an event.
* **UIDs** are chosen before the call: ``task-<id>@<APP_HOST>``. Google never hands out the id of a
  deleted event again (see ``providers/google.py``), so a task that was completed (event deleted) and then
  reopened is written as ``task-<id>-2@<APP_HOST>``, then ``-3``...: creation tries them in order, a
  generation whose event still exists answers as created, and so a retry never duplicates the event.
* **Seats.** ``tenants.services.set_seat`` sends ``seat_changed``; losing (or gaining) a Sales/Service seat
  queues a "tasks.sync_all" row for every account of the rep with task sync on, in the same transaction,
  which removes (or brings back) the events. The option itself stays as the rep left it.
* **Failures.** A revoked grant puts the account inactive and a lost calendar puts that calendar
  inactive (C11; the health probe tells the rep), and the outbox row fails with the provider's reason.
  While the account or the sub-calendar is inactive nothing is written and the row is done; the health
  probe queues a "tasks.sync_all" once the account works again and the events have drifted from the
  tasks. Rate limits and outages raise, so the outbox tries again later.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from app.crm.models import Task
from app.extensions import db
from app.mail import outbox
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from app.sync.providers.base import AccessLost, AuthRevoked, CalendarProvider, EventDraft, ProviderError
from app.tenants.models import User
from app.tenants.services import seat_changed

TASK_CALENDAR_NAME = "Termin tasks"
EVENT_MINUTES = 15
# Each completion of a task burns one uid at Google; past this many the task's event cannot be written.
MAX_UID_GENERATIONS = 100


class _Skipped(Exception):
    """The account or calendar to write to is inactive (just found so, or already): write nothing now."""


# --- Hooks: what the CRM and the settings call, inside their own transaction --------------------------------


def task_changed(task: Task) -> None:
    """A task was created, edited, completed or reopened: queue the reconciliation of its event."""
    if task.calendar_id is not None or (task.due_at is not None and task_connection(task.owner) is not None):
        outbox.add(task.tenant_id, "tasks.sync", {"task_id": task.id})


def task_deleted(task: Task) -> None:
    """Call before deleting a task: its row will be gone, so the row says where its event was."""
    if task.calendar_id is not None and task.provider_event_id:
        payload = {
            "task_id": task.id,
            "calendar_id": task.calendar_id,
            "provider_event_id": task.provider_event_id,
        }
        outbox.add(task.tenant_id, "tasks.sync", payload)


@seat_changed.connect
def seat_changed_for(user: User, previous: str) -> None:
    """C6: a rep who loses (or gains) a Sales/Service seat loses (or gets back) the task events at once,
    queued in the seat change's own transaction rather than left for a later health probe to notice."""
    if (previous in sync.TASK_SYNC_SEATS) == (user.seat in sync.TASK_SYNC_SEATS):
        return
    for connection in sync.list_connections(user.tenant, user):
        if connection.task_sync:
            queue_task_resync(connection)


def queue_task_resync(connection: CalendarConnection) -> None:
    """Reconcile every task event of an account: task sync (or calendar sync, which it needs) was turned on
    or off, or the account works again after an outage."""
    outbox.add(connection.tenant_id, "tasks.sync_all", {"connection_id": connection.id})


# --- Outbox handlers ----------------------------------------------------------------------------------------


def deliver_task_sync(tenant_id: int, payload: dict) -> None:
    """Outbox "tasks.sync": bring one task's event in line with the task (idempotent)."""
    task = _locked_task(tenant_id, payload["task_id"])
    if task is None:
        _remove_event_of_deleted_task(tenant_id, payload)
    else:
        sync_task(task)
    db.session.flush()


def deliver_task_sync_all(tenant_id: int, payload: dict) -> None:
    """Outbox "tasks.sync_all": make sure of the sub-calendar, then queue every task of the rep (after a
    toggle, or when the health probe found the events drifted)."""
    connection = db.session.scalar(
        sa.select(CalendarConnection).where(
            CalendarConnection.tenant_id == tenant_id, CalendarConnection.id == payload["connection_id"]
        )
    )
    if connection is None or not connection.is_active:
        return  # disconnected, or waiting for a reconnect (the health probe queues us again then)
    if task_connection(connection.user) is connection:
        try:
            ensure_task_calendar(connection)
        except _Skipped:
            return
    # One row per task, each delivered in its own short transaction: a rep with many tasks is never locked
    # out of them for the whole run, and one task's failure does not hold up the others.
    for task_id in _task_ids_to_reconcile(connection.user):
        outbox.add(tenant_id, "tasks.sync", {"task_id": task_id})
    db.session.flush()


# --- Reconciling --------------------------------------------------------------------------------------------


def task_connection(owner: User) -> CalendarConnection | None:
    """The account that carries the rep's tasks, or None when task sync is off (or not allowed) for them."""
    if owner.seat not in sync.TASK_SYNC_SEATS:
        return None
    return db.session.scalar(
        sa.select(CalendarConnection)
        .where(
            CalendarConnection.tenant_id == owner.tenant_id,
            CalendarConnection.user_id == owner.id,
            CalendarConnection.task_sync.is_(True),
            CalendarConnection.calendar_sync.is_(True),
        )
        .order_by(CalendarConnection.created_at, CalendarConnection.id)
        .limit(1)
    )


def task_calendar(connection: CalendarConnection) -> Calendar | None:
    """The account's task sub-calendar, active or not."""
    return next((c for c in connection.calendars if c.is_task_calendar), None)


def sync_task(task: Task) -> None:
    """Create, update or remove the task's event so it matches the task; flushes."""
    with suppress(_Skipped):
        _sync_task(task)
    db.session.flush()


def _sync_task(task: Task) -> None:
    current = db.session.get(Calendar, task.calendar_id) if task.calendar_id is not None else None
    if current is None or not task.provider_event_id:
        task.calendar_id = task.provider_event_id = None  # the calendar was removed, and its events with it
        current = None
    target = None
    connection = task_connection(task.owner)
    if task.status == "open" and task.due_at is not None and connection is not None:
        target = ensure_task_calendar(connection)

    if current is not None and current is not target:
        if current.is_active:
            with _provider(current.connection, current) as provider:
                provider.cancel_event(current.external_id, task.provider_event_id, notify=False)
        task.calendar_id = task.provider_event_id = None
        db.session.flush()
    if target is None:
        return

    with _provider(target.connection, target) as provider:
        if task.calendar_id == target.id:
            try:
                provider.update_event(
                    target.external_id, task.provider_event_id, _draft(task, task_uid(task))
                )
                return
            except ProviderError as error:
                if type(error) is not ProviderError:
                    raise
                # The event is gone from the calendar (deleted there by hand): write it again.
        task.calendar_id, task.provider_event_id = target.id, _create_event(provider, target, task)


def _create_event(provider: CalendarProvider, calendar: Calendar, task: Task) -> str:
    for generation in range(1, MAX_UID_GENERATIONS + 1):
        uid = task_uid(task, generation)
        try:
            return provider.create_event(calendar.external_id, _draft(task, uid))
        except ProviderError as error:
            # Only the refusal of this very uid (Google: its event was deleted) moves on to the next one.
            if type(error) is not ProviderError or uid not in error.reason:
                raise
    raise ProviderError(f"Task {task.id} was reopened too often to be written to the calendar again.")


def task_uid(task: Task, generation: int = 1) -> str:
    host = current_app.config["APP_HOST"]
    return f"task-{task.id}@{host}" if generation == 1 else f"task-{task.id}-{generation}@{host}"


def _draft(task: Task, uid: str) -> EventDraft:
    return EventDraft(
        uid=uid,
        summary=task.title,
        start=task.due_at,
        end=task.due_at + timedelta(minutes=EVENT_MINUTES),
        time_zone=task.owner.time_zone or "UTC",
        description=_description(task),
        send_invitations=False,
    )


def _description(task: Task) -> str:
    with force_locale(task.owner.locale or "en"):
        if task.contact is None:
            return _("A task in Termin: %(url)s", url=app_url("crm.tasks"))
        return _(
            "A task in Termin about %(name)s <%(email)s>: %(url)s",
            name=task.contact.display_name,
            email=task.contact.email,
            url=app_url("crm.contact", contact_id=task.contact.id),
        )


def ensure_task_calendar(connection: CalendarConnection) -> Calendar:
    """The account's active task sub-calendar, created (once) when it has none; raises _Skipped when the
    account or its sub-calendar is inactive."""
    if not connection.is_active:
        raise _Skipped
    existing = task_calendar(connection)
    if existing is None:
        # One creator at a time per account; whoever waited here finds the calendar the first one made.
        db.session.execute(
            sa.select(CalendarConnection.id).where(CalendarConnection.id == connection.id).with_for_update()
        )
        db.session.refresh(connection, ["calendars"])
        existing = task_calendar(connection) or _adopt_or_create(connection)
    if not existing.is_active:
        raise _Skipped
    return existing


def _adopt_or_create(connection: CalendarConnection) -> Calendar:
    owned = [
        c
        for c in connection.calendars
        if c.name == TASK_CALENDAR_NAME and c.access == "owner" and c.is_active and not c.is_default
    ]
    if owned:
        calendar = owned[0]
    else:
        with _provider(connection) as provider:
            remote = next(
                (
                    c
                    for c in provider.list_calendars()
                    if c.name == TASK_CALENDAR_NAME
                    and c.access == "owner"
                    and c.id not in {known.external_id for known in connection.calendars}
                ),
                None,
            ) or provider.create_calendar(TASK_CALENDAR_NAME)
        calendar = Calendar(
            tenant_id=connection.tenant_id,
            external_id=remote.id,
            name=(remote.name or TASK_CALENDAR_NAME)[:255],
            access=remote.access,
            time_zone=remote.time_zone,
        )
        connection.calendars.append(calendar)
    calendar.is_task_calendar = True
    calendar.is_default = calendar.checks_availability = False
    db.session.flush()
    return calendar


def _remove_event_of_deleted_task(tenant_id: int, payload: dict) -> None:
    calendar = db.session.scalar(
        sa.select(Calendar).where(Calendar.tenant_id == tenant_id, Calendar.id == payload.get("calendar_id"))
    )
    if calendar is None or not payload.get("provider_event_id") or not calendar.is_active:
        return
    with suppress(_Skipped), _provider(calendar.connection, calendar) as provider:
        provider.cancel_event(calendar.external_id, payload["provider_event_id"], notify=False)


def _locked_task(tenant_id: int, task_id: int) -> Task | None:
    return db.session.scalar(
        sa.select(Task)
        .where(Task.tenant_id == tenant_id, Task.id == task_id)
        .with_for_update(of=Task)
        .execution_options(populate_existing=True)
    )


def _task_ids_to_reconcile(owner: User) -> list[int]:
    """Tasks of the rep that should have an event, or have one."""
    return list(
        db.session.scalars(
            sa.select(Task.id)
            .where(
                Task.tenant_id == owner.tenant_id,
                Task.owner_id == owner.id,
                sa.or_(
                    sa.and_(Task.status == "open", Task.due_at.is_not(None)), Task.calendar_id.is_not(None)
                ),
            )
            .order_by(Task.id)
        )
    )


def needs_reconcile(connection: CalendarConnection) -> bool:
    """True when the account is active and its task events drifted from the tasks (a database check only)."""
    if not connection.is_active:
        return False
    carries = task_connection(connection.user) is connection
    existing = task_calendar(connection)
    if carries and existing is None:
        return True
    ours = [c.id for c in connection.calendars if c.is_task_calendar and c.is_active]
    wanted = sa.and_(Task.status == "open", Task.due_at.is_not(None))
    # IS NOT NULL first: NOT (NULL IN (...)) is NULL in SQL, which would hide every unplaced task.
    placed = sa.and_(Task.calendar_id.is_not(None), Task.calendar_id.in_(ours)) if ours else sa.false()
    if carries and ours:
        drift = sa.or_(sa.and_(wanted, sa.not_(placed)), sa.and_(placed, sa.not_(wanted)))
    else:
        drift = placed
    return bool(
        db.session.scalar(
            sa.select(
                sa.exists().where(
                    Task.tenant_id == connection.tenant_id, Task.owner_id == connection.user_id, drift
                )
            )
        )
    )


# --- Providers and links ------------------------------------------------------------------------------------


@contextmanager
def _provider(connection: CalendarConnection, calendar: Calendar | None = None) -> Iterator[CalendarProvider]:
    """A provider for writing to ``connection`` (and ``calendar``); raises _Skipped when either is inactive.

    A revoked grant or a lost calendar found on the way is recorded (C11) before the error goes on to the
    outbox, which fails the row with the provider's reason."""
    if not connection.is_active or (calendar is not None and not calendar.is_active):
        raise _Skipped
    try:
        with sync.open_provider(connection) as provider:
            yield provider
    except AuthRevoked as error:
        sync.mark_connection_inactive(connection, error.reason)
        raise  # the outbox keeps our changes and fails the row with the reason
    except AccessLost as error:
        if calendar is not None:
            sync.mark_calendar_inactive(calendar, error.reason)
        raise


def app_url(endpoint: str, **values) -> str:
    """An absolute URL on the app host, for links that leave Termin (emails, calendar events): a job has
    no request to take the host from, so it comes from APP_HOST and PREFERRED_URL_SCHEME."""
    config = current_app.config
    adapter = current_app.url_map.bind(
        config["APP_HOST"],
        script_name=config.get("APPLICATION_ROOT") or "/",
        url_scheme=config["PREFERRED_URL_SCHEME"],
    )
    return adapter.build(endpoint, values, force_external=True)
