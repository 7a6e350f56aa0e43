"""Security headers per route family (issue 15, S3): the app and everything else refuse to be framed; only
the public booking routes (on the app host and on tenants' domains) may be; CSP allows scripts and styles
from Termin's own origin only; Referrer-Policy and nosniff everywhere; HSTS over HTTPS when configured."""

import re

import pytest

from app import config as config_module
from app.extensions import db
from app.pages.models import SchedulingPage
from tests.conftest import APP_HOST
from tests.pages.conftest import site  # noqa: F401  (the pages' fixture, used here too)
from tests.pages.helpers import ACME_HOST


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:]) for part in policy.split("; ")}


def assert_common(response) -> dict[str, str]:
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = directives(response)
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP, not production
    return policy


def assert_not_framable(response) -> None:
    assert directives(response)["frame-ancestors"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"


def assert_framable(response) -> None:
    assert "frame-ancestors" not in directives(response)
    assert "X-Frame-Options" not in response.headers


APP_ROUTES = ["/login", "/signup", "/password/forgot", "/crm/contacts", "/no-such-page", "/robots.txt"]


@pytest.mark.parametrize("path", APP_ROUTES)
def test_app_routes_are_never_framed(client, path):
    response = client.get(path)
    assert_common(response)
    assert_not_framable(response)


def test_signed_in_app_pages_are_never_framed(world, signed_in):
    ours, _ = world
    rep = signed_in(ours.rep_email)
    for path in ("/crm/contacts", "/pages", "/settings/calendars", "/account", "/account/password"):
        response = rep.get(path)
        assert response.status_code == 200, path
        assert_common(response)
        assert_not_framable(response)


def test_public_booking_routes_may_be_framed_on_every_host(site, make_client):  # noqa: F811
    app_host, domain = make_client(APP_HOST), make_client(ACME_HOST)
    for client, path in (
        (app_host, site.intro_path),
        (app_host, f"{site.intro_path}/slots.json"),
        (app_host, f"{site.intro_path}?start=2030-01-07T10:00:00%2B01:00&tz=Europe/Warsaw"),
        (domain, site.demo_path),
        (domain, f"{site.demo_path}/slots.json"),
        (domain, "/meetings/booking/not-a-token"),  # the blueprint's own 404
    ):
        response = client.get(path)
        assert response.status_code in (200, 404), path
        assert_common(response)
        assert_framable(response)


def test_other_routes_on_a_tenant_domain_are_not_framable(site, make_client):  # noqa: F811
    domain = make_client(ACME_HOST)
    for path in ("/robots.txt", "/login"):
        response = domain.get(path)
        assert_common(response)
        assert_not_framable(response)


def test_public_pages_carry_no_inline_script_or_style(app, site, make_client):  # noqa: F811
    with app.app_context():
        page = db.session.get(SchedulingPage, site.intro_id)
        page.description = "<script>alert(1)</script>"
        db.session.commit()
    for client, path in ((make_client(APP_HOST), site.intro_path), (make_client(ACME_HOST), site.demo_path)):
        body = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), path
        assert "<style" not in body
        assert not re.search(r"\sstyle=", body)
        assert not re.search(r"\son[a-z]+=", body)


def test_app_pages_carry_no_inline_script(world, signed_in):
    ours, _ = world
    rep = signed_in(ours.rep_email)
    for path in ("/pages", "/crm/contacts", "/account"):
        body = rep.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body), path
        assert not re.search(r"\son[a-z]+=", body), path


def test_hsts_over_https_when_configured(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "HSTS_SECONDS", 31536000)
    secure = client.http.get("/login", base_url=f"https://{APP_HOST}")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/login").headers


def test_production_turns_hsts_on():
    settings = config_module.defaults("/tmp/termin-test")  # noqa: S108
    settings.update(
        ENV="production",
        SECRET_KEY="x" * 40,
        REDIS_URL="redis://127.0.0.1:6379/15",
        ENCRYPTION_KEYS="k",
        SQLALCHEMY_DATABASE_URI="postgresql://termin@127.0.0.1/termin",
        APP_HOST="app.termin.example",
    )
    config_module.finalise(settings, "/tmp/termin-test")  # noqa: S108
    assert settings["HSTS_SECONDS"] == 365 * 24 * 3600
    assert settings["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/15"
