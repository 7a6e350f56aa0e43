"""An admin manages the scheduling pages of every user of their own tenant (issue 6: "the admin moves a rep's
page"): the team list, editing a rep's page (the page stays the rep's), a new page for a rep, default and
delete. Reps still reach only their own pages; another tenant's ids answer 404 for everyone, admins
included, and change nothing."""

from datetime import UTC, datetime, timedelta
from html import unescape

import pytest

from app.extensions import db
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import APP_HOST
from tests.helpers import snapshot
from tests.pages.test_editor import _value, page_data


@pytest.fixture
def team(app, world):
    """Tenant A: its admin (with a page of their own at "intro"), its rep Rita Rep (New York time) with
    "intro" (default) and "demo" and a booking on "intro", a second rep without pages, a verified domain.
    Tenant B: its rep with a page. Plain ids."""
    ours, theirs = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        admin = db.session.scalar(db.select(User).where(User.email == ours.admin_email))
        rep = db.session.get(User, ours.rep_id)
        rep.name, rep.time_zone = "Rita Rep", "America/New_York"
        idle = factories.make_user(tenant, email="ivan@acme.example.com", name="Ivan Idle")
        admins_page = factories.make_page(admin, slug="intro", title="Admin hour")
        intro = factories.make_page(rep, slug="intro", title="Intro call")
        demo = factories.make_page(rep, slug="demo", title="Product demo")
        domain = factories.make_domain(tenant, "meet.acme.example")
        other_rep = db.session.get(User, theirs.rep_id)
        other_rep.name = "Greta Globex"
        theirs_page = factories.make_page(other_rep, slug="globex-call", title="Globex call")
        booking = pages.book(
            intro,
            pages.BookingRequest(
                start=datetime(2030, 1, 7, 15, tzinfo=UTC),  # 10:00 in New York
                duration=timedelta(minutes=30),
                first_name="Vera",
                last_name="Visitor",
                email="vera@visitor.example",
                time_zone="Europe/Warsaw",
                idempotency_key="team-k1",
            ),
            now=datetime(2030, 1, 1, tzinfo=UTC),
        ).booking
        db.session.commit()
        return {
            "admin_id": admin.id,
            "rep_id": rep.id,
            "rep_slug": rep.page_slug,
            "idle_id": idle.id,
            "idle_email": idle.email,
            "admins_page_id": admins_page.id,
            "page_id": intro.id,
            "second_id": demo.id,
            "booking_id": booking.id,
            "domain_id": domain.id,
            "theirs_page_id": theirs_page.id,
            "theirs_rep_id": other_rep.id,
        }


def _page(app, page_id: int) -> SchedulingPage | None:
    with app.app_context():
        page = db.session.get(SchedulingPage, page_id)
        if page is not None:
            db.session.expunge_all()
        return page


# --- The team list ----------------------------------------------------------------------------------------


def test_team_list_shows_every_user_of_the_tenant_with_their_pages_only(app, world, team, signed_in):
    ours, _ = world
    body = signed_in(ours.admin_email).get("/pages/team").get_data(as_text=True)

    for name in ("Rita Rep", "Ivan Idle"):
        assert name in body
    for title in ("Intro call", "Product demo", "Admin hour"):
        assert title in body
    assert f'value="http://{APP_HOST}/meetings/{team["rep_slug"]}"' in body  # Rita's default page
    assert f'value="http://{APP_HOST}/meetings/{team["rep_slug"]}/demo"' in body
    assert f'href="/pages/{team["page_id"]}/edit"' in body
    assert f'href="/pages/{team["second_id"]}/edit"' in body
    assert f"/pages/new?owner={team['rep_id']}" in body
    assert f"/pages/new?owner={team['idle_id']}" in body
    # Ivan has no page: he is listed, with nothing under him.
    ivan = body.split(f'id="member-{team["idle_id"]}"')[1].split("</section>")[0]
    assert "No scheduling page yet." in ivan
    # Rita's pages sit under Rita, not under someone else.
    rita = body.split(f'id="member-{team["rep_id"]}"')[1].split("</section>")[0]
    assert "Intro call" in rita
    assert "Product demo" in rita
    assert "Admin hour" not in rita
    # Nothing of the other tenant.
    assert "Globex call" not in body
    assert "Greta Globex" not in body
    assert f"/pages/{team['theirs_page_id']}/" not in body


def test_the_other_tenants_admin_sees_only_their_own_team(app, world, team, signed_in):
    _, theirs = world
    body = signed_in(theirs.admin_email).get("/pages/team").get_data(as_text=True)
    assert "Globex call" in body
    assert "Greta Globex" in body
    for text in ("Rita Rep", "Intro call", "Product demo", "Ivan Idle", team["rep_slug"]):
        assert text not in body


def test_pages_offers_admins_the_team_list_and_not_reps(app, world, team, signed_in):
    ours, _ = world
    assert 'href="/pages/team"' in signed_in(ours.admin_email).get("/pages").get_data(as_text=True)
    assert 'href="/pages/team"' not in signed_in(ours.rep_email).get("/pages").get_data(as_text=True)


def test_a_rep_gets_403_on_the_team_list(app, world, team, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).get("/pages/team")
    assert response.status_code == 403
    assert "Product demo" not in response.get_data(as_text=True)


def test_the_team_list_needs_a_sign_in(client, team):
    assert client.get("/pages/team").status_code == 302


def test_team_pages_service_refuses_reps_and_other_tenants_admins(app, world, team):
    ours, theirs = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        rep = db.session.get(User, ours.rep_id)
        their_admin = db.session.scalar(db.select(User).where(User.email == theirs.admin_email))
        for actor in (rep, their_admin):
            with pytest.raises(pages.PagesError):
                pages.team_pages(tenant, actor)


# --- An admin edits a rep's page --------------------------------------------------------------------------


def test_admin_opens_a_reps_page_in_the_editor_with_the_reps_slug(app, world, team, signed_in):
    ours, _ = world
    body = signed_in(ours.admin_email).get(f"/pages/{team['second_id']}/edit").get_data(as_text=True)
    assert "Rita Rep's page" in unescape(body)
    assert f"/meetings/{team['rep_slug']}/this-part" in body
    assert _value(body, "title") == "Product demo"
    assert _value(body, "time_zone") == "America/New_York"


def test_admin_edits_a_reps_page_domain_and_title_and_the_owner_stays_the_rep(app, world, team, signed_in):
    ours, _ = world
    client = signed_in(ours.admin_email)

    response = client.post_form(
        f"/pages/{team['second_id']}/edit",
        page_data(title="Demo for customers", slug="demo", domain_id=str(team["domain_id"])),
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith("/pages/team")
    page = _page(app, team["second_id"])
    assert page.owner_id == team["rep_id"]
    assert page.title == "Demo for customers"
    assert page.domain_id == team["domain_id"]
    listing = client.get("/pages/team").get_data(as_text=True)
    assert "Rita Rep's page “Demo for customers” saved." in unescape(listing)
    rita = listing.split(f'id="member-{team["rep_id"]}"')[1].split("</section>")[0]
    assert f'value="http://meet.acme.example/meetings/{team["rep_slug"]}/demo"' in rita
    # The rep sees it among their own pages, on the new host.
    mine = signed_in(ours.rep_email).get("/pages").get_data(as_text=True)
    assert f'value="http://meet.acme.example/meetings/{team["rep_slug"]}/demo"' in mine
    # The admin's own pages did not gain it.
    with app.app_context():
        admin = db.session.get(User, team["admin_id"])
        assert [p.title for p in pages.list_pages(admin.tenant, admin)] == ["Admin hour"]


def test_duplicate_slug_is_checked_against_the_owners_pages(app, world, team, signed_in):
    ours, _ = world
    client = signed_in(ours.admin_email)
    before = snapshot(app)

    # "intro" is Rita's other page: refused, saying whose page holds it.
    response = client.post_form(f"/pages/{team['second_id']}/edit", page_data(slug="intro"))

    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert "Rita Rep's page “Intro call” already uses this link" in unescape(body)
    assert snapshot(app) == before


def test_the_admins_own_slugs_do_not_block_a_reps_page(app, world, team, signed_in):
    """The admin has a page at "intro" too; a new page for Ivan may use it, because it is Ivan's."""
    ours, _ = world
    response = signed_in(ours.admin_email).post_form(
        f"/pages/new?owner={team['idle_id']}", page_data(slug="intro", title="Ivan's intro")
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/pages/team")
    with app.app_context():
        ivan = db.session.get(User, team["idle_id"])
        created = pages.list_pages(ivan.tenant, ivan)
        assert [(p.slug, p.title, p.is_default) for p in created] == [("intro", "Ivan's intro", True)]


def test_admin_creates_a_page_for_a_rep_with_the_reps_defaults(app, world, team, signed_in):
    ours, _ = world
    client = signed_in(ours.admin_email)

    form = client.get(f"/pages/new?owner={team['rep_id']}").get_data(as_text=True)
    assert "New page for Rita Rep" in form
    assert _value(form, "time_zone") == "America/New_York"
    assert f"/meetings/{team['rep_slug']}/this-part" in form
    assert f'action="/pages/new?owner={team["rep_id"]}"' in form

    response = client.post_form(
        f"/pages/new?owner={team['rep_id']}", page_data(slug="pricing", title="Pricing chat")
    )
    assert response.status_code == 303
    with app.app_context():
        rep = db.session.get(User, team["rep_id"])
        created = next(p for p in pages.list_pages(rep.tenant, rep) if p.slug == "pricing")
        assert created.title == "Pricing chat"
        assert not created.is_default  # Rita already has a default page


def test_admin_makes_a_reps_page_default_and_deletes_one(app, world, team, signed_in):
    ours, _ = world
    client = signed_in(ours.admin_email)

    response = client.post_form(f"/pages/{team['second_id']}/default", {})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/pages/team")
    assert _page(app, team["second_id"]).is_default
    assert not _page(app, team["page_id"]).is_default
    with app.app_context():
        admin = db.session.get(User, team["admin_id"])
        assert pages.default_page(admin.tenant, admin).id == team["admins_page_id"]  # the admin's untouched

    confirm = client.get(f"/pages/{team['second_id']}/delete").get_data(as_text=True)
    assert "This is Rita Rep's default page" in unescape(confirm)
    response = client.post_form(f"/pages/{team['second_id']}/delete", {})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/pages/team")
    assert _page(app, team["second_id"]) is None
    assert _page(app, team["page_id"]).is_default  # Rita's other page is her default again


def test_admin_sees_a_reps_share_page(app, world, team, signed_in):
    ours, _ = world
    body = signed_in(ours.admin_email).get(f"/pages/{team['page_id']}").get_data(as_text=True)
    assert "Rita Rep's page" in unescape(body)
    assert f'value="http://{APP_HOST}/meetings/{team["rep_slug"]}"' in body
    assert 'href="/pages/team"' in body


def test_bookings_stay_the_reps_own(app, world, team, signed_in):
    """The admin manages pages, not a rep's meetings: cancelling one of Rita's bookings is a 404."""
    ours, _ = world
    client = signed_in(ours.admin_email)
    before = snapshot(app)
    for method, url in (("GET", "cancel"), ("POST", "cancel")):
        target = f"/pages/bookings/{team['booking_id']}/{url}"
        response = client.get(target) if method == "GET" else client.post_form(target, {"reason": "x"})
        assert response.status_code == 404
    assert snapshot(app) == before
    with app.app_context():
        assert db.session.get(Booking, team["booking_id"]).status == "confirmed"


# --- Refusals ---------------------------------------------------------------------------------------------


ID_ROUTES = [
    pytest.param("GET", "/pages/{page_id}", None, id="share"),
    pytest.param("GET", "/pages/{page_id}/edit", None, id="edit-form"),
    pytest.param("POST", "/pages/{page_id}/edit", page_data(slug="hijack", title="Hijacked"), id="edit-save"),
    pytest.param("POST", "/pages/{second_id}/default", {}, id="make-default"),
    pytest.param("GET", "/pages/{page_id}/delete", None, id="delete-confirm"),
    pytest.param("POST", "/pages/{page_id}/delete", {}, id="delete"),
    pytest.param("GET", "/pages/bookings/{booking_id}/cancel", None, id="cancel-confirm"),
    pytest.param("POST", "/pages/bookings/{booking_id}/cancel", {"reason": "x"}, id="cancel"),
    pytest.param("GET", "/pages/new?owner={rep_id}", None, id="new-for-form"),
    pytest.param("POST", "/pages/new?owner={rep_id}", page_data(slug="planted"), id="new-for-save"),
]


def _send(client, method, url, data):
    return client.get(url) if method == "GET" else client.post_form(url, data)


@pytest.mark.parametrize("who", ["other-tenant-admin", "other-tenant-rep", "colleague-rep"])
@pytest.mark.parametrize(("method", "url", "data"), ID_ROUTES)
def test_others_get_404_and_nothing_changes(app, world, team, signed_in, who, method, url, data):
    _, theirs = world
    email = {
        "other-tenant-admin": theirs.admin_email,
        "other-tenant-rep": theirs.rep_email,
        "colleague-rep": team["idle_email"],
    }[who]
    client = signed_in(email)
    before = snapshot(app)

    response = _send(client, method, url.format(**team), data)

    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Intro call" not in body
    assert "Rita Rep" not in body
    assert "Vera" not in body
    assert snapshot(app) == before


@pytest.mark.parametrize(("method", "url", "data"), ID_ROUTES[:6])
def test_the_tenants_admin_reaches_every_page_route(app, world, team, signed_in, method, url, data):
    """The control for the test above: the same page requests work for the rep's own admin."""
    ours, _ = world
    response = _send(signed_in(ours.admin_email), method, url.format(**team), data)
    assert response.status_code in (200, 303), response.get_data(as_text=True)
    if response.status_code == 303:
        assert response.headers["Location"].endswith("/pages/team")


@pytest.mark.parametrize("owner", ["theirs", "nobody", "abc", "-1"])
def test_new_page_for_an_unknown_or_foreign_user_is_404(app, world, team, signed_in, owner):
    ours, _ = world
    value = {"theirs": team["theirs_rep_id"], "nobody": 999_999}.get(owner, owner)
    client = signed_in(ours.admin_email)
    before = snapshot(app)
    assert client.get(f"/pages/new?owner={value}").status_code == 404
    assert client.post_form(f"/pages/new?owner={value}", page_data(slug="planted")).status_code == 404
    assert snapshot(app) == before


def test_can_manage_page_rule(app, world, team):
    ours, theirs = world
    with app.app_context():
        rita_page = db.session.get(SchedulingPage, team["page_id"])
        admin = db.session.get(User, team["admin_id"])
        rep = db.session.get(User, ours.rep_id)
        idle = db.session.get(User, team["idle_id"])
        their_admin = db.session.scalar(db.select(User).where(User.email == theirs.admin_email))
        assert pages.can_manage_page(rep, rita_page)
        assert pages.can_manage_page(admin, rita_page)
        assert not pages.can_manage_page(idle, rita_page)
        assert not pages.can_manage_page(their_admin, rita_page)
