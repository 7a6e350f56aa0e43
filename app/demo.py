"""The embedded demo's data: one tenant with an admin, a Sales rep, contacts and a verified domain."""

import secrets
from dataclasses import dataclass

from app import demo_calendar
from app.crm import services as crm
from app.db import utcnow
from app.extensions import db
from app.sync import services as sync
from app.tenants import services as tenants
from app.tenants.models import Domain, User

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "demo-admin-pass"
REP_EMAIL, REP_PASSWORD = "rita@example.com", "demo-rep-pass"
DEMO_DOMAIN = "meet.demo.localhost"
# The demo domain keeps scheduling pages out of search engines, as D4 lets an admin choose.
DEMO_ROBOTS = "User-agent: *\nDisallow: /meetings*\n"

CONTACTS = [
    crm.ContactData("jan.kowalski@example.com", "Jan", "Kowalski", "Kowalski Sp. z o.o.", "+48 600 100 200"),
    crm.ContactData("anna.nowak@example.org", "Anna", "Nowak", "Nowak Logistics"),
    crm.ContactData("mark.smith@example.net", "Mark", "Smith", "Smith & Sons", "+1 212 555 0100"),
    crm.ContactData("zofia.wisniewska@example.com", "Zofia", "Wiśniewska", "Wiśniewska Design"),
]


@dataclass(frozen=True)
class Demo:
    admin: User
    rep: User
    domain: Domain
    created: bool
    calendar_note: str = ""


def seed_demo() -> Demo:
    """Create the demo tenant once; later calls find it and change nothing."""
    admin = tenants.get_user_for_email(ADMIN_EMAIL)
    if admin is not None:
        rep = tenants.get_user_for_email(REP_EMAIL)
        domain = tenants.get_verified_domain(DEMO_DOMAIN)
        return Demo(admin, rep, domain, created=False)

    admin = tenants.create_tenant(
        company="Demo Company",
        name="Ada Admin",
        email=ADMIN_EMAIL,
        password=ADMIN_PASSWORD,
        time_zone="Europe/Warsaw",
        locale="en",
    )
    tenant = admin.tenant
    issued = tenants.invite(tenant, admin, email=REP_EMAIL, role="rep", seat="sales", days=1)
    rep = tenants.accept_invitation(
        issued.invitation, name="Rita Rep", password=REP_PASSWORD, time_zone="Europe/Warsaw", locale="en"
    )
    for data in CONTACTS:
        crm.create_contact(tenant, data)
    domain = Domain(
        tenant=tenant,
        hostname=DEMO_DOMAIN,
        status="verified",
        verified_at=utcnow(),
        verification_token=secrets.token_hex(16),
        robots_txt=DEMO_ROBOTS,
    )
    db.session.add(domain)
    db.session.flush()
    return Demo(admin, rep, domain, created=True)


def connect_demo_calendar(rep: User) -> str:
    """Connect the demo rep to the local Radicale (once), with Team checked for availability."""
    if sync.list_connections(rep.tenant, rep):
        return "already connected"
    demo_calendar.create_calendars()
    connection = sync.connect_caldav(
        rep.tenant,
        rep,
        server_url=demo_calendar.base_url(),
        username=demo_calendar.USER,
        password=demo_calendar.PASSWORD,
    )
    by_name = {c.name: c for c in connection.calendars}
    work, team = by_name[demo_calendar.CALENDARS["work"]], by_name[demo_calendar.CALENDARS["team"]]
    choices = sync.ConnectionChoices(
        calendar_sync=True,
        scheduling_pages=True,
        task_sync=False,
        default_calendar_id=work.id,
        availability_calendar_ids=frozenset({team.id}),
    )
    sync.save_choices(rep.tenant, rep, connection, choices)
    sync.request_connection_sync(connection)
    return f"connected to {demo_calendar.base_url()} (Work is the default, Team is checked for availability)"
