"""Every feature's models, imported once so alembic and the tests see the whole schema."""

from app.brand.models import BrandImage
from app.chat.models import ChatMember, ChatMessage, ChatSettings, Conversation
from app.crm.models import Contact, Meeting, MeetingContact, Task
from app.emails.models import EmailTemplate, SentEmail
from app.mail.models import OutboxMessage
from app.pages.models import Booking, BookingAttempt, BookingHold, SchedulingPage, SlugAlias
from app.sync.models import BusyBlock, Calendar, CalendarConnection, SyncedEvent
from app.tenants.models import (
    Domain,
    Invitation,
    PasswordReset,
    RememberToken,
    SignupRequest,
    Tenant,
    User,
    UserSession,
)

__all__ = [
    "Booking",
    "BookingAttempt",
    "BookingHold",
    "BrandImage",
    "BusyBlock",
    "Calendar",
    "CalendarConnection",
    "ChatMember",
    "ChatMessage",
    "ChatSettings",
    "Contact",
    "Conversation",
    "Domain",
    "EmailTemplate",
    "Invitation",
    "Meeting",
    "MeetingContact",
    "OutboxMessage",
    "PasswordReset",
    "RememberToken",
    "SchedulingPage",
    "SentEmail",
    "SignupRequest",
    "SlugAlias",
    "SyncedEvent",
    "Task",
    "Tenant",
    "User",
    "UserSession",
]
