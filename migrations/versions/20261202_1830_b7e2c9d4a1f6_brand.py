"""brand: the company's name, colour, logo and favicon; the rep's photo and headline; brand images

Revision ID: b7e2c9d4a1f6
Revises: f61894b0b141
Create Date: 2026-12-02 18:30:00.000000

Issue 14 (E4, D2). Images live in the database (app/brand/models.py says why); the tenant and user columns
hold their file names, without a foreign key: rows of brand_images are never changed or deleted on their
own (old emails keep showing an old logo), so a name never dangles.
"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "b7e2c9d4a1f6"
down_revision = "f61894b0b141"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "brand_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=80), nullable=False),
        sa.Column("content_type", sa.String(length=32), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('logo', 'favicon', 'photo')", name=op.f("ck_brand_images_kind")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_brand_images_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_images")),
        sa.UniqueConstraint("tenant_id", "filename", name="uq_brand_images_tenant_id_filename"),
    )
    op.create_index("ix_brand_images_filename", "brand_images", ["filename"], unique=False)
    op.create_index(op.f("ix_brand_images_tenant_id"), "brand_images", ["tenant_id"], unique=False)
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("brand_name", sa.String(length=120), server_default="", nullable=False))
        batch.add_column(sa.Column("brand_color", sa.String(length=7), nullable=True))
        batch.add_column(sa.Column("brand_logo", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("brand_favicon", sa.String(length=80), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("photo", sa.String(length=80), nullable=True))
        batch.add_column(sa.Column("headline", sa.String(length=120), server_default="", nullable=False))


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_column("headline")
        batch.drop_column("photo")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("brand_favicon")
        batch.drop_column("brand_logo")
        batch.drop_column("brand_color")
        batch.drop_column("brand_name")
    op.drop_index(op.f("ix_brand_images_tenant_id"), table_name="brand_images")
    op.drop_index("ix_brand_images_filename", table_name="brand_images")
    op.drop_table("brand_images")
