"""The rep's side of scheduling pages over HTTP: create, edit, share, default, delete, the user slug, the P4
switches, the rep's bookings; every refusal is a 422 beside its field with nothing written; another
tenant's (or a colleague's) ids answer 404 and change nothing."""

import re
from datetime import UTC, date, datetime, timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.pages import links
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import APP_HOST
from tests.helpers import error_fields, snapshot

MONDAY = date(2030, 1, 7)


def page_data(**overrides) -> dict:
    """A full, valid editor form as the browser posts it."""
    data = {
        "title": "Discovery call",
        "slug": "discovery",
        "description": "Let's talk.",
        "location": "Video call",
        "durations": "30, 60",
        "time_zone": "Europe/Warsaw",
        "day_0": "09:00-12:00, 13:00-17:00",
        "day_1": "09:00-17:00",
        "day_2": "",
        "day_3": "10:00-14:00",
        "day_4": "09:00-24:00",
        "day_5": "",
        "day_6": "",
        "overrides": "2030-12-24: off\n2030-12-27: 10:00-14:00",
        "buffer_before": "10",
        "buffer_after": "5",
        "min_notice": "120",
        "increment": "15",
        "window": "rolling",
        "horizon_days": "30",
        "date_from": "",
        "date_to": "",
        "questions-0-qid": "",
        "questions-0-text": "Company size",
        "questions-0-kind": "choice",
        "questions-0-choices": "1-10\n11-50\n51+",
        "questions-0-required": "y",
        "questions-1-qid": "",
        "questions-1-text": "What would you like to discuss?",
        "questions-1-kind": "text",
        "questions-1-choices": "",
        "questions-2-qid": "",
        "questions-2-text": "",
        "questions-2-kind": "text",
        "questions-2-choices": "",
        "consent_text": "I agree to be contacted.",
        "after_booking": "message",
        "confirmation_message": "See you soon!",
        "redirect_url": "",
        "domain_id": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def _value(body: str, name: str) -> str | None:
    """The value of the input named ``name`` in a rendered form (WTForms writes name before value)."""
    match = re.search(rf'<input[^>]*\bname="{re.escape(name)}"[^>]*\bvalue="([^"]*)"', body)
    return unescape(match.group(1)) if match else None


def _page(app, page_id: int) -> SchedulingPage | None:
    with app.app_context():
        page = db.session.get(SchedulingPage, page_id)
        if page is not None:
            page.domain  # noqa: B018 (load before detaching)
            db.session.expunge_all()
        return page


def _pages_of(app, user_id: int) -> list[SchedulingPage]:
    with app.app_context():
        rows = list(db.session.scalars(sa.select(SchedulingPage).where(SchedulingPage.owner_id == user_id)))
        db.session.expunge_all()
        return rows


@pytest.fixture
def setup(app, world):
    """Tenant A's rep has a page, a second page and a booking; tenant A has a verified and a pending
    domain, tenant B a verified one. Plain ids."""
    ours, theirs = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        rep = db.session.get(User, ours.rep_id)
        rep.time_zone = "Europe/Warsaw"
        first = factories.make_page(rep, slug="intro", title="Intro call")
        second = factories.make_page(rep, slug="demo", title="Product demo")
        verified = factories.make_domain(tenant, "meet.acme.example")
        pending = factories.make_domain(tenant, "pending.acme.example", status="pending")
        other = factories.make_domain(db.session.get(Tenant, theirs.tenant_id), "meet.globex.example")
        result = pages.book(
            first,
            pages.BookingRequest(
                start=datetime(2030, 1, 7, 9, tzinfo=UTC),  # 10:00 in Warsaw
                duration=timedelta(minutes=30),
                first_name="Vera",
                last_name="Visitor",
                email="vera@visitor.example",
                time_zone="Europe/Warsaw",
                idempotency_key="k1",
            ),
            now=datetime(2030, 1, 1, tzinfo=UTC),
        )
        db.session.commit()
        ids = {
            "page_id": first.id,
            "second_id": second.id,
            "booking_id": result.booking.id,
            "verified_id": verified.id,
            "pending_id": pending.id,
            "other_domain_id": other.id,
        }
    return ids


# --- Creating ----------------------------------------------------------------------------------------------


def test_new_page_form_defaults_to_the_reps_time_zone(app, world, setup, signed_in):
    ours, _ = world
    body = signed_in(ours.rep_email).get("/pages/new").get_data(as_text=True)

    assert 'id="page-form"' in body
    assert _value(body, "time_zone") == "Europe/Warsaw"
    assert body.count('name="questions-') >= 3 * 4  # three empty question rows to fill
    assert "meet.acme.example" in body  # the tenant's verified domain is offered
    assert "pending.acme.example" not in body  # a pending one is not
    assert "meet.globex.example" not in body


def test_create_page_stores_every_setting_and_shows_share_link_and_embed_code(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)

    response = client.post_form("/pages/new", page_data())

    assert response.status_code == 303, response.get_data(as_text=True)
    created = next(p for p in _pages_of(app, ours.rep_id) if p.slug == "discovery")
    assert response.headers["Location"] == f"/pages/{created.id}"
    assert created.title == "Discovery call"
    assert created.description == "Let's talk."
    assert created.location == "Video call"
    assert created.durations == [30, 60]
    assert created.time_zone == "Europe/Warsaw"
    assert created.availability["weekly"] == [
        [0, "09:00", "12:00"],
        [0, "13:00", "17:00"],
        [1, "09:00", "17:00"],
        [3, "10:00", "14:00"],
        [4, "09:00", "24:00"],
    ]
    assert created.availability["overrides"] == [
        {"day": "2030-12-24", "ranges": []},
        {"day": "2030-12-27", "ranges": [["10:00", "14:00"]]},
    ]
    assert (created.buffer_before, created.buffer_after, created.min_notice) == (10, 5, 120)
    assert (created.increment, created.horizon_days, created.date_from, created.date_to) == (
        15,
        30,
        None,
        None,
    )
    keys = [q.pop("key") for q in created.questions]
    assert len(set(keys)) == 2  # every question has its own stable key (D2's prefill matches by it)
    assert created.questions == [
        {
            "id": "q1",
            "label": "Company size",
            "kind": "choice",
            "required": True,
            "choices": ["1-10", "11-50", "51+"],
        },
        {
            "id": "q2",
            "label": "What would you like to discuss?",
            "kind": "text",
            "required": False,
            "choices": [],
        },
    ]
    assert created.consent_text == "I agree to be contacted."
    assert created.confirmation_message == "See you soon!"
    assert created.redirect_url == ""
    assert created.domain_id is None
    assert not created.hide_from_search
    assert not created.is_default  # the rep already had a default page

    share = client.get(f"/pages/{created.id}").get_data(as_text=True)
    link = f"http://{APP_HOST}/meetings/rep/discovery"
    with app.test_request_context(base_url=f"http://{APP_HOST}"):
        slug = db.session.get(User, ours.rep_id).page_slug
    link = f"http://{APP_HOST}/meetings/{slug}/discovery"
    assert f'id="share-link" class="copy" type="text" readonly value="{link}"' in share
    embed = unescape(share.split('id="embed-code"')[1].split("</textarea>")[0].split(">", 1)[1])
    assert embed == (
        f'<iframe src="{link}" title="Discovery call" width="100%" height="720" style="border:0" '
        'loading="lazy"></iframe>'
    )
    assert f'id="preview-link" href="{link}" target="_blank"' in share


def test_first_page_becomes_the_default(app, world, signed_in):
    _, theirs = world
    response = signed_in(theirs.rep_email).post_form("/pages/new", page_data())

    assert response.status_code == 303
    (page,) = _pages_of(app, theirs.rep_id)
    assert page.is_default


def test_date_range_window_and_redirect_url_and_hidden(app, world, setup, signed_in):
    ours, _ = world
    data = page_data(
        window="range",
        horizon_days="",
        date_from="2030-02-01",
        date_to="2030-02-28",
        after_booking="redirect",
        redirect_url="https://acme.example/thanks",
        hide_from_search="y",
        domain_id=str(setup["verified_id"]),
    )
    response = signed_in(ours.rep_email).post_form("/pages/new", data)

    assert response.status_code == 303, response.get_data(as_text=True)
    page = next(p for p in _pages_of(app, ours.rep_id) if p.slug == "discovery")
    assert (page.date_from, page.date_to, page.horizon_days) == (date(2030, 2, 1), date(2030, 2, 28), None)
    assert page.redirect_url == "https://acme.example/thanks"
    assert page.confirmation_message == ""
    assert page.hide_from_search
    assert page.domain_id == setup["verified_id"]


def test_a_daily_booking_cap_and_email_confirmation_are_saved_shown_and_cleared(app, world, signed_in):
    ours, _ = world
    rep = signed_in(ours.rep_email)
    assert (
        rep.post_form("/pages/new", page_data(max_bookings_per_day="3", confirm_email="y")).status_code == 303
    )
    page = next(p for p in _pages_of(app, ours.rep_id) if p.slug == "discovery")
    assert page.max_bookings_per_day == 3
    assert page.confirm_email
    assert _value(rep.get(f"/pages/{page.id}/edit").get_data(as_text=True), "max_bookings_per_day") == "3"

    refused = rep.post_form(f"/pages/{page.id}/edit", page_data(max_bookings_per_day="0"))
    assert refused.status_code == 422
    assert "max_bookings_per_day" in error_fields(refused)
    assert rep.post_form(f"/pages/{page.id}/edit", page_data(max_bookings_per_day="")).status_code == 303
    assert _page(app, page.id).max_bookings_per_day is None


# --- Refusals: 422 beside the field, nothing written --------------------------------------------------------


REFUSALS = [
    pytest.param({"slug": "Bad Slug!"}, "slug", id="bad-slug"),
    pytest.param({"slug": "-dash"}, "slug", id="slug-leading-hyphen"),
    pytest.param({"slug": "booking"}, "slug", id="reserved-slug"),
    pytest.param({"slug": "intro"}, "slug", id="duplicate-slug"),
    pytest.param({"slug": "INTRO"}, "slug", id="duplicate-slug-other-case"),
    pytest.param({"title": "   "}, "title", id="no-title"),
    pytest.param({"durations": ""}, "durations", id="no-durations"),
    pytest.param({"durations": "30, abc"}, "durations", id="bad-duration"),
    pytest.param({"durations": "0"}, "durations", id="zero-duration"),
    pytest.param({"day_0": "09:00-12:00, 11:00-13:00"}, "day_0", id="overlapping-ranges"),
    pytest.param({"day_1": "17:00-09:00"}, "day_1", id="range-ends-before-start"),
    pytest.param({"day_2": "9am-5pm"}, "day_2", id="unreadable-range"),
    pytest.param({"day_3": "09:00-25:00"}, "day_3", id="not-a-time"),
    pytest.param({"day_4": "24:00-24:00"}, "day_4", id="starts-at-midnight-end"),
    pytest.param({"overrides": "24.12.2030: off"}, "overrides", id="override-bad-date"),
    pytest.param({"overrides": "2030-12-24: 14:00-10:00"}, "overrides", id="override-bad-range"),
    pytest.param({"overrides": "2030-12-24: off\n2030-12-24: 10:00-11:00"}, "overrides", id="override-twice"),
    pytest.param({f"day_{n}": "" for n in range(7)} | {"overrides": ""}, "weekly", id="no-hours-at-all"),
    pytest.param({"time_zone": "Mars/Olympus"}, "time_zone", id="unknown-time-zone"),
    pytest.param({"time_zone": ""}, "time_zone", id="no-time-zone"),
    pytest.param({"buffer_before": "-5"}, "buffer_before", id="negative-buffer"),
    pytest.param({"min_notice": "soon"}, "min_notice", id="notice-not-a-number"),
    pytest.param({"increment": "2"}, "increment", id="tiny-increment"),
    pytest.param({"horizon_days": ""}, "horizon_days", id="rolling-without-days"),
    pytest.param({"horizon_days": "0"}, "horizon_days", id="zero-days"),
    pytest.param(
        {"window": "range", "date_from": "2030-03-01", "date_to": "2030-02-01"},
        "date_to",
        id="range-reversed",
    ),
    pytest.param({"window": "range", "date_from": "2030-03-01", "date_to": ""}, "date_to", id="range-open"),
    pytest.param({"window": "sometimes"}, "window", id="unknown-window"),
    pytest.param(
        {"after_booking": "redirect", "redirect_url": "javascript:alert(1)"},
        "redirect_url",
        id="javascript-url",
    ),
    pytest.param(
        {"after_booking": "redirect", "redirect_url": "ftp://files.example/x"}, "redirect_url", id="ftp-url"
    ),
    pytest.param({"after_booking": "redirect", "redirect_url": ""}, "redirect_url", id="redirect-missing"),
    pytest.param(
        {"questions-0-kind": "choice", "questions-0-choices": "Only one"},
        "questions-0-choices",
        id="one-choice",
    ),
    pytest.param({"title": "x" * 201}, "title", id="long-title"),
]


@pytest.mark.parametrize(("overrides", "field"), REFUSALS)
def test_bad_input_is_refused_beside_its_field_and_nothing_is_written(
    app, world, setup, signed_in, overrides, field
):
    ours, _ = world
    client = signed_in(ours.rep_email)
    data = page_data(**overrides)
    before = snapshot(app)

    response = client.post_form("/pages/new", data)

    assert response.status_code == 422
    assert field in error_fields(response), error_fields(response)
    assert snapshot(app) == before
    body = response.get_data(as_text=True)
    assert "Nothing was saved" in body
    # What was typed is kept.
    assert _value(body, "title") == data["title"].strip()
    assert _value(body, "slug").lower() == data["slug"].lower()
    for line in data["overrides"].splitlines():
        assert line in body


@pytest.mark.parametrize("which", ["other_domain_id", "pending_id", "nonexistent"])
def test_a_domain_of_another_tenant_or_unverified_is_refused(app, world, setup, signed_in, which):
    ours, _ = world
    domain_id = "999999" if which == "nonexistent" else str(setup[which])
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form("/pages/new", page_data(domain_id=domain_id))

    assert response.status_code == 422
    assert error_fields(response) == {"domain_id"}
    assert snapshot(app) == before


def test_duplicate_slug_says_which_page_holds_it(app, world, setup, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).post_form("/pages/new", page_data(slug="demo"))

    assert response.status_code == 422
    assert "Your page “Product demo” already uses this link" in unescape(response.get_data(as_text=True))


def test_service_refusal_of_a_domain_is_put_beside_the_field(app, world, setup, signed_in):
    """A domain verified when the form was built but not by the time the service checks: services.PagesError
    with field domain_id ends up beside the field, nothing written."""
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)
    original = pages.create_page

    def racing(tenant, owner, settings):
        raise pages.PagesError("domain_not_verified", "domain_id")

    pages.create_page = racing
    try:
        response = client.post_form("/pages/new", page_data(domain_id=str(setup["verified_id"])))
    finally:
        pages.create_page = original

    assert response.status_code == 422
    assert error_fields(response) == {"domain_id"}
    assert snapshot(app) == before


# --- Editing ----------------------------------------------------------------------------------------------


def test_edit_form_shows_the_stored_settings(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    assert client.post_form(f"/pages/{setup['page_id']}/edit", page_data(slug="intro")).status_code == 303

    body = client.get(f"/pages/{setup['page_id']}/edit").get_data(as_text=True)

    assert 'value="09:00-12:00, 13:00-17:00"' in body
    assert 'value="09:00-24:00"' in body
    assert "2030-12-24: off\n2030-12-27: 10:00-14:00" in body
    assert 'value="30, 60"' in body
    assert 'name="questions-0-qid" type="hidden" value="q1"' in body
    assert 'value="Company size"' in body
    assert body.count('name="questions-') >= 5 * 4  # the two questions and three empty rows


def test_edit_keeps_question_ids_and_numbers_new_ones(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    url = f"/pages/{setup['page_id']}/edit"
    assert client.post_form(url, page_data(slug="intro")).status_code == 303
    keys = {q["id"]: q["key"] for q in _page(app, setup["page_id"]).questions}
    # Drop the first question, keep q2 (renamed), add a new one; a forged id is not kept.
    data = page_data(
        slug="intro",
        **{
            "questions-0-qid": "q2",
            "questions-0-text": "Topic",
            "questions-0-kind": "text",
            "questions-0-choices": "",
            "questions-0-required": None,
            "questions-1-qid": "q99",
            "questions-1-text": "Phone",
        },
    )
    assert client.post_form(url, data).status_code == 303

    questions = _page(app, setup["page_id"]).questions
    assert [(q["id"], q["label"]) for q in questions] == [("q2", "Topic"), ("q3", "Phone")]
    assert questions[0]["key"] == keys["q2"]  # renamed, the same question
    assert questions[1]["key"] not in keys.values()


def test_changing_the_page_slug_keeps_the_old_path_resolving(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    with app.app_context():
        user_slug = db.session.get(User, ours.rep_id).page_slug

    response = client.post_form(f"/pages/{setup['second_id']}/edit", page_data(slug="product-tour"))

    assert response.status_code == 303
    with app.app_context():
        old = pages.resolve_path(user_slug, "demo")
        new = pages.resolve_path(user_slug, "product-tour")
        assert old.redirect == f"/meetings/{user_slug}/product-tour"
        assert new.page.id == setup["second_id"]


def test_edit_refusal_changes_nothing(app, world, setup, signed_in):
    ours, _ = world
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form(
        f"/pages/{setup['page_id']}/edit", page_data(slug="demo", title="Hijack")
    )

    assert response.status_code == 422
    assert error_fields(response) == {"slug"}
    assert snapshot(app) == before


def test_domain_choice_changes_the_share_link(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    url = f"/pages/{setup['second_id']}/edit"
    with app.app_context():
        user_slug = db.session.get(User, ours.rep_id).page_slug

    assert (
        client.post_form(url, page_data(slug="demo", domain_id=str(setup["verified_id"]))).status_code == 303
    )
    on_domain = client.get(f"/pages/{setup['second_id']}").get_data(as_text=True)
    listing = client.get("/pages").get_data(as_text=True)
    with app.test_request_context(base_url=f"http://{APP_HOST}"):
        page = db.session.get(SchedulingPage, setup["second_id"])
        assert links.page_url(page) == f"http://meet.acme.example/meetings/{user_slug}/demo"

    assert f'value="http://meet.acme.example/meetings/{user_slug}/demo"' in on_domain
    assert "http://meet.acme.example/meetings/" in unescape(on_domain.split('id="embed-code"')[1])
    assert f'value="http://meet.acme.example/meetings/{user_slug}/demo"' in listing

    assert client.post_form(url, page_data(slug="demo", domain_id="")).status_code == 303
    back = client.get(f"/pages/{setup['second_id']}").get_data(as_text=True)
    assert f'value="http://{APP_HOST}/meetings/{user_slug}/demo"' in back


# --- Default, delete --------------------------------------------------------------------------------------


def test_make_default_and_delete(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    assert _page(app, setup["page_id"]).is_default

    assert client.post_form(f"/pages/{setup['second_id']}/default").status_code == 303
    assert _page(app, setup["second_id"]).is_default
    assert not _page(app, setup["page_id"]).is_default
    listing = client.get("/pages").get_data(as_text=True)
    assert listing.count("Make default") == 1  # only on the page that is not the default

    confirm = client.get(f"/pages/{setup['second_id']}/delete")
    assert confirm.status_code == 200
    assert "Delete page" in confirm.get_data(as_text=True)
    assert _page(app, setup["second_id"]) is not None  # a GET deletes nothing

    assert client.post_form(f"/pages/{setup['second_id']}/delete").status_code == 303
    assert _page(app, setup["second_id"]) is None
    assert _page(app, setup["page_id"]).is_default  # the remaining page became the default
    with app.app_context():
        assert db.session.get(Booking, setup["booking_id"]) is not None  # bookings stay


def test_delete_without_csrf_token_deletes_nothing(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)

    response = client.post(f"/pages/{setup['page_id']}/delete", data={})

    assert response.status_code in (400, 422)
    assert _page(app, setup["page_id"]) is not None


# --- The list, the personal link, the user slug -----------------------------------------------------------


def test_list_shows_pages_links_and_bookings(app, world, setup, signed_in):
    ours, _ = world
    with app.app_context():
        user_slug = db.session.get(User, ours.rep_id).page_slug
    body = signed_in(ours.rep_email).get("/pages").get_data(as_text=True)

    assert "Intro call" in body
    assert "Product demo" in body
    assert f'value="http://{APP_HOST}/meetings/{user_slug}"' in body  # the default page's link
    assert f'value="http://{APP_HOST}/meetings/{user_slug}/demo"' in body
    assert (
        f'id="personal-link" class="copy" type="text" readonly value="http://{APP_HOST}/meetings/{user_slug}"'
        in body
    )
    assert "Vera Visitor" in body
    assert f'href="/pages/bookings/{setup["booking_id"]}/cancel"' in body
    assert "Turn off all my scheduling pages" in body
    assert "Turn off all scheduling pages of the company" not in body  # reps have no company switch
    assert 'href="/pages"' in body  # the nav link


def test_change_user_slug_keeps_old_links(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    with app.app_context():
        old = db.session.get(User, ours.rep_id).page_slug

    response = client.post_form("/pages/slug", {"page_slug": "Ada-Sales"})

    assert response.status_code == 303
    followed = client.get("/pages").get_data(as_text=True)
    assert "keep working" in followed
    with app.app_context():
        assert db.session.get(User, ours.rep_id).page_slug == "ada-sales"
        assert pages.resolve_path(old, None).redirect == "/meetings/ada-sales"
        assert pages.resolve_path(old, "demo").redirect == "/meetings/ada-sales/demo"
        assert pages.resolve_path("ada-sales", "demo").page.id == setup["second_id"]


@pytest.mark.parametrize(
    ("slug", "why"),
    [("bad slug", "lower-case"), ("booking", "reserved"), ("", "Choose"), ("taken", "already taken")],
)
def test_bad_user_slug_is_refused(app, world, setup, signed_in, slug, why):
    ours, theirs = world
    with app.app_context():
        db.session.get(User, theirs.rep_id).page_slug = "taken"
        db.session.commit()
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form("/pages/slug", {"page_slug": slug})

    assert response.status_code == 422
    assert error_fields(response) == {"page_slug"}
    assert why in response.get_data(as_text=True)
    assert snapshot(app) == before


# --- P4 switches ------------------------------------------------------------------------------------------


def test_rep_turns_pages_off_and_on_unchanged(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = _page(app, setup["page_id"])

    assert client.post_form("/pages/switch", {"disabled": "1"}).status_code == 303
    with app.app_context():
        assert db.session.get(User, ours.rep_id).pages_disabled
        assert pages.unavailable_reason(db.session.get(SchedulingPage, setup["page_id"])) == "owner"
    body = client.get("/pages").get_data(as_text=True)
    assert 'id="my-pages-off"' in body
    assert "Turn my scheduling pages back on" in body

    assert client.post_form("/pages/switch", {"disabled": "0"}).status_code == 303
    with app.app_context():
        assert not db.session.get(User, ours.rep_id).pages_disabled
        page = db.session.get(SchedulingPage, setup["page_id"])
        assert pages.unavailable_reason(page) is None
        assert (page.slug, page.availability, page.durations, page.is_default) == (
            before.slug,
            before.availability,
            before.durations,
            before.is_default,
        )


def test_bad_switch_value_is_refused(app, world, setup, signed_in):
    ours, _ = world
    before = snapshot(app)
    response = signed_in(ours.rep_email).post_form("/pages/switch", {"disabled": "maybe"})
    assert response.status_code == 422
    assert snapshot(app) == before


def test_admin_turns_the_companys_pages_off_and_on(app, world, setup, signed_in):
    ours, theirs = world
    client = signed_in(ours.admin_email)
    assert "Turn off all scheduling pages of the company" in client.get("/pages").get_data(as_text=True)

    assert client.post_form("/pages/company-switch", {"disabled": "1"}).status_code == 303
    with app.app_context():
        assert db.session.get(Tenant, ours.tenant_id).pages_disabled
        assert not db.session.get(Tenant, theirs.tenant_id).pages_disabled
        assert pages.unavailable_reason(db.session.get(SchedulingPage, setup["page_id"])) == "tenant"
    rep_view = signed_in(ours.rep_email).get("/pages").get_data(as_text=True)
    assert 'id="company-pages-off"' in rep_view

    assert client.post_form("/pages/company-switch", {"disabled": "0"}).status_code == 303
    with app.app_context():
        assert not db.session.get(Tenant, ours.tenant_id).pages_disabled
        assert pages.unavailable_reason(db.session.get(SchedulingPage, setup["page_id"])) is None


def test_a_rep_cannot_flip_the_company_switch(app, world, setup, signed_in):
    ours, _ = world
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form("/pages/company-switch", {"disabled": "1"})

    assert response.status_code == 403
    assert snapshot(app) == before


# --- Bookings ---------------------------------------------------------------------------------------------


def test_rep_cancels_a_booking(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    url = f"/pages/bookings/{setup['booking_id']}/cancel"
    confirm = client.get(url)
    assert confirm.status_code == 200
    assert "Cancel the meeting with Vera Visitor?" in confirm.get_data(as_text=True)

    response = client.post_form(url, {"reason": "I am ill."})

    assert response.status_code == 303
    with app.app_context():
        booking = db.session.get(Booking, setup["booking_id"])
        assert booking.status == "cancelled"
        assert booking.cancel_reason == "I am ill."
        assert booking.meeting.status == "cancelled"
    listing = client.get("/pages").get_data(as_text=True)
    assert "No upcoming bookings." in listing
    assert f"/pages/bookings/{setup['booking_id']}/cancel" not in listing


# --- Tenant isolation, and colleagues ---------------------------------------------------------------------


ID_ROUTES = [
    pytest.param("GET", "/pages/{page_id}", None, id="share"),
    pytest.param("GET", "/pages/{page_id}/edit", None, id="edit-form"),
    pytest.param("POST", "/pages/{page_id}/edit", page_data(slug="hijack", title="Hijacked"), id="edit-save"),
    pytest.param("POST", "/pages/{second_id}/default", {}, id="make-default"),
    pytest.param("GET", "/pages/{page_id}/delete", None, id="delete-confirm"),
    pytest.param("POST", "/pages/{page_id}/delete", {}, id="delete"),
    pytest.param("GET", "/pages/bookings/{booking_id}/cancel", None, id="cancel-confirm"),
    pytest.param("POST", "/pages/bookings/{booking_id}/cancel", {"reason": "x"}, id="cancel"),
]


def _send(client, method, url, data):
    return client.get(url) if method == "GET" else client.post_form(url, data)


@pytest.mark.parametrize("who", ["other-tenant-admin", "other-tenant-rep", "colleague"])
@pytest.mark.parametrize(("method", "url", "data"), ID_ROUTES)
def test_others_ids_answer_404_and_change_nothing(app, world, setup, signed_in, who, method, url, data):
    ours, theirs = world
    if who == "colleague":
        with app.app_context():
            colleague = factories.make_user(
                db.session.get(Tenant, ours.tenant_id), email="colleague@acme.example.com"
            )
            db.session.commit()
            email = colleague.email
    else:
        email = theirs.admin_email if who == "other-tenant-admin" else theirs.rep_email
    client = signed_in(email)
    before = snapshot(app)

    response = _send(client, method, url.format(**setup), data)

    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Intro call" not in body
    assert "Vera" not in body
    assert snapshot(app) == before


@pytest.mark.parametrize(("method", "url", "data"), ID_ROUTES)
def test_own_rep_reaches_every_id_route(app, world, setup, signed_in, method, url, data):
    """The control for the test above: the same requests work for the page's own rep."""
    ours, _ = world
    response = _send(signed_in(ours.rep_email), method, url.format(**setup), data)
    assert response.status_code in (200, 303), response.get_data(as_text=True)


def test_listing_shows_only_own_pages_and_bookings(app, world, setup, signed_in):
    _, theirs = world
    body = signed_in(theirs.rep_email).get("/pages").get_data(as_text=True)
    assert "Intro call" not in body
    assert "Vera Visitor" not in body
    assert "You have no scheduling page yet." in body
    assert "No upcoming bookings." in body


PAGES_ROUTES = ["/pages", "/pages/new", "/pages/{page_id}", "/pages/{page_id}/edit"]


@pytest.mark.parametrize("url", PAGES_ROUTES)
def test_anonymous_visitors_are_sent_to_login(client, setup, url):
    response = client.get(url.format(**setup))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


@pytest.mark.parametrize(
    "url", ["/pages/new", "/pages/slug", "/pages/switch", "/pages/company-switch", "/pages/{page_id}/delete"]
)
def test_anonymous_posts_change_nothing(app, client, setup, url):
    before = snapshot(app)
    response = client.post_form(url.format(**setup), page_data() | {"disabled": "1", "page_slug": "x"})
    assert response.status_code == 302
    assert snapshot(app) == before


def test_editor_is_not_served_on_a_custom_domain(app, world, setup, make_client):
    response = make_client("meet.acme.example").get("/pages")
    assert response.status_code == 404


# --- No-JavaScript extras, the personal link, hidden pages --------------------------------------------------


def test_more_question_rows_shows_the_form_again_unsaved(app, world, setup, signed_in):
    ours, _ = world
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form(
        "/pages/new", page_data(title="Typed", add_question_rows="1")
    )

    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert _value(body, "title") == "Typed"
    assert _value(body, "questions-7-text") == ""  # two filled rows and six empty ones
    assert '<label for="questions-8-text">Question 9</label>' not in body
    assert '<label for="questions-7-text">Question 8</label>' in body
    assert error_fields(response) == set()
    assert snapshot(app) == before


def test_personal_link_follows_the_default_pages_domain(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    with app.app_context():
        user_slug = db.session.get(User, ours.rep_id).page_slug

    data = page_data(slug="intro", domain_id=str(setup["verified_id"]))
    assert client.post_form(f"/pages/{setup['page_id']}/edit", data).status_code == 303

    body = client.get("/pages").get_data(as_text=True)
    assert _value(body, "page_slug") == user_slug
    assert (
        f'id="personal-link" class="copy" type="text" readonly value="http://meet.acme.example/meetings/{user_slug}"'
        in body
    )


def test_hide_from_search_is_stored_and_shown(app, world, setup, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)
    url = f"/pages/{setup['page_id']}/edit"

    assert client.post_form(url, page_data(slug="intro", hide_from_search="y")).status_code == 303
    assert _page(app, setup["page_id"]).hide_from_search
    assert "Hidden from search engines" in client.get("/pages").get_data(as_text=True)
    assert 'name="hide_from_search" type="checkbox" value="y"' in client.get(url).get_data(as_text=True)
    assert "checked" in client.get(url).get_data(as_text=True).split('name="hide_from_search"')[0][-200:]

    assert client.post_form(url, page_data(slug="intro")).status_code == 303
    assert not _page(app, setup["page_id"]).hide_from_search


def test_edit_form_says_when_the_pages_domain_is_no_longer_verified(app, world, setup, signed_in):
    ours, _ = world
    with app.app_context():
        page = db.session.get(SchedulingPage, setup["page_id"])
        page.domain_id = setup["pending_id"]
        db.session.commit()

    body = signed_in(ours.rep_email).get(f"/pages/{setup['page_id']}/edit").get_data(as_text=True)

    assert 'id="domain-not-verified"' in body
    assert "pending.acme.example" in body


def test_a_path_is_the_same_on_every_domain(app, world, setup, signed_in):
    """D5: /meetings/<rep>/intro on the app host and on meet.acme.example are one path: refused."""
    ours, _ = world
    before = snapshot(app)

    response = signed_in(ours.rep_email).post_form(
        "/pages/new", page_data(slug="intro", domain_id=str(setup["verified_id"]))
    )

    assert response.status_code == 422
    assert error_fields(response) == {"slug"}
    assert "Intro call" in unescape(response.get_data(as_text=True))  # says which page holds it
    assert snapshot(app) == before


def test_another_rep_may_use_the_same_page_slug(app, world, setup, signed_in):
    """Their user slug differs, so /meetings/<them>/intro is another path."""
    _, theirs = world
    response = signed_in(theirs.rep_email).post_form("/pages/new", page_data(slug="intro"))

    assert response.status_code == 303
    assert [p.slug for p in _pages_of(app, theirs.rep_id)] == ["intro"]
