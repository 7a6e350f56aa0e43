"""Test data builders. Each takes the tenant it builds for and flushes; none hard-codes an id."""

import itertools
import secrets
from datetime import UTC, datetime, timedelta

from werkzeug.security import generate_password_hash

from app.crm.models import Contact, Meeting, Task
from app.db import utcnow
from app.extensions import db
from app.tenants.models import Domain, Tenant, User

PASSWORD = "correct horse battery"
_PASSWORD_HASH = generate_password_hash(PASSWORD)  # hashed once: scrypt is slow on purpose
_seq = itertools.count(1)


def make_tenant(name: str | None = None) -> Tenant:
    tenant = Tenant(name=name or f"Tenant {next(_seq)}")
    db.session.add(tenant)
    db.session.flush()
    return tenant


def make_user(
    tenant: Tenant,
    *,
    role: str = "rep",
    seat: str = "none",
    email: str | None = None,
    name: str | None = None,
    time_zone: str = "Europe/Warsaw",
    locale: str = "en",
) -> User:
    n = next(_seq)
    user = User(
        tenant=tenant,
        role=role,
        seat=seat,
        time_zone=time_zone,
        locale=locale,
        email=email or f"user{n}@example.com",
        name=name or f"User {n}",
        password_hash=_PASSWORD_HASH,
        page_slug=f"user-{n}",
    )
    db.session.add(user)
    db.session.flush()
    return user


def make_contact(tenant: Tenant, *, email: str | None = None, **fields) -> Contact:
    n = next(_seq)
    defaults = {"first_name": "Contact", "last_name": str(n), "company": "", "phone": "", "notes": ""}
    contact = Contact(tenant_id=tenant.id, email=email or f"contact{n}@example.org", **{**defaults, **fields})
    db.session.add(contact)
    db.session.flush()
    return contact


def make_meeting(
    tenant: Tenant,
    owner: User,
    contacts: list[Contact],
    *,
    start_at: datetime | None = None,
    minutes: int = 30,
    title: str = "Intro call",
    source: str = "crm",
) -> Meeting:
    start_at = start_at or datetime(2030, 3, 4, 9, 0, tzinfo=UTC)
    meeting = Meeting(
        tenant_id=tenant.id,
        owner=owner,
        contacts=contacts,
        title=title,
        source=source,
        start_at=start_at,
        end_at=start_at + timedelta(minutes=minutes),
    )
    db.session.add(meeting)
    db.session.flush()
    return meeting


def make_task(
    tenant: Tenant,
    owner: User,
    contact: Contact | None = None,
    *,
    title: str = "Follow up",
    due_at: datetime | None = None,
) -> Task:
    task = Task(tenant_id=tenant.id, owner=owner, contact=contact, title=title, due_at=due_at)
    db.session.add(task)
    db.session.flush()
    return task


def make_domain(
    tenant: Tenant, hostname: str | None = None, *, status: str = "verified", robots_txt: str | None = None
) -> Domain:
    domain = Domain(
        tenant=tenant,
        hostname=hostname or f"book{next(_seq)}.example.com",
        status=status,
        verification_token=secrets.token_hex(16),
        robots_txt=robots_txt,
        verified_at=utcnow() if status == "verified" else None,
    )
    db.session.add(domain)
    db.session.flush()
    return domain


WORKWEEK_9_TO_17 = [[weekday, "09:00", "17:00"] for weekday in range(5)]


def make_page(owner: User, *, slug: str | None = None, **fields):
    """A scheduling page of ``owner``'s: Mon-Fri 9:00-17:00 in their zone, 30 minutes, 60 days ahead."""
    from app.pages import services as pages

    settings = pages.PageSettings(
        title=fields.pop("title", "Intro call"),
        slug=slug or f"page-{next(_seq)}",
        time_zone=fields.pop("time_zone", owner.time_zone),
        weekly=fields.pop("weekly", WORKWEEK_9_TO_17),
        durations=fields.pop("durations", [30]),
        **fields,
    )
    return pages.create_page(owner.tenant, owner, settings)
