"""rep-level working hours, time off and daily maximum of meetings

Revision ID: c7a1d2e3f4b5
Revises: b4e19c07d2a6
Create Date: 2026-12-02 15:10:00.000000

Three settings of a rep that every one of their pages honours (T1, T4): working hours (NULL: none beyond
each page's hours), time off (date ranges) and the most meetings one local day may hold (NULL: no maximum).
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "c7a1d2e3f4b5"
down_revision = "b4e19c07d2a6"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("working_hours", JSON, nullable=True))
        batch.add_column(sa.Column("time_off", JSON, server_default="[]", nullable=False))
        batch.add_column(sa.Column("daily_meeting_limit", sa.Integer(), nullable=True))
        batch.create_check_constraint(
            op.f("ck_users_daily_meeting_limit_positive"),
            "daily_meeting_limit IS NULL OR daily_meeting_limit >= 1",
        )


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_daily_meeting_limit_positive"), type_="check")
        batch.drop_column("daily_meeting_limit")
        batch.drop_column("time_off")
        batch.drop_column("working_hours")
