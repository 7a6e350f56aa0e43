"""The chat widget's rules (E2, P5): settings, conversations, messages, the email ask, meeting links.

Services take the tenant (and the acting user) and never read the request; the views in
``app/chat/views.py`` (the Inbox and the settings, app host) and ``app/chat/widget.py`` (the script and the
visitor's panel, any host of the tenant) call them, and the request boundary commits.

A visitor is identified only by the conversation's secret (see ``models``). The secret is made here, shown
once (to the panel that started the conversation) and stored as its sha256.
"""

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from app.chat.models import (
    DEFAULT_ASK_EMAIL_SECONDS,
    MESSAGE_MAX,
    ChatMember,
    ChatMessage,
    ChatSettings,
    Conversation,
)
from app.crm import services as crm
from app.crm.models import Contact
from app.errors import ChatError, CrmError
from app.extensions import db
from app.pages import services as pages
from app.pages.models import Booking, PageMember, SchedulingPage
from app.tenants import services as tenants
from app.tenants.models import Tenant, User

__all__ = ["ChatError", "CrmError"]

DEFAULT_COLOR = "#2563eb"  # Termin's own blue, when neither the settings nor the brand name one
WIDGET_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16}$")
SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16}$")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# --- Settings -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WidgetSettings:
    enabled: bool
    welcome_message: str
    color: str | None
    position: str
    language: str
    booking_page_id: int | None
    ask_email_after_seconds: int
    member_ids: tuple[int, ...]


def get_settings(tenant: Tenant) -> ChatSettings:
    """The tenant's widget settings, created (off) the first time anyone asks, with a fresh widget id."""
    found = db.session.scalar(sa.select(ChatSettings).where(ChatSettings.tenant_id == tenant.id))
    if found is None:
        found = ChatSettings(
            tenant_id=tenant.id,
            widget_id=secrets.token_urlsafe(12),
            enabled=False,
            welcome_message="",
            position="right",
            language="en",
            ask_email_after_seconds=DEFAULT_ASK_EMAIL_SECONDS,
        )
        db.session.add(found)
        db.session.flush()
    return found


def find_settings(tenant: Tenant) -> ChatSettings | None:
    """The settings if the tenant ever saved any (public views never create them)."""
    return db.session.scalar(sa.select(ChatSettings).where(ChatSettings.tenant_id == tenant.id))


def settings_by_widget_id(widget_id: str) -> ChatSettings | None:
    """The widget a snippet's public id names (a global identity, like a page path)."""
    if not WIDGET_ID_PATTERN.match(widget_id or ""):
        return None
    return db.session.scalar(sa.select(ChatSettings).where(ChatSettings.widget_id == widget_id))


def offered_pages(tenant: Tenant) -> list[SchedulingPage]:
    """What *Book a meeting* may offer: every rep's default page and the team pages."""
    defaults = db.session.scalars(
        sa.select(SchedulingPage)
        .join(User, User.id == SchedulingPage.owner_id)
        .where(SchedulingPage.tenant_id == tenant.id, SchedulingPage.is_default)
        .order_by(User.name, SchedulingPage.id)
    )
    return [*defaults, *pages.list_team_pages(tenant)]


def update_settings(tenant: Tenant, actor: User, data: WidgetSettings) -> ChatSettings:
    if not actor.is_admin:
        raise tenants.NotAllowed()
    settings = get_settings(tenant)
    if data.booking_page_id is not None and data.booking_page_id not in {p.id for p in offered_pages(tenant)}:
        raise ChatError("chat_page_not_offered", "booking_page")
    users = {u.id for u in tenants.list_users(tenant)}
    if not set(data.member_ids) <= users:
        raise ChatError("chat_member_unknown", "members")
    settings.enabled = data.enabled
    settings.welcome_message = data.welcome_message.strip()
    settings.color = data.color or None
    settings.position = data.position
    settings.language = data.language
    settings.booking_page_id = data.booking_page_id
    settings.ask_email_after_seconds = data.ask_email_after_seconds
    current = {m.user_id: m for m in list_members(tenant)}
    for user_id, member in current.items():
        if user_id not in data.member_ids:
            db.session.delete(member)
    for user_id in data.member_ids:
        if user_id not in current:
            db.session.add(ChatMember(tenant_id=tenant.id, user_id=user_id))
    db.session.flush()
    return settings


def widget_color(settings: ChatSettings) -> str:
    """The launcher's colour: the one chosen for the widget, else the company's brand colour, else ours."""
    brand = getattr(settings, "brand_color", None)
    return settings.color or brand or DEFAULT_COLOR


# --- Members and who is online ------------------------------------------------------------------------------


def list_members(tenant: Tenant) -> list[ChatMember]:
    return list(
        db.session.scalars(
            sa.select(ChatMember)
            .options(joinedload(ChatMember.user))
            .where(ChatMember.tenant_id == tenant.id)
            .order_by(ChatMember.id)
        )
    )


def get_member(tenant: Tenant, user: User) -> ChatMember | None:
    return db.session.scalar(
        sa.select(ChatMember).where(ChatMember.tenant_id == tenant.id, ChatMember.user_id == user.id)
    )


def mark_seen(tenant: Tenant, user: User, now: datetime) -> None:
    """A member with the Inbox open is online; written at most every 30 s, so polling costs no write."""
    member = get_member(tenant, user)
    if member is not None and (member.seen_at is None or now - member.seen_at > timedelta(seconds=30)):
        member.seen_at = now


def anyone_online(tenant: Tenant, now: datetime, minutes: int) -> bool:
    """Online: a member who answers the chat has had the Inbox open in the last ``minutes`` minutes."""
    return (
        db.session.scalar(
            sa.select(sa.func.count(ChatMember.id)).where(
                ChatMember.tenant_id == tenant.id, ChatMember.seen_at >= now - timedelta(minutes=minutes)
            )
        )
        > 0
    )


# --- Conversations ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    conversation: Conversation
    secret: str  # shown once, to the panel that started it


def find_conversation(tenant: Tenant, secret: str) -> Conversation | None:
    """The visitor's conversation on this tenant's widget; another tenant's secret finds nothing."""
    if not SECRET_PATTERN.match(secret or ""):
        return None
    return db.session.scalar(
        sa.select(Conversation).where(
            Conversation.tenant_id == tenant.id, Conversation.secret_hash == hash_secret(secret)
        )
    )


def get_conversation(tenant: Tenant, conversation_id: int) -> Conversation | None:
    return db.session.scalar(
        sa.select(Conversation).where(Conversation.tenant_id == tenant.id, Conversation.id == conversation_id)
    )


def get_by_ref(tenant: Tenant, ref: str | None) -> Conversation | None:
    if not REF_PATTERN.match(ref or ""):
        return None
    return db.session.scalar(
        sa.select(Conversation).where(Conversation.tenant_id == tenant.id, Conversation.ref == ref)
    )


def list_conversations(tenant: Tenant, *, status: str = "open", assignee: User | None = None) -> list:
    query = (
        sa.select(Conversation)
        .options(joinedload(Conversation.assignee), joinedload(Conversation.contact))
        .where(Conversation.tenant_id == tenant.id, Conversation.status == status)
        .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
        .limit(200)
    )
    if assignee is not None:
        query = query.where(Conversation.assignee_id == assignee.id)
    return list(db.session.scalars(query))


def unread_total(tenant: Tenant) -> int:
    return db.session.scalar(
        sa.select(sa.func.coalesce(sa.func.sum(Conversation.unread), 0)).where(
            Conversation.tenant_id == tenant.id, Conversation.status == "open"
        )
    )


def _clean(body: str) -> str:
    body = (body or "").strip()
    if not body:
        raise ChatError("chat_message_empty", "body")
    if len(body) > MESSAGE_MAX:
        raise ChatError("chat_message_too_long", "body", limit=MESSAGE_MAX)
    return body


def visitor_says(
    tenant: Tenant, conversation: Conversation | None, body: str, now: datetime
) -> Started | None:
    """The visitor's message; with no conversation yet it starts one (returned with its new secret)."""
    body = _clean(body)
    started = None
    if conversation is None:
        secret = secrets.token_urlsafe(32)
        conversation = Conversation(
            tenant_id=tenant.id,
            secret_hash=hash_secret(secret),
            ref=secrets.token_urlsafe(12),
            status="open",
            unread=0,
            last_message_at=now,
        )
        db.session.add(conversation)
        started = Started(conversation, secret)
    elif conversation.status == "closed":
        conversation.status = "open"  # a visitor writing again reopens it, as a mail thread would
    conversation.unread = (conversation.unread or 0) + 1
    conversation.last_message_at = now
    if conversation.waiting_since is None:
        conversation.waiting_since = now
    db.session.add(ChatMessage(tenant_id=tenant.id, conversation=conversation, sender="visitor", body=body))
    db.session.flush()
    return started


def rep_says(
    tenant: Tenant, conversation: Conversation, author: User, body: str, now: datetime
) -> ChatMessage:
    return _rep_message(tenant, conversation, author, now, kind="text", body=_clean(body))


def insert_meeting_link(
    tenant: Tenant, conversation: Conversation, author: User, page_id: int, now: datetime
) -> ChatMessage:
    """A meeting-link card; its URL is built from the page's current host each time it is shown (D3)."""
    if page_id not in {p.id for p in pages_for_rep(tenant, author)}:
        raise ChatError("chat_page_not_offered", "page")
    return _rep_message(tenant, conversation, author, now, kind="meeting_link", page_id=page_id)


def _rep_message(tenant: Tenant, conversation: Conversation, author: User, now: datetime, **values):
    if conversation.status == "closed":
        raise ChatError("chat_conversation_closed", "body")
    message = ChatMessage(
        tenant_id=tenant.id, conversation=conversation, sender="rep", author=author, **values
    )
    db.session.add(message)
    conversation.last_message_at = now
    conversation.waiting_since = None
    conversation.unread = 0  # whoever answers has read what came before
    if conversation.assignee_id is None:
        conversation.assignee = author
    db.session.flush()
    return message


def pages_for_rep(tenant: Tenant, rep: User) -> list[SchedulingPage]:
    """*Insert meeting link* offers the rep's own pages (the default first, P3) and the team pages they
    are a member of."""
    team = db.session.scalars(
        sa.select(SchedulingPage)
        .join(PageMember, PageMember.page_id == SchedulingPage.id)
        .where(SchedulingPage.tenant_id == tenant.id, PageMember.user_id == rep.id)
        .order_by(SchedulingPage.title, SchedulingPage.id)
    )
    return [*pages.list_pages(tenant, rep), *team]


def messages_after(conversation: Conversation, after_id: int) -> list[ChatMessage]:
    return list(
        db.session.scalars(
            sa.select(ChatMessage)
            .options(
                joinedload(ChatMessage.page), joinedload(ChatMessage.booking), joinedload(ChatMessage.author)
            )
            .where(ChatMessage.conversation_id == conversation.id, ChatMessage.id > after_id)
            .order_by(ChatMessage.id)
        )
    )


def mark_read(conversation: Conversation) -> None:
    if conversation.unread:
        conversation.unread = 0


def assign(tenant: Tenant, conversation: Conversation, assignee_id: int | None) -> None:
    if assignee_id is None:
        conversation.assignee_id = None
        return
    user = tenants.get_user(tenant, assignee_id)
    if user is None:
        raise ChatError("chat_assignee_unknown", "assignee")
    conversation.assignee = user


def set_status(conversation: Conversation, status: str) -> None:
    conversation.status = "closed" if status == "closed" else "open"


def should_ask_email(settings: ChatSettings, conversation: Conversation | None, now: datetime) -> bool:
    """Ask for an email when the visitor has waited ``ask_email_after_seconds`` for a first answer."""
    if conversation is None or conversation.contact_id is not None or conversation.waiting_since is None:
        return False
    return now - conversation.waiting_since >= timedelta(seconds=settings.ask_email_after_seconds)


def give_email(tenant: Tenant, conversation: Conversation, email: str, now: datetime) -> Contact:
    """Link the conversation to the CRM contact of ``email``, created if new (through the CRM services)."""
    email = email.strip().lower()
    contact = crm.get_contact_by_email(tenant, email)
    if contact is None:
        contact = crm.create_contact(tenant, crm.ContactData(email=email))
    conversation.contact = contact
    conversation.visitor_email = email
    conversation.last_message_at = now
    db.session.add(
        ChatMessage(
            tenant_id=tenant.id, conversation=conversation, sender="visitor", kind="email", body=email
        )
    )
    db.session.flush()
    return contact


def record_booking(tenant: Tenant, booking: Booking, ref: str | None) -> Conversation | None:
    """A booking made through a meeting link shown in a conversation: the chat shows its time, and the
    conversation and booking share the contact."""
    conversation = get_by_ref(tenant, ref)
    if conversation is None:
        return None
    db.session.add(
        ChatMessage(
            tenant_id=tenant.id, conversation=conversation, sender="system", kind="booking", booking=booking
        )
    )
    if conversation.contact_id is None and booking.contact_id is not None:
        conversation.contact_id = booking.contact_id
        conversation.visitor_email = booking.email
    conversation.unread = (conversation.unread or 0) + 1
    conversation.last_message_at = booking.created_at
    db.session.flush()
    return conversation


def conversations_of_contact(tenant: Tenant, contact: Contact) -> list[Conversation]:
    return list(
        db.session.scalars(
            sa.select(Conversation)
            .where(Conversation.tenant_id == tenant.id, Conversation.contact_id == contact.id)
            .order_by(Conversation.last_message_at.desc())
        )
    )


def bookings_of(conversation: Conversation) -> list[Booking]:
    return [m.booking for m in conversation.messages if m.kind == "booking" and m.booking is not None]
