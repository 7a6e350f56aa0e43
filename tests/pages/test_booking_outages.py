"""A booking under outages: committed means answered 2xx (PostgreSQL lost right after the commit, Redis down
at the job dispatch); a commit that fails is a 503 and leaves nothing behind."""

import logging
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages.models import Booking
from tests.pages.test_public_booking import JSON, bookings, form_for, payload


class DatabaseGone(Exception):
    """What the driver says when the server has gone away."""


@contextmanager
def database_dies(connection, when=lambda statement: True):
    """From now on, every statement ``when`` picks fails as if PostgreSQL had stopped."""

    def refuse(conn, cursor, statement, parameters, context, executemany):
        if when(statement):
            raise sa.exc.OperationalError(statement, parameters, DatabaseGone("server closed the connection"))

    event.listen(connection, "before_cursor_execute", refuse)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", refuse)


@pytest.fixture
def dies_after_commit(db_connection):
    """PostgreSQL stops right after the next commit: whatever the answer still reads must not need it."""

    def kill(session):
        if session.in_nested_transaction():
            return
        if not event.contains(db_connection, "before_cursor_execute", _refuse_everything):
            event.listen(db_connection, "before_cursor_execute", _refuse_everything)

    @contextmanager
    def armed():
        # insert=True: before the after-commit work (the job dispatch), which then meets the dead database.
        event.listen(Session, "after_commit", kill, insert=True)
        try:
            yield
        finally:
            event.remove(Session, "after_commit", kill)
            if event.contains(db_connection, "before_cursor_execute", _refuse_everything):
                event.remove(db_connection, "before_cursor_execute", _refuse_everything)

    return armed


def _refuse_everything(conn, cursor, statement, parameters, context, executemany):
    raise sa.exc.OperationalError(statement, parameters, DatabaseGone("server closed the connection"))


def test_json_booking_committed_then_database_lost_answers_201(app, site, client, dies_after_commit, caplog):
    with dies_after_commit(), caplog.at_level(logging.ERROR):
        response = client.post(f"{site.intro_path}/book", json=payload(idempotency_key="k-1"), headers=JSON)

    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()["booking"]
    assert answer["start"] == "2030-01-07T10:00:00+01:00"
    assert answer["email"] == "vera@example.org"
    assert answer["manage_url"].startswith("http://app.termin.test/meetings/booking/")
    [booking] = bookings(app)
    assert booking.email == "vera@example.org"
    # The eager job dispatch after the commit met the dead database: logged, not answered.
    assert "not dispatched" in caplog.text


def test_html_booking_committed_then_database_lost_answers_303(app, site, client, dies_after_commit):
    _page, fields = form_for(client, site.intro_path)
    with dies_after_commit():
        response = client.post(f"{site.intro_path}/book", data={**payload(), **fields})

    assert response.status_code == 303, response.get_data(as_text=True)
    assert "/meetings/booking/" in response.headers["Location"]
    assert len(bookings(app)) == 1


def test_a_commit_that_fails_is_a_503_and_nothing_is_booked(app, site, client, db_connection):
    # In the tests' harness the request's commit is a RELEASE SAVEPOINT: make exactly that fail.
    with database_dies(db_connection, when=lambda statement: statement.startswith("RELEASE SAVEPOINT")):
        response = client.post(f"{site.intro_path}/book", json=payload(idempotency_key="k-2"), headers=JSON)

    assert response.status_code == 503
    assert response.headers["Retry-After"].isdigit()
    assert response.get_json()["error"] == "unavailable"
    assert bookings(app) == []


def test_redis_down_at_dispatch_still_answers_201_and_the_work_waits_in_the_database(
    app, site, client, monkeypatch, caplog
):
    monkeypatch.setitem(app.config, "JOBS_MODE", "rq")
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:9/0")  # discard port: nothing listens
    monkeypatch.delitem(app.extensions, "termin_redis", raising=False)
    try:
        with caplog.at_level(logging.ERROR, logger="app.queue"):
            response = client.post(
                f"{site.intro_path}/book", json=payload(idempotency_key="k-3"), headers=JSON
            )
    finally:
        app.extensions.pop("termin_redis", None)

    assert response.status_code == 201, response.get_data(as_text=True)
    assert "not dispatched" in caplog.text
    with app.app_context():
        booking = db.session.scalar(sa.select(Booking))
        assert booking is not None
        # The invitation emails and the calendar write are outbox rows: the sweeper offers them again.
        assert db.session.scalar(sa.select(sa.func.count()).select_from(OutboxMessage)) > 0
