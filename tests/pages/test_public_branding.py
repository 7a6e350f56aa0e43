"""The public page's brand and details (issue 14): the company's logo, colour and favicon on its pages,
a link preview, the zones as places with offsets, the error summary and the lost slot's times by day."""

import re

from app.brand import services as brand
from app.extensions import db
from app.tenants.models import Tenant, User
from tests.brand import images as samples
from tests.pages.helpers import ACME_HOST, hidden

START = "2030-01-07T10:00:00+01:00"


def form_for(client, path: str):
    response = client.get(path, query_string={"start": START, "tz": "Europe/Warsaw"})
    assert response.status_code == 200
    names = ("csrf_token", "start", "duration", "tz", "idempotency_key")
    return response, {name: hidden(response, name) for name in names}


def payload(**fields) -> dict:
    return {
        "start": START,
        "first_name": "V",
        "last_name": "V",
        "email": "v@example.org",
        "tz": "Europe/Warsaw",
        **fields,
    }


def _brand_acme(app, site) -> dict:
    with app.app_context():
        tenant = db.session.get(Tenant, site.acme_id)
        admin = User(
            tenant=tenant,
            email="brand-admin@acme.example",
            name="Ada",
            password_hash="-",
            role="admin",
            page_slug="brand-admin",
        )
        db.session.add(admin)
        db.session.flush()
        brand.update_brand(tenant, admin, name="Acme Rockets", color="#ffff00", logo=samples.png(400, 100))
        rep = db.session.get(User, site.acme_rep_id)
        brand.update_public_profile(rep, headline="Helps you launch", photo=samples.jpeg())
        db.session.commit()
        return {"logo": tenant.brand_logo, "favicon": tenant.brand_favicon, "photo": rep.photo}


def test_the_companys_brand_is_on_its_pages_on_its_domain_and_the_app_host(app, site, make_client):
    files = _brand_acme(app, site)
    for host, path in ((ACME_HOST, site.demo_path), (None, site.intro_path)):
        client = make_client(host) if host else make_client()
        body = client.get(path).get_data(as_text=True)
        assert (
            f'<img class="brand-logo" id="brand-logo" src="/brand/{files["logo"]}" alt="Acme Rockets">'
            in body
        )
        assert f'<link rel="icon" href="/brand/{files["favicon"]}" type="image/png">' in body
        assert '<link rel="stylesheet" href="/brand/colors/ffff00.css">' in body
        assert f'src="/brand/{files["photo"]}"' in body
        assert "Helps you launch" in body
    # Another company's page keeps its own (here: Termin's) brand.
    globex = make_client("book.globex.example").get(site.globex_path).get_data(as_text=True)
    assert "Acme Rockets" not in globex
    assert "/brand/colors/" not in globex
    assert re.search(r'<link rel="icon" href="/assets/favicon\.[0-9a-f]{10}\.svg"', globex)


def test_the_link_preview_names_the_page_the_rep_the_company_and_shows_the_logo(app, site, make_client):
    files = _brand_acme(app, site)
    body = make_client(ACME_HOST).get(site.demo_path).get_data(as_text=True)
    meta = dict(re.findall(r'<meta (?:property|name)="((?:og|twitter):[a-z:_]+)" content="([^"]*)"', body))
    assert meta["og:site_name"] == "Acme Rockets"
    assert meta["og:title"].endswith("Rita Rep") or " · " in meta["og:title"]
    assert "Acme Rockets" in meta["og:description"]
    assert meta["og:image"] == f"http://{ACME_HOST}/brand/{files['logo']}"
    assert meta["twitter:card"] == "summary"
    assert meta["og:url"] == f"http://{ACME_HOST}{site.demo_path}"


def test_zones_are_offered_as_places_with_their_offset_in_the_visitors_language(site, client):
    english = client.get(site.intro_path, headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert '<option value="Europe/Warsaw" selected>Warsaw, Poland (UTC+' in english
    assert '<option value="America/New_York">New York, United States (UTC-0' in english
    assert 'value="US/Eastern"' not in english  # an alias: its canonical zone is listed
    polish = client.get(site.intro_path, headers={"Accept-Language": "pl"}).get_data(as_text=True)
    assert '<option value="Europe/Warsaw" selected>Warszawa, Polska (UTC+' in polish
    # An alias still works in a link, and is then offered as asked.
    aliased = client.get(site.intro_path, query_string={"tz": "US/Eastern"})
    assert aliased.status_code == 200
    assert '<option value="US/Eastern" selected>' in aliased.get_data(as_text=True)


def test_a_failed_form_opens_with_a_summary_linking_to_each_field(site, client):
    _, fields = form_for(client, site.intro_path)
    response = client.post(f"{site.intro_path}/book", data={**fields, "email": "nope"})
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    summary = body.split('id="error-summary"')[1].split("</div>")[0]
    assert "autofocus" in body.split('id="error-summary"')[1].split(">")[0]
    assert 'href="#first_name"' in summary
    assert 'href="#email"' in summary
    assert 'data-field="email"' in summary
    assert 'id="chosen-time"' in body  # the chosen time is still shown above the form


def test_a_lost_slots_times_are_grouped_by_day(app, site, client):
    _, fields = form_for(client, site.intro_path)
    assert client.post(f"{site.intro_path}/book", json=payload(email="first@example.org")).status_code == 201
    typed = {"first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"}
    body = client.post(f"{site.intro_path}/book", data={**fields, **typed}).get_data(as_text=True)
    days = re.findall(r'<fieldset class="alternative-day" data-day="([^"]+)">', body)
    assert days == sorted(set(days))  # each day once
    assert days[0] == START[:10]
    first_day = body.split('class="alternative-day"')[1]
    assert first_day.count("Monday, January 7, 2030") == 1  # the date once, not on each time
    assert 'id="error-summary"' not in body


def test_every_page_has_a_favicon(client):
    login = client.get("/login").get_data(as_text=True)
    assert re.search(
        r'<link rel="icon" href="/assets/favicon\.[0-9a-f]{10}\.svg" type="image/svg\+xml">', login
    )
