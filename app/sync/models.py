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
    # C11: the health probe's last look, and when the rep was last told the account went inactive
    # (told once per outage, not once per probe).
    health_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    inactive_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

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
    # C6: the sub-calendar Termin created for the rep's tasks (never a source of meetings or busy time).
    is_task_calendar: Mapped[bool] = mapped_column(default=False)
    inactive_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The provider's cursor (sync token, delta link, CalDAV sync-token or ctag state); None: full sync next.
    sync_state: Mapped[str | None] = mapped_column(sa.Text)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    sync_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(sa.String(500))
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    connection: Mapped[CalendarConnection] = relationship(back_populates="calendars")

    @property
    def is_active(self) -> bool:
        return self.status == "active"

    @property
    def shows_event_details(self) -> bool:
        return self.access != "freebusy"


class SyncedEvent(TenantOwnedMixin, db.Model):
    """One event (or one occurrence override) seen in a calendar, keyed as the calendar knows it.

    The unique key (calendar, iCalendar UID, recurrence id) makes a sync idempotent: running it twice, or
    re-running one killed half-way, updates these rows instead of adding new ones. Only times and the
    link to a CRM meeting are kept, never titles or attendees of calendars that only feed availability.
    """

    __tablename__ = "synced_events"
    __table_args__ = (
        sa.UniqueConstraint(
            "calendar_id", "uid", "recurrence_id", name="uq_synced_events_calendar_uid_recurrence"
        ),
        sa.Index("ix_synced_events_calendar_id_provider_event_id", "calendar_id", "provider_event_id"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    calendar_id: Mapped[int] = mapped_column(sa.ForeignKey("calendars.id", ondelete="CASCADE"))
    uid: Mapped[str] = mapped_column(sa.String(1024))
    recurrence_id: Mapped[str] = mapped_column(sa.String(64), default="")  # "" for single events and series
    provider_event_id: Mapped[str] = mapped_column(sa.String(1024))
    meeting_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("meetings.id", ondelete="SET NULL"), index=True
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_busy: Mapped[bool] = mapped_column(default=True)
    # A digest of what the sync read, so an unchanged event costs no write.
    digest: Mapped[str] = mapped_column(sa.String(64))


class BusyBlock(db.Model):
    """A busy interval of one calendar, the only thing the slot engine reads (C8): no event details.

    Recurring events are expanded into one block per occurrence over the sync horizon.

    Only ``synced_event_id`` is a foreign key. ``tenant_id``, ``user_id`` and ``calendar_id`` are copies of
    that event's calendar's (the sync engine writes them from the calendar it syncs), kept so the slot
    engine reads blocks by rep without a join; a block goes with its synced event, which goes with its
    calendar, which goes with its connection, its user and its tenant, so foreign keys on the copies would
    add no cascade, only three lookups per inserted row (a third of a full sync's database time).
    """

    __tablename__ = "busy_blocks"
    __table_args__ = (sa.Index("ix_busy_blocks_user_id_start_at", "user_id", "start_at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(sa.Integer)
    user_id: Mapped[int] = mapped_column(sa.Integer)
    calendar_id: Mapped[int] = mapped_column(sa.Integer, index=True)
    synced_event_id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("synced_events.id", ondelete="CASCADE"),
        index=True,
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
