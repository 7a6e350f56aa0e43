"""chat widget settings, members, conversations and messages

Revision ID: f61894b0b141
Revises: e9c3f5a7b2d4
Create Date: 2026-12-02 18:15:01.807648

E2, P5: the website chat widget. A tenant's widget settings (public widget id), the members who answer
(with when each last had the Inbox open), conversations (found by the sha256 of the visitor's secret) and
their messages (text, meeting links to a page, bookings made through them, the visitor's email).
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "f61894b0b141"
down_revision = "e9c3f5a7b2d4"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "chat_conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("ref", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("visitor_email", sa.String(length=254), nullable=True),
        sa.Column("unread", sa.Integer(), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("waiting_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name=op.f("ck_chat_conversations_status")),
        sa.ForeignKeyConstraint(
            ["assignee_id"],
            ["users.id"],
            name=op.f("fk_chat_conversations_assignee_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_chat_conversations_contact_id_contacts"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_chat_conversations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_conversations")),
        sa.UniqueConstraint("ref", name=op.f("uq_chat_conversations_ref")),
        sa.UniqueConstraint("secret_hash", name=op.f("uq_chat_conversations_secret_hash")),
    )
    with op.batch_alter_table("chat_conversations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_conversations_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(
            "ix_chat_conversations_tenant_id_last_message_at", ["tenant_id", "last_message_at"], unique=False
        )

    op.create_table(
        "chat_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_chat_members_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_chat_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_members")),
        sa.UniqueConstraint("tenant_id", "user_id", name=op.f("uq_chat_members_tenant_id")),
    )
    with op.batch_alter_table("chat_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_members_tenant_id"), ["tenant_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "chat_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("widget_id", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("welcome_message", sa.String(length=500), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("position", sa.String(length=8), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("booking_page_id", sa.Integer(), nullable=True),
        sa.Column("ask_email_after_seconds", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("language IN ('en', 'pl')", name=op.f("ck_chat_settings_language")),
        sa.CheckConstraint("position IN ('right', 'left')", name=op.f("ck_chat_settings_position")),
        sa.ForeignKeyConstraint(
            ["booking_page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_chat_settings_booking_page_id_scheduling_pages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_chat_settings_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_settings")),
        sa.UniqueConstraint("tenant_id", name=op.f("uq_chat_settings_tenant_id")),
        sa.UniqueConstraint("widget_id", name=op.f("uq_chat_settings_widget_id")),
    )
    with op.batch_alter_table("chat_settings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_chat_settings_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=8), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("page_id", sa.Integer(), nullable=True),
        sa.Column("booking_id", sa.Integer(), nullable=True),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('text', 'meeting_link', 'booking', 'email')", name=op.f("ck_chat_messages_kind")
        ),
        sa.CheckConstraint("sender IN ('visitor', 'rep', 'system')", name=op.f("ck_chat_messages_sender")),
        sa.ForeignKeyConstraint(
            ["author_id"], ["users.id"], name=op.f("fk_chat_messages_author_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["booking_id"],
            ["bookings.id"],
            name=op.f("fk_chat_messages_booking_id_bookings"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["chat_conversations.id"],
            name=op.f("fk_chat_messages_conversation_id_chat_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["page_id"],
            ["scheduling_pages.id"],
            name=op.f("fk_chat_messages_page_id_scheduling_pages"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_chat_messages_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chat_messages")),
    )
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.create_index("ix_chat_messages_conversation_id_id", ["conversation_id", "id"], unique=False)
        batch_op.create_index(batch_op.f("ix_chat_messages_tenant_id"), ["tenant_id"], unique=False)


def downgrade():
    with op.batch_alter_table("chat_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_messages_tenant_id"))
        batch_op.drop_index("ix_chat_messages_conversation_id_id")

    op.drop_table("chat_messages")
    with op.batch_alter_table("chat_settings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_settings_tenant_id"))

    op.drop_table("chat_settings")
    with op.batch_alter_table("chat_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_chat_members_user_id"))
        batch_op.drop_index(batch_op.f("ix_chat_members_tenant_id"))

    op.drop_table("chat_members")
    with op.batch_alter_table("chat_conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_chat_conversations_tenant_id_last_message_at")
        batch_op.drop_index(batch_op.f("ix_chat_conversations_tenant_id"))

    op.drop_table("chat_conversations")
