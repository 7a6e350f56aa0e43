"""booking attempts: one row per rep and hour, with a count

Revision ID: 5a1c0e7b9d23
Revises: c7a1d2e3f4b5
Create Date: 2026-12-02 15:00:00.000000

C11 now counts visits to a paused page as attempts, so a row per request would let any crawler grow the
table. The attempts of one rep in one clock hour (UTC) become one row: ``hour_start``, ``attempts`` (how
many), the latest ``page_id``, ``email`` and ``reason`` of the hour, and ``last_attempt_at``; a unique
constraint on (owner, hour) lets the application bump it with an upsert. Rows made before are merged by
the same rule.

The downgrade writes one old-style row per hour (at its last attempt); the counts are lost.
"""

from collections import defaultdict
from datetime import UTC

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5a1c0e7b9d23"
down_revision = "c7a1d2e3f4b5"
branch_labels = None
depends_on = None

OLD = sa.table(
    "booking_attempts",
    sa.column("id", sa.Integer),
    sa.column("tenant_id", sa.Integer),
    sa.column("owner_id", sa.Integer),
    sa.column("page_id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("reason", sa.String),
    sa.column("attempted_at", sa.DateTime(timezone=True)),
)
NEW = sa.table(
    "booking_attempts",
    sa.column("tenant_id", sa.Integer),
    sa.column("owner_id", sa.Integer),
    sa.column("hour_start", sa.DateTime(timezone=True)),
    sa.column("attempts", sa.Integer),
    sa.column("page_id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("reason", sa.String),
    sa.column("last_attempt_at", sa.DateTime(timezone=True)),
)


def _utc(moment):
    """SQLite hands back naive datetimes (stored as UTC); PostgreSQL aware ones."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _store(moment, dialect: str):
    return moment.replace(tzinfo=None) if dialect == "sqlite" else moment


def _common_columns() -> list:
    return [
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_booking_attempts_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_booking_attempts_page_id_scheduling_pages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_booking_attempts_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_attempts")),
    ]


def upgrade():
    bind = op.get_bind()
    dialect = bind.dialect.name
    rows = bind.execute(sa.select(OLD).order_by(OLD.c.attempted_at, OLD.c.id)).mappings().all()
    hours: dict[tuple, dict] = {}
    counts: dict[tuple, int] = defaultdict(int)
    for row in rows:
        at = _utc(row["attempted_at"])
        key = (row["owner_id"], at.replace(minute=0, second=0, microsecond=0))
        counts[key] += 1
        kept = hours.setdefault(key, {"email": ""})
        kept.update(
            tenant_id=row["tenant_id"],
            page_id=row["page_id"],
            reason=row["reason"],
            last_attempt_at=at,
            email=row["email"] or kept["email"],
        )
    op.drop_table("booking_attempts")
    op.create_table(
        "booking_attempts",
        *_common_columns(),
        sa.Column("hour_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("owner_id", "hour_start", name="uq_booking_attempts_owner_id_hour_start"),
    )
    with op.batch_alter_table("booking_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_attempts_tenant_id"), ["tenant_id"], unique=False)
    if hours:
        op.bulk_insert(
            NEW,
            [
                {
                    **kept,
                    "owner_id": owner_id,
                    "hour_start": _store(hour, dialect),
                    "attempts": counts[(owner_id, hour)],
                    "last_attempt_at": _store(kept["last_attempt_at"], dialect),
                }
                for (owner_id, hour), kept in hours.items()
            ],
        )


def downgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.select(NEW)).mappings().all()
    op.drop_table("booking_attempts")
    op.create_table(
        "booking_attempts",
        *_common_columns(),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("booking_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_attempts_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_attempts_tenant_id"), ["tenant_id"], unique=False)
    if rows:
        op.bulk_insert(
            OLD,
            [
                {
                    "tenant_id": row["tenant_id"],
                    "owner_id": row["owner_id"],
                    "page_id": row["page_id"],
                    "email": row["email"],
                    "reason": row["reason"],
                    "attempted_at": row["last_attempt_at"],
                }
                for row in rows
            ],
        )
