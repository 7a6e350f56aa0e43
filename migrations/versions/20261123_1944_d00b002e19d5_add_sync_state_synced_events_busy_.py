"""add sync state synced events busy blocks outbox

Revision ID: d00b002e19d5
Revises: 05a9c6e01919
Create Date: 2026-11-23 19:44:05.782102

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "d00b002e19d5"
down_revision = "05a9c6e01919"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=1000), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'delivered', 'failed')", name=op.f("ck_outbox_status")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_outbox_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_outbox_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "synced_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=1024), nullable=False),
        sa.Column("recurrence_id", sa.String(length=64), nullable=False),
        sa.Column("provider_event_id", sa.String(length=1024), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_busy", sa.Boolean(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_synced_events_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_synced_events_meeting_id_meetings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_synced_events_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_synced_events")),
        sa.UniqueConstraint(
            "calendar_id", "uid", "recurrence_id", name="uq_synced_events_calendar_uid_recurrence"
        ),
    )
    with op.batch_alter_table("synced_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_synced_events_calendar_id_provider_event_id",
            ["calendar_id", "provider_event_id"],
            unique=False,
        )
        batch_op.create_index(batch_op.f("ix_synced_events_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_synced_events_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "busy_blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("synced_event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_busy_blocks_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["synced_event_id"],
            ["synced_events.id"],
            name=op.f("fk_busy_blocks_synced_event_id_synced_events"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_busy_blocks_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_busy_blocks_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_busy_blocks")),
    )
    with op.batch_alter_table("busy_blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_busy_blocks_calendar_id"), ["calendar_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_busy_blocks_synced_event_id"), ["synced_event_id"], unique=False)
        batch_op.create_index("ix_busy_blocks_user_id_start_at", ["user_id", "start_at"], unique=False)

    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.add_column(sa.Column("health_checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("inactive_notified_at", sa.DateTime(timezone=True), nullable=True))

    with op.batch_alter_table("calendars", schema=None) as batch_op:
        # Existing rows get false first; the default is dropped again below so the model stays the source.
        batch_op.add_column(
            sa.Column("is_task_calendar", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("inactive_notified_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_started_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_error", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_calendars_next_sync_at"), ["next_sync_at"], unique=False)
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.alter_column("is_task_calendar", server_default=None)

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("provider_event_id", sa.String(length=1024), nullable=True))
        batch_op.create_index(batch_op.f("ix_meetings_uid"), ["uid"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_meetings_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("provider_event_id", sa.String(length=1024), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_tasks_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade():
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_tasks_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_column("provider_event_id")
        batch_op.drop_column("calendar_id")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_meetings_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_meetings_uid"))
        batch_op.drop_column("provider_event_id")
        batch_op.drop_column("calendar_id")
        batch_op.drop_column("uid")

    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendars_next_sync_at"))
        batch_op.drop_column("last_error_at")
        batch_op.drop_column("last_error")
        batch_op.drop_column("sync_started_at")
        batch_op.drop_column("next_sync_at")
        batch_op.drop_column("last_synced_at")
        batch_op.drop_column("inactive_notified_at")
        batch_op.drop_column("is_task_calendar")

    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.drop_column("inactive_notified_at")
        batch_op.drop_column("health_checked_at")

    with op.batch_alter_table("busy_blocks", schema=None) as batch_op:
        batch_op.drop_index("ix_busy_blocks_user_id_start_at")
        batch_op.drop_index(batch_op.f("ix_busy_blocks_synced_event_id"))
        batch_op.drop_index(batch_op.f("ix_busy_blocks_calendar_id"))

    op.drop_table("busy_blocks")
    with op.batch_alter_table("synced_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_synced_events_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_synced_events_meeting_id"))
        batch_op.drop_index("ix_synced_events_calendar_id_provider_event_id")

    op.drop_table("synced_events")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_tenant_id"))
        batch_op.drop_index("ix_outbox_status_next_attempt_at")

    op.drop_table("outbox")
