"""domains claimed by several tenants, re-checked, removed

Revision ID: e52f7ea12dbc
Revises: 33d2b0c12851
Create Date: 2026-11-24 00:21:44.768021

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "e52f7ea12dbc"
down_revision = "33d2b0c12851"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.add_column(sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_constraint(batch_op.f("uq_domains_hostname"), type_="unique")
        batch_op.create_index("ix_domains_hostname", ["hostname"], unique=False)
        batch_op.create_unique_constraint("uq_domains_tenant_id_hostname", ["tenant_id", "hostname"])
        batch_op.create_index(
            "uq_domains_verified_hostname",
            ["hostname"],
            unique=True,
            postgresql_where=sa.text("status = 'verified'"),
            sqlite_where=sa.text("status = 'verified'"),
        )
        batch_op.drop_constraint(batch_op.f("ck_domains_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('pending', 'verified', 'failed', 'removed')")


def downgrade():
    # One row per host name again: the verified claim, else the oldest; removed domains go.
    op.execute("DELETE FROM domains WHERE status = 'removed'")
    op.execute(
        "DELETE FROM domains WHERE id IN (SELECT d.id FROM domains d JOIN domains o ON o.hostname = d.hostname "
        "AND (o.status = 'verified' AND d.status <> 'verified' OR o.status = d.status AND o.id < d.id "
        "OR o.status <> 'verified' AND d.status <> 'verified' AND o.id < d.id))"
    )
    with op.batch_alter_table("domains", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_domains_status"), type_="check")
        batch_op.create_check_constraint("status", "status IN ('pending', 'verified', 'failed')")
        batch_op.drop_index(
            "uq_domains_verified_hostname",
            postgresql_where=sa.text("status = 'verified'"),
            sqlite_where=sa.text("status = 'verified'"),
        )
        batch_op.drop_constraint("uq_domains_tenant_id_hostname", type_="unique")
        batch_op.drop_index("ix_domains_hostname")
        batch_op.create_unique_constraint(batch_op.f("uq_domains_hostname"), ["hostname"])
        batch_op.drop_column("removed_at")
        batch_op.drop_column("failing_since")
        batch_op.drop_column("checked_at")
