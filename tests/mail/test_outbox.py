"""The outbox itself: adding after commit, delivering once, retrying with back-off, failing for good.

Deliveries here go to a handler in this module, registered for the test only, whose payload says how the
delivery should go; real handlers (mail, calendar writes) have their own modules' tests.
"""

import logging
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.crm.models import Contact
from app.db import utcnow
from app.extensions import db
from app.mail import jobs, outbox
from app.mail.models import OutboxMessage
from app.queue import resolve
from app.sync.providers.base import (
    AccessLost,
    AuthRevoked,
    ProviderError,
    RateLimited,
    TemporarilyUnavailable,
)
from app.tenants.models import Tenant
from tests import factories

KIND = "test.outcome"
handled: list[tuple[int, dict]] = []
OUTCOMES = {
    "rate_limited": lambda: RateLimited("Slow down (HTTP 429).", retry_after=600),
    "unavailable": lambda: TemporarilyUnavailable("Backend error (HTTP 503)."),
    "revoked": lambda: AuthRevoked("The grant was revoked."),
    "access_lost": lambda: AccessLost("The calendar was unshared.", "cal-1"),
    "refused": lambda: ProviderError("HTTP 400: invalid attendee."),
    "undeliverable": lambda: outbox.Undeliverable("The calendar was removed."),
    "retry_later": lambda: outbox.RetryLater(
        "Half done.", retry_after=60, payload={"outcome": "ok", "left": 1}
    ),
    "crash": lambda: RuntimeError("boom"),
    "killed": lambda: Killed(),
}


class Killed(BaseException):
    """The worker dies mid-attempt: no outcome is written, and what was not committed is lost."""


def handler(tenant_id: int, payload: dict) -> None:
    """Records the call, writes the payload's note on its contact, then does what ``outcome`` says."""
    handled.append((tenant_id, payload))
    if payload.get("note"):
        db.session.get(Contact, payload["contact_id"]).notes = payload["note"]
        db.session.flush()
    outcome = payload.get("outcome", "ok")
    if outcome != "ok":
        raise OUTCOMES[outcome]()


@pytest.fixture(autouse=True)
def test_handler(monkeypatch):
    handled.clear()
    monkeypatch.setitem(outbox.HANDLERS, KIND, f"{__name__}.handler")
    yield
    handled.clear()


def fresh(message_id: int) -> OutboxMessage:
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id)


# --- Adding -----------------------------------------------------------------------------------------------


def test_add_flushes_a_pending_row_and_enqueues_its_delivery_only_after_the_commit(tenants, queued):
    ours, _ = tenants
    before = utcnow()
    message = outbox.add(ours.id, KIND, {"outcome": "ok"})
    assert message.id is not None
    assert (message.status, message.attempts, message.tenant_id) == ("pending", 0, ours.id)
    assert before <= message.next_attempt_at <= utcnow()
    assert queued == []

    db.session.commit()
    assert queued == [("writes", "app.mail.jobs.deliver", (message.id,), f"outbox-{message.id}")]


def test_a_rolled_back_transaction_enqueues_nothing(tenants, queued):
    ours, _ = tenants
    db.session.commit()
    outbox.add(ours.id, KIND, {})
    db.session.rollback()
    assert queued == []


def test_mail_kinds_go_to_the_mail_queue_and_the_rest_to_writes(tenants, queued):
    ours, _ = tenants
    outbox.add(ours.id, "mail.send", {"to": ["x@example.org"]})
    outbox.add(ours.id, "calendar.write_meeting", {"meeting_id": 0})
    db.session.commit()
    assert [queue for queue, *_ in queued] == ["mail", "writes"]


def test_a_row_held_back_is_not_enqueued_and_is_due_only_at_its_time(tenants, queued):
    ours, _ = tenants
    now = utcnow()
    message = outbox.add(ours.id, KIND, {}, deliver_at=now + timedelta(hours=1))
    db.session.commit()
    assert queued == []
    assert message not in outbox.due_messages(now)
    assert message in outbox.due_messages(now + timedelta(hours=2))


def test_an_unregistered_kind_is_refused(tenants):
    ours, _ = tenants
    with pytest.raises(ValueError, match="HANDLERS"):
        outbox.add(ours.id, "nobody.handles.this", {})


def test_every_registered_handler_resolves_to_a_function():
    for kind, path in outbox.HANDLERS.items():
        assert callable(resolve(path)), kind


# --- Delivering -------------------------------------------------------------------------------------------


def test_delivery_calls_the_handler_with_the_rows_tenant_and_payload_once(tenants, queued):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "ok", "n": 1})
    now = utcnow()
    outbox.deliver(message.id, now=now)
    assert (message.status, message.attempts, message.delivered_at, message.last_error) == (
        "delivered",
        1,
        now,
        None,
    )
    assert handled == [(ours.id, {"outcome": "ok", "n": 1})]

    outbox.deliver(message.id, now=now + timedelta(minutes=5))
    assert len(handled) == 1


def test_a_row_not_yet_due_is_left_alone(tenants, queued):
    ours, _ = tenants
    now = utcnow()
    message = outbox.add(ours.id, KIND, {}, deliver_at=now + timedelta(minutes=10))
    assert outbox.deliver(message.id, now=now) is message
    assert (message.status, message.attempts, handled) == ("pending", 0, [])


def test_a_missing_row_is_nothing_to_deliver(app_ctx):
    assert outbox.deliver(10**9, now=utcnow()) is None


def test_a_rate_limit_is_retried_no_sooner_than_retry_after(tenants, queued):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "rate_limited"})
    now = utcnow()
    outbox.deliver(message.id, now=now)
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.next_attempt_at >= now + timedelta(seconds=600)
    assert message.last_error == "Slow down (HTTP 429)."


def test_an_outage_without_retry_after_backs_off_within_the_first_step(tenants, queued):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "unavailable"})
    now = utcnow()
    outbox.deliver(message.id, now=now)
    assert message.status == "pending"
    assert now <= message.next_attempt_at <= now + timedelta(seconds=outbox.BASE_BACKOFF_SECONDS)


def test_back_off_doubles_with_full_jitter_up_to_an_hour():
    for failures in range(1, 15):
        ceiling = min(3600, 30 * 2 ** (failures - 1))
        samples = [outbox.retry_delay(failures).total_seconds() for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert max(samples) > ceiling / 2  # jitter spreads over the whole step, not a fixed delay
    assert outbox.retry_delay(1, retry_after=900) >= timedelta(seconds=900)
    assert outbox.retry_delay(40).total_seconds() <= 3600


def test_a_row_that_keeps_failing_is_given_up_after_the_configured_attempts(
    app, tenants, queued, monkeypatch
):
    ours, _ = tenants
    monkeypatch.setitem(app.config, "OUTBOX_MAX_ATTEMPTS", 3)
    message = outbox.add(ours.id, KIND, {"outcome": "unavailable"})
    for _ in range(5):
        outbox.deliver(message.id, now=message.next_attempt_at)
    assert (message.status, message.attempts, len(handled)) == ("failed", 3, 3)
    assert message.last_error.startswith("Gave up after 3 attempts.")
    assert "Backend error" in message.last_error


@pytest.mark.parametrize(
    ("outcome", "reason"),
    [
        ("revoked", "The grant was revoked."),
        ("access_lost", "The calendar was unshared."),
        ("refused", "HTTP 400: invalid attendee."),
        ("undeliverable", "The calendar was removed."),
    ],
)
def test_a_permanent_error_fails_the_row_and_keeps_what_the_handler_recorded(
    tenants, queued, outcome, reason
):
    ours, _ = tenants
    contact = factories.make_contact(ours)
    message = outbox.add(
        ours.id, KIND, {"outcome": outcome, "note": "inactive now", "contact_id": contact.id}
    )
    outbox.deliver(message.id, now=utcnow())
    assert (message.status, message.attempts, message.last_error) == ("failed", 1, reason)
    db.session.expire_all()
    assert contact.notes == "inactive now"


def test_a_crash_rolls_back_the_handlers_writes_and_is_retried(tenants, queued, caplog):
    ours, _ = tenants
    contact = factories.make_contact(ours, notes="before")
    message = outbox.add(
        ours.id, KIND, {"outcome": "crash", "note": "half-written", "contact_id": contact.id}
    )
    now = utcnow()
    with caplog.at_level(logging.ERROR, logger="app.mail.outbox"):
        outbox.deliver(message.id, now=now)
    assert (message.status, message.attempts) == ("pending", 1)
    assert message.last_error == "RuntimeError: boom"
    assert message.next_attempt_at > now
    assert "boom" in caplog.text
    db.session.expire_all()
    assert contact.notes == "before"


def test_retry_later_can_leave_what_is_left_to_do(tenants, queued):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "retry_later"})
    now = utcnow()
    outbox.deliver(message.id, now=now)
    assert message.status == "pending"
    assert message.next_attempt_at >= now + timedelta(seconds=60)
    assert fresh(message.id).payload == {"outcome": "ok", "left": 1}

    outbox.deliver(message.id, now=message.next_attempt_at)
    assert message.status == "delivered"
    assert handled[-1] == (ours.id, {"outcome": "ok", "left": 1})


def test_a_row_of_a_kind_no_longer_registered_fails(tenants, queued, monkeypatch):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {})
    monkeypatch.delitem(outbox.HANDLERS, KIND)
    outbox.deliver(message.id, now=utcnow())
    assert message.status == "failed"
    assert KIND in message.last_error


def test_a_row_another_worker_is_delivering_is_skipped(app_ctx, db_connection):
    """FOR UPDATE SKIP LOCKED: committed for real, so a second connection can hold the row's lock."""
    engine = db_connection.engine
    with engine.connect() as setup:
        tenant_id = setup.execute(
            sa.insert(Tenant.__table__).values(name="Locked").returning(Tenant.id)
        ).scalar()
        message_id = setup.execute(
            sa.insert(OutboxMessage.__table__)
            .values(
                tenant_id=tenant_id,
                kind=KIND,
                payload={},
                status="pending",
                attempts=0,
                next_attempt_at=utcnow(),
            )
            .returning(OutboxMessage.id)
        ).scalar()
        setup.commit()
    try:
        with engine.connect() as worker:
            worker.execute(
                sa.select(OutboxMessage.id).where(OutboxMessage.id == message_id).with_for_update()
            )
            assert outbox.deliver(message_id, now=utcnow()) is None
            assert handled == []
            worker.rollback()
        # Not skipped for being invisible: this session sees the row (a plain read, which takes no lock).
        assert db.session.get(OutboxMessage, message_id).status == "pending"
    finally:
        with engine.connect() as cleanup:
            cleanup.execute(sa.delete(Tenant.__table__).where(Tenant.id == tenant_id))
            cleanup.commit()


def _die_during(message_id: int, now) -> None:
    with pytest.raises(Killed):
        outbox.deliver(message_id, now=now)
    db.session.rollback()  # the dead worker's open transaction is gone


def test_the_attempt_is_on_record_before_the_handler_runs_and_a_killed_one_is_retried_after_its_lease(
    app, tenants, queued
):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "killed"})
    message_id = message.id
    now = utcnow()
    _die_during(message_id, now)

    row = fresh(message_id)
    lease = timedelta(seconds=app.config["JOB_LEASE_SECONDS"])
    assert (row.status, row.attempts, row.next_attempt_at) == ("pending", 1, now + lease)
    assert outbox.due_messages(now + lease - timedelta(seconds=1)) == []  # a live attempt holds its lease
    assert outbox.due_messages(now + lease) == [row]  # the sweeper offers it again once the lease ran out
    row.payload = {"outcome": "ok"}
    outbox.deliver(message_id, now=now + lease)
    assert (row.status, row.attempts) == ("delivered", 2)


def test_attempts_that_killed_their_worker_count_toward_the_limit(app, tenants, queued, monkeypatch):
    ours, _ = tenants
    monkeypatch.setitem(app.config, "OUTBOX_MAX_ATTEMPTS", 3)
    message_id = outbox.add(ours.id, KIND, {"outcome": "killed"}).id
    for _ in range(3):
        _die_during(message_id, fresh(message_id).next_attempt_at)
    row = fresh(message_id)
    outbox.deliver(message_id, now=row.next_attempt_at)
    assert (row.status, row.attempts, len(handled)) == ("failed", 3, 3)
    assert row.last_error == "Gave up after 3 attempts. The last one did not finish."


def test_a_second_job_leaves_a_row_whose_attempt_is_under_way(tenants, queued):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "killed"})
    now = utcnow()
    _die_during(message.id, now)
    assert outbox.deliver(message.id, now=now + timedelta(seconds=5)).attempts == 1
    assert len(handled) == 1


# --- The job and the sweeper's query ----------------------------------------------------------------------


def test_the_job_delivers_and_commits_and_running_it_again_changes_nothing(tenants):
    ours, _ = tenants
    message = outbox.add(ours.id, KIND, {"outcome": "ok"})
    db.session.commit()  # JOBS_MODE is eager in tests: the job runs right after this commit
    assert fresh(message.id).status == "delivered"
    jobs.deliver(message.id)
    assert len(handled) == 1


def test_due_messages_lists_pending_rows_whose_time_has_come_oldest_first(tenants, queued):
    ours, theirs = tenants
    now = utcnow()
    late = outbox.add(ours.id, KIND, {}, deliver_at=now - timedelta(minutes=5))
    early = outbox.add(theirs.id, KIND, {}, deliver_at=now - timedelta(minutes=10))
    future = outbox.add(ours.id, KIND, {}, deliver_at=now + timedelta(minutes=10))
    done = outbox.add(ours.id, KIND, {}, deliver_at=now - timedelta(minutes=20))
    outbox.deliver(done.id, now=now)
    given_up = outbox.add(ours.id, KIND, {"outcome": "refused"}, deliver_at=now - timedelta(minutes=30))
    outbox.deliver(given_up.id, now=now)

    assert outbox.due_messages(now) == [early, late]
    assert outbox.due_messages(now, limit=1) == [early]
    assert future not in outbox.due_messages(now)


def test_a_tenants_rows_are_invisible_to_another_tenant(tenants, queued):
    ours, theirs = tenants
    message = outbox.add(ours.id, KIND, {})
    assert outbox.get_message(ours.id, message.id) is message
    assert outbox.get_message(theirs.id, message.id) is None
    outbox.deliver(message.id, now=utcnow())
    assert handled == [(ours.id, {})]
