"""Review of the rep's editor and the domain manager through HTTP: odd input is a 4xx naming the field,
never a 500, and ids beyond the database's range are simply not found."""

import pytest

from app.extensions import db
from app.pages import services as pages
from app.tenants.models import User
from tests import factories
from tests.helpers import error_fields, snapshot
from tests.pages.test_editor import page_data, setup  # noqa: F401 (the fixture)

HUGE = "99999999999999999999"
TEXT_FIELDS = [
    "title",
    "description",
    "location",
    "consent_text",
    "confirmation_message",
    "questions-0-text",
    "questions-0-choices",
    "day_0",
    "overrides",
]


@pytest.mark.parametrize("field", TEXT_FIELDS)
def test_a_nul_in_any_editor_field_is_refused_beside_it(app, world, signed_in, field):
    ours, _theirs = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form("/pages/new", page_data(**{field: "x\x00y"}))

    assert response.status_code == 422
    assert snapshot(app) == before
    assert "control characters" in response.get_data(as_text=True)


@pytest.mark.parametrize("durations", ["²", "30, ²"])
def test_durations_in_other_digits_are_refused(app, world, signed_in, durations):
    ours, _theirs = world
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form("/pages/new", page_data(durations=durations))

    assert response.status_code == 422
    assert "durations" in error_fields(response)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "url",
    [
        "https://acme.example/thanks\\@evil.example",
        "https://user@evil.example/",
        "https://acme.example/\x01",
        "javascript:alert(1)//https://acme.example",
        " JavaScript:alert(1)",
        "//evil.example",
    ],
)
def test_a_redirect_address_a_browser_would_misread_is_refused(app, world, signed_in, url):
    ours, _theirs = world
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form(
        "/pages/new", page_data(after_booking="redirect", redirect_url=url)
    )

    assert response.status_code == 422
    assert "redirect_url" in error_fields(response)
    assert snapshot(app) == before


@pytest.mark.parametrize(
    "url", ["https://acme.example/thanks\r\nSet-Cookie: x=1", "https://acme.example\\evil", "http://a@evil"]
)
def test_the_service_refuses_what_no_location_header_can_carry(app, world, url):
    ours, _theirs = world
    with app.app_context():
        rep = db.session.get(User, ours.rep_id)
        with pytest.raises(pages.PagesError) as refused:
            factories.make_page(rep, slug="thanks", redirect_url=url)
        assert refused.value.field == "redirect_url"


def test_a_good_redirect_address_is_kept(app, world, signed_in):
    ours, _theirs = world
    with app.app_context():
        rep = db.session.get(User, ours.rep_id)
        page = factories.make_page(
            rep, slug="thanks", redirect_url="https://acme.example/thanks?from=termin#top"
        )
        assert page.redirect_url == "https://acme.example/thanks?from=termin#top"


@pytest.mark.parametrize(
    "url",
    [
        f"/pages/new?owner={HUGE}",
        "/pages/new?owner=²",
        f"/pages/{HUGE}",
        f"/pages/{HUGE}/edit",
        f"/pages/{HUGE}/delete",
        f"/pages/bookings/{HUGE}/cancel",
    ],
)
def test_ids_out_of_range_are_404_in_the_editor(world, signed_in, url):
    ours, _theirs = world

    assert signed_in(ours.admin_email).get(url).status_code == 404


def test_the_reps_cancel_reason_with_nul_is_refused(app, world, setup, signed_in):  # noqa: F811
    ours, _theirs = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form(f"/pages/bookings/{setup['booking_id']}/cancel", {"reason": "no\x00"})

    assert response.status_code == 422
    assert "reason" in error_fields(response)
    assert snapshot(app) == before
