"""The embedded demo's seed (issue 5 item 8, issue 6 item 7): the rep's default page on the demo domain,
created once, and the URLs `flask seed-demo` prints."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from app import demo
from app.chat import services as chat
from app.crm.models import Contact
from app.emails import services as emails
from app.extensions import db
from app.pages import paths
from app.pages import services as pages
from app.pages.models import SchedulingPage
from tests.conftest import APP_HOST

NOW = datetime(2030, 1, 1, 12, tzinfo=UTC)


def test_seed_creates_the_reps_default_page_on_the_demo_domain(app_ctx):
    seeded = demo.seed_demo()

    page = seeded.page
    assert seeded.created
    assert pages.default_page(seeded.rep.tenant, seeded.rep) == page
    assert page.domain == seeded.domain
    assert seeded.domain.is_verified
    assert "Disallow: /meetings*" in seeded.domain.robots_txt
    assert paths.page_host(page, APP_HOST) == demo.DEMO_DOMAIN
    assert paths.page_path(page) == f"/meetings/{seeded.rep.page_slug}"
    assert page.time_zone == "Europe/Warsaw"
    assert page.durations == [30, 60]
    assert [q["id"] for q in page.questions] == ["q1", "q2"]
    # Mon-Fri 9:00-17:00 Warsaw time: a Monday in January (UTC+1) runs 8:00-16:00 UTC, every 30 minutes;
    # the Sunday before offers nothing.
    monday = datetime(2030, 1, 7, tzinfo=UTC)
    slots = pages.free_slots(page, monday - timedelta(days=1), monday + timedelta(days=1), now=NOW)
    assert slots[0] == monday.replace(hour=8)
    assert slots[-1] == monday.replace(hour=15, minute=30)
    assert len(slots) == 16


def test_seeding_again_changes_nothing(app_ctx):
    first = demo.seed_demo()
    again = demo.seed_demo()

    assert not again.created
    assert again.page.id == first.page.id
    count = (
        sa.select(sa.func.count()).select_from(SchedulingPage).where(SchedulingPage.owner_id == first.rep.id)
    )
    assert db.session.scalar(count) == 1


def test_a_demo_seeded_before_pages_gets_its_page(app_ctx):
    first = demo.seed_demo()
    db.session.delete(first.page)
    db.session.flush()

    again = demo.seed_demo()

    assert not again.created
    assert again.page.is_default
    assert again.page.domain == first.domain


def test_a_page_the_rep_changed_is_kept(app_ctx):
    first = demo.seed_demo()
    first.page.domain = None
    first.page.title = "My own title"
    db.session.flush()

    again = demo.seed_demo()

    assert again.page.id == first.page.id
    assert again.page.title == "My own title"
    assert again.page.domain is None


def test_seed_demo_prints_the_page_and_robots_urls(app, monkeypatch):
    monkeypatch.setattr(demo, "connect_demo_calendar", lambda rep, instance_path: "skipped in tests")
    monkeypatch.setitem(app.config, "PUBLIC_PORT", None)

    result = app.test_cli_runner().invoke(args=["seed-demo"], env={"PORT": "8000"})

    assert result.exit_code == 0, result.output
    with app.app_context():
        slug = demo.seed_demo().rep.page_slug
    lines = result.output.splitlines()
    assert f"  App:          http://{APP_HOST}:8000/login" in lines
    assert f"  Rep's page:   http://{demo.DEMO_DOMAIN}:8000/meetings/{slug}" in lines
    assert (
        f"                (http://{APP_HOST}:8000/meetings/{slug} on the app host sends visitors there)"
        in lines
    )
    assert f"  Demo domain:  http://{demo.DEMO_DOMAIN}:8000/robots.txt" in lines
    assert "  Rep calendar: skipped in tests" in lines
    team_link = f"http://{demo.DEMO_DOMAIN}:8000/meetings/team/talk-to-sales"
    assert f"  Team page:    {team_link} (round robin: Rita and Tom)" in lines


def test_seed_creates_a_round_robin_page_of_two_reps_on_the_demo_domain_once(app_ctx):
    first = demo.seed_demo()
    again = demo.seed_demo()

    page = first.team_page
    assert again.team_page.id == page.id
    assert (page.kind, page.slug) == ("round_robin", "talk-to-sales")
    assert [m.user.email for m in page.members] == [demo.REP_EMAIL, demo.SECOND_REP_EMAIL]
    assert paths.page_host(page, APP_HOST) == demo.DEMO_DOMAIN


def test_seed_has_one_team_template_with_a_meeting_link_that_renders_for_the_rep(app_ctx):
    seeded = demo.seed_demo()
    demo.seed_demo()

    [template] = emails.list_templates(seeded.rep.tenant, seeded.rep)
    assert template.is_team
    assert "{{ meeting_link }}" in template.body
    contact = db.session.scalar(sa.select(Contact).where(Contact.first_name == "Jan"))
    with current_app.test_request_context(base_url=f"http://{APP_HOST}"):
        composed = emails.compose(
            seeded.rep.tenant, seeded.rep, contact, subject=template.subject, body=template.body, ref="r" * 16
        )
    assert composed.subject == "Kowalski Sp. z o.o. and Demo Company: a short call?"
    assert f"http://{demo.DEMO_DOMAIN}/meetings/{seeded.rep.page_slug}?ref={'r' * 16}" in composed.text


def test_the_demo_has_the_chat_widget_on_answered_by_rita_offering_her_page(app_ctx):
    seeded = demo.seed_demo()
    settings = chat.get_settings(seeded.admin.tenant)
    assert settings.enabled
    assert settings.booking_page_id == seeded.page.id
    assert [m.user_id for m in chat.list_members(seeded.admin.tenant)] == [seeded.rep.id]
    settings.enabled = False  # an admin turned it off: seeding again keeps that
    demo.seed_demo()
    assert not chat.get_settings(seeded.admin.tenant).enabled
