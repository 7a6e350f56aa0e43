"""Team pages over HTTP (T1): the admin's editor (reps refused, another tenant kept out), and the public path
/meetings/team/<slug> with the same domains, 301s, noindex, P4 switch and booking as a personal page."""

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.pages import public
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from app.tenants.models import Tenant
from tests import factories
from tests.helpers import error_fields
from tests.pages.helpers import NOW, slot_starts

TEAM_HOST = "book.teams.example"
OTHER_HOST = "book.others.example"  # a verified domain of another tenant
START = "2030-01-07T10:00:00+01:00"


@dataclass(frozen=True)
class Team:
    tenant_id: int
    admin_email: str
    rep_emails: tuple[str, ...]
    rep_ids: tuple[int, ...]
    page_id: int
    domain_id: int
    other_admin_email: str
    other_rep_id: int


@pytest.fixture
def teams(app, monkeypatch) -> Team:
    monkeypatch.setattr(public, "utcnow", lambda: NOW)
    with app.app_context():
        tenant = factories.make_tenant("Teams")
        admin = factories.make_user(
            tenant, role="admin", email="admin@teams.example.com", time_zone="Europe/Warsaw"
        )
        reps = [
            factories.make_user(
                tenant, email=f"rep{n}@teams.example.com", name=f"Rep {n}", time_zone="Europe/Warsaw"
            )
            for n in (1, 2)
        ]
        domain = factories.make_domain(tenant, TEAM_HOST)
        page = factories.make_page(
            admin,
            slug="sales",
            title="Sales call",
            kind="round_robin",
            members=[{"user_id": r.id} for r in reps],
        )
        other = factories.make_tenant("Others")
        other_admin = factories.make_user(other, role="admin", email="admin@others.example.com")
        factories.make_domain(other, OTHER_HOST)
        other_rep = factories.make_user(other, email="rep@others.example.com")
        db.session.commit()
        return Team(
            tenant.id,
            admin.email,
            tuple(r.email for r in reps),
            tuple(r.id for r in reps),
            page.id,
            domain.id,
            other_admin.email,
            other_rep.id,
        )


def new_page_data(rep_ids, **fields) -> dict:
    data = {
        "title": "Demo team",
        "slug": "demo-team",
        "durations": "30",
        "time_zone": "Europe/Warsaw",
        **{f"day_{d}": "09:00-17:00" if d < 5 else "" for d in range(7)},
        "min_notice": "0",
        "buffer_before": "0",
        "buffer_after": "0",
        "window": "rolling",
        "horizon_days": "60",
        "after_booking": "message",
        "domain_id": "",
        "assignment": "weighted",
    }
    for index, user_id in enumerate(rep_ids):
        data[f"members-{index}-user_id"] = str(user_id)
        data[f"members-{index}-included"] = "y"
        data[f"members-{index}-weight"] = str(index + 1)
    return {**data, **fields}


# --- The editor -------------------------------------------------------------------------------------------


def test_an_admin_creates_a_round_robin_page_with_weights(app, teams, signed_in):
    admin = signed_in(teams.admin_email)
    form = admin.get("/pages/new?kind=round_robin")
    assert form.status_code == 200
    assert "rep1@teams.example.com" in form.get_data(as_text=True)

    response = admin.post_form("/pages/new?kind=round_robin", new_page_data(teams.rep_ids))

    assert response.status_code == 303, response.get_data(as_text=True)
    with app.app_context():
        page = db.session.scalar(sa.select(SchedulingPage).where(SchedulingPage.slug == "demo-team"))
        assert (page.kind, page.assignment, page.is_default) == ("round_robin", "weighted", False)
        assert [(m.user_id, m.weight) for m in page.members] == [(teams.rep_ids[0], 1), (teams.rep_ids[1], 2)]
    listed = admin.get("/pages/team").get_data(as_text=True)
    assert "/meetings/team/demo-team" in listed
    assert 'id="new-group-page"' in listed


def test_pausing_a_member_keeps_them_on_the_page(app, teams, signed_in):
    admin = signed_in(teams.admin_email)
    data = new_page_data(teams.rep_ids, slug="sales", title="Sales call", assignment="even")
    data["members-0-paused"] = "y"

    assert admin.post_form(f"/pages/{teams.page_id}/edit", data).status_code == 303

    with app.app_context():
        page = db.session.get(SchedulingPage, teams.page_id)
        assert [(m.user_id, m.paused) for m in page.members] == [
            (teams.rep_ids[0], True),
            (teams.rep_ids[1], False),
        ]


def test_a_member_from_another_tenant_is_refused(app, teams, signed_in):
    response = signed_in(teams.admin_email).post_form(
        "/pages/new?kind=group", new_page_data([teams.rep_ids[0], teams.other_rep_id])
    )
    assert response.status_code == 422
    assert "members" in error_fields(response)
    with app.app_context():
        assert db.session.scalar(sa.select(SchedulingPage).where(SchedulingPage.slug == "demo-team")) is None


def test_no_member_is_refused(teams, signed_in):
    response = signed_in(teams.admin_email).post_form("/pages/new?kind=group", new_page_data([]))
    assert response.status_code == 422
    assert "members" in error_fields(response)


def test_reps_cannot_create_team_pages_and_another_tenant_cannot_see_or_edit_one(app, teams, signed_in):
    rep = signed_in(teams.rep_emails[0])
    assert rep.get("/pages/new?kind=round_robin").status_code == 403
    assert rep.post_form("/pages/new?kind=group", new_page_data(teams.rep_ids)).status_code == 403
    assert rep.get(f"/pages/{teams.page_id}/edit").status_code == 404
    outsider = signed_in(teams.other_admin_email)
    assert outsider.get(f"/pages/{teams.page_id}/edit").status_code == 404
    assert outsider.get(f"/pages/{teams.page_id}").status_code == 404
    edit = outsider.post_form(f"/pages/{teams.page_id}/edit", new_page_data(teams.rep_ids, slug="sales"))
    assert edit.status_code == 404
    assert outsider.post_form(f"/pages/{teams.page_id}/delete").status_code == 404
    assert "Sales call" not in outsider.get("/pages/team").get_data(as_text=True)
    assert signed_in(teams.admin_email).post_form(f"/pages/{teams.page_id}/default").status_code == 404
    assert signed_in(teams.admin_email).get("/pages/new?kind=nonsense").status_code == 404


# --- The public path --------------------------------------------------------------------------------------


def test_the_team_page_is_served_at_meetings_team_and_books_a_member(app, teams, make_client):
    client = make_client()
    page = client.get("/meetings/team/sales")
    assert page.status_code == 200
    # Round robin names the company: the member is chosen when the visitor books.
    assert '<p class="host-name" id="page-owner">Teams</p>' in page.get_data(as_text=True)
    assert "2030-01-07T10:00:00+01:00" in slot_starts(
        client.get("/meetings/team/sales", query_string={"day": "2030-01-07"})
    )

    booked = client.post(
        "/meetings/team/sales/book",
        json={
            "start": START,
            "first_name": "Vera",
            "last_name": "V",
            "email": "vera@example.org",
            "tz": "Europe/Warsaw",
        },
        headers={"Accept": "application/json"},
    )

    assert booked.status_code == 201, booked.get_data(as_text=True)
    with app.app_context():
        booking = db.session.scalar(sa.select(Booking))
        assert booking.owner_id in teams.rep_ids
    assert client.get("/meetings/team").status_code == 404
    assert client.get("/meetings/team/nobody").status_code == 404


def test_the_team_page_follows_its_domain_slug_noindex_and_switch(app, teams, make_client):
    with app.app_context():
        page = db.session.get(SchedulingPage, teams.page_id)
        settings = pages.PageSettings(
            title=page.title,
            slug="sales-team",
            time_zone=page.time_zone,
            weekly=page.availability["weekly"],
            durations=page.durations,
            domain_id=teams.domain_id,
            hide_from_search=True,
            kind="round_robin",
            members=[{"user_id": m.user_id} for m in page.members],
        )
        pages.update_page(page.owner.tenant, page, settings)
        db.session.commit()

    moved = make_client().get("/meetings/team/sales")
    assert moved.status_code == 301
    assert moved.headers["Location"] == f"http://{TEAM_HOST}/meetings/team/sales-team"
    on_domain = make_client(TEAM_HOST).get("/meetings/team/sales-team")
    assert on_domain.status_code == 200
    assert 'content="noindex' in on_domain.get_data(as_text=True)
    assert make_client(TEAM_HOST).get("/meetings/team/sales").status_code == 301
    # Another tenant's verified domain serves none of this tenant's pages (D6), by new or old slug.
    assert make_client(OTHER_HOST).get("/meetings/team/sales-team").status_code == 404
    assert make_client(OTHER_HOST).get("/meetings/team/sales").status_code == 404
    assert make_client(OTHER_HOST).get("/meetings/team/sales-team/slots.json").status_code == 404

    with app.app_context():
        db.session.get(Tenant, teams.tenant_id).pages_disabled = True
        db.session.commit()
    assert make_client(TEAM_HOST).get("/meetings/team/sales-team").status_code in (404, 410, 503)
