"""scheduling pages: an optional cap on bookings per day

Revision ID: c3a9f1e2d7b4
Revises: 8e2d4f6a1b57
Create Date: 2026-12-02 15:10:00.000000

NULL (every existing page) means no cap, so nothing changes for pages until their rep sets one.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "c3a9f1e2d7b4"
down_revision = "8e2d4f6a1b57"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scheduling_pages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_bookings_per_day", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(
            "max_bookings_per_day_positive", "max_bookings_per_day IS NULL OR max_bookings_per_day >= 1"
        )


def downgrade():
    with op.batch_alter_table("scheduling_pages", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("ck_scheduling_pages_max_bookings_per_day_positive"), type_="check"
        )
        batch_op.drop_column("max_bookings_per_day")
