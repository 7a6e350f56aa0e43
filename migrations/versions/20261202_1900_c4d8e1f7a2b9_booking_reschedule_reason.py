"""bookings.reschedule_reason: why the visitor moved the meeting (optional)

Revision ID: c4d8e1f7a2b9
Revises: b7e2c9d4a1f6
Create Date: 2026-12-02 19:00:00.000000

Issue 14: rescheduling shows the new time and asks to confirm it, with an optional reason for the rep.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c4d8e1f7a2b9"
down_revision = "b7e2c9d4a1f6"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("reschedule_reason", sa.Text(), server_default="", nullable=False))


def downgrade():
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("reschedule_reason")
