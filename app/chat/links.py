"""Links the chat shows, built when shown (D3): the snippet to paste, and each message's meeting link from
its page's current host, with the conversation's ``ref`` so a booking made through it is linked back."""

from dataclasses import dataclass
from datetime import datetime

from app.chat.models import ChatMessage, ChatSettings, Conversation
from app.domains import services as domains
from app.pages.links import page_url
from app.tenants.models import Tenant
from app.web.links import app_host_url, external_url


@dataclass(frozen=True)
class Snippet:
    where: str  # the host the script is served from
    code: str


def snippet(settings: ChatSettings, tenant: Tenant) -> list[Snippet]:
    """One ``<script>`` per host that serves the widget: each verified domain (the tenant is the host's),
    then the app host (the tenant is the public widget id)."""
    found = []
    for domain in domains.verified_domains(tenant):
        src = external_url(domain.hostname, "/widget.js")
        found.append(Snippet(domain.hostname, f'<script src="{src}" async></script>'))
    src = app_host_url(f"/widget.js?id={settings.widget_id}")
    found.append(Snippet("app", f'<script src="{src}" async></script>'))
    return found


@dataclass(frozen=True)
class MessageView:
    id: int
    sender: str
    kind: str
    body: str
    author: str
    created_at: datetime
    page_title: str = ""
    page_minutes: int = 0
    page_url: str = ""
    booking_start: datetime | None = None
    booking_cancelled: bool = False


def meeting_url(page, conversation: Conversation | None) -> str:
    url = page_url(page)
    return f"{url}?ref={conversation.ref}" if conversation is not None else url


def message_view(message: ChatMessage, conversation: Conversation | None) -> MessageView:
    extra = {}
    if message.kind == "meeting_link" and message.page is not None:
        page = message.page
        extra = dict(
            page_title=page.title, page_minutes=page.durations[0], page_url=meeting_url(page, conversation)
        )
    if message.kind == "booking" and message.booking is not None:
        extra = dict(
            booking_start=message.booking.start_at, booking_cancelled=message.booking.status == "cancelled"
        )
    return MessageView(
        id=message.id,
        sender=message.sender,
        kind=message.kind,
        body=message.body,
        author=message.author.name if message.author is not None else "",
        created_at=message.created_at,
        **extra,
    )
