"""Connected calendar accounts and their calendars (C1, C2, C6-C9, C11)."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, check_one_of
from app.extensions import db
from app.tenants.models import User

PROVIDERS = ("google", "microsoft", "caldav")
STATUSES = ("active", "inactive")
ACCESS_LEVELS = ("owner", "writer", "reader", "freebusy")


class CalendarConnection(TenantOwnedMixin, TimestampMixin, db.Model):
    """One calendar account a rep connected. Its secret (OAuth tokens or CalDAV password) is encrypted."""

    __tablename__ = "calendar_connections"
    __table_args__ = (
        check_one_of("provider", PROVIDERS),
        check_one_of("status", STATUSES),
        # C1: one connection per account; connecting it again reconnects the same row and its choices.
        sa.UniqueConstraint("user_id", "provider", "account_id", name="uq_calendar_connections_account"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    account_id: Mapped[str] = mapped_column(sa.String(255))
    account_email: Mapped[str] = mapped_column(sa.String(254))
    server_url: Mapped[str | None] = mapped_column(sa.String(2048))  # CalDAV only
    username: Mapped[str | None] = mapped_column(sa.String(255))  # CalDAV only
    # CalDAV has no standard way to discover calendars others shared with you; the rep pastes their URLs.
    shared_calendar_urls: Mapped[str] = mapped_column(sa.Text, default="")
    secret_encrypted: Mapped[str] = mapped_column(sa.Text)
    token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    inactive_reason: Mapped[str | None] = mapped_column(sa.String(500))
    inactive_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # C2: both on by default after connecting; C6: task sync is opt-in and needs a seat.
    calendar_sync: Mapped[bool] = mapped_column(default=True)
    scheduling_pages: Mapped[bool] = mapped_column(default=True)
    task_sync: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship()
    calendars: Mapped[list["Calendar"]] = relationship(
        back_populates="connection", cascade="all, delete-orphan", order_by="Calendar.name"
    )

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def default_calendar(self) -> "Calendar | None":
        return next((c for c in self.calendars if c.is_default), None)


class Calendar(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "calendars"
    __table_args__ = (
        check_one_of("access", ACCESS_LEVELS),
        check_one_of("status", STATUSES),
        sa.UniqueConstraint("connection_id", "external_id", name="uq_calendars_connection_id_external_id"),
        # C9: availability may only read calendars that show event details.
        sa.CheckConstraint(
            "NOT (checks_availability AND access = 'freebusy')", name="details_for_availability"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(sa.ForeignKey("calendar_connections.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(sa.String(2048))
    name: Mapped[str] = mapped_column(sa.String(255))
    access: Mapped[str] = mapped_column(sa.String(16))
    is_primary: Mapped[bool] = mapped_column(default=False)
    # C7/C10: bookings go to the default calendar only.
    is_default: Mapped[bool] = mapped_column(default=False)
    # C8: availability is checked against every calendar with this set (the default one included).
    checks_availability: Mapped[bool] = mapped_column(default=False)
    time_zone: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="active")
    inactive_reason: Mapped[str | None] = mapped_column(sa.String(500))
    inactive_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sync_state: Mapped[str | None] = mapped_column(sa.Text)

    connection: Mapped[CalendarConnection] = relationship(back_populates="calendars")

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def shows_event_details(self) -> bool:
        return self.access != "freebusy"
