"""D2: after a booking, the host that served the page remembers the visitor's details; no other host does."""

import re

from app.extensions import db
from app.pages import services as pages
from app.pages.models import SchedulingPage
from app.pages.public import PREFILL_COOKIE
from app.tenants.models import User
from tests import factories
from tests.conftest import APP_HOST
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, QUESTIONS, field_value, hidden

START = "2030-01-07T10:00:00+01:00"
LATER = "2030-01-08T10:00:00+01:00"
VERA = {"first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"}


def form(client, path: str, start: str = START, base_url: str | None = None):
    query = {"start": start, "tz": "Europe/Warsaw"}
    if base_url:
        return client.http.get(path, query_string=query, base_url=base_url)
    return client.get(path, query_string=query)


def fields_of(response) -> dict:
    return {
        name: hidden(response, name) for name in ("csrf_token", "start", "duration", "tz", "idempotency_key")
    }


def book_html(client, path: str, extra: dict | None = None, base_url: str | None = None):
    response = form(client, path, base_url=base_url)
    data = {**fields_of(response), **VERA, **(extra or {})}
    if base_url:
        # Over https Flask-WTF also checks the Referer, which a browser sends with the form.
        headers = {"Referer": f"{base_url}{path}"}
        return client.http.post(f"{path}/book", data=data, base_url=base_url, headers=headers)
    return client.post(f"{path}/book", data=data)


DEMO_ANSWERS = {"q_q1": "Initech", "q_q2": "11-50", "q_q3": "Bring slides", "consent": "y"}


def prefilled(response) -> bool:
    return 'id="prefill-note"' in response.get_data(as_text=True)


def test_the_cookie_is_first_party_httponly_and_lax(site, make_client):
    response = book_html(make_client(ACME_HOST), site.demo_path, DEMO_ANSWERS)

    assert response.status_code == 303
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(PREFILL_COOKIE + "=")]
    attributes = [part.strip().lower() for part in cookie.split(";")[1:]]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/meetings/" in attributes
    assert not any(a.startswith("domain=") for a in attributes)
    assert "secure" not in attributes  # plain http here
    # The details are signed, not readable as plain text by anyone who can see the cookie jar.
    assert "Initech" not in cookie


def test_the_cookie_is_secure_over_https(site, make_client):
    client = make_client(ACME_HOST)
    response = book_html(client, site.demo_path, DEMO_ANSWERS, base_url=f"https://{ACME_HOST}")

    assert response.status_code == 303, response.get_data(as_text=True)
    (cookie,) = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(PREFILL_COOKIE + "=")]
    assert "secure" in [part.strip().lower() for part in cookie.split(";")]


def test_the_next_visit_on_the_same_host_is_prefilled(site, make_client):
    client = make_client(ACME_HOST)
    book_html(client, site.demo_path, DEMO_ANSWERS)

    again = form(client, site.demo_path, start=LATER)

    assert prefilled(again)
    assert field_value(again, "first_name") == "Vera"
    assert field_value(again, "last_name") == "Visitor"
    assert field_value(again, "email") == "vera@example.org"
    body = again.get_data(as_text=True)
    assert "Bring slides</textarea>" in body
    assert re.search(r'<input[^>]*checked[^>]*value="11-50"|<input[^>]*value="11-50"[^>]*checked', body)
    assert re.search(r'<input[^>]*id="consent"[^>]*checked', body) is None  # consent is asked each time
    assert 'id="not-you"' in body


def test_not_you_clears_it(site, make_client):
    client = make_client(ACME_HOST)
    book_html(client, site.demo_path, DEMO_ANSWERS)
    again = form(client, site.demo_path, start=LATER)
    next_path = re.search(r'name="next" value="([^"]+)"', again.get_data(as_text=True)).group(1)

    response = client.post(
        "/meetings/booking/forget", data={"csrf_token": hidden(again, "csrf_token"), "next": next_path}
    )

    assert response.status_code == 303
    assert response.headers["Location"].replace("&amp;", "&").startswith(site.demo_path)
    cleared = form(client, site.demo_path, start=LATER)
    assert not prefilled(cleared)
    assert field_value(cleared, "first_name") == ""


def test_forget_never_redirects_off_the_site(site, make_client):
    client = make_client(ACME_HOST)
    page = form(client, site.demo_path)
    response = client.post(
        "/meetings/booking/forget", data={"csrf_token": hidden(page, "csrf_token"), "next": "//evil.example/"}
    )
    assert response.status_code == 200
    assert 'id="forgotten"' in response.get_data(as_text=True)


def test_the_cookie_is_not_used_on_another_tenants_domain_or_the_app_host(site, make_client):
    acme = make_client(ACME_HOST)
    book_html(acme, site.demo_path, DEMO_ANSWERS)
    value = acme.http.get_cookie(PREFILL_COOKIE, domain=ACME_HOST, path="/meetings/").value

    # A browser never sends it elsewhere (no Domain attribute) ...
    assert not prefilled(form(acme, site.globex_path, base_url=f"http://{GLOBEX_HOST}"))
    # ... and even carried over by hand it is refused: it names the host and tenant it was made for.
    globex = make_client(GLOBEX_HOST)
    globex.http.set_cookie(PREFILL_COOKIE, value, domain=GLOBEX_HOST, path="/meetings/")
    on_globex = form(globex, site.globex_path)
    assert on_globex.status_code == 200
    assert not prefilled(on_globex)
    assert field_value(on_globex, "first_name") == ""

    app_host = make_client(APP_HOST)
    app_host.http.set_cookie(PREFILL_COOKIE, value, domain=APP_HOST, path="/meetings/")
    on_app = form(app_host, site.intro_path)
    assert on_app.status_code == 200
    assert not prefilled(on_app)


def test_a_cookie_from_the_app_host_is_not_used_on_a_domain_of_the_same_tenant(site, make_client):
    app_host = make_client(APP_HOST)
    assert book_html(app_host, site.intro_path).status_code == 303
    value = app_host.http.get_cookie(PREFILL_COOKIE, domain=APP_HOST, path="/meetings/").value
    assert prefilled(form(app_host, site.intro_path, start=LATER))

    acme = make_client(ACME_HOST)
    acme.http.set_cookie(PREFILL_COOKIE, value, domain=ACME_HOST, path="/meetings/")
    assert not prefilled(form(acme, site.demo_path))


def test_a_tampered_cookie_is_ignored(site, make_client):
    client = make_client(ACME_HOST)
    client.http.set_cookie(
        PREFILL_COOKIE, "eyJmaXJzdF9uYW1lIjoiTWFsbG9yeSJ9.forged", domain=ACME_HOST, path="/meetings/"
    )
    page = form(client, site.demo_path)
    assert page.status_code == 200
    assert not prefilled(page)


def test_json_bookings_set_no_cookie(site, client):
    response = client.post(f"{site.intro_path}/book", json={"start": START, "tz": "Europe/Warsaw", **VERA})
    assert response.status_code == 201
    assert not any(c.startswith(PREFILL_COOKIE) for c in response.headers.getlist("Set-Cookie"))


# --- Which answers go where: the same question of the same page only ----------------------------------------


def _with_app(site_app, fn):
    with site_app.app_context():
        result = fn()
        db.session.commit()
        return result


def test_another_pages_form_gets_the_name_and_email_but_no_answer(app, site, make_client):
    """Today's bug: "11-50" given to *Team size* (q2) on one page must not fill q2 of another page."""

    def other_page():
        rep = db.session.get(User, site.acme_rep_id)
        return factories.make_page(
            rep,
            slug="sizing",
            domain_id=site.acme_domain_id,
            questions=[
                {"id": "q1", "label": "Company size", "kind": "text", "required": False},
                {"id": "q2", "label": "Company", "kind": "text", "required": False},
            ],
        ).id

    _with_app(app, other_page)
    client = make_client(ACME_HOST)
    book_html(client, site.demo_path, DEMO_ANSWERS)

    sizing = form(client, f"{site.intro_path}/sizing", start=LATER)
    assert prefilled(sizing)
    assert field_value(sizing, "first_name") == "Vera"
    assert field_value(sizing, "email") == "vera@example.org"
    body = sizing.get_data(as_text=True)
    assert "Initech" not in body
    assert "11-50" not in body
    assert re.search(r'<textarea[^>]*name="q_q1"[^>]*>\s*</textarea>', body)
    assert re.search(r'<textarea[^>]*name="q_q2"[^>]*>\s*</textarea>', body)


def test_a_question_keeps_its_answer_when_edited_and_a_new_one_at_its_place_gets_none(app, site, make_client):
    client = make_client(ACME_HOST)
    book_html(client, site.demo_path, DEMO_ANSWERS)

    def edit(questions):
        def run():
            page = pages.get_page(db.session.get(User, site.acme_rep_id).tenant, site.demo_id)
            settings = pages.PageSettings(
                title=page.title,
                slug=page.slug,
                time_zone=page.time_zone,
                weekly=[tuple(r) for r in page.availability["weekly"]],
                durations=page.durations,
                questions=questions,
                consent_text=page.consent_text,
                domain_id=page.domain_id,
            )
            pages.update_page(page.owner.tenant, page, settings)

        _with_app(app, run)

    # Renamed and moved, the same questions keep their answers; "Anything else?" (q3) is deleted ...
    edit([QUESTIONS[1], {**QUESTIONS[0], "label": "Company name"}])
    renamed = form(client, site.demo_path, start=LATER).get_data(as_text=True)
    assert "Initech</textarea>" in renamed
    assert "Bring slides" not in renamed
    # ... and a new question that gets its id back is another question: it is asked afresh.
    edit([QUESTIONS[0], QUESTIONS[1], {"id": "q3", "label": "Budget", "kind": "text", "required": False}])
    again = form(client, site.demo_path, start=LATER).get_data(as_text=True)
    assert "Initech</textarea>" in again
    assert "Bring slides" not in again
    assert re.search(r'<textarea[^>]*name="q_q3"[^>]*>\s*</textarea>', again)


def test_questions_stored_without_keys_still_work_and_prefill_only_the_person(app, site, make_client):
    """A page saved before question keys (were its migration skipped) books and prefills safely."""

    def strip_keys():
        page = db.session.get(SchedulingPage, site.demo_id)
        page.questions = [{k: v for k, v in q.items() if k != "key"} for q in page.questions]

    client = make_client(ACME_HOST)
    book_html(client, site.demo_path, DEMO_ANSWERS)
    _with_app(app, strip_keys)

    again = form(client, site.demo_path, start=LATER)
    assert again.status_code == 200
    assert field_value(again, "first_name") == "Vera"
    assert "Initech" not in again.get_data(as_text=True)
    data = {**fields_of(again), **VERA, **DEMO_ANSWERS, "q_q1": "Initrode"}
    assert client.post(f"{site.demo_path}/book", data=data).status_code == 303
