"""Every feature's models, imported once so alembic and the tests see the whole schema."""

from app.crm.models import Contact, Meeting, MeetingContact, Task
from app.sync.models import Calendar, CalendarConnection
from app.tenants.models import Domain, Invitation, Tenant, User

__all__ = [
    "Calendar",
    "CalendarConnection",
    "Contact",
    "Domain",
    "Invitation",
    "Meeting",
    "MeetingContact",
    "Task",
    "Tenant",
    "User",
]
