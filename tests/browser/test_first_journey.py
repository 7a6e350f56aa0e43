"""The first journey a new customer takes: sign up (confirming the address from the email the SMTP sink
received), sign out and in, add a contact, log a meeting."""

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from app.crm.models import Meeting
from app.extensions import db

pytestmark = pytest.mark.browser


def confirmation_link(sink, address: str) -> str:
    [mail] = [m for m in sink.messages if address in m["To"]]
    return re.search(r"http://\S+/signup/confirm/\S+", mail.get_body(("plain",)).get_content()).group(0)


def test_sign_up_log_in_create_contact_log_meeting(live, page, smtp_server, monkeypatch):
    sink = smtp_server.use_in(live.app, monkeypatch)
    page.goto(live.url("/signup"))
    page.get_by_label("Company").fill("Kowalski Consulting")
    page.get_by_label("Your name").fill("Ewa Kowalska")
    page.get_by_label("Work email").fill("ewa@kowalski.example.com")
    page.get_by_label("Password").fill("a long enough password")
    expect(page.get_by_label("Time zone")).to_have_value("Europe/Warsaw")  # detected from the browser
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    expect(page.get_by_text("ewa@kowalski.example.com")).to_be_visible()

    link = confirmation_link(sink, "ewa@kowalski.example.com")
    assert link.startswith(live.url("/signup/confirm/"))
    page.goto(link)
    page.get_by_role("button", name="Create my account").click()
    expect(page.get_by_role("heading", name="Contacts")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Termin")).to_be_visible()
    page.get_by_label("Email").fill("ewa@kowalski.example.com")
    page.get_by_label("Password").fill("a long enough password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("No contacts yet.")).to_be_visible()

    page.get_by_role("link", name="New contact").click()
    page.get_by_label("Email").fill("not-an-email")
    page.get_by_role("button", name="Save contact").click()
    expect(page.get_by_text("Enter a valid email address")).to_be_visible()  # swapped in by htmx (422)
    page.get_by_label("Email").fill("jan.nowak@example.org")
    page.get_by_label("First name").fill("Jan")
    page.get_by_label("Last name").fill("Nowak")
    page.get_by_label("Company").fill("Nowak Logistics")
    page.get_by_role("button", name="Save contact").click()
    expect(page.get_by_role("heading", name="Jan Nowak")).to_be_visible()

    page.get_by_text("Log a meeting").click()
    meetings = page.locator("#meetings")
    meetings.get_by_label("Title").fill("Discovery call")
    meetings.get_by_label("Date").fill("2030-07-01")
    meetings.get_by_label("Start time").fill("10:00")
    meetings.get_by_label("Duration").select_option("45")
    meetings.get_by_role("button", name="Log meeting").click()
    expect(meetings.get_by_role("link", name="Discovery call")).to_be_visible()
    expect(meetings).to_contain_text(re.compile(r"Jul 1, 2030.*10:00"))

    page.get_by_role("link", name="Contacts").click()
    page.get_by_label("Search contacts").fill("nowak log")
    expect(page.locator("#contact-list")).to_contain_text("jan.nowak@example.org")
    page.get_by_label("Search contacts").fill("nobody-like-this")
    expect(page.locator("#contact-list")).to_contain_text("No contact matches")

    with live.app.app_context():
        meeting = db.session.scalar(sa.select(Meeting))
        assert meeting.title == "Discovery call"
        assert meeting.start_at.isoformat() == "2030-07-01T08:00:00+00:00"  # 10:00 in Warsaw, summer time
        assert (meeting.end_at - meeting.start_at).total_seconds() == 45 * 60
        assert meeting.source == "crm"
        assert [c.email for c in meeting.contacts] == ["jan.nowak@example.org"]


def test_custom_domain_is_reached_by_the_browser_and_hides_the_app(live, page):
    from tests import factories

    with live.app.app_context():
        tenant = factories.make_tenant("Acme")
        factories.make_domain(tenant, "book.acme.example", robots_txt="User-agent: *\nDisallow: /meetings*\n")
        db.session.commit()

    response = page.goto(live.url("/robots.txt", host="book.acme.example"))
    assert response.status == 200
    assert "Disallow: /meetings*" in page.content()
    response = page.goto(live.url("/login", host="book.acme.example"))
    assert response.status == 404
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    expect(page.get_by_role("link", name="Back to Termin")).to_have_count(0)
