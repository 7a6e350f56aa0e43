"""Scheduling pages, the bookings made on them, and the old paths that still lead to them (P1-P6, D2, D5).

A page belongs to one rep (``owner``); round-robin and group pages will add a page-to-hosts table beside
``owner_id`` rather than change these rows. Availability is stored as wall-clock ranges in the page's IANA
zone (never as UTC times of day, which drift at DST) and turned into ``availability.PageRules`` on read.
"""

from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crm.models import Contact, Meeting
from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, check_one_of, utcnow
from app.extensions import db
from app.tenants.models import Domain, JSONType, User

BOOKING_STATUSES = ("confirmed", "cancelled")
# One-on-one pages belong to their owner; team pages (T1) book with their members.
PAGE_KINDS = ("one_on_one", "round_robin", "group")
# How a round-robin page picks among the members free at the chosen time (T1).
ASSIGNMENT_RULES = ("even", "weighted", "owner_first")


class SchedulingPage(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "scheduling_pages"
    __table_args__ = (
        # The rep's slug is unique across Termin and this one within the rep's pages, so a page's path
        # /meetings/<user-slug>/<slug> is unique across every tenant and domain (D5).
        sa.UniqueConstraint("owner_id", "slug", name="uq_scheduling_pages_owner_id_slug"),
        sa.CheckConstraint("slug = lower(slug)", name="slug_lower"),
        sa.CheckConstraint("buffer_before >= 0 AND buffer_after >= 0", name="buffers_not_negative"),
        sa.CheckConstraint("min_notice >= 0", name="min_notice_not_negative"),
        sa.CheckConstraint("horizon_days IS NULL OR horizon_days >= 1", name="horizon_positive"),
        sa.CheckConstraint("date_from IS NULL OR date_to IS NULL OR date_from <= date_to", name="date_range"),
        sa.CheckConstraint(
            "max_bookings_per_day IS NULL OR max_bookings_per_day >= 1", name="max_bookings_per_day_positive"
        ),
        # P3: at most one default page a rep.
        sa.Index(
            "uq_scheduling_pages_default",
            "owner_id",
            unique=True,
            postgresql_where=sa.text("is_default"),
            sqlite_where=sa.text("is_default"),
        ),
        check_one_of("kind", PAGE_KINDS),
        check_one_of("assignment", ASSIGNMENT_RULES),
        # A team page's path is /meetings/team/<slug>: its slug is unique among all team pages (D5), and
        # "team" is a reserved user slug, so no personal page can share the path.
        sa.Index(
            "uq_scheduling_pages_team_slug",
            "slug",
            unique=True,
            postgresql_where=sa.text("kind <> 'one_on_one'"),
            sqlite_where=sa.text("kind <> 'one_on_one'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    slug: Mapped[str] = mapped_column(sa.String(64))
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    location: Mapped[str] = mapped_column(sa.String(500), default="")
    is_default: Mapped[bool] = mapped_column(default=False)
    # The host the page is served on: None is the app host, else a verified domain of the tenant (D1, D3).
    domain_id: Mapped[int | None] = mapped_column(sa.ForeignKey("domains.id", ondelete="SET NULL"))
    # D4: <meta name="robots" content="noindex"> and X-Robots-Tag, since Disallow alone does not de-index.
    hide_from_search: Mapped[bool] = mapped_column(default=False)

    # Availability (P1), all whole minutes; see availability.PageRules for the meaning of each.
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    # {"weekly": [[weekday, "HH:MM", "HH:MM"], ...], "overrides": [{"day": "YYYY-MM-DD", "ranges": [...]}]}
    availability: Mapped[dict] = mapped_column(JSONType)
    durations: Mapped[list] = mapped_column(JSONType)  # minutes, the first the default
    increment: Mapped[int | None] = mapped_column()
    buffer_before: Mapped[int] = mapped_column(default=0)
    buffer_after: Mapped[int] = mapped_column(default=0)
    min_notice: Mapped[int] = mapped_column(default=0)
    # No default: None (no rolling limit, a date-range page) must reach the INSERT as NULL.
    horizon_days: Mapped[int | None] = mapped_column()
    date_from: Mapped[date | None] = mapped_column(sa.Date)
    date_to: Mapped[date | None] = mapped_column(sa.Date)
    # At most this many bookings on one day (the page's zone) on this page; None: no cap. A full day offers
    # no times, so no one can fill a rep's calendar from one page (Calendly's "max events per day").
    max_bookings_per_day: Mapped[int | None] = mapped_column()
    # Ask visitors to confirm their email before the booking is final: the time is held (``BookingHold``)
    # until they follow the emailed link, so no booking, contact or calendar event is made for an address
    # nobody reads.
    confirm_email: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    # The booking form: first name, last name and email always; then these questions, in order:
    # [{"id": "q1", "label": "...", "kind": "text"|"choice", "required": bool, "choices": ["..."]}]
    questions: Mapped[list] = mapped_column(JSONType, default=list)
    # A consent checkbox the visitor must tick, shown when set.
    consent_text: Mapped[str] = mapped_column(sa.Text, default="")
    confirmation_message: Mapped[str] = mapped_column(sa.Text, default="")
    redirect_url: Mapped[str] = mapped_column(sa.String(2048), default="")
    # T2: reminder emails, minutes before the start (at most three), to the visitor and, with
    # ``remind_rep``, to the rep too.
    reminders: Mapped[list] = mapped_column(JSONType, default=list, server_default="[]")
    remind_rep: Mapped[bool] = mapped_column(default=False, server_default=sa.false())

    # T1: "one_on_one" books the owner; "round_robin" one free member chosen by ``assignment``; "group"
    # every member at once. A team page's owner is whoever manages it (an admin), and the organizer of a
    # group meeting when they are a member.
    kind: Mapped[str] = mapped_column(sa.String(16), default="one_on_one", server_default="one_on_one")
    assignment: Mapped[str] = mapped_column(sa.String(16), default="even", server_default="even")

    owner: Mapped[User] = relationship()
    domain: Mapped[Domain | None] = relationship()
    members: Mapped[list["PageMember"]] = relationship(
        back_populates="page", cascade="all, delete-orphan", order_by="PageMember.position, PageMember.id"
    )

    @property
    def is_team(self) -> bool:
        return self.kind != "one_on_one"

    @property
    def host_name(self) -> str:
        """Whom the visitor books, as the public page names it: the rep; for round robin the company
        (the member is chosen at booking); for a group every member on the page."""
        if self.kind == "round_robin":
            return self.owner.tenant.name
        if self.kind == "group":
            return ", ".join(member.user.name for member in self.members if not member.paused)
        return self.owner.name


class PageMember(TenantOwnedMixin, TimestampMixin, db.Model):
    """A user a team page books with (T1): their weight (weighted round robin) and whether they are paused
    (kept on the page, offered nothing until resumed)."""

    __tablename__ = "page_members"
    __table_args__ = (
        sa.UniqueConstraint("page_id", "user_id", name="uq_page_members_page_id_user_id"),
        sa.CheckConstraint("weight >= 1", name="weight_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("scheduling_pages.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    weight: Mapped[int] = mapped_column(default=1, server_default="1")
    paused: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    position: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the tenant's admins were told this member is left out for an inactive calendar (once, until
    # the calendar is back).
    excluded_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    page: Mapped[SchedulingPage] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class SlugAlias(TenantOwnedMixin, TimestampMixin, db.Model):
    """A slug a rep or a page had before, so a link already sent keeps working with a 301 (P2).

    ``page_id`` None: an old user slug (unique across Termin, like the live ones). Otherwise an old page
    slug, unique within its owner's pages.
    """

    __tablename__ = "slug_aliases"
    __table_args__ = (
        sa.CheckConstraint("slug = lower(slug)", name="slug_lower"),
        sa.Index(
            "uq_slug_aliases_user_slug",
            "slug",
            unique=True,
            postgresql_where=sa.text("page_id IS NULL"),
            sqlite_where=sa.text("page_id IS NULL"),
        ),
        sa.Index(
            "uq_slug_aliases_page_slug",
            "user_id",
            "slug",
            unique=True,
            postgresql_where=sa.text("page_id IS NOT NULL AND NOT team"),
            sqlite_where=sa.text("page_id IS NOT NULL AND NOT team"),
        ),
        # An old slug of a team page, unique among them like the live ones.
        sa.Index(
            "uq_slug_aliases_team_slug",
            "slug",
            unique=True,
            postgresql_where=sa.text("team"),
            sqlite_where=sa.text("team"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    page_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("scheduling_pages.id", ondelete="CASCADE"), index=True
    )
    slug: Mapped[str] = mapped_column(sa.String(64))
    team: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Booking(TenantOwnedMixin, TimestampMixin, db.Model):
    """A visitor's booking on a page. Two confirmed bookings of one rep can never overlap (P6).

    PostgreSQL enforces it with an exclusion constraint (added in the migration, as SQLAlchemy cannot
    declare one portably): ``EXCLUDE USING gist (owner_id WITH =, tstzrange(start_at, end_at) WITH &&)
    WHERE (status = 'confirmed')``. The booking service also serialises a rep's bookings, so a lost race
    is a clean 409 rather than a constraint error; the constraint is what makes an overlap impossible.
    """

    __tablename__ = "bookings"
    __table_args__ = (
        check_one_of("status", BOOKING_STATUSES),
        sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
        sa.UniqueConstraint("page_id", "idempotency_key", name="uq_bookings_page_id_idempotency_key"),
        sa.Index("ix_bookings_owner_id_start_at", "owner_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # A page deleted later leaves its bookings (and their meetings) in place.
    page_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scheduling_pages.id", ondelete="SET NULL"))
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    contact_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    meeting_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("meetings.id", ondelete="SET NULL"), index=True
    )
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(sa.String(16), default="confirmed")
    # What the visitor sent: the same key twice (a double submit, a retried request) is one booking.
    idempotency_key: Mapped[str] = mapped_column(sa.String(100))
    first_name: Mapped[str] = mapped_column(sa.String(80))
    last_name: Mapped[str] = mapped_column(sa.String(80))
    email: Mapped[str] = mapped_column(sa.String(254))
    time_zone: Mapped[str] = mapped_column(sa.String(64))  # the visitor's, for their emails
    locale: Mapped[str] = mapped_column(sa.String(8), default="en")
    # [{"id", "label", "answer"}]: the labels as they were asked, so editing the page later does not change
    # what a booking says was asked.
    answers: Mapped[list] = mapped_column(JSONType, default=list)
    consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The cancel/reschedule link carries a token whose SHA-256 alone is stored.
    manage_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(sa.Text, default="")
    rescheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Why the visitor moved it last (optional; told to the rep with the new time).
    reschedule_reason: Mapped[str] = mapped_column(sa.Text, default="", server_default="")
    # A group page's booking holds every member: the visitor's booking (owner: the organizer) and one
    # companion row a further member, pointing at it, so each member's time is held by the same exclusion
    # constraint as a personal booking.
    parent_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("bookings.id", ondelete="CASCADE"), index=True
    )
    # The sales email whose meeting link the visitor followed (its ``?ref=``), when they came from one.
    sent_email_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("sent_emails.id", ondelete="SET NULL"), index=True
    )
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    page: Mapped[SchedulingPage | None] = relationship()
    owner: Mapped[User] = relationship()
    contact: Mapped[Contact | None] = relationship()
    meeting: Mapped[Meeting | None] = relationship()
    companions: Mapped[list["Booking"]] = relationship(back_populates="parent", order_by="Booking.id")
    parent: Mapped["Booking | None"] = relationship(back_populates="companions", remote_side=[id])
    # By name, unannotated: app.emails.models imports this module (its SentEmail lists the bookings it led
    # to), so SentEmail cannot be imported here.
    sent_email = relationship("SentEmail", back_populates="bookings")

    @property
    def is_confirmed(self) -> bool:
        return self.status == "confirmed"

    @property
    def visitor_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class BookingAttempt(TenantOwnedMixin, db.Model):
    """Attempts to book a rep while their booking is paused (C11): one row per rep and hour, with a count.

    A visit to a paused page (the page, a day, a time, its slots.json) counts as an attempt, as does a
    refused booking or reschedule, so the row is bumped in place (an upsert on the rep and hour) rather
    than one row written per request: a crawler or a crowd cannot grow the table. ``email`` and
    ``page_id`` are the latest known of the hour. The rep is emailed at most once an hour, which
    ``users.paused_booking_notified_at`` tracks.
    """

    __tablename__ = "booking_attempts"
    __table_args__ = (
        sa.UniqueConstraint("owner_id", "hour_start", name="uq_booking_attempts_owner_id_hour_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    hour_start: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=1)
    page_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scheduling_pages.id", ondelete="SET NULL"))
    email: Mapped[str] = mapped_column(sa.String(254), default="")
    reason: Mapped[str] = mapped_column(sa.String(500))
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BookingHold(TenantOwnedMixin, TimestampMixin, db.Model):
    """A time held for a visitor who must confirm their email first (``SchedulingPage.confirm_email``).

    Until ``expires_at`` the time counts as busy (``services.busy_intervals``); following the emailed link
    turns it into a booking through the normal booking service, with what the visitor typed (``request``).
    Past ``expires_at`` it is ignored, and it is deleted when the rep's next hold is made. The link's token
    is stored hashed.
    """

    __tablename__ = "booking_holds"
    __table_args__ = (
        sa.CheckConstraint("end_at > start_at", name="ends_after_start"),
        sa.Index("ix_booking_holds_owner_id_start_at", "owner_id", "start_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    page_id: Mapped[int] = mapped_column(sa.ForeignKey("scheduling_pages.id", ondelete="CASCADE"), index=True)
    owner_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[datetime] = mapped_column(UTCDateTime)
    email: Mapped[str] = mapped_column(sa.String(254))
    # The rest of the visitor's booking request: names, zone, language, answers, consent, idempotency key.
    request: Mapped[dict] = mapped_column(JSONType)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    page: Mapped[SchedulingPage] = relationship()
    owner: Mapped[User] = relationship()
