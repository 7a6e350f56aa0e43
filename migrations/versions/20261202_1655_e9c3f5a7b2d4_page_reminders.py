"""page reminders: minutes before the start, and whether the rep is reminded too

Revision ID: e9c3f5a7b2d4
Revises: d8b2e4f6a1c3
Create Date: 2026-12-02 16:00:00.000000

T2: up to three reminder emails per page, queued in the outbox with the booking and held back until due.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "e9c3f5a7b2d4"
down_revision = "d8b2e4f6a1c3"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("scheduling_pages") as batch:
        batch.add_column(sa.Column("reminders", JSON, server_default="[]", nullable=False))
        batch.add_column(sa.Column("remind_rep", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    op.execute("DELETE FROM outbox WHERE kind = 'booking.reminder'")
    with op.batch_alter_table("scheduling_pages") as batch:
        batch.drop_column("remind_rep")
        batch.drop_column("reminders")
