"""team pages: kind and assignment rule, members, group bookings' companions, team slug aliases

Revision ID: d8b2e4f6a1c3
Revises: 94e4e7584bb2
Create Date: 2026-12-02 15:30:00.000000

Round-robin and group pages (T1) are scheduling pages of another kind with a page-to-members table beside
``owner_id``. Their path is /meetings/team/<slug>, so a team page's slug (and an old one) is unique among
team pages. A group booking holds each member with a companion booking row pointing at the visitor's.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "d8b2e4f6a1c3"
down_revision = "94e4e7584bb2"
branch_labels = None
depends_on = None


def upgrade():
    # /meetings/team/... now names team pages: a rep who held the slug "team" moves to "team-<id>".
    op.execute("UPDATE users SET page_slug = 'team-' || id WHERE page_slug = 'team'")
    with op.batch_alter_table("scheduling_pages") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), server_default="one_on_one", nullable=False))
        batch.add_column(sa.Column("assignment", sa.String(16), server_default="even", nullable=False))
        batch.create_check_constraint(
            op.f("ck_scheduling_pages_kind"), "kind IN ('one_on_one', 'round_robin', 'group')"
        )
        batch.create_check_constraint(
            op.f("ck_scheduling_pages_assignment"), "assignment IN ('even', 'weighted', 'owner_first')"
        )
        batch.create_index(
            "uq_scheduling_pages_team_slug",
            ["slug"],
            unique=True,
            postgresql_where=sa.text("kind <> 'one_on_one'"),
            sqlite_where=sa.text("kind <> 'one_on_one'"),
        )
    op.create_table(
        "page_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), server_default="1", nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("position", sa.Integer(), server_default="0", nullable=False),
        sa.Column("excluded_notified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("weight >= 1", name=op.f("ck_page_members_weight_positive")),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_page_members_page_id_scheduling_pages"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_page_members_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_page_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_page_members")),
        sa.UniqueConstraint("page_id", "user_id", name="uq_page_members_page_id_user_id"),
    )
    with op.batch_alter_table("page_members") as batch:
        batch.create_index(batch.f("ix_page_members_page_id"), ["page_id"], unique=False)
        batch.create_index(batch.f("ix_page_members_tenant_id"), ["tenant_id"], unique=False)
        batch.create_index(batch.f("ix_page_members_user_id"), ["user_id"], unique=False)
    with op.batch_alter_table("bookings") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_bookings_parent_id_bookings"), "bookings", ["parent_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index(batch.f("ix_bookings_parent_id"), ["parent_id"], unique=False)
    with op.batch_alter_table("slug_aliases") as batch:
        batch.add_column(sa.Column("team", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch.drop_index("uq_slug_aliases_page_slug")
        batch.create_index(
            "uq_slug_aliases_page_slug",
            ["user_id", "slug"],
            unique=True,
            postgresql_where=sa.text("page_id IS NOT NULL AND NOT team"),
            sqlite_where=sa.text("page_id IS NOT NULL AND NOT team"),
        )
        batch.create_index(
            "uq_slug_aliases_team_slug",
            ["slug"],
            unique=True,
            postgresql_where=sa.text("team"),
            sqlite_where=sa.text("team"),
        )


def downgrade():
    op.execute("DELETE FROM slug_aliases WHERE team")
    with op.batch_alter_table("slug_aliases") as batch:
        batch.drop_index("uq_slug_aliases_team_slug")
        batch.drop_index("uq_slug_aliases_page_slug")
        batch.create_index(
            "uq_slug_aliases_page_slug",
            ["user_id", "slug"],
            unique=True,
            postgresql_where=sa.text("page_id IS NOT NULL"),
            sqlite_where=sa.text("page_id IS NOT NULL"),
        )
        batch.drop_column("team")
    op.execute("DELETE FROM bookings WHERE parent_id IS NOT NULL")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_index(batch.f("ix_bookings_parent_id"))
        batch.drop_constraint(batch.f("fk_bookings_parent_id_bookings"), type_="foreignkey")
        batch.drop_column("parent_id")
    op.drop_table("page_members")
    op.execute("DELETE FROM scheduling_pages WHERE kind <> 'one_on_one'")
    with op.batch_alter_table("scheduling_pages") as batch:
        batch.drop_index("uq_scheduling_pages_team_slug")
        batch.drop_constraint(op.f("ck_scheduling_pages_assignment"), type_="check")
        batch.drop_constraint(op.f("ck_scheduling_pages_kind"), type_="check")
        batch.drop_column("assignment")
        batch.drop_column("kind")
