"""Tenants, their users and invitations, and the domains that serve their public pages."""

from datetime import datetime

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, check_one_of
from app.extensions import db

ROLES = ("admin", "rep")
SEATS = ("none", "sales", "service")
# "removed": the admin removed it; kept so links already sent on it still redirect to the pages (D3).
DOMAIN_STATUSES = ("pending", "verified", "failed", "removed")
LOCALES = ("en", "pl")
# JSON in SQLite (the demo), JSONB in PostgreSQL.
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class Tenant(TimestampMixin, db.Model):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # P4, for the whole tenant: an admin switches every scheduling page off (and back on, unchanged).
    pages_disabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The brand (E4, D2) its public pages, emails and widget show; app/brand/services.py:brand_for reads it.
    # The images are named by their content hash ("<sha256>.png", rows of brand_images): the page builds
    # their immutable URLs from this row alone, with no join and no query for the image.
    brand_name: Mapped[str] = mapped_column(sa.String(120), default="", server_default="")
    brand_color: Mapped[str | None] = mapped_column(sa.String(7))
    brand_logo: Mapped[str | None] = mapped_column(sa.String(80))
    brand_favicon: Mapped[str | None] = mapped_column(sa.String(80))

    users: Mapped[list["User"]] = relationship(back_populates="tenant", order_by="User.id")
    domains: Mapped[list["Domain"]] = relationship(back_populates="tenant", order_by="Domain.hostname")

    def __repr__(self) -> str:
        return f"<Tenant {self.id} {self.name!r}>"


class User(UserMixin, TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        check_one_of("role", ROLES),
        check_one_of("seat", SEATS),
        check_one_of("locale", LOCALES),
        # Stored lower-cased, so a plain unique index is a case-insensitive one.
        sa.CheckConstraint("email = lower(email)", name="email_lower"),
        sa.CheckConstraint("page_slug = lower(page_slug)", name="page_slug_lower"),
        sa.CheckConstraint(
            "daily_meeting_limit IS NULL OR daily_meeting_limit >= 1", name="daily_meeting_limit_positive"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # One account per email address across Termin: the login form has no tenant to pick.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    # Job title, signed under sales emails ({{ rep.title }}).
    title: Mapped[str] = mapped_column(sa.String(120), default="", server_default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[str] = mapped_column(sa.String(16), default="rep")
    seat: Mapped[str] = mapped_column(sa.String(16), default="none")
    time_zone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    locale: Mapped[str] = mapped_column(sa.String(8), default="en")
    # The rep's part of every scheduling-page path (/meetings/<page_slug>); unique across all tenants.
    page_slug: Mapped[str] = mapped_column(sa.String(64), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)
    # P4: the rep switches all their scheduling pages off without deleting them.
    pages_disabled: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # C11: when the rep was last emailed that someone tried to book while booking was paused (hourly at most).
    paused_booking_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # T1, T4: the rep's own limits on every page, in the rep's time zone. Working hours as a page stores its
    # weekly hours ([[weekday, "HH:MM", "HH:MM"], ...]; None: no limit beyond each page's hours), time off
    # as inclusive date ranges ([["YYYY-MM-DD", "YYYY-MM-DD"], ...]), and the most meetings booked on any of
    # the rep's pages that one local day may hold (None: no maximum).
    working_hours: Mapped[list | None] = mapped_column(JSONType)
    time_off: Mapped[list] = mapped_column(JSONType, default=list, server_default="[]")
    daily_meeting_limit: Mapped[int | None] = mapped_column()
    # Shown beside the rep's name on their scheduling pages: a photo (a brand_images file name, as the
    # tenant's logo) and one line about them ("Helps teams of 5-50 choose a plan").
    photo: Mapped[str | None] = mapped_column(sa.String(80))
    headline: Mapped[str] = mapped_column(sa.String(120), default="", server_default="")

    tenant: Mapped[Tenant] = relationship(back_populates="users")

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"


class Invitation(TenantOwnedMixin, TimestampMixin, db.Model):
    """A pending seat in a tenant; the link carries a token whose hash alone is stored."""

    __tablename__ = "invitations"
    __table_args__ = (
        check_one_of("role", ROLES),
        check_one_of("seat", SEATS),
        sa.CheckConstraint("email = lower(email)", name="email_lower"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254))
    role: Mapped[str] = mapped_column(sa.String(16), default="rep")
    seat: Mapped[str] = mapped_column(sa.String(16), default="none")
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship()
    invited_by: Mapped[User | None] = relationship()


class Domain(TenantOwnedMixin, TimestampMixin, db.Model):
    """A host name a tenant serves its public pages on, once ownership is verified by a DNS TXT record."""

    __tablename__ = "domains"
    __table_args__ = (
        check_one_of("status", DOMAIN_STATUSES),
        sa.CheckConstraint("hostname = lower(hostname)", name="hostname_lower"),
        # Several tenants may claim a name while it is pending; only one can ever hold it verified.
        sa.UniqueConstraint("tenant_id", "hostname", name="uq_domains_tenant_id_hostname"),
        sa.Index(
            "uq_domains_verified_hostname",
            "hostname",
            unique=True,
            postgresql_where=sa.text("status = 'verified'"),
            sqlite_where=sa.text("status = 'verified'"),
        ),
        sa.Index("ix_domains_hostname", "hostname"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    hostname: Mapped[str] = mapped_column(sa.String(253))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")
    verification_token: Mapped[str] = mapped_column(sa.String(64))
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failure_reason: Mapped[str | None] = mapped_column(sa.String(500))
    robots_txt: Mapped[str | None] = mapped_column(sa.Text)
    # The periodic re-check: when DNS was last asked, and since when a verified domain's record has been
    # missing (it stays verified through a grace period, so a DNS hiccup does not take pages down).
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship(back_populates="domains")

    @property
    def is_verified(self) -> bool:
        return self.status == "verified"

    @property
    def challenge_name(self) -> str:
        """Where the TXT record proving ownership lives."""
        return f"_termin-challenge.{self.hostname}"


class UserSession(TimestampMixin, db.Model):
    """One signed-in browser. Its random id rides in the signed session cookie; only its hash is kept here.

    Every request of a signed-in user needs its row (``services.get_user_for_session``), so deleting rows
    ends sessions server-side: sign-out its own, *Sign out everywhere*, a password change or reset all of
    the user's. A copied session cookie is worth nothing once its row is gone.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RememberToken(TimestampMixin, db.Model):
    """A "Keep me signed in" cookie: random, stored hashed, used once (each use swaps it for a new one),
    expiring; ended with the user's sessions."""

    __tablename__ = "remember_tokens"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PasswordReset(TimestampMixin, db.Model):
    """A "Forgot password" link: its token is mailed once and only its hash kept. It works for an hour and
    once: setting a password deletes every reset of the user."""

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class SignupRequest(TimestampMixin, db.Model):
    """A sign-up waiting for its address to be confirmed (issue 15): no tenant or user exists yet, so the
    address is not taken (an invitation to it still works) until the emailed link is followed. The link's
    token is stored hashed; the request expires."""

    __tablename__ = "signup_requests"
    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lower"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), index=True)
    company: Mapped[str] = mapped_column(sa.String(120))
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    time_zone: Mapped[str] = mapped_column(sa.String(64))
    locale: Mapped[str] = mapped_column(sa.String(8))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
