"""An admin writes a team template with a meeting link; a rep sends it from a contact's record; the prospect
books through the link in the email the SMTP sink received; the record says so; the page moves to another
domain and the same link still leads there, while a new email carries the new address (P3, D3, issue 12)."""

import re

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tests import factories
from tests.fakes.smtp import smtp_server  # noqa: F401  (the journey reads the mail the app sent)

pytestmark = pytest.mark.browser

FIRST_DOMAIN = "book.acme.example"
SECOND_DOMAIN = "meet.acme.example"


@pytest.fixture
def sink(live, smtp_server, monkeypatch):  # noqa: F811
    return smtp_server.use_in(live.app, monkeypatch)


def _sign_in(page, live, email):
    page.context.clear_cookies()
    page.goto(live.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def _link_in(message) -> str:
    text = message.get_body(("plain",)).get_content()
    return re.search(r"(http://\S+\?ref=[\w-]{16})", text).group(1)


def test_team_template_sent_from_a_contact_is_booked_through_and_follows_the_page(live, browser, page, sink):
    with live.app.app_context():
        tenant = factories.make_tenant("Acme")
        admin = factories.make_user(tenant, role="admin", email="ada@acme.example", name="Ada Admin")
        rep = factories.make_user(tenant, seat="sales", email="rita@acme.example", name="Rita Rep")
        first = factories.make_domain(tenant, FIRST_DOMAIN)
        factories.make_domain(tenant, SECOND_DOMAIN)
        factories.make_page(rep, slug="intro", title="Intro call", domain_id=first.id)
        contact = factories.make_contact(
            tenant, email="vera@example.org", first_name="Vera", last_name="Visitor"
        )
        admin_email, rep_email, rep_slug, rep_id, contact_id = (
            admin.email,
            rep.email,
            rep.page_slug,
            rep.id,
            contact.id,
        )
        db.session.commit()

    # The admin writes a team template and inserts the meeting link (the default page is preselected).
    _sign_in(page, live, admin_email)
    page.get_by_role("link", name="Email templates").click()
    page.get_by_role("link", name="New team template").click()
    page.get_by_label("Name").fill("Intro invite")
    page.get_by_label("Subject").fill("A call, {{ contact.first_name }}?")
    page.get_by_label("Text").fill("Hello {{ contact.first_name }},\n\nPick a time that suits you:")
    expect(page.get_by_label("Meeting link to")).to_have_value("")
    page.locator("#insert-link").click()
    expect(page.get_by_label("Text")).to_have_value(
        "Hello {{ contact.first_name }},\n\nPick a time that suits you:\n\n{{ meeting_link }}"
    )
    page.get_by_role("button", name="Save template").click()
    expect(page.locator(".flash.success")).to_contain_text("Template “Intro invite” saved.")
    expect(page.locator("li.template-item[data-scope=team]")).to_contain_text("Intro invite")

    # The rep sends it from the contact's record: template, preview, send.
    _sign_in(page, live, rep_email)
    page.goto(live.url(f"/crm/contacts/{contact_id}"))
    page.locator("#send-email-link").click()
    composer = page.locator("#composer")
    composer.get_by_label("Template").select_option(label="Intro invite")
    composer.locator("#use-template").click()
    expect(page.locator("#composer").get_by_label("Subject")).to_have_value(
        "A call, {{ contact.first_name }}?"
    )
    page.locator("#preview-email").click()
    expect(page.locator("#preview-subject")).to_have_text("A call, Vera?")
    expect(page.locator("#preview-text")).to_contain_text(
        f"http://{FIRST_DOMAIN}:{live.port}/meetings/{rep_slug}?ref="
    )
    page.locator("#send-email").click()
    expect(page.locator(".flash.success")).to_contain_text(
        "Email “A call, Vera?” is on its way to vera@example.org."
    )
    expect(page.locator("li.activity.email")).to_have_attribute("data-status", "delivered")

    [message] = sink.messages
    assert message.get_content_type() == "multipart/alternative"
    assert message["Reply-To"] == rep_email
    link = _link_in(message)
    assert link.startswith(f"http://{FIRST_DOMAIN}:{live.port}/meetings/{rep_slug}?ref=")
    html = message.get_body(("html",)).get_content()
    assert f'href="{link}"' in html

    # The prospect opens the link from the email on the tenant's domain and books.
    prospect = browser.new_context(locale="en-GB", timezone_id="Europe/Warsaw")
    prospect.set_default_timeout(10_000)
    visitor = prospect.new_page()
    visitor.goto(link)
    expect(visitor.locator("#page-title")).to_have_text("Intro call")
    assert visitor.url.startswith(f"http://{FIRST_DOMAIN}:")
    visitor.locator("#slot-picker a.day[data-day]").first.click()
    visitor.locator("#day-slots a.slot[data-start]").first.click()
    form = visitor.locator("form#booking-form")
    form.locator("#first_name").fill("Vera")
    form.locator("#last_name").fill("Visitor")
    form.locator("#email").fill("vera@example.org")
    form.locator("button#book-button").click()
    expect(visitor.locator("#booking-status")).to_have_attribute("data-status", "confirmed")

    # The rep's record of Vera: booked from that email.
    page.reload()
    expect(page.locator("li.activity.booking")).to_contain_text("Booked from the email “A call, Vera?”")

    # The admin moves Rita's page to the other domain.
    _sign_in(page, live, admin_email)
    page.goto(live.url("/pages/team"))
    page.locator(
        f"section.team-member[data-user-id='{rep_id}'] li.page-item[data-page-slug=intro] .edit-link"
    ).click()
    page.get_by_label("Served on").select_option(label=SECOND_DOMAIN)
    page.get_by_role("button", name="Save page").click()
    expect(page.locator(".flash.success")).to_be_visible()

    # The link already sent still leads to the page (301), its ref kept.
    response = visitor.goto(link)
    ref = link.rsplit("=", 1)[1]
    assert response.request.redirected_from.url == link
    assert response.url == f"http://{SECOND_DOMAIN}:{live.port}/meetings/{rep_slug}?ref={ref}"
    expect(visitor.locator("#page-title")).to_have_text("Intro call")
    prospect.close()

    # A new email carries the new domain's address.
    _sign_in(page, live, rep_email)
    page.goto(live.url(f"/crm/contacts/{contact_id}"))
    page.locator("#send-meeting-link").click()
    page.locator("#send-email").click()
    expect(page.locator(".flash.success")).to_be_visible()
    assert _link_in(sink.messages[-1]).startswith(
        f"http://{SECOND_DOMAIN}:{live.port}/meetings/{rep_slug}?ref="
    )
