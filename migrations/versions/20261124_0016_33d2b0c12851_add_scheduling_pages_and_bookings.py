"""add scheduling pages and bookings

Revision ID: 33d2b0c12851
Revises: d00b002e19d5
Create Date: 2026-11-24 00:16:33.070018

"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "33d2b0c12851"
down_revision = "d00b002e19d5"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "scheduling_pages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=500), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("domain_id", sa.Integer(), nullable=True),
        sa.Column("hide_from_search", sa.Boolean(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column(
            "availability",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "durations",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("increment", sa.Integer(), nullable=True),
        sa.Column("buffer_before", sa.Integer(), nullable=False),
        sa.Column("buffer_after", sa.Integer(), nullable=False),
        sa.Column("min_notice", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=True),
        sa.Column("date_from", sa.Date(), nullable=True),
        sa.Column("date_to", sa.Date(), nullable=True),
        sa.Column(
            "questions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("confirmation_message", sa.Text(), nullable=False),
        sa.Column("redirect_url", sa.String(length=2048), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "buffer_before >= 0 AND buffer_after >= 0", name=op.f("ck_scheduling_pages_buffers_not_negative")
        ),
        sa.CheckConstraint(
            "date_from IS NULL OR date_to IS NULL OR date_from <= date_to",
            name=op.f("ck_scheduling_pages_date_range"),
        ),
        sa.CheckConstraint(
            "horizon_days IS NULL OR horizon_days >= 1", name=op.f("ck_scheduling_pages_horizon_positive")
        ),
        sa.CheckConstraint("min_notice >= 0", name=op.f("ck_scheduling_pages_min_notice_not_negative")),
        sa.CheckConstraint("slug = lower(slug)", name=op.f("ck_scheduling_pages_slug_lower")),
        sa.ForeignKeyConstraint(
            ["domain_id"],
            ["domains.id"],
            name=op.f("fk_scheduling_pages_domain_id_domains"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_scheduling_pages_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_scheduling_pages_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduling_pages")),
        sa.UniqueConstraint("owner_id", "slug", name="uq_scheduling_pages_owner_id_slug"),
    )
    with op.batch_alter_table("scheduling_pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_scheduling_pages_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_scheduling_pages_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "uq_scheduling_pages_default",
            ["owner_id"],
            unique=True,
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        )

    op.create_table(
        "booking_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("attempted_at", sa.DateTime(timezone=True), nullable=False),
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
    )
    with op.batch_alter_table("booking_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_booking_attempts_owner_id"), ["owner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_booking_attempts_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "slug_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("slug = lower(slug)", name=op.f("ck_slug_aliases_slug_lower")),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_slug_aliases_page_id_scheduling_pages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_slug_aliases_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_slug_aliases_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_slug_aliases")),
    )
    with op.batch_alter_table("slug_aliases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_slug_aliases_page_id"), ["page_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_slug_aliases_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_slug_aliases_user_id"), ["user_id"], unique=False)
        batch_op.create_index(
            "uq_slug_aliases_page_slug",
            ["user_id", "slug"],
            unique=True,
            postgresql_where=sa.text("page_id IS NOT NULL"),
            sqlite_where=sa.text("page_id IS NOT NULL"),
        )
        batch_op.create_index(
            "uq_slug_aliases_user_slug",
            ["slug"],
            unique=True,
            postgresql_where=sa.text("page_id IS NULL"),
            sqlite_where=sa.text("page_id IS NULL"),
        )

    op.create_table(
        "bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("first_name", sa.String(length=80), nullable=False),
        sa.Column("last_name", sa.String(length=80), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column(
            "answers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("consented_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manage_token_hash", sa.String(length=64), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=False),
        sa.Column("rescheduled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('confirmed', 'cancelled')", name=op.f("ck_bookings_status")),
        sa.CheckConstraint("end_at > start_at", name=op.f("ck_bookings_ends_after_start")),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_bookings_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"], ["meetings.id"], name=op.f("fk_bookings_meeting_id_meetings"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"], name=op.f("fk_bookings_owner_id_users"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_bookings_page_id_scheduling_pages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_bookings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bookings")),
        sa.UniqueConstraint("manage_token_hash", name=op.f("uq_bookings_manage_token_hash")),
        sa.UniqueConstraint("page_id", "idempotency_key", name="uq_bookings_page_id_idempotency_key"),
    )
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_bookings_contact_id"), ["contact_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_bookings_meeting_id"), ["meeting_id"], unique=False)
        batch_op.create_index("ix_bookings_owner_id_start_at", ["owner_id", "start_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_bookings_tenant_id"), ["tenant_id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        # P6: two confirmed bookings of one rep can never overlap, whatever the code above the database
        # does. btree_gist lets the gist index compare owner_id with "="; it is a trusted extension
        # (PostgreSQL 13+), so the database owner may create it without superuser rights.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        op.execute(
            "ALTER TABLE bookings ADD CONSTRAINT ex_bookings_owner_id_overlap "
            "EXCLUDE USING gist (owner_id WITH =, tstzrange(start_at, end_at) WITH &&) "
            "WHERE (status = 'confirmed')"
        )

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sequence", sa.Integer(), server_default="0", nullable=False))

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pages_disabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("pages_disabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("paused_booking_notified_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade():
    # The exclusion constraint goes with the bookings table; btree_gist stays (other objects may use it).
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("paused_booking_notified_at")
        batch_op.drop_column("pages_disabled")

    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("pages_disabled")

    with op.batch_alter_table("meetings", schema=None) as batch_op:
        batch_op.drop_column("sequence")

    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_bookings_tenant_id"))
        batch_op.drop_index("ix_bookings_owner_id_start_at")
        batch_op.drop_index(batch_op.f("ix_bookings_meeting_id"))
        batch_op.drop_index(batch_op.f("ix_bookings_contact_id"))

    op.drop_table("bookings")
    with op.batch_alter_table("slug_aliases", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_slug_aliases_user_slug",
            postgresql_where=sa.text("page_id IS NULL"),
            sqlite_where=sa.text("page_id IS NULL"),
        )
        batch_op.drop_index(
            "uq_slug_aliases_page_slug",
            postgresql_where=sa.text("page_id IS NOT NULL"),
            sqlite_where=sa.text("page_id IS NOT NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_slug_aliases_user_id"))
        batch_op.drop_index(batch_op.f("ix_slug_aliases_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_slug_aliases_page_id"))

    op.drop_table("slug_aliases")
    with op.batch_alter_table("booking_attempts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_booking_attempts_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_booking_attempts_owner_id"))

    op.drop_table("booking_attempts")
    with op.batch_alter_table("scheduling_pages", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_scheduling_pages_default",
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        )
        batch_op.drop_index(batch_op.f("ix_scheduling_pages_tenant_id"))
        batch_op.drop_index(batch_op.f("ix_scheduling_pages_owner_id"))

    op.drop_table("scheduling_pages")
