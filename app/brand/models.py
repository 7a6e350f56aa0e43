"""Brand images, stored in the database.

Why the database and not the instance folder: web processes scale out over machines (docs/operations.md),
and the files are small (a re-encoded logo is tens of KB, a photo ~20 KB), so PostgreSQL is the one store
every process already shares and backs up; a disk under ``instance/`` would hold the image on one machine
only. Each process keeps the images it served in memory (``app/brand/services.py``), and the URL carries the
content's hash, so a browser asks once and a repeat visit costs no query at all.

Rows are never changed and not deleted when a newer image replaces them: emails already sent show the
logo through its old URL. A tenant's images go with the tenant (ON DELETE CASCADE).
"""

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantOwnedMixin, TimestampMixin, check_one_of
from app.extensions import db

IMAGE_KINDS = ("logo", "favicon", "photo")


class BrandImage(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "brand_images"
    __table_args__ = (
        check_one_of("kind", IMAGE_KINDS),
        sa.UniqueConstraint("tenant_id", "filename", name="uq_brand_images_tenant_id_filename"),
        sa.Index("ix_brand_images_filename", "filename"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    # "<sha256 of data>.<png|jpg>": what Tenant.brand_logo, Tenant.brand_favicon and User.photo hold.
    filename: Mapped[str] = mapped_column(sa.String(80))
    content_type: Mapped[str] = mapped_column(sa.String(32))
    width: Mapped[int] = mapped_column()
    height: Mapped[int] = mapped_column()
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
