"""The website chat widget (E2, P5): a tenant's widget settings, the members who answer, conversations with
visitors and their messages.

A visitor has no account and no cookie: a conversation is found by its **secret**, a random string the
widget script keeps in the host page's own localStorage and hands to the panel (docs/architecture.md,
"Chat widget"). Only its sha256 is stored. ``ref`` is a second random string that rides on the meeting
links shown in the conversation (``?ref=``), so a booking made through one is linked back to it; it
cannot be used to read the conversation.
"""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.crm.models import Contact
from app.db import TenantOwnedMixin, TimestampMixin, UTCDateTime, check_one_of, utcnow
from app.extensions import db
from app.pages.models import Booking, SchedulingPage
from app.tenants.models import Tenant, User

POSITIONS = ("right", "left")
LANGUAGES = ("en", "pl")
STATUSES = ("open", "closed")
SENDERS = ("visitor", "rep", "system")
KINDS = ("text", "meeting_link", "booking", "email")
WELCOME_MAX = 500
MESSAGE_MAX = 2000  # characters a visitor or a rep may write in one message
DEFAULT_ASK_EMAIL_SECONDS = 120


class ChatSettings(TenantOwnedMixin, TimestampMixin, db.Model):
    """One row per tenant that has opened the widget settings; ``widget_id`` is public (it is in the
    snippet), so it identifies the tenant's widget on the app host and grants nothing."""

    __tablename__ = "chat_settings"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        check_one_of("position", POSITIONS),
        check_one_of("language", LANGUAGES),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    widget_id: Mapped[str] = mapped_column(sa.String(32), unique=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    welcome_message: Mapped[str] = mapped_column(sa.String(WELCOME_MAX), default="")
    # "#rrggbb", or NULL: the company's brand colour when it has one, else Termin's.
    color: Mapped[str | None] = mapped_column(sa.String(7))
    position: Mapped[str] = mapped_column(sa.String(8), default="right")
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    # The page *Book a meeting* offers: a rep's default page or a team page (NULL: none offered).
    booking_page_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("scheduling_pages.id", ondelete="SET NULL")
    )
    ask_email_after_seconds: Mapped[int] = mapped_column(default=DEFAULT_ASK_EMAIL_SECONDS)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    tenant: Mapped[Tenant] = relationship()
    booking_page: Mapped[SchedulingPage | None] = relationship()


class ChatMember(TenantOwnedMixin, TimestampMixin, db.Model):
    """A user who answers the chat; ``seen_at`` is their last request to the Inbox ("online", below)."""

    __tablename__ = "chat_members"
    __table_args__ = (sa.UniqueConstraint("tenant_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class Conversation(TenantOwnedMixin, TimestampMixin, db.Model):
    __tablename__ = "chat_conversations"
    __table_args__ = (
        check_one_of("status", STATUSES),
        sa.Index("ix_chat_conversations_tenant_id_last_message_at", "tenant_id", "last_message_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    ref: Mapped[str] = mapped_column(sa.String(32), unique=True)
    status: Mapped[str] = mapped_column(sa.String(8), default="open")
    assignee_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(sa.ForeignKey("contacts.id", ondelete="SET NULL"))
    visitor_email: Mapped[str | None] = mapped_column(sa.String(254))
    # The visitor's messages no rep has opened yet (the Inbox's unread count).
    unread: Mapped[int] = mapped_column(default=0)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The first visitor message still waiting for a rep's answer (NULL: none waiting); drives the email ask.
    waiting_since: Mapped[datetime | None] = mapped_column(UTCDateTime)

    assignee: Mapped[User | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    messages: Mapped[list["ChatMessage"]] = relationship(
        back_populates="conversation", order_by="ChatMessage.id", cascade="all, delete-orphan"
    )


class ChatMessage(TenantOwnedMixin, TimestampMixin, db.Model):
    """One line of a conversation: text (always shown as text), a meeting link (a page, its URL built when
    shown), a booking made through one, or the visitor's email."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        check_one_of("sender", SENDERS),
        check_one_of("kind", KINDS),
        sa.Index("ix_chat_messages_conversation_id_id", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    conversation_id: Mapped[int] = mapped_column(sa.ForeignKey("chat_conversations.id", ondelete="CASCADE"))
    sender: Mapped[str] = mapped_column(sa.String(8))
    author_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(sa.String(16), default="text")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    page_id: Mapped[int | None] = mapped_column(sa.ForeignKey("scheduling_pages.id", ondelete="SET NULL"))
    booking_id: Mapped[int | None] = mapped_column(sa.ForeignKey("bookings.id", ondelete="SET NULL"))

    conversation: Mapped[Conversation] = relationship(back_populates="messages")
    author: Mapped[User | None] = relationship()
    page: Mapped[SchedulingPage | None] = relationship()
    booking: Mapped[Booking | None] = relationship()
