"""The branded scheduling page on a company's own domain, as a visitor sees it (issue 14, items 1-4).

At 1280 x 800 the page's details (logo, rep photo, name, headline, title, length, place), the month and the
day's times stand side by side and nothing needs scrolling; at 390 x 844 they stack and choosing a day
brings its times into view. The keyboard lands on the first time after a day is chosen; the time zone is
searched by city and applied at once; a failed form opens with a summary that has the focus; a booking is
moved only after the new time is confirmed, and the page then says it was rescheduled. Screenshots of each
state go to test-artifacts/branded/ for a reviewer.
"""

import re

import pytest
from playwright.sync_api import expect

from app.brand import demo_images
from app.brand import services as brand
from app.extensions import db
from tests import factories
from tests.browser.axe import assert_accessible
from tests.browser.conftest import ARTIFACTS

pytestmark = pytest.mark.browser

DOMAIN = "meet.rocket.example"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SHOTS = ARTIFACTS / "branded"


def _branded_page(live) -> str:
    with live.app.app_context():
        tenant = factories.make_tenant("Rocket Labs")
        admin = factories.make_user(tenant, role="admin", email="ada@rocket.example")
        rep = factories.make_user(tenant, seat="sales", email="rita@rocket.example", name="Rita Rocket")
        brand.update_brand(
            tenant,
            admin,
            name="Rocket Labs",
            color="#f5c518",
            logo=demo_images.logo("Rocket Labs", "#b45309"),
        )
        brand.update_public_profile(
            rep,
            headline="Account executive · helps teams of 5-50 choose a plan",
            photo=demo_images.portrait(**demo_images.REP_PORTRAITS["rita@example.com"]),
        )
        domain = factories.make_domain(tenant, DOMAIN)
        factories.make_page(
            rep,
            slug="intro",
            title="Intro call",
            domain_id=domain.id,
            durations=[30, 60],
            location="Video call (the link comes with the confirmation)",
            description="A first conversation about what you need and how Rocket Labs can help.",
        )
        path = f"/meetings/{rep.page_slug}/intro"
        db.session.commit()
    return live.url(path, host=DOMAIN)


def _box(page, selector: str) -> dict:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return box


def _shot(page, name: str) -> None:
    """A screenshot for a reviewer, and axe-core's WCAG 2.2 A/AA check of the same state (0 violations)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))
    assert_accessible(page, name)


def _context(browser, viewport: dict, **extra):
    context = browser.new_context(viewport=viewport, locale="en-GB", timezone_id="Europe/Warsaw", **extra)
    context.set_default_timeout(10_000)
    return context


def test_the_branded_page_side_by_side_on_a_desktop(live, browser):
    url = _branded_page(live)
    context = _context(browser, DESKTOP)
    visitor = context.new_page()
    errors: list[str] = []
    visitor.on("pageerror", lambda error: errors.append(str(error)))
    visitor.goto(url)

    # The company's brand, not Termin's: logo, favicon, colour (a readable shade of its yellow).
    logo = visitor.locator("img#brand-logo")
    expect(logo).to_have_attribute("alt", "Rocket Labs")
    expect(logo).to_have_attribute("src", re.compile(r"^/brand/[0-9a-f]{64}\.png$"))
    assert visitor.evaluate("document.querySelector('#brand-logo').naturalWidth") > 0
    expect(visitor.locator("link[rel=icon]")).to_have_attribute(
        "href", re.compile(r"^/brand/[0-9a-f]{64}\.png$")
    )
    accent = visitor.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()"
    )
    assert accent == "#8b6d07"
    expect(visitor.locator("#host-photo")).to_be_visible()
    expect(visitor.locator("#page-owner")).to_have_text("Rita Rocket")
    expect(visitor.locator("#host-headline")).to_contain_text("helps teams of 5-50")
    expect(visitor.locator("meta[property='og:title']")).to_have_attribute(
        "content", "Intro call · Rita Rocket"
    )
    expect(visitor.locator("meta[property='og:image']")).to_have_attribute(
        "content", re.compile(rf"^http://{re.escape(DOMAIN)}:\d+/brand/[0-9a-f]{{64}}\.png$")
    )

    _shot(visitor, "desktop-month")
    # Side by side: details | month | times, their tops in one band, all within 1280 x 800.
    info, month, times = (
        _box(visitor, ".scheduler-info"),
        _box(visitor, ".picker-month"),
        _box(visitor, "#day-slots"),
    )
    assert info["x"] + info["width"] <= month["x"] + 1
    assert month["x"] + month["width"] <= times["x"] + 1
    assert abs(month["y"] - times["y"]) < 40
    for box in (info, month, times, _box(visitor, "#tz-form")):
        assert box["y"] + box["height"] <= DESKTOP["height"], box
    assert visitor.evaluate("document.documentElement.scrollHeight") <= DESKTOP["height"]
    assert visitor.evaluate("document.documentElement.scrollWidth") <= DESKTOP["width"]

    # The keyboard: focus another day, Enter; the focus lands on that day's first time.
    other = visitor.locator("#slot-picker a.day[data-day]:not([aria-current])").first
    day = other.get_attribute("data-day")
    other.focus()
    visitor.keyboard.press("Enter")
    expect(visitor.locator("#slot-picker a.day[aria-current=date]")).to_have_attribute("data-day", day)
    expect(visitor.locator("#day-slots a.slot").first).to_be_focused()
    expect(visitor).to_have_url(re.compile(rf"day={day}"))

    # The time zone: search by city, see the local time, choose; the times follow at once (no button).
    expect(visitor.locator("#tz-apply")).to_be_hidden()
    search = visitor.get_by_role("combobox", name="Time zone")
    search.click()
    search.fill("new york")
    option = visitor.get_by_role("option", name=re.compile(r"^New York, United States"))
    expect(option).to_be_visible()
    expect(option).to_contain_text(re.compile(r"America/New_York · \d{2}:\d{2}"))
    _shot(visitor, "desktop-time-zone")
    search.press("Enter")
    expect(visitor).to_have_url(re.compile(r"tz=America%2FNew_York"))
    expect(search).to_have_value(re.compile(r"^New York, United States"))
    # By country too: "poland" finds Warsaw.
    search.click()
    search.fill("poland")
    expect(visitor.get_by_role("option", name=re.compile(r"^Warsaw, Poland"))).to_be_visible()
    search.press("Escape")

    # A time; the form keeps the chosen time in view; an empty form answers with a focused summary.
    visitor.locator("#day-slots a.slot").first.click()
    expect(visitor.locator("form#booking-form")).to_be_visible()
    expect(visitor.locator("#chosen-time")).to_be_visible()
    _shot(visitor, "desktop-form")
    visitor.locator("#email").fill("not-an-email")
    visitor.locator("button#book-button").click()
    summary = visitor.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.locator("a[data-field=first_name]")).to_be_visible()
    expect(summary.locator("a[data-field=email]")).to_be_visible()
    _shot(visitor, "desktop-errors")
    summary.locator("a[data-field=email]").click()
    expect(visitor.locator("#email")).to_be_focused()
    visitor.locator("#first_name").fill("Paula")
    visitor.locator("#last_name").fill("Prospect")
    visitor.locator("#email").fill("paula@prospect.example")
    visitor.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    chosen = _box(visitor, "#chosen-card")
    assert chosen["y"] >= 0
    assert chosen["y"] + chosen["height"] <= DESKTOP["height"]
    visitor.locator("button#book-button").click()
    expect(visitor.locator("#booking-heading")).to_have_attribute("data-state", "booked")
    expect(visitor.locator("img#brand-logo")).to_be_visible()
    _shot(visitor, "desktop-confirmation")
    context.close()
    assert not errors, errors


def test_the_branded_page_stacks_on_a_phone_and_a_chosen_day_scrolls_to_its_times(live, browser):
    url = _branded_page(live)
    context = _context(browser, PHONE, is_mobile=True, has_touch=True)
    visitor = context.new_page()
    errors: list[str] = []
    visitor.on("pageerror", lambda error: errors.append(str(error)))
    visitor.goto(url)
    expect(visitor.locator("#page-title")).to_have_text("Intro call")
    info, month, times = (
        _box(visitor, ".scheduler-info"),
        _box(visitor, ".picker-month"),
        _box(visitor, "#day-slots"),
    )
    assert info["y"] + info["height"] <= month["y"] + 1
    assert month["y"] + month["height"] <= times["y"] + 1
    assert visitor.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    _shot(visitor, "phone-top")

    other = visitor.locator("#slot-picker a.day[data-day]:not([aria-current])").first
    other.tap()
    first = visitor.locator("#day-slots a.slot").first
    expect(first).to_be_focused()
    visitor.wait_for_function(
        "() => { const r = document.querySelector('#day-slots a.slot').getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= window.innerHeight; }"
    )
    _shot(visitor, "phone-times")
    first.tap()
    expect(visitor.locator("form#booking-form")).to_be_visible()
    visitor.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    chosen = _box(visitor, "#chosen-card")
    assert chosen["y"] >= -1
    assert chosen["y"] < PHONE["height"]
    _shot(visitor, "phone-form")
    context.close()
    assert not errors, errors


@pytest.mark.parametrize(("size", "viewport"), [("desktop", DESKTOP), ("phone", PHONE)])
def test_reschedule_shows_the_new_time_and_moves_only_when_confirmed(live, browser, size, viewport):
    url = _branded_page(live)
    context = _context(browser, viewport)
    visitor = context.new_page()
    visitor.goto(url)
    visitor.locator("#day-slots a.slot").first.click()
    visitor.locator("button#book-button").click()
    expect(visitor.locator("#error-summary")).to_be_focused()
    _shot(visitor, f"{size}-errors-empty")
    visitor.locator("#first_name").fill("Paula")
    visitor.locator("#last_name").fill("Prospect")
    visitor.locator("#email").fill("paula@prospect.example")
    visitor.locator("button#book-button").click()
    expect(visitor.locator("#booking-heading")).to_have_attribute("data-state", "booked")
    _shot(visitor, f"{size}-booked")
    booked_when = visitor.locator("#booking-when").inner_text()

    visitor.locator("a#reschedule-link").click()
    expect(visitor.locator("#month-title")).to_be_visible()
    _shot(visitor, f"{size}-reschedule")
    other_days = visitor.locator("#slot-picker a.day[data-day]:not([aria-current])")
    if other_days.count() == 0:
        visitor.locator("a#next-month").click()
    other_days.first.click()
    slot = visitor.locator("#day-slots a.slot").first
    expect(slot).to_be_focused()
    slot.click()

    # The new time beside the current one; nothing has moved yet.
    expect(visitor.locator("#confirm-heading")).to_be_visible()
    expect(visitor.locator("#current-when")).to_have_text(booked_when)
    new_when = visitor.locator("#new-when").inner_text()
    assert new_when != booked_when
    visitor.locator("textarea#reason").fill("A clash with another meeting.")
    _shot(visitor, f"{size}-reschedule-confirm")
    visitor.locator("button#confirm-reschedule").click()

    expect(visitor.locator("#booking-heading")).to_have_attribute("data-state", "rescheduled")
    expect(visitor.locator("#booking-heading")).to_have_text("Your meeting is rescheduled")
    expect(visitor.locator("#booking-when")).to_have_text(new_when)
    _shot(visitor, f"{size}-rescheduled")
    visitor.locator("a#cancel-link").click()
    expect(visitor.locator("textarea#reason")).to_be_visible()
    _shot(visitor, f"{size}-cancel")
    context.close()
