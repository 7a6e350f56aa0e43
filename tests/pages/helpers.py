"""What the tests of scheduling pages share: the two tenants' public site (``Site``, ``build_site``; the
``site`` fixture is in conftest.py), readers of the public pages' HTML, and booking requests on MONDAY."""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from app.extensions import db
from app.pages import public
from app.pages import services as pages
from app.sync import services as sync
from app.sync.models import BusyBlock, Calendar, CalendarConnection, SyncedEvent
from app.sync.providers.base import Account, RemoteCalendar
from app.tenants.models import User
from tests import factories

# Tuesday 1 January 2030, 13:00 in Warsaw (UTC+1 in winter).
NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)
MONDAY = date(2030, 1, 7)
ACME_HOST = "book.acme.example"
GLOBEX_HOST = "meet.globex.example"
QUESTIONS = [
    {"id": "q1", "label": "Company", "kind": "text", "required": True},
    {"id": "q2", "label": "Team size", "kind": "choice", "required": True, "choices": ["1-10", "11-50"]},
    {"id": "q3", "label": "Anything else?", "kind": "text", "required": False},
]
CONSENT = "I agree that Acme may contact me about this meeting."


@dataclass(frozen=True)
class Site:
    """Two tenants. Acme's rep has a default page on the app host and a page on Acme's domain; Globex's
    rep has a default page on Globex's domain."""

    acme_id: int
    acme_rep_id: int
    acme_domain_id: int
    intro_id: int  # Acme's default page, app host: /meetings/<rep>
    intro_path: str
    demo_id: int  # on book.acme.example, two durations, questions and consent
    demo_path: str
    globex_id: int
    globex_rep_id: int
    globex_page_id: int
    globex_path: str


def build_site(app, monkeypatch) -> Site:
    """The two tenants of ``Site``, committed, with the public views' clock stopped at ``NOW``."""
    monkeypatch.setattr(public, "utcnow", lambda: NOW)
    with app.app_context():
        acme = factories.make_tenant("Acme")
        rep = factories.make_user(acme, seat="sales", name="Rita Rep", time_zone="Europe/Warsaw")
        domain = factories.make_domain(acme, ACME_HOST)
        intro = factories.make_page(rep, slug="intro", title="Intro call")
        demo = factories.make_page(
            rep,
            slug="demo",
            title="Product demo",
            durations=[30, 60],
            domain_id=domain.id,
            questions=QUESTIONS,
            consent_text=CONSENT,
            confirmation_message="See you soon!",
            location="Video call",
        )
        globex = factories.make_tenant("Globex")
        rival = factories.make_user(globex, seat="sales", name="Gus Globex", time_zone="Europe/Warsaw")
        globex_domain = factories.make_domain(globex, GLOBEX_HOST)
        call = factories.make_page(rival, slug="call", title="Globex call", domain_id=globex_domain.id)
        db.session.commit()
        return Site(
            acme.id,
            rep.id,
            domain.id,
            intro.id,
            f"/meetings/{rep.page_slug}",
            demo.id,
            f"/meetings/{rep.page_slug}/demo",
            globex.id,
            rival.id,
            call.id,
            f"/meetings/{rival.page_slug}",
        )


def slot_starts(response) -> list[str]:
    return re.findall(r'class="slot[^"]*" data-start="([^"]+)"', response.get_data(as_text=True))


def day_links(response) -> list[str]:
    return re.findall(r'<a class="day[^"]*" data-day="([^"]+)"', response.get_data(as_text=True))


def hidden(response, name: str) -> str:
    match = re.search(rf'name="{name}"[^>]*value="([^"]*)"', response.get_data(as_text=True))
    if match is None:
        match = re.search(rf'value="([^"]*)"[^>]*name="{name}"', response.get_data(as_text=True))
    return match.group(1) if match else ""


def field_value(response, name: str) -> str | None:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', response.get_data(as_text=True))
    if match is None:
        return None
    value = re.search(r'value="([^"]*)"', match.group(0))
    return value.group(1) if value else ""


def connect_caldav(rep: User) -> CalendarConnection:
    """A CalDAV account of ``rep`` with one calendar, "Work" (its default); flushed, not committed."""
    return sync.connect(
        rep.tenant,
        rep,
        provider="caldav",
        account=Account(id="acct-1", email="rita@work.example.com"),
        calendars=[RemoteCalendar("main", "Work", "owner", is_primary=True)],
        secret={"password": "app-password"},
        server_url="https://caldav.example.com/",
        username="rita",
    )


def synced_busy(connection: CalendarConnection, uid: str, start: datetime, end: datetime) -> SyncedEvent:
    """An event of the connection's first calendar as the sync keeps it: a synced event and its busy block."""
    calendar = db.session.scalar(
        sa.select(Calendar).where(Calendar.connection_id == connection.id).order_by(Calendar.id)
    )
    event = SyncedEvent(
        tenant_id=connection.tenant_id,
        calendar_id=calendar.id,
        uid=uid,
        provider_event_id=uid,
        start_at=start,
        end_at=end,
        digest=uid,
    )
    db.session.add(event)
    db.session.flush()
    db.session.add(
        BusyBlock(
            tenant_id=connection.tenant_id,
            user_id=connection.user_id,
            calendar_id=calendar.id,
            synced_event_id=event.id,
            start_at=start,
            end_at=end,
        )
    )
    db.session.flush()
    return event


def make_inactive_calendar(app, rep_id: int) -> None:
    with app.app_context():
        connection = connect_caldav(db.session.get(User, rep_id))
        sync.mark_connection_inactive(connection, "invalid_grant: the password was changed.")
        db.session.commit()


def at(hour: int, minute: int = 0) -> datetime:
    """``hour`` on MONDAY in Europe/Warsaw (UTC+1 in January), as UTC."""
    return datetime(MONDAY.year, MONDAY.month, MONDAY.day, hour - 1, minute, tzinfo=UTC)


def booking_request(start: datetime, **fields) -> pages.BookingRequest:
    """Vera Visitor's request for 30 minutes from ``start``; ``fields`` replace the defaults."""
    values = dict(
        start=start,
        duration=timedelta(minutes=30),
        first_name="Vera",
        last_name="Visitor",
        email="visitor@example.org",
        time_zone="Europe/Warsaw",
        idempotency_key="k1",
    )
    return pages.BookingRequest(**{**values, **fields})
