"""The embedded demo's data: one tenant with an admin, two Sales reps, contacts, a verified domain, the
first rep's default scheduling page and a round-robin page of both reps, served on that domain, and a team
email template with a meeting link."""

import secrets
from dataclasses import dataclass

from app import demo_calendar
from app.brand import demo_images
from app.brand import services as brand
from app.chat import services as chat
from app.crm import services as crm
from app.db import utcnow
from app.emails import services as emails
from app.emails.models import EmailTemplate
from app.extensions import db
from app.pages import services as pages
from app.pages.models import SchedulingPage
from app.sync import services as sync
from app.tenants import services as tenants
from app.tenants.models import Domain, User

ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "demo-admin-pass"
REP_EMAIL, REP_PASSWORD = "rita@example.com", "demo-rep-pass"
SECOND_REP_EMAIL, SECOND_REP_PASSWORD = "tom@example.com", "demo-rep-pass"
DEMO_DOMAIN = "meet.demo.localhost"
# The demo domain keeps scheduling pages out of search engines, as D4 lets an admin choose.
DEMO_ROBOTS = "User-agent: *\nDisallow: /meetings*\n"

# The rep's default page (P3), on the demo domain: weekdays 9:00-17:00 Warsaw time, 30 or 60 minutes.
DEMO_PAGE = dict(
    title="Intro call with Rita",
    slug="intro-call",
    time_zone="Europe/Warsaw",
    weekly=[(weekday, "09:00", "17:00") for weekday in range(5)],
    durations=[30, 60],
    description="A first conversation about what you need and how Demo Company can help.",
    location="Video call (the link comes with the confirmation)",
    increment=30,
    buffer_after=10,
    min_notice=4 * 60,
    horizon_days=60,
    questions=[
        {"id": "q1", "label": "Company", "kind": "text", "required": False, "choices": []},
        {
            "id": "q2",
            "label": "What would you like to talk about?",
            "kind": "choice",
            "required": True,
            "choices": ["A product demo", "Pricing", "Something else"],
        },
    ],
    confirmation_message="Thank you! Rita will send you the video link before the call.",
)

# A round-robin page of both demo reps (T1), on the demo domain: /meetings/team/talk-to-sales.
DEMO_TEAM_PAGE = dict(
    title="Talk to sales",
    slug="talk-to-sales",
    time_zone="Europe/Warsaw",
    weekly=[(weekday, "09:00", "17:00") for weekday in range(5)],
    durations=[30],
    description="Book a call with whichever of our sales reps is free first.",
    min_notice=2 * 60,
    horizon_days=30,
    kind="round_robin",
    assignment="even",
)

# A team template (P3): every rep who sends it gets their own default page in {{ meeting_link }}.
DEMO_TEMPLATE = emails.TemplateData(
    name="First contact: book an intro call",
    subject="{{ contact.company }} and Demo Company: a short call?",
    body=(
        "Hello {{ contact.first_name }},\n\n"
        "Thank you for your interest in Demo Company. The quickest way to see whether we can help "
        "{{ contact.company }} is a **30-minute call**. Pick a time that suits you:\n\n"
        "{{ meeting_link }}\n\n"
        "Best regards,\n{{ rep.name }}"
    ),
)

DEMO_HEADLINES = {
    REP_EMAIL: "Account executive · helps teams of 5-50 choose the right plan",
    SECOND_REP_EMAIL: "Sales engineer · demos, integrations and pilots",
}

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
    page: SchedulingPage
    created: bool
    calendar_note: str = ""
    team_page: SchedulingPage | None = None


def seed_demo() -> Demo:
    """Create the demo tenant once; later calls find it and change nothing."""
    admin = tenants.get_user_for_email(ADMIN_EMAIL)
    if admin is not None:
        rep = tenants.get_user_for_email(REP_EMAIL)
        domain = tenants.get_verified_domain(DEMO_DOMAIN)
        # A demo seeded before it had a page (a team page, a template) gets one now.
        page = seed_default_page(rep, domain)
        seed_team_template(admin)
        team_page = seed_team_page(admin, rep, domain)
        seed_brand(admin)
        seed_chat(admin, rep, page)
        return Demo(admin, rep, domain, page, created=False, team_page=team_page)

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
    page = seed_default_page(rep, domain)
    seed_team_template(admin)
    team_page = seed_team_page(admin, rep, domain)
    seed_brand(admin)
    seed_chat(admin, rep, page)
    return Demo(admin, rep, domain, page, created=True, team_page=team_page)


def seed_brand(admin: User) -> None:
    """The demo company's logo and colour, and a photo and headline for each demo rep, set once (what an
    admin or rep changed later is kept)."""
    tenant = admin.tenant
    if not tenant.brand_logo and not tenant.brand_color:
        brand.update_brand(
            tenant, admin, name=tenant.name, color=demo_images.DEMO_COLOR, logo=demo_images.logo(tenant.name)
        )
    for email, look in demo_images.REP_PORTRAITS.items():
        user = tenants.get_user_for_email(email)
        if user is not None and user.photo is None:
            headline = DEMO_HEADLINES.get(email, "")
            brand.update_public_profile(user, headline=headline, photo=demo_images.portrait(**look))


def seed_chat(admin: User, rep: User, page: SchedulingPage) -> None:
    """The chat widget on, answered by Rita, offering her default page; settings an admin saved are kept."""
    if chat.find_settings(admin.tenant) is not None:
        return
    chat.update_settings(
        admin.tenant,
        admin,
        chat.WidgetSettings(
            enabled=True,
            welcome_message="Hi! Ask us anything about Demo Company, or book a call.",
            color=None,
            position="right",
            language="en",
            booking_page_id=page.id if page.is_default else None,
            ask_email_after_seconds=60,
            member_ids=(rep.id,),
        ),
    )


def seed_team_page(admin: User, rep: User, domain: Domain) -> SchedulingPage:
    """The round-robin page of Rita and a second rep (Tom, created here once), on the demo domain."""
    existing = next(
        (p for p in pages.list_team_pages(admin.tenant) if p.slug == DEMO_TEAM_PAGE["slug"]), None
    )
    if existing is not None:
        return existing
    second = tenants.get_user_for_email(SECOND_REP_EMAIL)
    if second is None:
        issued = tenants.invite(admin.tenant, admin, email=SECOND_REP_EMAIL, role="rep", seat="sales", days=1)
        second = tenants.accept_invitation(
            issued.invitation,
            name="Tom Team",
            password=SECOND_REP_PASSWORD,
            time_zone="Europe/Warsaw",
            locale="en",
        )
    members = [{"user_id": rep.id}, {"user_id": second.id}]
    settings = pages.PageSettings(**DEMO_TEAM_PAGE, members=members, domain_id=domain.id)
    return pages.create_page(admin.tenant, admin, settings)


def seed_default_page(rep: User, domain: Domain) -> SchedulingPage:
    """The rep's default page on the demo domain, created once; a page the rep already has is kept as
    they left it (edited, moved, or another page made the default)."""
    page = pages.default_page(rep.tenant, rep)
    if page is None:
        page = pages.create_page(rep.tenant, rep, pages.PageSettings(**DEMO_PAGE, domain_id=domain.id))
    return page


def seed_team_template(admin: User) -> EmailTemplate:
    """The demo's team template, created once (found by its name; an edited one is kept as it is)."""
    for template in emails.list_templates(admin.tenant, admin):
        if template.is_team and template.name == DEMO_TEMPLATE.name:
            return template
    return emails.create_template(admin.tenant, admin, DEMO_TEMPLATE, team=True)


def connect_demo_calendar(rep: User, instance_path: str) -> str:
    """Connect the demo rep to this checkout's Radicale (once), with Team checked for availability.

    Already connected: when Radicale had to move to another port since (the old one was taken), the
    connection follows it and its calendars are checked again, so they are active again."""
    url = demo_calendar.base_url(instance_path)
    demo_calendar.create_calendars(instance_path)
    connections = sync.list_connections(rep.tenant, rep)
    if connections:
        ours = next(
            (c for c in connections if c.provider == "caldav" and c.username == demo_calendar.USER), None
        )
        if ours is None or ours.server_url.startswith(url):
            return "already connected"
        sync.move_caldav_server(rep.tenant, rep, ours, url)
        return f"moved to {url}"
    connection = sync.connect_caldav(
        rep.tenant,
        rep,
        server_url=url,
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
    return f"connected to {url} (Work is the default, Team is checked for availability)"
