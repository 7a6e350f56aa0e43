"""Contacts and what happens with them: meetings and tasks."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, check_one_of, utcnow
from app.extensions import db
from app.tenants.models import User

MEETING_SOURCES = ("calendar", "crm", "page")
MEETING_STATUSES = ("scheduled", "cancelled")
TASK_STATUSES = ("open", "completed")


class Contact(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "contacts"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id", "email", name="uq_contacts_tenant_id_email"),
        sa.CheckConstraint("email = lower(email)", name="email_lower"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    first_name: Mapped[str] = mapped_column(sa.String(80), default="")
    last_name: Mapped[str] = mapped_column(sa.String(80), default="")
    company: Mapped[str] = mapped_column(sa.String(120), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    @property
    def display_name(self) -> str:
        full = f"{self.first_name} {self.last_name}".strip()
        return full or self.email


class MeetingContact(db.Model):
    __tablename__ = "meeting_contacts"

    meeting_id: Mapped[int] = mapped_column(
        sa.ForeignKey("meetings.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Meeting(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "meetings"
    __table_args__ = (
        check_one_of("source", MEETING_SOURCES),
        check_one_of("status", MEETING_STATUSES),
        sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
        sa.Index("ix_meetings_tenant_id_start_at", "tenant_id", "start_at"),
        # A calendar event is one meeting per rep and occurrence, however many of the rep's calendars hold
        # it and however many syncs race to write it (the sync engine inserts with ON CONFLICT DO NOTHING).
        # Two partial indexes rather than one over coalesce(recurrence_id, ...): plain columns on both
        # PostgreSQL and SQLite, which autogenerate can compare.
        sa.Index(
            "uq_meetings_calendar_event",
            "tenant_id",
            "owner_id",
            "uid",
            unique=True,
            postgresql_where=sa.text("source = 'calendar' AND recurrence_id IS NULL"),
            sqlite_where=sa.text("source = 'calendar' AND recurrence_id IS NULL"),
        ),
        sa.Index(
            "uq_meetings_calendar_occurrence",
            "tenant_id",
            "owner_id",
            "uid",
            "recurrence_id",
            unique=True,
            postgresql_where=sa.text("source = 'calendar' AND recurrence_id IS NOT NULL"),
            sqlite_where=sa.text("source = 'calendar' AND recurrence_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(sa.String(16))
    status: Mapped[str] = mapped_column(sa.String(16), default="scheduled")
    notes: Mapped[str] = mapped_column(sa.Text, default="")
    # The iCalendar UID of the meeting's calendar event: chosen by us before writing (crm, page), or
    # read from the calendar (calendar). Set once; a retried write reuses it and cannot duplicate.
    uid: Mapped[str | None] = mapped_column(sa.String(1024), index=True)
    # Calendar meetings of a recurring event: which occurrence, as its original start (RECURRENCE-ID) in
    # UTC, midnight UTC for a date; NULL for a single event. ``uid`` stays the event's own UID.
    recurrence_id: Mapped[datetime | None] = mapped_column(UTCDateTime)
    calendar_id: Mapped[int | None] = mapped_column(sa.ForeignKey("calendars.id", ondelete="SET NULL"))
    provider_event_id: Mapped[str | None] = mapped_column(sa.String(1024))
    # RFC 5546 SEQUENCE of the event we wrote: raised on each reschedule, so an iMIP update outranks the
    # invitation it replaces.
    sequence: Mapped[int] = mapped_column(default=0, server_default="0")

    owner: Mapped[User] = relationship()
    contacts: Mapped[list[Contact]] = relationship(secondary="meeting_contacts", order_by=Contact.id)


class Task(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "tasks"
    __table_args__ = (
        check_one_of("status", TASK_STATUSES),
        sa.Index("ix_tasks_tenant_id_owner_id_status", "tenant_id", "owner_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(sa.String(200))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="open")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # C6: where the task's event sits in the rep's task sub-calendar, once written there.
    calendar_id: Mapped[int | None] = mapped_column(sa.ForeignKey("calendars.id", ondelete="SET NULL"))
    provider_event_id: Mapped[str | None] = mapped_column(sa.String(1024))

    owner: Mapped[User] = relationship()
    contact: Mapped[Contact | None] = relationship()
