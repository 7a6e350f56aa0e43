"""Sales email templates and the emails reps send from a contact's record (P3, D3).

A template's body keeps its meeting links as page references (``{{ meeting_link }}``, the sender's default
page, or ``{{ meeting_link:<page id> }}``), never as URLs: the URL is built when an email is sent, from the
page's current path and host, so a page that moved since the template was written still gets the right link.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crm.models import Contact
from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, utcnow
from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages.models import Booking
from app.tenants.models import User

NAME_MAX = 120
SUBJECT_MAX = 200
BODY_MAX = 20_000  # characters of the template's source; plenty for a sales email, bounded for the outbox row
REF_LENGTH = 16  # secrets.token_urlsafe(12): 96 random bits


class EmailTemplate(TenantOwnedMixin, TimestampMixin, db.Model):
    """A rep's personal template (``owner_id`` set) or a team template every rep can use (``owner_id`` NULL,
    written by admins)."""

    __tablename__ = "email_templates"
    __table_args__ = (sa.Index("ix_email_templates_tenant_id_owner_id", "tenant_id", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    subject: Mapped[str] = mapped_column(sa.String(SUBJECT_MAX))
    body: Mapped[str] = mapped_column(sa.Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship()

    @property
    def is_team(self) -> bool:
        return self.owner_id is None


class SentEmail(TenantOwnedMixin, TimestampMixin, db.Model):
    """One email a rep sent to a contact, as it went out; its delivery is the outbox row's.

    ``ref`` rides on every meeting link of the email (``?ref=``), so a booking made through one of them
    records the email it came from (``bookings.sent_email_id``). It is random, not derived from the id, so
    nobody can attribute a booking to another email by guessing.
    """

    __tablename__ = "sent_emails"
    __table_args__ = (
        sa.Index("ix_sent_emails_tenant_id_contact_id", "tenant_id", "contact_id"),
        sa.Index("ix_sent_emails_sender_id_created_at", "sender_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    contact_id: Mapped[int] = mapped_column(sa.ForeignKey("contacts.id", ondelete="CASCADE"))
    sender_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    template_id: Mapped[int | None] = mapped_column(sa.ForeignKey("email_templates.id", ondelete="SET NULL"))
    to_email: Mapped[str] = mapped_column(sa.String(254))
    subject: Mapped[str] = mapped_column(sa.String(SUBJECT_MAX))
    text: Mapped[str] = mapped_column(sa.Text)  # the text part as sent, for the record
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    outbox_id: Mapped[int | None] = mapped_column(
        sa.BigInteger, sa.ForeignKey("outbox.id", ondelete="SET NULL")
    )

    contact: Mapped[Contact] = relationship()
    sender: Mapped[User] = relationship()
    template: Mapped[EmailTemplate | None] = relationship()
    outbox: Mapped[OutboxMessage | None] = relationship()
    bookings: Mapped[list[Booking]] = relationship(back_populates="sent_email", order_by=Booking.start_at)

    @property
    def delivery_status(self) -> str:
        """pending, delivered or failed: the outbox row's; "pending" until it exists."""
        return self.outbox.status if self.outbox is not None else "pending"
