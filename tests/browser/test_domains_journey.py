"""An admin brings the company's own domain and moves a rep's page onto it; old links follow (D1, D3, D5,
D6)."""

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.pages.models import SchedulingPage
from tests import factories
from tests.fakes.dns_server import FakeDns

pytestmark = pytest.mark.browser

DOMAIN = "book.acme.example"


@pytest.fixture
def dns(live):
    """A real DNS server on loopback that the live server asks for the TXT record."""
    server = FakeDns().start()
    config = live.app.config
    saved = {name: config.get(name) for name in ("DNS_NAMESERVERS", "DNS_TIMEOUT")}
    config.update(DNS_NAMESERVERS=server.address, DNS_TIMEOUT=1.0)
    yield server
    config.update(saved)
    server.stop()


def _sign_in(page, live, email):
    page.goto(live.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_admin_verifies_a_domain_moves_a_reps_page_there_and_the_old_link_follows(live, page, dns):
    with live.app.app_context():
        tenant = factories.make_tenant("Acme")
        admin = factories.make_user(tenant, role="admin", email="ada@acme.example")
        rep = factories.make_user(tenant, seat="sales", email="rita@acme.example", name="Rita Rep")
        factories.make_page(rep, slug="intro", title="Intro call")
        admin_email, rep_id, rep_slug = admin.email, rep.id, rep.page_slug
        db.session.commit()

    _sign_in(page, live, admin_email)
    page.get_by_role("link", name="Domains").click()
    page.get_by_label("Domain", exact=True).fill("Book.Acme.Example")
    page.get_by_role("button", name="Add domain").click()
    card = page.locator("article.domain")
    expect(card).to_contain_text(DOMAIN)
    expect(card.locator("[data-record=txt-name]")).to_have_text(f"_termin-challenge.{DOMAIN}")
    token = card.locator("[data-record=txt-value]").inner_text()

    # The admin has not created the record yet: verification fails and says why.
    card.get_by_role("button", name="Verify").click()
    expect(page.locator("article.domain [data-reason]")).to_contain_text("No TXT record was found")
    expect(page.locator("article.domain")).to_have_attribute("data-status", "failed")

    dns.set_txt(f"_termin-challenge.{DOMAIN}", token)
    page.locator("article.domain").get_by_role("button", name="Verify").click()
    expect(page.locator("article.domain")).to_have_attribute("data-status", "verified")
    expect(page.locator("article.domain .badge")).to_have_text("Verified")

    # The admin moves Rita's page from the team list. Her only page is her default one (P3), so its link
    # is her own path.
    old_url = live.url(f"/meetings/{rep_slug}")
    page.get_by_role("link", name="Scheduling pages").click()
    page.get_by_role("link", name="Team pages").click()
    rita = page.locator(f"section.team-member[data-user-id='{rep_id}']")
    expect(rita.get_by_role("heading", name="Rita Rep")).to_be_visible()
    item = rita.locator("li.page-item[data-page-slug=intro]")
    expect(item.locator("input.share-link")).to_have_value(old_url)
    item.locator(".edit-link").click()
    expect(page.locator("#page-owner")).to_contain_text("Rita Rep's page")
    page.get_by_label("Served on").select_option(label=DOMAIN)
    page.get_by_role("button", name="Save page").click()

    # Back on the team list: the page is still Rita's, and its share link is on the new host.
    new_url = live.url(f"/meetings/{rep_slug}", host=DOMAIN)
    expect(page.get_by_role("heading", name="Team pages", exact=True)).to_be_visible()
    expect(page.locator(".flash.success")).to_contain_text("Rita Rep's page “Intro call” saved.")
    expect(item.locator("input.share-link")).to_have_value(new_url)
    with live.app.app_context():
        moved = db.session.scalar(db.select(SchedulingPage).where(SchedulingPage.slug == "intro"))
        assert moved.owner_id == rep_id
        assert moved.domain.hostname == DOMAIN

    page.goto(new_url)
    expect(page.get_by_role("heading", name="Intro call")).to_be_visible()

    # A link sent before the move lands on the page's new host (301).
    response = page.goto(old_url)
    assert response.url == new_url
    assert response.request.redirected_from.url == old_url
    expect(page.get_by_role("heading", name="Intro call")).to_be_visible()

    # The app's own routes are not served on the custom domain.
    assert page.goto(live.url("/login", host=DOMAIN)).status == 404
    robots = page.goto(live.url("/robots.txt", host=DOMAIN))
    assert robots.status == 200
    assert re.search(r"User-agent: \*", page.content())
