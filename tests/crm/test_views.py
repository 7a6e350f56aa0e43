"""The CRM over HTTP: tenant isolation on every id route, refused input, and the working paths."""

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa

from app.crm.models import Contact, Meeting, Task
from app.extensions import db
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import Client
from tests.helpers import error_fields, is_fragment, snapshot


def meeting_data(**overrides) -> dict:
    return {"title": "Demo", "date": "2030-07-01", "start_time": "10:00", "duration": "30", **overrides}


# --- Tenant isolation ------------------------------------------------------------------------------------


@pytest.fixture
def targets(app, world):
    """Tenant A's ids for every id-taking CRM route, including a completed task for /reopen."""
    ours, _ = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        rep = db.session.get(User, ours.rep_id)
        contact = db.session.get(Contact, ours.contact_id)
        done = factories.make_task(tenant, rep, contact, title="Already done")
        done.status, done.completed_at = "completed", datetime(2030, 1, 1, tzinfo=UTC)
        db.session.commit()
        completed_task_id = done.id
    return {
        "contact_id": ours.contact_id,
        "meeting_id": ours.meeting_id,
        "task_id": ours.task_id,
        "completed_task_id": completed_task_id,
    }


ID_ROUTES = [
    pytest.param("GET", "/crm/contacts/{contact_id}", None, id="contact"),
    pytest.param("GET", "/crm/contacts/{contact_id}/edit", None, id="edit-form"),
    pytest.param(
        "POST",
        "/crm/contacts/{contact_id}/edit",
        {"email": "hijacked@evil.example", "first_name": "Hijacked"},
        id="edit-save",
    ),
    pytest.param(
        "POST", "/crm/contacts/{contact_id}/meetings", meeting_data(title="Hijack"), id="log-meeting"
    ),
    pytest.param(
        "POST",
        "/crm/contacts/{contact_id}/tasks",
        {"title": "Hijack", "due_date": "2030-07-01"},
        id="add-task",
    ),
    pytest.param("GET", "/crm/meetings/{meeting_id}", None, id="meeting"),
    pytest.param("POST", "/crm/meetings/{meeting_id}/cancel", None, id="cancel-meeting"),
    pytest.param("POST", "/crm/tasks/{task_id}/complete", None, id="complete-task"),
    pytest.param("POST", "/crm/tasks/{completed_task_id}/reopen", None, id="reopen-task"),
]


def _send(client: Client, method: str, url: str, data: dict | None, htmx: bool):
    if method == "GET":
        return client.get(url, headers={"HX-Request": "true"} if htmx else {})
    return client.post_form(url, data, htmx=htmx)


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize(("method", "url", "data"), ID_ROUTES)
def test_other_tenants_ids_answer_404_and_change_nothing(
    app, world, targets, signed_in, method, url, data, htmx
):
    _, theirs = world
    client = signed_in(theirs.admin_email)  # even an admin of tenant B sees nothing of tenant A
    before = snapshot(app)

    response = _send(client, method, url.format(**targets), data, htmx)

    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Page not found" in body
    assert "shared@acme.example.org" not in body
    assert snapshot(app) == before


@pytest.mark.parametrize(("method", "url", "data"), ID_ROUTES)
def test_own_tenant_reaches_every_id_route(app, world, targets, signed_in, method, url, data):
    """The control for the test above: the same requests work for tenant A, so its 404s are scoping."""
    ours, _ = world
    client = signed_in(ours.rep_email)

    response = _send(client, method, url.format(**targets), data, htmx=False)

    assert response.status_code in (200, 303), response.get_data(as_text=True)


def test_contact_list_and_search_show_only_the_own_tenants_contacts(world, signed_in):
    ours, theirs = world
    client = signed_in(theirs.rep_email)

    listing = client.get("/crm/contacts").get_data(as_text=True)
    search = client.get("/crm/contacts?q=shared").get_data(as_text=True)
    fragment = client.get("/crm/contacts?q=shared@", headers={"HX-Request": "true"}).get_data(as_text=True)
    by_domain = client.get("/crm/contacts?q=acme").get_data(as_text=True)

    for body in (listing, search, fragment):
        assert theirs.contact_email in body
        assert ours.contact_email not in body
    assert ours.contact_email not in by_domain
    assert "No contact matches" in by_domain


def test_task_list_shows_only_the_own_tenants_tasks(app, world, signed_in):
    ours, theirs = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        factories.make_task(tenant, db.session.get(User, ours.rep_id), title="Acme secret follow-up")
        db.session.commit()

    body = signed_in(theirs.rep_email).get("/crm/tasks").get_data(as_text=True)

    assert "Acme secret follow-up" not in body
    assert "Follow up" in body  # tenant B's own open task


CRM_PAGES = [
    "/crm/contacts",
    "/crm/contacts/new",
    "/crm/contacts/{contact_id}",
    "/crm/tasks",
    "/crm/meetings/{meeting_id}",
    "/crm/contacts/{contact_id}/edit",
]


@pytest.mark.parametrize("url", CRM_PAGES)
def test_anonymous_visitors_are_sent_to_login(client, targets, url):
    path = url.format(**targets)

    response = client.get(path)

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]


@pytest.mark.parametrize(("method", "url", "data"), [r for r in ID_ROUTES if r.values[0] == "POST"])
def test_anonymous_posts_are_sent_to_login_and_change_nothing(app, client, targets, method, url, data):
    before = snapshot(app)

    response = client.post_form(url.format(**targets), data)

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert snapshot(app) == before


def test_anonymous_cannot_create_a_contact(app, client):
    before = snapshot(app)

    response = client.post_form("/crm/contacts/new", {"email": "anon@example.org"})

    assert response.status_code == 302
    assert snapshot(app) == before


# --- Contacts: creating and editing ------------------------------------------------------------------------


def _contact(app, tenant_id: int, email: str) -> Contact | None:
    with app.app_context():
        contact = db.session.scalar(
            sa.select(Contact).where(Contact.tenant_id == tenant_id, Contact.email == email)
        )
        if contact is not None:
            db.session.expunge(contact)
        return contact


def test_new_contact_form_renders(world, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).get("/crm/contacts/new")
    assert response.status_code == 200
    assert 'name="email"' in response.get_data(as_text=True)


def test_create_contact_with_a_plain_form(app, world, signed_in):
    ours, theirs = world
    client = signed_in(ours.rep_email)

    response = client.post_form(
        "/crm/contacts/new",
        {
            "email": "  Jan.Kowalski@Example.ORG ",
            "first_name": "Jan",
            "last_name": "Kowalski",
            "company": "Kowalski sp. z o.o.",
            "phone": "+48 600 000 000",
            "notes": "Met at the fair.",
        },
    )

    assert response.status_code == 303
    contact = _contact(app, ours.tenant_id, "jan.kowalski@example.org")
    assert contact is not None
    assert (contact.first_name, contact.last_name, contact.company, contact.phone, contact.notes) == (
        "Jan",
        "Kowalski",
        "Kowalski sp. z o.o.",
        "+48 600 000 000",
        "Met at the fair.",
    )
    assert response.headers["Location"] == f"/crm/contacts/{contact.id}"
    assert _contact(app, theirs.tenant_id, "jan.kowalski@example.org") is None
    record = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Contact Jan Kowalski created." in record


def test_create_contact_with_htmx_answers_hx_redirect(app, world, signed_in):
    ours, _ = world

    response = signed_in(ours.rep_email).post_form(
        "/crm/contacts/new", {"email": "htmx@example.org"}, htmx=True
    )

    contact = _contact(app, ours.tenant_id, "htmx@example.org")
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/crm/contacts/{contact.id}"


BAD_CONTACTS = [
    pytest.param({"email": ""}, "email", id="empty-email"),
    pytest.param({"email": "    "}, "email", id="blank-email"),
    pytest.param({"email": "not-an-email"}, "email", id="no-at"),
    pytest.param({"email": "jan@"}, "email", id="no-domain"),
    pytest.param({"email": "jan kowalski@example.org"}, "email", id="space-in-email"),
    pytest.param({"email": "a" * 250 + "@x.pl"}, "email", id="email-too-long"),
    pytest.param({"first_name": "x" * 81}, "first_name", id="first-name-81"),
    pytest.param({"last_name": "x" * 81}, "last_name", id="last-name-81"),
    pytest.param({"company": "x" * 121}, "company", id="company-121"),
    pytest.param({"phone": "1" * 41}, "phone", id="phone-41"),
    pytest.param({"notes": "x" * 10_001}, "notes", id="notes-10001"),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize(("overrides", "field"), BAD_CONTACTS)
def test_bad_contact_input_is_refused_naming_the_field(app, world, signed_in, overrides, field, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form("/crm/contacts/new", {"email": "fine@example.org", **overrides}, htmx=htmx)

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert is_fragment(response) is htmx
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("field", "limit"),
    [("first_name", 80), ("last_name", 80), ("company", 120), ("phone", 40), ("notes", 10_000)],
)
def test_fields_at_their_limit_are_accepted(app, world, signed_in, field, limit):
    ours, _ = world

    response = signed_in(ours.rep_email).post_form(
        "/crm/contacts/new", {"email": "limit@example.org", field: "7" * limit}
    )

    assert response.status_code == 303
    assert getattr(_contact(app, ours.tenant_id, "limit@example.org"), field) == "7" * limit


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_duplicate_email_in_the_same_tenant_links_to_the_existing_contact(app, world, signed_in, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form("/crm/contacts/new", {"email": " SHARED@Acme.Example.org "}, htmx=htmx)

    assert response.status_code == 422
    assert error_fields(response) == {"email"}
    body = response.get_data(as_text=True)
    assert "A contact with this email already exists." in body
    assert f'href="/crm/contacts/{ours.contact_id}"' in body
    assert snapshot(app) == before


def test_the_same_email_in_another_tenant_is_allowed(app, world, signed_in):
    ours, theirs = world

    response = signed_in(ours.rep_email).post_form("/crm/contacts/new", {"email": theirs.contact_email})

    assert response.status_code == 303
    mine = _contact(app, ours.tenant_id, theirs.contact_email)
    assert mine is not None
    assert mine.id != theirs.contact_id


def test_edit_form_is_prefilled(world, signed_in):
    ours, _ = world
    body = signed_in(ours.rep_email).get(f"/crm/contacts/{ours.contact_id}/edit").get_data(as_text=True)
    assert f'value="{ours.contact_email}"' in body


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_edit_contact(app, world, signed_in, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)

    response = client.post_form(
        f"/crm/contacts/{ours.contact_id}/edit",
        {
            "email": ours.contact_email,
            "first_name": "Renamed",
            "company": "New Co",
        },
        htmx=htmx,
    )

    target = f"/crm/contacts/{ours.contact_id}"
    if htmx:
        assert (response.status_code, response.headers["HX-Redirect"]) == (200, target)
    else:
        assert (response.status_code, response.headers["Location"]) == (303, target)
    with app.app_context():
        contact = db.session.get(Contact, ours.contact_id)
        assert (contact.email, contact.first_name, contact.company) == (
            ours.contact_email,
            "Renamed",
            "New Co",
        )


def test_edit_to_another_contacts_email_is_refused(app, world, signed_in):
    ours, _ = world
    with app.app_context():
        other = factories.make_contact(db.session.get(Tenant, ours.tenant_id), email="other@example.org")
        db.session.commit()
        other_id = other.id
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form(
        f"/crm/contacts/{ours.contact_id}/edit", {"email": "Other@Example.org", "first_name": "Clash"}
    )

    assert response.status_code == 422
    assert error_fields(response) == {"email"}
    assert f'href="/crm/contacts/{other_id}"' in response.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("overrides", "field"), [({"email": "broken"}, "email"), ({"company": "x" * 121}, "company")]
)
def test_bad_edit_changes_nothing(app, world, signed_in, overrides, field):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form(
        f"/crm/contacts/{ours.contact_id}/edit",
        {"email": ours.contact_email, "first_name": "Half", **overrides},
    )

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert snapshot(app) == before


# --- CSRF --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize("token", [None, "forged-token"], ids=["missing", "forged"])
def test_posts_without_a_valid_csrf_token_are_refused(app, world, signed_in, token, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)
    data = {"email": "csrf@example.org"} | ({"csrf_token": token} if token else {})
    before = snapshot(app)

    response = client.post("/crm/contacts/new", data=data, headers={"HX-Request": "true"} if htmx else {})

    assert response.status_code == 400
    assert "csrf_token" in response.get_data(as_text=True)
    assert snapshot(app) == before


def test_a_forged_token_cannot_complete_a_task(app, world, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post(f"/crm/tasks/{ours.task_id}/complete", data={"csrf_token": "x" * 40})

    assert response.status_code == 400
    assert snapshot(app) == before


# --- Search ------------------------------------------------------------------------------------------------


@pytest.fixture
def directory(app, world):
    """Tenant A's contacts for search: names, companies and emails with % and _ in them."""
    ours, _ = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        for email, first, last, company in [
            ("lukasz@kowalski.pl", "Łukasz", "Żółć", "Kowalski i Synowie"),
            ("anna@organic.example", "Anna", "Nowak", "100% Organic"),
            ("piotr@widgets.example", "Piotr", "Wiśniewski", "1000 Widgets"),
            ("a_b@under.example", "Ola", "Lis", ""),
            ("axb@under.example", "Ela", "Lis", ""),
        ]:
            factories.make_contact(tenant, email=email, first_name=first, last_name=last, company=company)
        db.session.commit()
    return [
        "lukasz@kowalski.pl",
        "anna@organic.example",
        "piotr@widgets.example",
        "a_b@under.example",
        "axb@under.example",
        ours.contact_email,
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param("ŁUKASZ", {"lukasz@kowalski.pl"}, id="first-name-upper-case"),
        pytest.param("żółć", {"lukasz@kowalski.pl"}, id="last-name-lower-case"),
        pytest.param("nowak", {"anna@organic.example"}, id="last-name"),
        pytest.param("SYNOWIE", {"lukasz@kowalski.pl"}, id="company"),
        pytest.param("WIDGETS.example", {"piotr@widgets.example"}, id="email"),
        pytest.param("anna 100%", {"anna@organic.example"}, id="every-word-must-match"),
        pytest.param("100%", {"anna@organic.example"}, id="percent-is-literal"),
        pytest.param("%", {"anna@organic.example"}, id="lone-percent-is-literal"),
        pytest.param("a_b", {"a_b@under.example"}, id="underscore-is-literal"),
        pytest.param("_", {"a_b@under.example"}, id="lone-underscore-is-literal"),
        pytest.param("lis", {"a_b@under.example", "axb@under.example"}, id="several-matches"),
        pytest.param("nobody", set(), id="no-match"),
    ],
)
def test_search_by_name_email_and_company(world, directory, signed_in, query, expected):
    ours, _ = world

    response = signed_in(ours.rep_email).get(
        "/crm/contacts", query_string={"q": query}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 200
    assert is_fragment(response)
    body = response.get_data(as_text=True)
    assert {email for email in directory if f"<td>{email}</td>" in body} == expected


def test_search_page_without_htmx_is_a_whole_page(world, directory, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).get("/crm/contacts?q=Nowak")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<html" in body
    assert 'value="Nowak"' in body
    assert "<td>anna@organic.example</td>" in body
    assert "<td>lukasz@kowalski.pl</td>" not in body


@pytest.mark.parametrize("page", ["0", "-3", "abc", "99999999999999999999"])
def test_odd_page_numbers_do_not_break_the_list(world, signed_in, page):
    ours, _ = world
    response = signed_in(ours.rep_email).get(f"/crm/contacts?page={page}")
    assert response.status_code == 200


# --- Meetings ----------------------------------------------------------------------------------------------


@pytest.fixture
def user_in(app, world):
    """Sign in a new user of tenant A who lives in ``time_zone``."""

    def make(time_zone: str) -> Client:
        ours, _ = world
        with app.app_context():
            user = factories.make_user(db.session.get(Tenant, ours.tenant_id), time_zone=time_zone)
            db.session.commit()
            email = user.email
        client = Client(app)
        client.login(email)
        return client

    return make


def _meetings_titled(app, title: str) -> list[Meeting]:
    with app.app_context():
        meetings = list(db.session.scalars(sa.select(Meeting).where(Meeting.title == title)))
        for meeting in meetings:
            db.session.expunge(meeting)
        return meetings


@pytest.mark.parametrize(
    ("time_zone", "day", "at", "minutes", "start", "end"),
    [
        (
            "Europe/Warsaw",
            "2030-07-01",
            "10:00",
            "45",
            datetime(2030, 7, 1, 8, 0, tzinfo=UTC),
            datetime(2030, 7, 1, 8, 45, tzinfo=UTC),
        ),
        (
            "Europe/Warsaw",
            "2030-01-15",
            "10:00",
            "30",
            datetime(2030, 1, 15, 9, 0, tzinfo=UTC),
            datetime(2030, 1, 15, 9, 30, tzinfo=UTC),
        ),
        (
            "America/New_York",
            "2030-07-01",
            "23:30",
            "60",
            datetime(2030, 7, 2, 3, 30, tzinfo=UTC),
            datetime(2030, 7, 2, 4, 30, tzinfo=UTC),
        ),
        (
            "UTC",
            "2030-07-01",
            "10:00",
            "120",
            datetime(2030, 7, 1, 10, 0, tzinfo=UTC),
            datetime(2030, 7, 1, 12, 0, tzinfo=UTC),
        ),
    ],
)
def test_meeting_is_stored_in_utc_from_the_users_time_zone(
    app, world, user_in, time_zone, day, at, minutes, start, end
):
    ours, _ = world
    client = user_in(time_zone)

    response = client.post_form(
        f"/crm/contacts/{ours.contact_id}/meetings",
        meeting_data(title="Kick-off", date=day, start_time=at, duration=minutes, notes="Agenda attached."),
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/crm/contacts/{ours.contact_id}"
    [meeting] = _meetings_titled(app, "Kick-off")
    assert (meeting.start_at, meeting.end_at) == (start, end)
    assert (meeting.tenant_id, meeting.source, meeting.status, meeting.notes) == (
        ours.tenant_id,
        "crm",
        "scheduled",
        "Agenda attached.",
    )
    with app.app_context():
        assert [c.id for c in db.session.get(Meeting, meeting.id).contacts] == [ours.contact_id]


def test_log_meeting_with_htmx_answers_the_meetings_section(app, world, signed_in):
    ours, _ = world

    response = signed_in(ours.rep_email).post_form(
        f"/crm/contacts/{ours.contact_id}/meetings", meeting_data(title="Fragment call"), htmx=True
    )

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert is_fragment(response)
    assert '<section id="meetings"' in body
    assert "Fragment call" in body
    assert len(_meetings_titled(app, "Fragment call")) == 1


BAD_MEETINGS = [
    pytest.param({"date": "2030-03-31", "start_time": "02:30"}, "start_time", id="skipped-by-dst"),
    pytest.param({"title": ""}, "title", id="no-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"title": "x" * 201}, "title", id="title-201"),
    pytest.param({"date": ""}, "date", id="no-date"),
    pytest.param({"date": "2030-02-30"}, "date", id="impossible-date"),
    pytest.param({"start_time": "25:00"}, "start_time", id="impossible-time"),
    pytest.param({"duration": "17"}, "duration", id="unlisted-duration"),
    pytest.param({"notes": "x" * 10_001}, "notes", id="notes-10001"),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize(("overrides", "field"), BAD_MEETINGS)
def test_bad_meeting_input_is_refused_naming_the_field(app, world, signed_in, overrides, field, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)  # Europe/Warsaw: 2030-03-31 02:00-03:00 does not exist
    before = snapshot(app)

    response = client.post_form(
        f"/crm/contacts/{ours.contact_id}/meetings", meeting_data(**overrides), htmx=htmx
    )

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert is_fragment(response) is htmx
    assert snapshot(app) == before


def test_dst_gap_is_judged_in_the_users_own_time_zone(app, world, user_in):
    ours, _ = world
    client = user_in("America/New_York")  # its gap is on 2030-03-10, not 03-31

    refused = client.post_form(
        f"/crm/contacts/{ours.contact_id}/meetings",
        meeting_data(title="Gap", date="2030-03-10", start_time="02:30"),
    )
    accepted = client.post_form(
        f"/crm/contacts/{ours.contact_id}/meetings",
        meeting_data(title="No gap", date="2030-03-31", start_time="02:30"),
    )

    assert refused.status_code == 422
    assert error_fields(refused) == {"start_time"}
    assert "does not exist in America/New_York" in refused.get_data(as_text=True)
    assert accepted.status_code == 303
    [meeting] = _meetings_titled(app, "No gap")
    assert meeting.start_at == datetime(2030, 3, 31, 6, 30, tzinfo=UTC)


def test_meeting_page_shows_the_meeting(world, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).get(f"/crm/meetings/{ours.meeting_id}")
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Intro call" in body
    assert f'href="/crm/contacts/{ours.contact_id}"' in body
    assert "Cancel meeting" in body


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_cancel_meeting(app, world, signed_in, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)

    response = client.post_form(f"/crm/meetings/{ours.meeting_id}/cancel", htmx=htmx)

    target = f"/crm/meetings/{ours.meeting_id}"
    if htmx:
        assert (response.status_code, response.headers["HX-Redirect"]) == (200, target)
    else:
        assert (response.status_code, response.headers["Location"]) == (303, target)
    with app.app_context():
        assert db.session.get(Meeting, ours.meeting_id).status == "cancelled"
    page = client.get(target).get_data(as_text=True)
    assert "Cancelled" in page
    assert "Cancel meeting" not in page


# --- Tasks -------------------------------------------------------------------------------------------------


def _tasks_titled(app, title: str) -> list[Task]:
    with app.app_context():
        tasks = list(db.session.scalars(sa.select(Task).where(Task.title == title)))
        for task in tasks:
            db.session.expunge(task)
        return tasks


@pytest.mark.parametrize(
    ("due_date", "due_time", "due_at"),
    [
        pytest.param("2030-07-01", "17:30", datetime(2030, 7, 1, 15, 30, tzinfo=UTC), id="date-and-time"),
        pytest.param("2030-07-01", "", datetime(2030, 7, 1, 7, 0, tzinfo=UTC), id="date-only-means-9-local"),
        pytest.param("2030-12-01", "09:00", datetime(2030, 12, 1, 8, 0, tzinfo=UTC), id="winter"),
        pytest.param("", "", None, id="no-due-date"),
        pytest.param("", "17:30", None, id="time-without-date"),
    ],
)
def test_create_task_with_due_date(app, world, signed_in, due_date, due_time, due_at):
    ours, _ = world

    response = signed_in(ours.rep_email).post_form(
        f"/crm/contacts/{ours.contact_id}/tasks",
        {"title": "Send offer", "due_date": due_date, "due_time": due_time},
    )

    assert response.status_code == 303
    assert response.headers["Location"] == f"/crm/contacts/{ours.contact_id}"
    [task] = _tasks_titled(app, "Send offer")
    assert task.due_at == due_at
    assert (task.tenant_id, task.owner_id, task.contact_id, task.status) == (
        ours.tenant_id,
        ours.rep_id,
        ours.contact_id,
        "open",
    )


def test_create_task_with_htmx_answers_the_tasks_section(app, world, signed_in):
    ours, _ = world

    response = signed_in(ours.rep_email).post_form(
        f"/crm/contacts/{ours.contact_id}/tasks", {"title": "Call back", "due_date": "2030-07-01"}, htmx=True
    )

    assert response.status_code == 200
    assert is_fragment(response)
    body = response.get_data(as_text=True)
    assert '<section id="tasks"' in body
    assert "Call back" in body
    assert len(_tasks_titled(app, "Call back")) == 1


BAD_TASKS = [
    pytest.param({"title": ""}, "title", id="no-title"),
    pytest.param({"title": "   "}, "title", id="blank-title"),
    pytest.param({"title": "x" * 201}, "title", id="title-201"),
    pytest.param({"due_date": "2030-02-30"}, "due_date", id="impossible-date"),
    pytest.param({"due_date": "2030-07-01", "due_time": "25:00"}, "due_time", id="impossible-time"),
    pytest.param({"due_date": "2030-03-31", "due_time": "02:30"}, "due_time", id="skipped-by-dst"),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize(("overrides", "field"), BAD_TASKS)
def test_bad_task_input_is_refused_naming_the_field(app, world, signed_in, overrides, field, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form(
        f"/crm/contacts/{ours.contact_id}/tasks", {"title": "Fine", **overrides}, htmx=htmx
    )

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert is_fragment(response) is htmx
    assert snapshot(app) == before


def test_task_title_of_200_characters_is_accepted(app, world, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).post_form(
        f"/crm/contacts/{ours.contact_id}/tasks", {"title": "t" * 200}
    )
    assert response.status_code == 303
    assert len(_tasks_titled(app, "t" * 200)) == 1


def test_complete_and_reopen_a_task_with_plain_forms(app, world, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)

    completed = client.post_form(f"/crm/tasks/{ours.task_id}/complete")

    assert (completed.status_code, completed.headers["Location"]) == (303, f"/crm/contacts/{ours.contact_id}")
    with app.app_context():
        task = db.session.get(Task, ours.task_id)
        assert task.status == "completed"
        assert task.completed_at is not None
    assert "Follow up" not in client.get("/crm/tasks").get_data(as_text=True)

    reopened = client.post_form(f"/crm/tasks/{ours.task_id}/reopen")

    assert (reopened.status_code, reopened.headers["Location"]) == (303, f"/crm/contacts/{ours.contact_id}")
    with app.app_context():
        task = db.session.get(Task, ours.task_id)
        assert (task.status, task.completed_at) == ("open", None)
    assert "Follow up" in client.get("/crm/tasks").get_data(as_text=True)


def test_complete_and_reopen_a_task_with_htmx_answer_the_row(app, world, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)

    completed = client.post_form(f"/crm/tasks/{ours.task_id}/complete", htmx=True)
    row = completed.get_data(as_text=True)
    assert completed.status_code == 200
    assert row.lstrip().startswith(f'<li id="task-{ours.task_id}" class="task completed">')
    assert f"/crm/tasks/{ours.task_id}/reopen" in row

    reopened = client.post_form(f"/crm/tasks/{ours.task_id}/reopen", htmx=True)
    row = reopened.get_data(as_text=True)
    assert reopened.status_code == 200
    assert row.lstrip().startswith(f'<li id="task-{ours.task_id}" class="task open">')
    with app.app_context():
        assert db.session.get(Task, ours.task_id).status == "open"


def test_completing_a_task_without_contact_returns_to_the_task_list(app, world, signed_in):
    ours, _ = world
    with app.app_context():
        task = factories.make_task(db.session.get(Tenant, ours.tenant_id), db.session.get(User, ours.rep_id))
        db.session.commit()
        task_id = task.id

    response = signed_in(ours.rep_email).post_form(f"/crm/tasks/{task_id}/complete")

    assert (response.status_code, response.headers["Location"]) == (303, "/crm/tasks")
