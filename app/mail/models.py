"""The outbox: every side effect that leaves Termin (a provider write, an email) is a row first.

A row is committed in the same transaction as the change that needs it, then delivered by a job. If the
job never runs (Redis flushed, worker killed), the sweeper finds the row by ``next_attempt_at`` and
enqueues it again; delivery is written so that running it twice has the effect of running it once.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, check_one_of
from app.extensions import db

OUTBOX_STATUSES = ("pending", "delivered", "failed")


class OutboxMessage(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "outbox"
    __table_args__ = (
        check_one_of("status", OUTBOX_STATUSES),
        sa.Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    # None: mail of no tenant yet (a sign-up's confirmation link, issue 15).
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True, nullable=True
    )
    # What to do: "calendar.write_meeting", "calendar.cancel_meeting", "tasks.sync", "mail.send", ...
    kind: Mapped[str] = mapped_column(sa.String(64))
    payload: Mapped[dict] = mapped_column(sa.JSON().with_variant(JSONB(), "postgresql"))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(1000))
