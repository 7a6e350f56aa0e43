"""booking holds: pages may ask visitors to confirm their email before the booking is final

Revision ID: 2f7a9d3c5b16
Revises: 9b1f4c6e2d83
Create Date: 2026-12-02 16:40:00.000000
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "2f7a9d3c5b16"
down_revision = "9b1f4c6e2d83"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("scheduling_pages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("confirm_email", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "booking_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column(
            "request",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_booking_holds_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_booking_holds_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_booking_holds_page_id_scheduling_pages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_booking_holds_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_booking_holds")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_booking_holds_token_hash")),
    )
    with op.batch_alter_table("booking_holds", schema=None) as batch_op:
        batch_op.create_index("ix_booking_holds_owner_id_start_at", ["owner_id", "start_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_holds_page_id"), ["page_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_holds_tenant_id"), ["tenant_id"], unique=False)


def downgrade():
    with op.batch_alter_table("booking_holds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_holds_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_booking_holds_page_id"))
        batch_op.drop_index("ix_booking_holds_owner_id_start_at")
    op.drop_table("booking_holds")
    with op.batch_alter_table("scheduling_pages", schema=None) as batch_op:
        batch_op.drop_column("confirm_email")
