"""revocable sessions, remember-me tokens and password resets

Revision ID: 5e8d2b7c4a19
Revises: c3a9f1e2d7b4
Create Date: 2026-12-02 15:30:00.000000

Sessions signed in before this revision have no row and so end at the first request after it: everyone
signs in once more, and every remember-me cookie of the old kind (user id + secret key) stops working.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "5e8d2b7c4a19"
down_revision = "c3a9f1e2d7b4"
branch_labels = None
depends_on = None

TABLES = ("user_sessions", "remember_tokens", "password_resets")


def upgrade():
    for table in TABLES:
        columns = [
            sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
            sa.Column("user_id", sa.Integer(), nullable=False),
            sa.Column("token_hash", sa.String(length=64), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        ]
        op.create_table(
            table,
            *columns,
            sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name=op.f(f"fk_{table}_user_id_users"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
            sa.UniqueConstraint("token_hash", name=op.f(f"uq_{table}_token_hash")),
        )
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(f"ix_{table}_user_id"), ["user_id"], unique=False)


def downgrade():
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_user_id"))
        op.drop_table(table)
