"""The rep's own limits across all pages (T1, T4): working hours, time off and a daily maximum, in the slots
a page offers, in booking and rescheduling, and on the rep's hours page (with another tenant kept out)."""

from datetime import date, timedelta

import pytest

from app.extensions import db
from app.pages import services as pages
from app.tenants.models import User
from tests import factories
from tests.helpers import error_fields
from tests.pages.helpers import MONDAY, NOW, at, booking_request

MIDNIGHT = at(1) - timedelta(hours=1)  # MONDAY's start in Warsaw


@pytest.fixture
def rep(app_ctx):
    tenant = factories.make_tenant()
    return factories.make_user(tenant, time_zone="Europe/Warsaw")


def monday_slots(page) -> list:
    start, end = MIDNIGHT, MIDNIGHT + timedelta(days=1)
    return pages.free_slots(page, start, end, now=NOW)


def limits(working_hours=None, time_off=(), daily=None) -> pages.RepLimits:
    return pages.RepLimits(working_hours, list(time_off), daily)


def test_working_hours_narrow_every_page_of_the_rep(rep):
    intro = factories.make_page(rep)
    demo = factories.make_page(rep, weekly=[[0, "08:00", "20:00"]])
    pages.set_rep_limits(rep, limits(working_hours=[(0, "10:00", "12:00")]))

    for page in (intro, demo):
        assert monday_slots(page) == [at(10), at(10, 30), at(11), at(11, 30)]
    with pytest.raises(pages.PagesError) as refused:
        pages.book(intro, booking_request(at(9)), now=NOW)
    assert refused.value.field == "start"
    assert refused.value.code == "start_not_offered"


def test_time_off_empties_the_dates_and_is_refused_at_booking(rep):
    page = factories.make_page(rep)
    pages.set_rep_limits(rep, limits(time_off=[(MONDAY, MONDAY + timedelta(days=1))]))

    assert monday_slots(page) == []
    assert pages.free_slots(page, MIDNIGHT + timedelta(days=2), MIDNIGHT + timedelta(days=3), now=NOW)
    with pytest.raises(pages.PagesError):
        pages.book(page, booking_request(at(10)), now=NOW)


def test_a_daily_maximum_counts_bookings_on_all_pages_and_empties_the_day(rep):
    intro = factories.make_page(rep)
    demo = factories.make_page(rep)
    pages.set_rep_limits(rep, limits(daily=2))

    pages.book(intro, booking_request(at(9)), now=NOW)
    assert monday_slots(demo)
    pages.book(demo, booking_request(at(11), idempotency_key="k2"), now=NOW)

    assert monday_slots(intro) == monday_slots(demo) == []
    tuesday = pages.free_slots(demo, MIDNIGHT + timedelta(days=1), MIDNIGHT + timedelta(days=2), now=NOW)
    assert len(tuesday) == 16
    with pytest.raises(pages.SlotTaken) as refused:
        pages.book(intro, booking_request(at(14), idempotency_key="k3"), now=NOW)
    assert refused.value.code == "day_full"


def test_a_booking_at_the_maximum_may_still_move_within_its_day(rep):
    page = factories.make_page(rep)
    pages.set_rep_limits(rep, limits(daily=1))
    result = pages.book(page, booking_request(at(9)), now=NOW)

    pages.reschedule_booking(result.booking, at(15), result.token, now=NOW)

    assert result.booking.start_at == at(15)


def test_another_rep_of_the_tenant_keeps_their_own_limits(rep):
    colleague = factories.make_user(rep.tenant, time_zone="Europe/Warsaw")
    page = factories.make_page(colleague)
    pages.set_rep_limits(rep, limits(working_hours=[], daily=1))

    assert len(monday_slots(page)) == 16


def test_limits_the_engine_refuses_name_their_field(rep):
    with pytest.raises(pages.PagesError) as refused:
        pages.set_rep_limits(rep, limits(daily=0))
    assert refused.value.field == "daily_meeting_limit"
    with pytest.raises(pages.PagesError) as refused:
        pages.set_rep_limits(rep, limits(working_hours=[(0, "12:00", "10:00")]))
    assert refused.value.field == "working_hours"


# --- The hours page -------------------------------------------------------------------------------------


def test_the_hours_page_saves_and_shows_the_limits(world, signed_in, app):
    ours, theirs = world
    client = signed_in(ours.rep_email)
    assert client.get("/pages/hours").status_code == 200

    response = client.post_form(
        "/pages/hours",
        {
            "limit_hours": "y",
            "day_0": "09:00-12:00, 13:00-17:00",
            "day_1": "10:00-16:00",
            **{f"day_{weekday}": "" for weekday in range(2, 7)},
            "time_off": "2030-12-24\n2030-12-27 - 2031-01-02",
            "daily_meeting_limit": "4",
        },
    )

    assert response.status_code == 303
    with app.app_context():
        saved = db.session.get(User, ours.rep_id)
        assert saved.working_hours == [[0, "09:00", "12:00"], [0, "13:00", "17:00"], [1, "10:00", "16:00"]]
        assert saved.time_off == [["2030-12-24", "2030-12-24"], ["2030-12-27", "2031-01-02"]]
        assert saved.daily_meeting_limit == 4
        # The other tenant's rep (and this tenant's admin) are untouched: the route only ever edits the
        # signed-in rep.
        for email in (theirs.rep_email, ours.admin_email, theirs.admin_email):
            other = db.session.query(User).filter_by(email=email).one()
            assert (other.working_hours, other.time_off, other.daily_meeting_limit) == (None, [], None)
    page = client.get("/pages/hours").get_data(as_text=True)
    assert "09:00-12:00, 13:00-17:00" in page
    assert "2030-12-27 - 2031-01-02" in page
    assert signed_in(theirs.rep_email).get("/pages/hours").get_data(as_text=True).count("2030-12-27") == 0


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"day_0": "17:00-09:00", "limit_hours": "y"}, "day_0"),
        ({"time_off": "24.12.2030"}, "time_off"),
        ({"time_off": "2030-12-27 - 2030-12-20"}, "time_off"),
        ({"daily_meeting_limit": "0"}, "daily_meeting_limit"),
        ({"daily_meeting_limit": "many"}, "daily_meeting_limit"),
    ],
)
def test_bad_hours_are_refused_naming_the_field_and_save_nothing(world, signed_in, app, data, field):
    ours, _theirs = world
    response = signed_in(ours.rep_email).post_form("/pages/hours", data)

    assert response.status_code == 422
    assert field in error_fields(response)
    with app.app_context():
        saved = db.session.get(User, ours.rep_id)
        assert (saved.working_hours, saved.time_off, saved.daily_meeting_limit) == (None, [], None)


def test_the_hours_page_needs_a_sign_in(client):
    response = client.get("/pages/hours")
    assert response.status_code in (302, 303)
    assert "/login" in response.headers["Location"]


def test_the_account_page_links_to_the_hours(world, signed_in):
    ours, _theirs = world
    assert 'href="/pages/hours"' in signed_in(ours.rep_email).get("/account").get_data(as_text=True)


def test_a_date_in_the_engine_range_only(rep):
    assert pages.rep_hours(rep).time_off == ()
    pages.set_rep_limits(rep, limits(time_off=[(date(2030, 1, 1), date(2030, 1, 1))]))
    assert pages.rep_hours(rep).is_off(date(2030, 1, 1))
