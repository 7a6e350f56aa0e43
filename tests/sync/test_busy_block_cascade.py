"""Busy blocks go with whatever owns them, although only their synced event is a foreign key.

Migration 7d3c5e1a9b42 dropped the foreign keys of ``busy_blocks.tenant_id``, ``user_id`` and
``calendar_id`` (three lookups per inserted block); deleting a calendar, a connection, a user or a tenant in
the database must still leave none of their blocks behind, through synced_events.
"""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.sync import engine
from app.sync import services as sync
from app.sync.models import BusyBlock, SyncedEvent
from app.sync.providers.base import Account
from tests import factories
from tests.sync.test_engine import ACCOUNT, CALENDARS, HOUR, NOW, T0, ListingProvider, build_world, event


def blocks(**where) -> int:
    query = sa.select(sa.func.count()).select_from(BusyBlock)
    for name, value in where.items():
        query = query.where(getattr(BusyBlock, name) == value)
    return db.session.scalar(query)


@pytest.mark.parametrize("owner", ["calendars", "calendar_connections", "users", "tenants"])
def test_deleting_a_blocks_owner_in_the_database_deletes_its_blocks(app_ctx, owner):
    world = build_world("caldav", ACCOUNT, CALENDARS)
    calendar = world.calendar("main")
    calendar.checks_availability = True
    # Another tenant's rep, whose blocks must stay.
    other_rep = factories.make_user(world.other_tenant, seat="sales", email="rep2@globex.example.com")
    other_connection = sync.connect(
        world.other_tenant,
        other_rep,
        provider="caldav",
        account=Account(id="acct2", email=other_rep.email),
        calendars=CALENDARS,
        secret={"token": "t"},
    )
    other_calendar = other_connection.calendars[0]
    other_calendar.checks_availability = True
    # No guests: no meetings. (Deleting a user whose calendar meetings are linked to synced events fails
    # in PostgreSQL with or without these keys: meetings.owner_id cascades while synced_events.meeting_id
    # is set to NULL on rows whose calendar is going.)
    provider = ListingProvider(
        [event(f"busy-{n}@test", start=T0 + 2 * n * HOUR, attendees=()) for n in range(3)]
    )
    for synced in (calendar, other_calendar):
        assert engine.sync_calendar(synced, provider, now=NOW).blocks_written == 3
    db.session.commit()
    ids = {
        "calendars": calendar.id,
        "calendar_connections": world.connection.id,
        "users": world.rep.id,
        "tenants": world.tenant.id,
    }
    calendar_id, tenant_id = calendar.id, world.tenant.id
    assert blocks(calendar_id=calendar_id) == 3

    db.session.execute(sa.text(f"DELETE FROM {owner} WHERE id = :id"), {"id": ids[owner]})  # noqa: S608
    db.session.commit()
    db.session.expire_all()

    assert blocks(calendar_id=calendar_id) == 0
    assert blocks(tenant_id=tenant_id) == 0
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(SyncedEvent).where(SyncedEvent.calendar_id == calendar_id)
        )
        == 0
    )
    assert blocks(calendar_id=other_calendar.id) == 3
