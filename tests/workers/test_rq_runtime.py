"""The job runtime on real Redis and real worker processes (issue #4): PostgreSQL is the truth, Redis only
the trigger. What Redis loses the sweeper queues again, a worker killed mid-job loses nothing and duplicates
nothing, a job waiting or running is never queued twice, and every log line names its job and tenant."""

import re
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq.utils import utcformat

from app.crm.models import Meeting
from app.db import utcnow
from app.extensions import db
from app.mail import outbox, smtp
from app.mail.models import OutboxMessage
from app.sync import engine
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection, SyncedEvent
from tests import factories
from tests.fakes.google_calendar import ACCOUNT_TOKEN
from tests.sync.harness import SeedAttendee
from tests.workers.conftest import STALE_SECONDS, Runtime
from tests.workers.jobs import EFFECTS_TABLE, KIND, runs_key
from workers.worker import check

CLIENT = "client@example.org"


def connect_google(harness, *, probed: bool = False) -> dict:
    """A tenant whose Sales rep connected the emulator's Google account; plain ids to use across processes."""
    tenant = factories.make_tenant("Acme")
    rep = factories.make_user(tenant, seat="sales", email="rep@acme.example.com")
    factories.make_contact(tenant, email=CLIENT)
    provider = harness.provider
    expires = datetime.now(UTC) + timedelta(days=1)
    connection = sync.connect(
        tenant,
        rep,
        provider="google",
        account=provider.account(),
        calendars=provider.list_calendars(),
        secret={
            "access_token": ACCOUNT_TOKEN,
            "token_type": "Bearer",
            "expires_at": int(expires.timestamp()),
        },
        token_expires_at=expires,
    )
    if probed:
        connection.health_checked_at = utcnow()
    primary = next(c for c in connection.calendars if c.external_id == harness.primary_id)
    synced = sorted(c.id for c in connection.calendars if engine.needs_sync(c))
    db.session.flush()
    return {"tenant": tenant.id, "connection": connection.id, "primary": primary.id, "synced": synced}


def seed_meetings(harness, count: int) -> list[str]:
    """``count`` events with the tenant's contact, from tomorrow on; their uids."""
    start = (datetime.now(UTC) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    uids = []
    for n in range(count):
        uid = f"meeting-{n}@runtime.test"
        harness.seed_event(
            harness.primary_id,
            uid=uid,
            summary=f"Call {n}",
            start=start + timedelta(hours=2 * n),
            end=start + timedelta(hours=2 * n + 1),
            attendees=(SeedAttendee(CLIENT, "accepted"),),
        )
        uids.append(uid)
    return uids


def add_effect(tenant_id: int, key: str, sleep: float = 0) -> int:
    return outbox.add(tenant_id, KIND, {"key": key, "sleep": sleep}).id


def effects(key: str) -> int:
    table = sa.table(EFFECTS_TABLE, sa.column("key"))
    return db.session.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.key == key))


def sweep_until(runtime: Runtime, kind: str, timeout: float = 15) -> dict[str, int]:
    """Sweep every 0.2 s until one sweep queues something of ``kind`` again (the stale limit has passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = runtime.sweep()
        if counts[kind]:
            return counts
        time.sleep(0.2)
    pytest.fail(f"no sweep queued any {kind} within {timeout} s")


# --- (a) Redis flushed: the sweeper puts every due job back, the worker does them all ----------------------


def test_a_flushed_redis_is_refilled_by_the_sweeper_and_the_worker_does_it_all(runtime, google_harness):
    runtime.use_google(google_harness)
    uids = seed_meetings(google_harness, 2)
    with runtime.app.app_context():
        ids = connect_google(google_harness)
        mail_id = smtp.send_mail(ids["tenant"], to=CLIENT, subject="Hello", text="Hi.\n").id
        effect_id = add_effect(ids["tenant"], "flushed")
        db.session.commit()  # enqueues both deliveries (JOBS_MODE rq), and maybe a first sync of the account
    queued = runtime.queued()
    assert (queued["writes"], queued["mail"]) == ([f"outbox-{effect_id}"], [f"outbox-{mail_id}"])

    runtime.redis.flushdb()  # Redis loses everything it held
    counts = runtime.sweep()

    sync_ids = [f"sync-calendar-{calendar_id}" for calendar_id in ids["synced"]]
    assert counts == {"calendars": len(sync_ids), "outbox": 2, "connections": 1, "domains": 0, "skipped": 0}
    assert runtime.queued() == {
        "sync": [*sync_ids, f"probe-connection-{ids['connection']}"],
        "writes": [f"outbox-{effect_id}"],
        "mail": [f"outbox-{mail_id}"],
    }

    runtime.start_worker()

    def all_done():
        calendars = db.session.scalars(sa.select(Calendar).where(Calendar.id.in_(ids["synced"]))).all()
        return (
            all(c.last_synced_at is not None and c.sync_started_at is None for c in calendars)
            and db.session.get(CalendarConnection, ids["connection"]).health_checked_at is not None
            and {m.status for m in db.session.scalars(sa.select(OutboxMessage))} == {"delivered"}
            and not any(runtime.queued().values())
            and runtime.running() == 0
        )

    runtime.wait_for(all_done, what="every swept job to be done")
    with runtime.app.app_context():
        meetings = db.session.scalars(sa.select(Meeting.uid).where(Meeting.tenant_id == ids["tenant"])).all()
        assert sorted(meetings) == uids
        assert effects("flushed") == 1
    assert len(list((runtime.tmp / "mail").glob("*.eml"))) == 1
    assert runtime.sweep() == {"calendars": 0, "outbox": 0, "connections": 0, "domains": 0, "skipped": 0}


# --- (b) A worker killed mid-job: nothing lost, nothing twice ----------------------------------------------


def test_a_worker_killed_mid_job_is_replaced_and_the_job_commits_once(runtime):
    with runtime.app.app_context():
        tenant_id = factories.make_tenant("Acme").id
        effect_id = add_effect(tenant_id, "killed", sleep=60)
        db.session.commit()  # queued on "writes"
    first = runtime.start_worker()
    runtime.wait_for(lambda: runtime.redis.llen(runs_key("killed")) == 1, what="the slow job to start")

    # (c) A running job is not queued again while its worker lives: its attempt's lease is not due.
    assert runtime.sweep() == {"calendars": 0, "outbox": 0, "connections": 0, "domains": 0, "skipped": 0}
    assert runtime.queued()["writes"] == []

    first.kill()  # worker and horse: its transaction (the effect row) dies with its connection
    killed_at = time.monotonic()
    runtime.start_worker()  # boots while the dead job goes stale
    with runtime.app.app_context():
        assert effects("killed") == 0
        assert db.session.get(OutboxMessage, effect_id).status == "pending"

    sweep_until(runtime, "outbox")
    assert time.monotonic() - killed_at > STALE_SECONDS / 2  # it waited for the dead job to go stale

    def delivered():
        runtime.sweep()  # as the sweeper would, should the re-run find the row still locked by the dead one
        return db.session.get(OutboxMessage, effect_id).status == "delivered"

    runtime.wait_for(delivered, what="the job to run again")
    with runtime.app.app_context():
        message = db.session.get(OutboxMessage, effect_id)
        # The killed try counted (its attempt was committed before the handler ran); its effect did not.
        assert (message.attempts, effects("killed")) == (2, 1)
    assert runtime.redis.llen(runs_key("killed")) == 2  # ran twice, committed once
    assert runtime.sweep()["outbox"] == 0


def test_a_worker_killed_mid_sync_loses_no_event_and_duplicates_none(runtime, google_harness):
    runtime.use_google(google_harness)
    uids = seed_meetings(google_harness, 4)
    with runtime.app.app_context():
        ids = connect_google(google_harness, probed=True)
        for calendar in db.session.scalars(sa.select(Calendar).where(Calendar.id != ids["primary"])):
            calendar.status = "inactive"  # only the primary syncs: the kill lands in its sync
        db.session.commit()
    if not runtime.queued()["sync"]:  # the account's first sync: queued by connecting it, else by a sweep
        runtime.sweep()
    assert len(runtime.queued()["sync"]) == 1
    google_harness.emulator.delay = 3.0  # every API request takes 3 s
    first = runtime.start_worker()

    primary_id = ids["primary"]
    runtime.wait_for(
        lambda: db.session.get(Calendar, primary_id).sync_started_at is not None, what="the sync to claim"
    )
    # (c) A calendar whose sync is under way is not queued again while the claim is fresh.
    assert runtime.sweep()["calendars"] == 0
    time.sleep(0.3)  # inside the slow request
    first.kill()
    google_harness.emulator.delay = 0.0
    runtime.start_worker()
    with runtime.app.app_context():
        calendar = db.session.get(Calendar, primary_id)
        assert (calendar.sync_started_at is not None, calendar.last_synced_at) == (True, None)

    sweep_until(runtime, "calendars")  # the claim and the job went stale: the sweeper takes it over

    def synced():
        calendar = db.session.get(Calendar, primary_id)
        return calendar.last_synced_at is not None and calendar.sync_started_at is None

    runtime.wait_for(synced, what="the sync to run again")

    def stored():
        events = db.session.scalars(
            sa.select(SyncedEvent.uid).where(SyncedEvent.calendar_id == primary_id).order_by(SyncedEvent.uid)
        ).all()
        meetings = db.session.scalars(
            sa.select(Meeting.uid).where(Meeting.tenant_id == ids["tenant"]).order_by(Meeting.uid)
        ).all()
        return events, meetings

    with runtime.app.app_context():
        assert stored() == (uids, uids)
        # And a later sync of the same calendar changes nothing.
        first_sync = db.session.get(Calendar, primary_id).last_synced_at
        db.session.get(Calendar, primary_id).next_sync_at = utcnow()
        db.session.commit()
    assert runtime.sweep()["calendars"] == 1
    runtime.wait_for(
        lambda: db.session.get(Calendar, primary_id).last_synced_at > first_sync, what="the next sync"
    )
    with runtime.app.app_context():
        assert stored() == (uids, uids)


# --- (c) Never twice in a queue --------------------------------------------------------------------------


def test_the_sweeper_queues_a_due_job_once_and_again_only_when_redis_lost_it(runtime, google_harness):
    with runtime.app.app_context():
        ids = connect_google(google_harness)
        mail_id = smtp.send_mail(ids["tenant"], to=CLIENT, subject="Hello", text="Hi.\n").id
        db.session.commit()  # the mail's delivery is queued by the commit
    # Connecting may queue the account's first sync itself; the sweeper has its own ids for what it finds due.
    before = runtime.queued()["sync"]
    assert before in ([], [f"sync-connection-{ids['connection']}"])
    sync_ids = [*before, *(f"sync-calendar-{calendar_id}" for calendar_id in ids["synced"])]
    probe_id = f"probe-connection-{ids['connection']}"
    due = len(ids["synced"]) + 2

    assert runtime.sweep() == {
        "calendars": len(ids["synced"]),
        "outbox": 0,
        "connections": 1,
        "domains": 0,
        "skipped": 1,
    }
    assert runtime.sweep() == {"calendars": 0, "outbox": 0, "connections": 0, "domains": 0, "skipped": due}
    expected = {"sync": [*sync_ids, probe_id], "writes": [], "mail": [f"outbox-{mail_id}"]}
    assert runtime.queued() == expected

    # A job whose hash says "queued" but which left its list long ago (part of Redis lost) is queued again.
    mail_job = f"outbox-{mail_id}"
    runtime.redis.lrem("rq:queue:mail", 0, mail_job)
    runtime.redis.hset(Job.key_for(mail_job), "enqueued_at", utcformat(utcnow() - timedelta(minutes=5)))
    assert runtime.sweep()["outbox"] == 1
    assert runtime.queued() == expected

    # A job "started" by a worker that stopped beating long ago is taken as dead and queued again, once.
    connection = runtime.redis
    probe = Job.fetch(probe_id, connection=connection)
    connection.lrem("rq:queue:sync", 0, probe_id)
    long_ago = utcformat(utcnow() - timedelta(seconds=STALE_SECONDS + 60))
    connection.hset(
        probe.key, mapping={"status": "started", "started_at": long_ago, "last_heartbeat": long_ago}
    )
    registry = StartedJobRegistry("sync", connection=connection)
    connection.zadd(registry.key, {f"{probe_id}:dead-execution": time.time() + 600})
    assert runtime.sweep()["connections"] == 1
    assert registry.get_job_ids(cleanup=False) == []
    assert runtime.queued()["sync"] == [*sync_ids, probe_id]
    # ... but not while it still beats.
    connection.lrem("rq:queue:sync", 0, probe_id)
    connection.hset(probe.key, mapping={"status": "started", "last_heartbeat": utcformat(utcnow())})
    assert runtime.sweep()["connections"] == 0
    assert runtime.queued()["sync"] == sync_ids

    # A failed job is queued again and leaves the failed registry.
    connection.hset(probe.key, "status", "failed")
    failed = FailedJobRegistry("sync", connection=connection)
    connection.zadd(failed.key, {probe_id: time.time() + 600})
    assert runtime.sweep()["connections"] == 1
    assert failed.get_job_ids() == []
    assert runtime.queued() == expected


# --- (d) Logs name the job and the tenant ------------------------------------------------------------------


def test_every_log_line_of_a_job_names_the_job_and_its_tenant(runtime, google_harness):
    runtime.use_google(google_harness)
    seed_meetings(google_harness, 1)
    with runtime.app.app_context():
        ids = connect_google(google_harness, probed=True)
        effect_id = add_effect(ids["tenant"], "logged")
        db.session.commit()
    runtime.sweep()
    worker = runtime.start_worker("--burst")  # quits once the queues are empty
    worker.process.wait(timeout=30)
    log = worker.log()
    tenant = ids["tenant"]

    [effect_line] = [line for line in log.splitlines() if "effect logged written" in line]
    assert f"job=outbox-{effect_id} tenant={tenant} " in effect_line  # named with app.logs.log_tenant
    primary = ids["primary"]
    synced = [line for line in log.splitlines() if f"calendar {primary} (tenant {tenant}): synced" in line]
    # The sync jobs name no tenant: the first tenant-owned row each loaded did.
    assert f"job=sync-calendar-{primary} tenant={tenant} " in "\n".join(synced)
    assert all(re.search(rf"job=sync-(calendar|connection)-\d+ tenant={tenant} ", line) for line in synced)
    assert "[req=- job=- tenant=- user=-]" in log  # the worker's own lines between jobs


# --- (e) The worker health check ---------------------------------------------------------------------------


def test_the_health_check_fails_without_a_live_worker_and_passes_with_one(runtime):
    healthy, message = check(runtime.app, 60)
    assert not healthy
    assert "no RQ worker on" in message
    worker = runtime.start_worker()
    runtime.wait_for(lambda: check(runtime.app, 60)[0], what="the worker to heartbeat")
    assert "1 worker(s) alive" in check(runtime.app, 60)[1]
    worker.kill()
    time.sleep(1.5)
    assert not check(runtime.app, 1)[0]  # a killed worker's last heartbeat only gets older
