"""Contacts, meetings and tasks of one tenant. Every read takes the tenant; services flush, callers commit."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from app.crm.models import Contact, Meeting, MeetingContact, Task
from app.db import utcnow
from app.errors import DuplicateEmail
from app.extensions import db
from app.sync import tasks as task_sync
from app.sync import writes as calendar_writes
from app.tenants.models import Tenant, User

PAGE_SIZE = 50
MAX_PAGE = 100_000  # keeps OFFSET inside PostgreSQL's bigint whatever ?page= a request carries


@dataclass(frozen=True)
class ContactData:
    email: str
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    phone: str = ""
    notes: str = ""

    def normalised(self) -> "ContactData":
        return ContactData(**{**self.__dict__, "email": self.email.strip().lower()})


@dataclass(frozen=True)
class ContactPage:
    contacts: list[Contact]
    page: int
    has_more: bool


def _like_pattern(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_contacts(tenant: Tenant, query: str = "", page: int = 1) -> ContactPage:
    """One page of the tenant's contacts, newest first, matching ``query`` in name, email or company."""
    statement = sa.select(Contact).where(Contact.tenant_id == tenant.id)
    for word in query.split()[:5]:
        pattern = _like_pattern(word.lower())
        statement = statement.where(
            sa.or_(
                *(
                    sa.func.lower(column).like(pattern, escape="\\")
                    for column in (Contact.email, Contact.first_name, Contact.last_name, Contact.company)
                )
            )
        )
    page = min(max(page, 1), MAX_PAGE)
    rows = list(
        db.session.scalars(
            statement.order_by(Contact.created_at.desc(), Contact.id.desc())
            .offset((page - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        )
    )
    return ContactPage(rows[:PAGE_SIZE], page, len(rows) > PAGE_SIZE)


def get_contact(tenant: Tenant, contact_id: int) -> Contact | None:
    return db.session.scalar(
        sa.select(Contact).where(Contact.tenant_id == tenant.id, Contact.id == contact_id)
    )


def get_contact_by_email(tenant: Tenant, email: str) -> Contact | None:
    return db.session.scalar(
        sa.select(Contact).where(Contact.tenant_id == tenant.id, Contact.email == email.strip().lower())
    )


def create_contact(tenant: Tenant, data: ContactData) -> Contact:
    data = data.normalised()
    _refuse_duplicate(tenant, data.email, contact=None)
    contact = Contact(tenant_id=tenant.id, **data.__dict__)
    _flush_unique(tenant, contact)
    return contact


def update_contact(tenant: Tenant, contact: Contact, data: ContactData) -> Contact:
    data = data.normalised()
    _refuse_duplicate(tenant, data.email, contact=contact)
    for name, value in data.__dict__.items():
        setattr(contact, name, value)
    _flush_unique(tenant, contact)
    return contact


def _refuse_duplicate(tenant: Tenant, email: str, contact: Contact | None) -> None:
    existing = get_contact_by_email(tenant, email)
    if existing is not None and existing is not contact:
        raise DuplicateEmail(existing)


def _flush_unique(tenant: Tenant, contact: Contact) -> None:
    """Flush inside a savepoint: a concurrent insert of the same email loses here, cleanly."""
    try:
        with db.session.begin_nested():
            db.session.add(contact)
    except IntegrityError as error:
        raise DuplicateEmail(get_contact_by_email(tenant, contact.email)) from error


def log_meeting(
    tenant: Tenant,
    actor: User,
    contact: Contact,
    *,
    title: str,
    start_at: datetime,
    end_at: datetime,
    notes: str = "",
) -> Meeting:
    """Record a meeting the rep had or will have with ``contact`` (source: crm)."""
    meeting = Meeting(
        tenant_id=tenant.id,
        owner=actor,
        title=title.strip(),
        start_at=start_at,
        end_at=end_at,
        source="crm",
        notes=notes,
        contacts=[contact],
    )
    db.session.add(meeting)
    db.session.flush()
    # C5: with calendar sync on it goes to the rep's default calendar, inviting the contact; else only logged.
    calendar_writes.schedule_meeting_write(tenant, meeting)
    return meeting


def get_meeting(tenant: Tenant, meeting_id: int) -> Meeting | None:
    return db.session.scalar(
        sa.select(Meeting).where(Meeting.tenant_id == tenant.id, Meeting.id == meeting_id)
    )


def list_meetings_for_contact(tenant: Tenant, contact: Contact) -> list[Meeting]:
    return list(
        db.session.scalars(
            sa.select(Meeting)
            .join(MeetingContact, MeetingContact.meeting_id == Meeting.id)
            .where(Meeting.tenant_id == tenant.id, MeetingContact.contact_id == contact.id)
            .order_by(Meeting.start_at.desc())
        )
    )


def cancel_meeting(tenant: Tenant, meeting: Meeting) -> Meeting:
    """Cancel the meeting; one Termin put in a calendar is cancelled there too, its attendees told."""
    if meeting.status != "cancelled":
        meeting.status = "cancelled"
        db.session.flush()
        calendar_writes.schedule_meeting_cancel(tenant, meeting)
    return meeting


def create_task(
    tenant: Tenant, actor: User, *, title: str, contact: Contact | None = None, due_at: datetime | None = None
) -> Task:
    task = Task(tenant_id=tenant.id, owner=actor, contact=contact, title=title.strip(), due_at=due_at)
    db.session.add(task)
    db.session.flush()
    task_sync.task_changed(task)  # C6: its event in the rep's task calendar, through the outbox
    return task


def get_task(tenant: Tenant, task_id: int) -> Task | None:
    return db.session.scalar(sa.select(Task).where(Task.tenant_id == tenant.id, Task.id == task_id))


def list_tasks_for_contact(tenant: Tenant, contact: Contact) -> list[Task]:
    return list(
        db.session.scalars(
            sa.select(Task)
            .where(Task.tenant_id == tenant.id, Task.contact_id == contact.id)
            .order_by(Task.status.desc(), Task.due_at.asc().nulls_last(), Task.id)
        )
    )


def list_open_tasks(tenant: Tenant, owner: User) -> list[Task]:
    return list(
        db.session.scalars(
            sa.select(Task)
            .where(Task.tenant_id == tenant.id, Task.owner_id == owner.id, Task.status == "open")
            .order_by(Task.due_at.asc().nulls_last(), Task.id)
        )
    )


def complete_task(tenant: Tenant, task: Task) -> Task:
    if task.status != "completed":
        task.status, task.completed_at = "completed", utcnow()
        db.session.flush()
        task_sync.task_changed(task)
    return task


def reopen_task(tenant: Tenant, task: Task) -> Task:
    task.status, task.completed_at = "open", None
    db.session.flush()
    task_sync.task_changed(task)
    return task
