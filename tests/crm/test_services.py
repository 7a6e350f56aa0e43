"""The CRM services on their own: tenant-scoped getters, contact emails, search, meetings, tasks."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from app.crm import services
from app.crm.forms import local_to_utc
from app.crm.models import Contact, Meeting, Task
from app.extensions import db
from tests import factories

pytestmark = pytest.mark.usefixtures("app_ctx")


@pytest.fixture
def two():
    """Two tenants, each with a rep, a contact, a meeting and a task (ORM objects, in app_ctx)."""
    tenants = []
    for name in ("acme", "globex"):
        tenant = factories.make_tenant(name.title())
        rep = factories.make_user(tenant)
        contact = factories.make_contact(tenant, email=f"shared@{name}.example.org")
        meeting = factories.make_meeting(tenant, rep, [contact])
        task = factories.make_task(tenant, rep, contact)
        tenants.append((tenant, rep, contact, meeting, task))
    return tenants


def _contacts_in(tenant) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Contact).where(Contact.tenant_id == tenant.id)
    )


# --- Getters are scoped by tenant --------------------------------------------------------------------------


def test_getters_return_the_own_tenants_rows(two):
    (acme, _, contact, meeting, task), _ = two
    assert services.get_contact(acme, contact.id) is contact
    assert services.get_meeting(acme, meeting.id) is meeting
    assert services.get_task(acme, task.id) is task
    assert services.get_contact_by_email(acme, " SHARED@acme.example.org ") is contact


def test_getters_return_none_for_another_tenants_ids(two):
    (acme, *_), (globex, _, contact, meeting, task) = two
    assert services.get_contact(acme, contact.id) is None
    assert services.get_meeting(acme, meeting.id) is None
    assert services.get_task(acme, task.id) is None
    assert services.get_contact_by_email(acme, contact.email) is None
    assert services.get_contact(globex, contact.id) is contact  # the row is there, just not for acme


def test_getters_return_none_for_unknown_ids(two):
    (acme, *_), _ = two
    assert services.get_contact(acme, 2**31 - 1) is None
    assert services.get_meeting(acme, 2**31 - 1) is None
    assert services.get_task(acme, 2**31 - 1) is None


def test_lists_of_meetings_and_tasks_are_per_tenant(two):
    (acme, acme_rep, acme_contact, acme_meeting, acme_task), (globex, globex_rep, *_) = two
    assert services.list_meetings_for_contact(acme, acme_contact) == [acme_meeting]
    assert services.list_meetings_for_contact(globex, acme_contact) == []
    assert services.list_tasks_for_contact(acme, acme_contact) == [acme_task]
    assert services.list_tasks_for_contact(globex, acme_contact) == []
    assert services.list_open_tasks(acme, acme_rep) == [acme_task]
    assert services.list_open_tasks(acme, globex_rep) == []


# --- Contacts ----------------------------------------------------------------------------------------------


def test_create_contact_normalises_the_email(two):
    (acme, *_), _ = two

    contact = services.create_contact(
        acme, services.ContactData(email="  Jan.Kowalski@Example.ORG ", first_name="Jan", company="K")
    )

    assert contact.email == "jan.kowalski@example.org"
    assert contact.tenant_id == acme.id
    assert db.session.get(Contact, contact.id) is contact
    assert services.get_contact_by_email(acme, "JAN.KOWALSKI@example.org") is contact


@pytest.mark.parametrize(
    "email", ["shared@acme.example.org", "SHARED@Acme.Example.ORG", "  shared@acme.example.org  "]
)
def test_create_contact_refuses_a_duplicate_email_in_the_tenant(two, email):
    (acme, _, existing, *_), _ = two
    before = _contacts_in(acme)

    with pytest.raises(services.DuplicateEmail) as raised:
        services.create_contact(acme, services.ContactData(email=email))

    assert raised.value.existing is existing
    assert raised.value.field == "email"
    assert _contacts_in(acme) == before


def test_the_same_email_in_another_tenant_is_a_different_contact(two):
    (acme, *_), (_, _, globex_contact, *_) = two

    contact = services.create_contact(acme, services.ContactData(email=globex_contact.email))

    assert contact.id != globex_contact.id
    assert contact.tenant_id == acme.id


def test_a_duplicate_that_slips_past_the_check_is_caught_by_the_database(two, monkeypatch):
    """Two requests racing both pass the lookup; the unique index stops the second, the session lives on."""
    (acme, _, existing, *_), _ = two
    monkeypatch.setattr(services, "_refuse_duplicate", lambda *args, **kwargs: None)
    before = _contacts_in(acme)

    with pytest.raises(services.DuplicateEmail) as raised:
        services.create_contact(acme, services.ContactData(email=existing.email))

    assert raised.value.existing is existing
    assert _contacts_in(acme) == before  # the session still works: only the savepoint was rolled back


def test_update_contact(two):
    (acme, _, contact, *_), _ = two

    services.update_contact(acme, contact, services.ContactData(email=" NEW@Example.org", last_name="Nowak"))

    assert (contact.email, contact.last_name, contact.first_name) == ("new@example.org", "Nowak", "")


def test_update_contact_may_keep_its_own_email(two):
    (acme, _, contact, *_), _ = two
    services.update_contact(
        acme, contact, services.ContactData(email=contact.email.upper(), first_name="Same")
    )
    assert contact.first_name == "Same"


def test_update_contact_refuses_another_contacts_email_and_changes_nothing(two):
    (acme, _, contact, *_), _ = two
    other = factories.make_contact(acme, email="other@example.org", first_name="Other")

    with pytest.raises(services.DuplicateEmail) as raised:
        services.update_contact(
            acme, contact, services.ContactData(email="Other@example.org", first_name="Clash")
        )

    assert raised.value.existing is other
    assert (contact.email, contact.first_name) == ("shared@acme.example.org", "Contact")


# --- Search ------------------------------------------------------------------------------------------------


@pytest.fixture
def directory(two):
    (acme, *_), (globex, *_) = two
    rows = [
        ("lukasz@kowalski.pl", "Łukasz", "Żółć", "Kowalski i Synowie"),
        ("anna@organic.example", "Anna", "Nowak", "100% Organic"),
        ("piotr@widgets.example", "Piotr", "Wiśniewski", "1000 Widgets"),
        ("a_b@under.example", "Ola", "Lis", ""),
        ("axb@under.example", "Ela", "Lis", ""),
        ("back\\slash@odd.example", "Bea", "Back", ""),
    ]
    for email, first, last, company in rows:
        factories.make_contact(acme, email=email, first_name=first, last_name=last, company=company)
    factories.make_contact(
        globex, email="anna@globex.example", first_name="Anna", last_name="Nowak", company="100%"
    )
    return acme


def _emails(page: services.ContactPage) -> set[str]:
    return {contact.email for contact in page.contacts}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ŁUKASZ", {"lukasz@kowalski.pl"}),
        ("żółć", {"lukasz@kowalski.pl"}),
        ("SYNOWIE", {"lukasz@kowalski.pl"}),
        ("Widgets.Example", {"piotr@widgets.example"}),
        ("anna nowak", {"anna@organic.example"}),
        ("anna widgets", set()),
        ("100%", {"anna@organic.example"}),
        ("%", {"anna@organic.example"}),
        ("a_b", {"a_b@under.example"}),
        ("_", {"a_b@under.example"}),
        ("\\", {"back\\slash@odd.example"}),
        ("   ", None),
    ],
)
def test_list_contacts_search(directory, query, expected):
    page = services.list_contacts(directory, query)
    if expected is None:  # a blank query lists everyone
        assert len(page.contacts) == 7
    else:
        assert _emails(page) == expected


def test_list_contacts_never_shows_another_tenants_contacts(two, directory):
    _, (globex, *_) = two
    assert _emails(services.list_contacts(globex)) == {"shared@globex.example.org", "anna@globex.example"}
    assert _emails(services.list_contacts(globex, "shared")) == {"shared@globex.example.org"}
    assert _emails(services.list_contacts(directory, "globex")) == set()


def test_list_contacts_pages_newest_first():
    tenant = factories.make_tenant()
    start = datetime(2030, 1, 1, tzinfo=UTC)
    contacts = [factories.make_contact(tenant) for _ in range(services.PAGE_SIZE + 1)]
    for n, contact in enumerate(contacts):
        contact.created_at = start + timedelta(minutes=n)
    db.session.flush()

    first = services.list_contacts(tenant, page=1)
    second = services.list_contacts(tenant, page=2)

    assert first.contacts == contacts[::-1][: services.PAGE_SIZE]
    assert first.has_more
    assert second.contacts == [contacts[0]]
    assert not second.has_more
    assert services.list_contacts(tenant, page=0).contacts == first.contacts
    assert services.list_contacts(tenant, page=-5).contacts == first.contacts
    assert services.list_contacts(tenant, page=10**20).contacts == []


# --- Meetings and tasks ------------------------------------------------------------------------------------


def test_log_meeting(two):
    (acme, rep, contact, *_), _ = two
    start = datetime(2030, 7, 1, 8, 0, tzinfo=UTC)

    meeting = services.log_meeting(
        acme, rep, contact, title="  Demo ", start_at=start, end_at=start + timedelta(minutes=45), notes="n"
    )

    stored = db.session.get(Meeting, meeting.id)
    assert (stored.tenant_id, stored.owner, stored.title, stored.source, stored.status, stored.contacts) == (
        acme.id,
        rep,
        "Demo",
        "crm",
        "scheduled",
        [contact],
    )
    assert stored.start_at == start


def test_cancel_meeting(two):
    (acme, _, _, meeting, _), _ = two
    services.cancel_meeting(acme, meeting)
    assert db.session.scalar(sa.select(Meeting.status).where(Meeting.id == meeting.id)) == "cancelled"


def test_complete_task_is_idempotent_and_reopen_clears_completion(two):
    (acme, _, _, _, task), _ = two

    services.complete_task(acme, task)
    completed_at = task.completed_at
    services.complete_task(acme, task)

    assert task.status == "completed"
    assert completed_at is not None
    assert task.completed_at == completed_at
    assert services.list_open_tasks(acme, task.owner) == []

    services.reopen_task(acme, task)

    assert (task.status, task.completed_at) == ("open", None)
    assert services.list_open_tasks(acme, task.owner) == [task]


def test_create_task_and_open_tasks_sort_by_due_date_with_undated_last(two):
    (acme, rep, contact, _, undated), _ = two
    later = services.create_task(
        acme, rep, title=" Later ", contact=contact, due_at=datetime(2030, 2, 1, tzinfo=UTC)
    )
    sooner = services.create_task(acme, rep, title="Sooner", due_at=datetime(2030, 1, 1, tzinfo=UTC))

    assert later.title == "Later"
    assert db.session.get(Task, sooner.id).contact is None
    assert services.list_open_tasks(acme, rep) == [sooner, later, undated]


# --- Wall-clock time to UTC (the meeting and task forms use it) --------------------------------------------


@pytest.mark.parametrize(
    ("day", "at", "zone", "expected"),
    [
        (date(2030, 7, 1), time(10, 0), "Europe/Warsaw", datetime(2030, 7, 1, 8, 0, tzinfo=UTC)),
        (date(2030, 1, 15), time(10, 0), "Europe/Warsaw", datetime(2030, 1, 15, 9, 0, tzinfo=UTC)),
        (date(2030, 3, 31), time(3, 0), "Europe/Warsaw", datetime(2030, 3, 31, 1, 0, tzinfo=UTC)),
        (date(2030, 10, 27), time(2, 30), "Europe/Warsaw", datetime(2030, 10, 27, 0, 30, tzinfo=UTC)),
        (date(2030, 7, 1), time(23, 30), "America/New_York", datetime(2030, 7, 2, 3, 30, tzinfo=UTC)),
    ],
)
def test_local_to_utc(day, at, zone, expected):
    assert local_to_utc(day, at, zone) == expected


@pytest.mark.parametrize(
    ("day", "zone"), [(date(2030, 3, 31), "Europe/Warsaw"), (date(2030, 3, 10), "America/New_York")]
)
def test_local_to_utc_refuses_a_time_the_clocks_skip(day, zone):
    with pytest.raises(ValueError, match="nonexistent"):
        local_to_utc(day, time(2, 30), zone)
