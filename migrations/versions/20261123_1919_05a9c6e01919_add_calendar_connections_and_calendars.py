"""add calendar connections and calendars

Revision ID: 05a9c6e01919
Revises: a3600ed019db
Create Date: 2026-11-23 19:19:41.666540

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "05a9c6e01919"
down_revision = "a3600ed019db"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "calendar_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("account_email", sa.String(length=254), nullable=False),
        sa.Column("server_url", sa.String(length=2048), nullable=True),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("shared_calendar_urls", sa.Text(), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("token_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inactive_reason", sa.String(length=500), nullable=True),
        sa.Column("inactive_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("calendar_sync", sa.Boolean(), nullable=False),
        sa.Column("scheduling_pages", sa.Boolean(), nullable=False),
        sa.Column("task_sync", sa.Boolean(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "provider IN ('google', 'microsoft', 'caldav')", name=op.f("ck_calendar_connections_provider")
        ),
        sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f("ck_calendar_connections_status")),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_calendar_connections_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_calendar_connections_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_connections")),
        sa.UniqueConstraint("user_id", "provider", "account_id", name="uq_calendar_connections_account"),
    )
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendar_connections_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_calendar_connections_user_id"), ["user_id"], unique=False)

    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=2048), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("access", sa.String(length=16), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("checks_availability", sa.Boolean(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("inactive_reason", sa.String(length=500), nullable=True),
        sa.Column("inactive_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_state", sa.Text(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "NOT (checks_availability AND access = 'freebusy')",
            name=op.f("ck_calendars_details_for_availability"),
        ),
        sa.CheckConstraint(
            "access IN ('owner', 'writer', 'reader', 'freebusy')", name=op.f("ck_calendars_access")
        ),
        sa.CheckConstraint("status IN ('active', 'inactive')", name=op.f("ck_calendars_status")),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["calendar_connections.id"],
            name=op.f("fk_calendars_connection_id_calendar_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_calendars_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint("connection_id", "external_id", name="uq_calendars_connection_id_external_id"),
    )
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_calendars_tenant_id"), ["tenant_id"], unique=False)


def downgrade():
    with op.batch_alter_table("calendars", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendars_tenant_id"))

    op.drop_table("calendars")
    with op.batch_alter_table("calendar_connections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_calendar_connections_user_id"))
        batch_op.drop_index(batch_op.f("ix_calendar_connections_tenant_id"))

    op.drop_table("calendar_connections")
