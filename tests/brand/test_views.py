"""The Brand settings screen, the rep's photo and headline, and how brand files are served."""

import io
import re

import pytest
import sqlalchemy as sa

from app.brand import services as brand
from app.brand.models import BrandImage
from app.extensions import db
from app.tenants.models import Tenant, User
from tests import factories
from tests.brand import images as samples
from tests.conftest import APP_HOST

ACME_HOST = "meet.acme.example.com"
GLOBEX_HOST = "meet.globex.example.com"


@pytest.fixture
def domains(app, world):
    ours, theirs = world
    with app.app_context():
        factories.make_domain(db.session.get(Tenant, ours.tenant_id), ACME_HOST)
        factories.make_domain(db.session.get(Tenant, theirs.tenant_id), GLOBEX_HOST)
        db.session.commit()
    with app.app_context():
        brand.image_cache().clear()
    return world


@pytest.fixture
def queries(db_connection):
    counter = {"n": 0}

    def count(*_args):
        counter["n"] += 1

    sa.event.listen(db_connection, "before_cursor_execute", count)
    yield counter
    sa.event.remove(db_connection, "before_cursor_execute", count)


def _upload(client, data: dict, files: dict):
    form = {"csrf_token": client.csrf_token(), **data}
    for name, (content, filename) in files.items():
        form[name] = (io.BytesIO(content), filename)
    return client.post("/settings/brand", data=form, content_type="multipart/form-data")


def _tenant(app, tenant_id: int) -> dict:
    with app.app_context():
        t = db.session.get(Tenant, tenant_id)
        return {
            "name": t.brand_name,
            "color": t.brand_color,
            "logo": t.brand_logo,
            "favicon": t.brand_favicon,
        }


def test_an_admin_sets_name_colour_logo_and_the_favicon_follows(app, domains, signed_in):
    ours, _theirs = domains
    admin = signed_in(ours.admin_email)
    assert admin.get("/settings/brand").status_code == 200
    response = _upload(
        admin, {"name": "Acme Rockets", "color": "#F5C518"}, {"logo": (samples.png(), "logo.png")}
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    saved = _tenant(app, ours.tenant_id)
    assert saved["name"] == "Acme Rockets"
    assert saved["color"] == "#f5c518"
    assert re.fullmatch(r"[0-9a-f]{64}\.png", saved["logo"])
    assert saved["favicon"]
    assert saved["favicon"] != saved["logo"]
    page = admin.get("/settings/brand").get_data(as_text=True)
    assert f'src="/brand/{saved["logo"]}"' in page
    assert "1.6:1" in page
    assert "#8b6d07" in page
    assert '<link rel="stylesheet" href="/brand/colors/f5c518.css">' in page


@pytest.mark.parametrize(
    ("files", "field"),
    [
        ({"logo": (samples.SVG, "logo.svg")}, "logo"),
        ({"logo": (samples.SVG, "logo.png")}, "logo"),
        ({"favicon": (samples.gif(), "favicon.gif")}, "favicon"),
        ({"logo": (samples.png_bomb(), "bomb.png")}, "logo"),
    ],
    ids=["svg", "svg-named-png", "gif", "bomb"],
)
def test_a_refused_upload_names_its_field_and_changes_nothing(app, domains, signed_in, files, field):
    ours, _theirs = domains
    before = _tenant(app, ours.tenant_id)
    response = _upload(signed_in(ours.admin_email), {"name": "Changed", "color": "#123456"}, files)
    assert response.status_code == 422
    assert f'data-field="{field}"' in response.get_data(as_text=True)
    assert _tenant(app, ours.tenant_id) == before
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(BrandImage)) == 0


def test_a_bad_colour_is_refused_naming_the_field(app, domains, signed_in):
    ours, _theirs = domains
    response = _upload(signed_in(ours.admin_email), {"name": "Acme", "color": "red;}body{"}, {})
    assert response.status_code == 422
    assert 'data-field="color"' in response.get_data(as_text=True)


def test_only_admins_reach_the_brand_screen(app, domains, signed_in):
    ours, _theirs = domains
    rep = signed_in(ours.rep_email)
    assert rep.get("/settings/brand").status_code == 403
    assert _upload(rep, {"name": "Hijack"}, {}).status_code == 403
    assert _tenant(app, ours.tenant_id)["name"] == ""


def test_an_admin_changes_only_their_own_tenants_brand(app, domains, signed_in):
    ours, theirs = domains
    _upload(signed_in(theirs.admin_email), {"name": "Globex Brand", "color": "#000000"}, {})
    assert _tenant(app, ours.tenant_id)["name"] == ""
    assert _tenant(app, theirs.tenant_id)["name"] == "Globex Brand"


def _logo_of(app, admin, tenant_id: int) -> str:
    response = _upload(admin, {"name": "X"}, {"logo": (samples.png(), "logo.png")})
    assert response.status_code == 303
    return _tenant(app, tenant_id)["logo"]


def test_an_image_is_served_for_ever_with_an_etag_and_answers_304(app, domains, signed_in, make_client):
    ours, _theirs = domains
    logo = _logo_of(app, signed_in(ours.admin_email), ours.tenant_id)
    for host in (ACME_HOST, APP_HOST):
        response = make_client(host).get(f"/brand/{logo}")
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "image/png"
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert response.headers["ETag"] == f'"{logo.split(".")[0]}"'
        assert response.data.startswith(b"\x89PNG")
        again = make_client(host).get(f"/brand/{logo}", headers={"If-None-Match": response.headers["ETag"]})
        assert again.status_code == 304
        assert again.data == b""


def test_a_repeat_visit_costs_no_query(app, domains, signed_in, make_client, queries):
    ours, _theirs = domains
    logo = _logo_of(app, signed_in(ours.admin_email), ours.tenant_id)
    with app.app_context():
        brand.image_cache().clear()
    assert make_client().get(f"/brand/{logo}").status_code == 200
    queries["n"] = 0
    assert make_client().get(f"/brand/{logo}").status_code == 200  # another visitor, from memory
    assert make_client().get(f"/brand/{logo}", headers={"If-None-Match": f'"{logo[:64]}"'}).status_code == 304
    assert queries["n"] == 0


def test_another_tenants_domain_does_not_serve_the_image(app, domains, signed_in, make_client):
    ours, _theirs = domains
    logo = _logo_of(app, signed_in(ours.admin_email), ours.tenant_id)
    assert make_client(ACME_HOST).get(f"/brand/{logo}").status_code == 200  # cached now, and still:
    assert make_client(GLOBEX_HOST).get(f"/brand/{logo}").status_code == 404
    assert make_client(GLOBEX_HOST).get(f"/brand/{logo}", headers={"If-None-Match": "*"}).status_code == 404


@pytest.mark.parametrize("name", ["x.png", "0" * 64 + ".svg", "0" * 64 + ".png", "../app.css"])
def test_unknown_or_malformed_image_names_are_404(app, domains, make_client, name):
    assert make_client().get(f"/brand/{name}").status_code == 404


def test_colour_stylesheets_are_made_from_their_name(app, make_client):
    response = make_client("anything.example").get("/brand/colors/f5c518.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "--accent: #8b6d07;" in response.get_data(as_text=True)
    assert make_client().get("/brand/colors/red.css").status_code == 404
    assert make_client().get("/brand/colors/F5C518.css").status_code == 404


def test_a_rep_sets_a_photo_and_headline_on_the_account_screen(app, domains, signed_in, make_client):
    ours, _theirs = domains
    rep = signed_in(ours.rep_email)
    account = rep.get("/account").get_data(as_text=True)
    assert 'id="public-profile-form"' in account
    assert 'enctype="multipart/form-data"' in account
    form = {
        "csrf_token": rep.csrf_token(),
        "headline": "  Helps   teams choose  ",
        "photo": (io.BytesIO(samples.jpeg()), "me.jpg"),
    }
    response = rep.post("/account/public-profile", data=form, content_type="multipart/form-data")
    assert response.status_code == 303
    with app.app_context():
        user = db.session.get(User, ours.rep_id)
        assert user.headline == "Helps teams choose"
        assert re.fullmatch(r"[0-9a-f]{64}\.jpg", user.photo)
        photo = user.photo
    assert f'src="/brand/{photo}"' in rep.get("/account").get_data(as_text=True)
    assert make_client(ACME_HOST).get(f"/brand/{photo}").headers["Content-Type"] == "image/jpeg"

    bad = {"csrf_token": rep.csrf_token(), "headline": "x", "photo": (io.BytesIO(samples.SVG), "me.png")}
    refused = rep.post("/account/public-profile", data=bad, content_type="multipart/form-data")
    assert refused.status_code == 422
    assert 'data-field="photo"' in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(User, ours.rep_id).photo == photo

    removed = {"csrf_token": rep.csrf_token(), "headline": "", "remove_photo": "y"}
    assert rep.post("/account/public-profile", data=removed).status_code == 303
    with app.app_context():
        assert db.session.get(User, ours.rep_id).photo is None


def test_brand_for_falls_back_to_the_company_and_termins_colour(app_ctx):
    tenant = factories.make_tenant("Fallback Ltd")
    context = brand.brand_for(tenant)
    assert context.name == "Fallback Ltd"
    assert context.accent == "#0b57d0"
    assert context.logo_url is None
    assert context.stylesheet_path is None
    tenant.brand_name, tenant.brand_color, tenant.brand_logo = "Fallback", "#ffff00", "a" * 64 + ".png"
    context = brand.brand_for(tenant)
    assert context.name == "Fallback"
    assert context.accent != "#ffff00"
    assert context.logo_url == f"http://{APP_HOST}/brand/{'a' * 64}.png"
