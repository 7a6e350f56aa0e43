"""busy blocks keep one foreign key (to their synced event)

Revision ID: 7d3c5e1a9b42
Revises: e52f7ea12dbc
Create Date: 2026-12-01 19:50:00.000000

A busy block's tenant, user and calendar are copies of its synced event's calendar's; every one of them
already cascades to the block through ``synced_event_id``. Their foreign keys only cost three lookups per
inserted block, which a full sync writes by the thousand.
"""

from alembic import op

# revision identifiers, used by Alembic.
revision = "7d3c5e1a9b42"
down_revision = "e52f7ea12dbc"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("busy_blocks", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_busy_blocks_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_busy_blocks_tenant_id_tenants"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_busy_blocks_user_id_users"), type_="foreignkey")


def downgrade():
    # Blocks whose calendar, user or tenant is gone cannot exist (they cascade with their synced event),
    # so the constraints go back on without a clean-up first.
    with op.batch_alter_table("busy_blocks", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_busy_blocks_user_id_users"), "users", ["user_id"], ["id"], ondelete="CASCADE"
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_busy_blocks_tenant_id_tenants"),
            "tenants",
            ["tenant_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_busy_blocks_calendar_id_calendars"),
            "calendars",
            ["calendar_id"],
            ["id"],
            ondelete="CASCADE",
        )
