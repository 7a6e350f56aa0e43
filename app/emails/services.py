"""Sales email templates, composing an email for a contact, sending it, and what became of it (P3, D3).

Services flush; the view that called them commits. Every read of a tenant's rows takes the tenant, and a
template is visible to a user only when it is the team's or their own (``get_template``).

Refusals are ``EmailsError`` (app/errors.py, worded in its one MESSAGES table) with a ``code``, the
``field`` at fault and the ``params`` the message needs; ``TemplateLocked`` is a rep touching a team
template, ``SendLimitReached`` a rep past ``RATELIMIT_SALES_EMAIL``.

Meeting links (``render``'s tokens) are resolved when an email is composed for sending: the sender's default
page for ``{{ meeting_link }}``, the page with that id for ``{{ meeting_link:<id> }}``, which must be the
sender's own or a team page (round robin, group) the sender is a member of. A page that is gone, a team page
the sender left, pages switched off (P4) or a team page nobody can be booked on is refused then, so no email
goes out with a dead link. The URL is the page's current one (``pages.links.page_url``) plus
``?ref=<the email's ref>``; a later slug or domain change 301s it to the new place with the query kept, so
the ref still arrives, and a booking through it records the email whichever member a team page gives it to.
"""

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app, render_template
from limits import parse_many
from markupsafe import Markup
from sqlalchemy.orm import joinedload, selectinload

from app.crm.models import Contact
from app.emails import render
from app.emails.models import BODY_MAX, NAME_MAX, SUBJECT_MAX, EmailTemplate, SentEmail
from app.errors import EmailsError, SendLimitReached, TemplateLocked
from app.extensions import db
from app.mail import smtp
from app.pages import links
from app.pages import services as pages
from app.pages.models import Booking, PageMember, SchedulingPage
from app.tenants.models import Tenant, User
from app.web import limits

REF_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16}$")
SEND_LIMIT = "RATELIMIT_SALES_EMAIL"
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")

__all__ = ["EmailsError", "SendLimitReached", "TemplateLocked"]  # what the views catch, re-exported


# --- Templates ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateData:
    name: str
    subject: str
    body: str


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _visible_to(tenant: Tenant, actor: User):
    return sa.and_(
        EmailTemplate.tenant_id == tenant.id,
        sa.or_(EmailTemplate.owner_id.is_(None), EmailTemplate.owner_id == actor.id),
    )


def list_templates(tenant: Tenant, actor: User, query: str = "") -> list[EmailTemplate]:
    """The team's templates and the actor's own, by name; every word of ``query`` in name, subject or body."""
    statement = sa.select(EmailTemplate).where(_visible_to(tenant, actor))
    for word in query.split()[:5]:
        pattern = _like(word)
        statement = statement.where(
            sa.or_(
                *(
                    sa.func.lower(column).like(pattern, escape="\\")
                    for column in (EmailTemplate.name, EmailTemplate.subject, EmailTemplate.body)
                )
            )
        )
    return list(
        db.session.scalars(
            statement.order_by(EmailTemplate.owner_id.is_not(None), EmailTemplate.name, EmailTemplate.id)
        )
    )


def get_template(tenant: Tenant, actor: User, template_id: int) -> EmailTemplate | None:
    """A template the actor can see (the team's, or their own); None for a colleague's or another tenant's."""
    return db.session.scalar(
        sa.select(EmailTemplate).where(_visible_to(tenant, actor), EmailTemplate.id == template_id)
    )


def can_edit(actor: User, template: EmailTemplate) -> bool:
    """Team templates are the admins'; a personal one is its owner's alone."""
    if template.tenant_id != actor.tenant_id:
        return False
    return actor.is_admin if template.is_team else template.owner_id == actor.id


def check_texts(subject: str, body: str) -> None:
    """What every subject and body must be, whoever writes it: bounded, a one-line subject, known tokens."""
    if not subject.strip():
        raise EmailsError("email_subject_required", "subject")
    if _LINE_BREAK.search(subject):
        raise EmailsError("email_subject_line_break", "subject")
    if len(subject) > SUBJECT_MAX:
        raise EmailsError("email_too_long", "subject", max=SUBJECT_MAX)
    if not body.strip():
        raise EmailsError("email_body_required", "body")
    if len(body) > BODY_MAX:
        raise EmailsError("email_too_long", "body", max=BODY_MAX)
    for field, text in (("subject", subject), ("body", body)):
        unknown = render.scan(text).unknown
        if unknown:
            raise EmailsError("email_unknown_token", field, token=unknown[0])


def _check_template(data: TemplateData) -> TemplateData:
    data = TemplateData(data.name.strip(), data.subject.strip(), data.body.strip())
    if not data.name:
        raise EmailsError("email_name_required", "name")
    if len(data.name) > NAME_MAX:
        raise EmailsError("email_too_long", "name", max=NAME_MAX)
    check_texts(data.subject, data.body)
    return data


def create_template(tenant: Tenant, actor: User, data: TemplateData, *, team: bool) -> EmailTemplate:
    """A personal template of the actor's, or (admins only) a team template."""
    if team and not actor.is_admin:
        raise TemplateLocked()
    data = _check_template(data)
    template = EmailTemplate(
        tenant_id=tenant.id,
        owner_id=None if team else actor.id,
        name=data.name,
        subject=data.subject,
        body=data.body,
    )
    db.session.add(template)
    db.session.flush()
    return template


def update_template(
    tenant: Tenant, actor: User, template: EmailTemplate, data: TemplateData
) -> EmailTemplate:
    if template.tenant_id != tenant.id or not can_edit(actor, template):
        raise TemplateLocked()
    data = _check_template(data)
    template.name, template.subject, template.body = data.name, data.subject, data.body
    db.session.flush()
    return template


def duplicate_template(tenant: Tenant, actor: User, template: EmailTemplate, *, name: str) -> EmailTemplate:
    """A copy named ``name``: the team's again when the actor may write team templates, else their own."""
    team = template.is_team and actor.is_admin
    copy = TemplateData(name[:NAME_MAX], template.subject, template.body)
    return create_template(tenant, actor, copy, team=team)


def delete_template(tenant: Tenant, actor: User, template: EmailTemplate) -> None:
    """Delete it; emails already sent from it keep their text (``sent_emails.template_id`` goes NULL)."""
    if template.tenant_id != tenant.id or not can_edit(actor, template):
        raise TemplateLocked()
    db.session.delete(template)
    db.session.flush()


@dataclass(frozen=True)
class LinkChoices:
    """What *Insert meeting link* offers: the user's own pages (the default first, P3) and the team pages
    (round robin, group) they are a member of."""

    own: list[SchedulingPage]
    team: list[SchedulingPage]


def link_choices(tenant: Tenant, user: User) -> LinkChoices:
    return LinkChoices(pages.list_pages(tenant, user), member_team_pages(tenant, user))


def member_team_pages(tenant: Tenant, user: User) -> list[SchedulingPage]:
    """The tenant's team pages ``user`` is a member of (paused or not), by title."""
    return list(
        db.session.scalars(
            sa.select(SchedulingPage)
            .join(PageMember, PageMember.page_id == SchedulingPage.id)
            .where(
                SchedulingPage.tenant_id == tenant.id,
                SchedulingPage.kind != "one_on_one",
                PageMember.tenant_id == tenant.id,
                PageMember.user_id == user.id,
            )
            .order_by(SchedulingPage.title, SchedulingPage.id)
        )
    )


def with_link(body: str, page_id: int | None) -> str:
    """``body`` with a meeting link to the page appended as its own paragraph."""
    token = render.link_token(page_id)
    return f"{body.rstrip()}\n\n{token}" if body.strip() else token


# --- Composing and sending ----------------------------------------------------------------------------------


def new_ref() -> str:
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Composed:
    """An email ready to go: the subject, the HTML document and the text part, with its ``ref``."""

    to: str
    subject: str
    html: str
    text: str
    ref: str


def _field_values(contact: Contact, sender: User) -> dict[str, str]:
    return {
        "contact.first_name": contact.first_name,
        "contact.last_name": contact.last_name,
        "contact.company": contact.company,
        "contact.email": contact.email,
        "rep.name": sender.name,
        "rep.title": sender.title,
        "rep.email": sender.email,
    }


def _link_page(tenant: Tenant, sender: User, page_id: int | None) -> SchedulingPage:
    if page_id is None:
        page = pages.default_page(tenant, sender)
        if page is None:
            raise EmailsError("email_no_default_page", "body")
    else:
        token = render.link_token(page_id)
        page = pages.get_page(tenant, page_id)
        if page is None or (not page.is_team and page.owner_id != sender.id):
            raise EmailsError("email_page_gone", "body", token=token)
        if page.is_team:
            return _team_link_page(page, sender, token)
    if pages.unavailable_reason(page):
        raise EmailsError("email_pages_off", "body")
    return page


def _team_link_page(page: SchedulingPage, sender: User, token: str) -> SchedulingPage:
    """A team page the sender may link to: they are still a member, and someone can still be booked on it."""
    if not any(member.user_id == sender.id for member in page.members):
        raise EmailsError("email_team_page_not_member", "body", token=token, title=page.title)
    bookable = [m for m in page.members if not m.paused and m.user.is_active]
    if pages.unavailable_reason(page) or not bookable:
        raise EmailsError("email_team_page_off", "body", token=token, title=page.title)
    return page


def compose(tenant: Tenant, sender: User, contact: Contact, *, subject: str, body: str, ref: str) -> Composed:
    """Fill the tokens for this contact and sender, meeting links built now; ``EmailsError`` when it cannot go
    out as it is (no address, an unknown token, a dead meeting link)."""
    if contact.tenant_id != tenant.id or sender.tenant_id != tenant.id:
        raise EmailsError("email_not_found")
    if not contact.email:
        raise EmailsError("email_no_address", "to")
    check_texts(subject, body)
    link_urls = {}
    for page_id in sorted(render.scan(subject, body).links, key=lambda pid: -1 if pid is None else pid):
        page = _link_page(tenant, sender, page_id)
        link_urls[page_id] = f"{links.page_url(page)}?ref={ref}"
    rendered = render.render(subject, body, _field_values(contact, sender), link_urls)
    html = render_template(
        "emails/sales_email.html",
        subject=rendered.subject,
        body=Markup(rendered.html),  # noqa: S704
    )  # markdown-it escaped every character of the body's source (``html`` off): ``rendered.html`` is safe
    return Composed(contact.email, rendered.subject, html, rendered.text, ref)


def _lock_sender(sender: User) -> None:
    """Serialise one rep's sends, so two at once cannot both slip under the limit (the limiter's test and
    count are two steps)."""
    db.session.execute(sa.select(User.id).where(User.id == sender.id).with_for_update())


def _spend_one(sender: User) -> None:
    """Count this email against the sender's ``RATELIMIT_SALES_EMAIL`` (Flask-Limiter's storage, like every
    limit of the app); ``SendLimitReached`` with when they may send again when it is spent."""
    key = str(sender.id)
    if not limits.try_spend(SEND_LIMIT, "sales-email", key):
        amount = min(item.amount for item in parse_many(current_app.config[SEND_LIMIT]))
        raise SendLimitReached(
            "email_send_limit", amount=amount, retry_at=limits.retry_at(SEND_LIMIT, "sales-email", key)
        )


def send(
    tenant: Tenant,
    sender: User,
    contact: Contact,
    *,
    subject: str,
    body: str,
    ref: str | None = None,
    template: EmailTemplate | None = None,
    now: datetime,
) -> SentEmail:
    """Compose and queue the email (outbox, sent after the commit), and log it on the contact's record.

    ``ref`` is the one the composer previewed with, so what is sent is what was shown; a malformed or
    already used one is replaced by a fresh one.
    """
    _lock_sender(sender)
    if ref is None or not REF_PATTERN.match(ref) or get_by_ref(ref) is not None:
        ref = new_ref()
    composed = compose(tenant, sender, contact, subject=subject, body=body, ref=ref)
    _spend_one(sender)  # after composing: an email refused for its content is not counted
    message = smtp.send_mail(
        tenant.id,
        to=composed.to,
        subject=composed.subject,
        text=composed.text,
        html=composed.html,
        from_name=sender.name,
        reply_to=sender.email,
    )
    sent = SentEmail(
        tenant_id=tenant.id,
        contact_id=contact.id,
        sender_id=sender.id,
        template_id=template.id if template is not None and template.tenant_id == tenant.id else None,
        to_email=composed.to,
        subject=composed.subject[:SUBJECT_MAX],
        text=composed.text,
        ref=ref,
        outbox_id=message.id,
        created_at=now,
    )
    db.session.add(sent)
    db.session.flush()
    return sent


# --- What became of it --------------------------------------------------------------------------------------


def get_by_ref(ref: str) -> SentEmail | None:
    """The email a meeting link's ``?ref=`` names (a global identity, like a booking token)."""
    if not ref or not REF_PATTERN.match(ref):
        return None
    return db.session.scalar(sa.select(SentEmail).where(SentEmail.ref == ref))


def attribution_for(tenant: Tenant, ref: str | None) -> int | None:
    """The id of the tenant's sent email a booking's ``ref`` names; None when it names none of theirs."""
    sent = get_by_ref(ref or "")
    return sent.id if sent is not None and sent.tenant_id == tenant.id else None


def get_sent_email(tenant: Tenant, sent_email_id: int) -> SentEmail | None:
    return db.session.scalar(
        sa.select(SentEmail).where(SentEmail.tenant_id == tenant.id, SentEmail.id == sent_email_id)
    )


@dataclass(frozen=True)
class Activity:
    """One line of a contact's timeline: an email sent, or a booking made through one."""

    kind: str  # "email" | "booking"
    at: datetime
    email: SentEmail
    booking: Booking | None = None


def timeline(tenant: Tenant, contact: Contact) -> list[Activity]:
    """The contact's emails and the bookings made through them, newest first."""
    emails = list(
        db.session.scalars(
            sa.select(SentEmail)
            .where(SentEmail.tenant_id == tenant.id, SentEmail.contact_id == contact.id)
            .options(selectinload(SentEmail.bookings), joinedload(SentEmail.outbox))
        )
    )
    from_other_emails = db.session.scalars(
        sa.select(Booking)
        .options(joinedload(Booking.sent_email))
        .join(SentEmail, SentEmail.id == Booking.sent_email_id)
        .where(
            Booking.tenant_id == tenant.id,
            Booking.contact_id == contact.id,
            SentEmail.contact_id != contact.id,
        )
    )
    entries = [Activity("email", sent.created_at, sent) for sent in emails]
    entries += [Activity("booking", b.created_at, sent, b) for sent in emails for b in sent.bookings]
    # A booking this contact made through an email sent to someone else (a forwarded email).
    entries += [Activity("booking", b.created_at, b.sent_email, b) for b in from_other_emails]
    return sorted(entries, key=lambda entry: entry.at, reverse=True)
