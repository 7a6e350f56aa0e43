"""calendar meetings keyed by uid and recurrence id, unique per rep

Revision ID: b4e19c07d2a6
Revises: 7d3c5e1a9b42
Create Date: 2026-12-01 20:30:00.000000

A calendar meeting of one occurrence of a recurring event was keyed by ``uid = "<uid>#<recurrence id>"``
and nothing in the database kept two syncs (two of the rep's calendars holding the same event) from both
inserting it. The occurrence moves to its own column, ``uid`` becomes the event's real UID again, and two
partial unique indexes (single events, occurrences) hold one calendar meeting per tenant, rep, uid and
occurrence. Duplicates made before are merged into one first: the scheduled one (else the oldest) is kept,
gets the others' contacts and notes, and what pointed at them (synced events, bookings) points at it.

The downgrade writes ``"<uid>#<recurrence id>"`` back (the recurrence id as the UTC ISO 8601 datetime, as
the old engine wrote it for timed occurrences).
"""

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b4e19c07d2a6"
down_revision = "7d3c5e1a9b42"
branch_labels = None
depends_on = None

SINGLE = "source = 'calendar' AND recurrence_id IS NULL"
OCCURRENCE = "source = 'calendar' AND recurrence_id IS NOT NULL"
BATCH = 1000

meetings = sa.table(
    "meetings",
    sa.column("id", sa.BigInteger),
    sa.column("tenant_id", sa.BigInteger),
    sa.column("owner_id", sa.BigInteger),
    sa.column("uid", sa.String),
    sa.column("recurrence_id", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
    sa.column("status", sa.String),
    sa.column("notes", sa.Text),
)
meeting_contacts = sa.table("meeting_contacts", sa.column("meeting_id"), sa.column("contact_id"))


def _instant(text: str) -> datetime | None:
    """The UTC instant an old key's suffix names (what the engine wrote), or None if it is not one."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return moment.astimezone(UTC)


def _stored(moment: datetime, sqlite: bool) -> datetime:
    # Like app.db.UTCDateTime: SQLite keeps naive UTC, PostgreSQL an aware timestamptz.
    return moment.replace(tzinfo=None) if sqlite else moment


def _read(value) -> datetime:
    if isinstance(value, str):  # SQLite without the column's type in a raw select
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _updates(bind, values: list[dict]) -> None:
    statement = (
        sa.update(meetings)
        .where(meetings.c.id == sa.bindparam("meeting_id"))
        .values(uid=sa.bindparam("new_uid"), recurrence_id=sa.bindparam("new_rid"))
    )
    for first in range(0, len(values), BATCH):
        bind.execute(statement, values[first : first + BATCH])


def _merge_duplicates(bind) -> None:
    key = (meetings.c.tenant_id, meetings.c.owner_id, meetings.c.uid, meetings.c.recurrence_id)
    groups = bind.execute(
        sa.select(*key)
        .where(meetings.c.source == "calendar", meetings.c.uid.is_not(None))
        .group_by(*key)
        .having(sa.func.count() > 1)
    ).all()
    for tenant_id, owner_id, uid, rid in groups:
        same = sa.and_(
            meetings.c.source == "calendar",
            meetings.c.tenant_id == tenant_id,
            meetings.c.owner_id == owner_id,
            meetings.c.uid == uid,
            meetings.c.recurrence_id.is_(None) if rid is None else meetings.c.recurrence_id == rid,
        )
        rows = bind.execute(
            sa.select(meetings.c.id, meetings.c.status, meetings.c.notes)
            .where(same)
            .order_by((meetings.c.status == "scheduled").desc(), meetings.c.id)
        ).all()
        keeper, losers = rows[0], rows[1:]
        loser_ids = [row.id for row in losers]
        notes = [keeper.notes or ""] + [
            row.notes for row in losers if row.notes and row.notes != keeper.notes
        ]
        bind.execute(
            sa.update(meetings)
            .where(meetings.c.id == keeper.id)
            .values(notes="\n\n".join(n for n in notes if n))
        )
        have = set(
            bind.scalars(
                sa.select(meeting_contacts.c.contact_id).where(meeting_contacts.c.meeting_id == keeper.id)
            )
        )
        extra = set(
            bind.scalars(
                sa.select(meeting_contacts.c.contact_id).where(meeting_contacts.c.meeting_id.in_(loser_ids))
            )
        )
        if extra - have:
            bind.execute(
                sa.insert(meeting_contacts),
                [{"meeting_id": keeper.id, "contact_id": c} for c in sorted(extra - have)],
            )
        for table in ("synced_events", "bookings"):
            pointing = sa.table(table, sa.column("meeting_id"))
            bind.execute(
                sa.update(pointing).where(pointing.c.meeting_id.in_(loser_ids)).values(meeting_id=keeper.id)
            )
        bind.execute(sa.delete(meetings).where(meetings.c.id.in_(loser_ids)))


def upgrade():
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recurrence_id", sa.DateTime(timezone=True), nullable=True))

    values = []
    for meeting_id, uid in bind.execute(
        sa.select(meetings.c.id, meetings.c.uid).where(
            meetings.c.source == "calendar", meetings.c.uid.like("%#%")
        )
    ):
        base, _, suffix = uid.rpartition("#")
        instant = _instant(suffix)
        if base and instant is not None:
            values.append({"meeting_id": meeting_id, "new_uid": base, "new_rid": _stored(instant, sqlite)})
    _updates(bind, values)
    _merge_duplicates(bind)

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.create_index(
            "uq_meetings_calendar_event",
            ["tenant_id", "owner_id", "uid"],
            unique=True,
            postgresql_where=sa.text(SINGLE),
            sqlite_where=sa.text(SINGLE),
        )
        batch_op.create_index(
            "uq_meetings_calendar_occurrence",
            ["tenant_id", "owner_id", "uid", "recurrence_id"],
            unique=True,
            postgresql_where=sa.text(OCCURRENCE),
            sqlite_where=sa.text(OCCURRENCE),
        )


def downgrade():
    bind = op.get_bind()
    values = []
    for meeting_id, uid, rid in bind.execute(
        sa.select(meetings.c.id, meetings.c.uid, meetings.c.recurrence_id).where(
            meetings.c.recurrence_id.is_not(None)
        )
    ):
        key = f"{uid}#{_read(rid).isoformat()}"
        # The old engine never made a key over 1024 characters; such a uid stays as it is.
        values.append(
            {"meeting_id": meeting_id, "new_uid": key if len(key) <= 1024 else uid, "new_rid": None}
        )
    _updates(bind, values)
    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_index("uq_meetings_calendar_occurrence")
        batch_op.drop_index("uq_meetings_calendar_event")
        batch_op.drop_column("recurrence_id")
