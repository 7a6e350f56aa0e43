"""A rep connects a CalDAV account (Radicale) and chooses what it is used for (C1, C2, C8, C9)."""

import pytest
from playwright.sync_api import expect

from app.extensions import db
from tests import factories
from tests.fakes import radicale

pytestmark = pytest.mark.browser


def test_rep_connects_caldav_keeps_choices_and_sees_why_a_calendar_is_unavailable(
    live, page, radicale_server
):
    radicale.reset(radicale_server)
    with live.app.app_context():
        tenant = factories.make_tenant("Acme")
        rep = factories.make_user(tenant, seat="sales", email="rita@acme.example.com")
        email = rep.email
        db.session.commit()

    page.goto(live.url("/login"))
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(factories.PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Calendars").click()
    expect(page.get_by_text("No calendar connected yet")).to_be_visible()

    page.get_by_text("Connect a CalDAV account").click()
    page.get_by_label("Server").fill(radicale_server.url)
    page.get_by_label("User name").fill(radicale.REP)
    page.get_by_label("App password").fill("not the password")
    page.get_by_role("button", name="Connect CalDAV account").click()
    expect(page.get_by_text("The server refused this user name and app password.")).to_be_visible()

    page.get_by_label("App password").fill(radicale.PASSWORDS[radicale.REP])
    page.get_by_label("Calendars shared with you").fill(
        radicale_server.calendar_url(radicale.OWNER2, radicale.SHARED)
        + "\n"
        + radicale_server.calendar_url(radicale.OWNER2, radicale.BUSY)
    )
    page.get_by_role("button", name="Connect CalDAV account").click()
    expect(page.get_by_text(f"Connected {radicale.REP}")).to_be_visible()

    card = page.locator("article.card")
    calendar_sync = card.get_by_label("Calendar sync")
    scheduling = card.get_by_label("Meeting scheduling pages")
    expect(calendar_sync).to_be_checked()
    expect(scheduling).to_be_checked()

    scheduling.uncheck()
    card.get_by_label("Team (shared)").check()
    busy = card.get_by_label("Owner2 busy")
    expect(busy).to_be_disabled()
    expect(card).to_contain_text("Unavailable: shared with free/busy only")
    card.get_by_role("button", name="Save").click()
    expect(card.get_by_role("status")).to_have_text("Saved")  # swapped in place by htmx

    page.reload()
    card = page.locator("article.card")
    expect(card.get_by_label("Meeting scheduling pages")).not_to_be_checked()
    expect(card.get_by_label("Calendar sync")).to_be_checked()
    expect(card.get_by_label("Team (shared)")).to_be_checked()
    expect(card.get_by_label("Owner2 busy")).to_be_disabled()
    default = card.get_by_label("Default calendar (bookings go here)")
    expect(default.locator("option:checked")).to_have_text("Calendar")  # the account's own, not a shared one
    expect(default.locator("option")).to_have_count(2)  # only calendars it can write to
    expect(card.get_by_label("Task sync")).to_be_enabled()  # a Sales seat and calendar sync on
