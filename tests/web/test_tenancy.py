"""D6: the Host header alone decides who is served."""

import pytest
from werkzeug.middleware.proxy_fix import ProxyFix

from app import create_app
from app.extensions import db
from app.web.assets import asset_url
from app.web.tenancy import normalise_host
from tests import factories
from tests.conftest import config_for_tests


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Book.Example.COM", "book.example.com"),
        ("book.example.com:8443", "book.example.com"),
        ("book.example.com.", "book.example.com"),
        ("BOOK.example.com.:80", "book.example.com"),
        ("[::1]:8000", "[::1]"),
    ],
)
def test_normalise_host_ignores_port_and_case(raw, expected):
    assert normalise_host(raw) == expected


@pytest.fixture
def domains(app):
    with app.app_context():
        acme = factories.make_tenant("Acme")
        globex = factories.make_tenant("Globex")
        factories.make_domain(acme, "book.acme.example", robots_txt="User-agent: *\nDisallow: /meetings*\n")
        factories.make_domain(globex, "meet.globex.example", robots_txt="User-agent: *\nDisallow: /private\n")
        factories.make_domain(acme, "pending.acme.example", status="pending")
        factories.make_domain(acme, "failed.acme.example", status="failed")
        db.session.commit()


def test_app_host_serves_the_login_page(client):
    response = client.get("/login")
    assert response.status_code == 200
    assert b"Sign in to Termin" in response.data


def test_app_host_matches_with_port_and_upper_case(make_client):
    assert make_client("APP.Termin.TEST:8000").get("/login").status_code == 200


@pytest.mark.usefixtures("domains")
def test_each_verified_domain_serves_its_own_robots_txt(make_client):
    acme = make_client("book.acme.example").get("/robots.txt")
    globex = make_client("MEET.globex.example:443").get("/robots.txt")
    assert acme.status_code == globex.status_code == 200
    assert acme.get_data(as_text=True) == "User-agent: *\nDisallow: /meetings*\n"
    assert globex.get_data(as_text=True) == "User-agent: *\nDisallow: /private\n"
    assert acme.mimetype == "text/plain"
    assert acme.headers["X-Content-Type-Options"] == "nosniff"


def test_app_host_robots_txt_keeps_the_application_out_of_search(client):
    body = client.get("/robots.txt").get_data(as_text=True)
    assert "Disallow: /\n" in body


@pytest.mark.usefixtures("domains")
@pytest.mark.parametrize(
    "path", ["/login", "/signup", "/crm/contacts", "/team", "/account", "/", "/crm/tasks"]
)
def test_custom_domain_never_serves_application_routes(make_client, path):
    response = make_client("book.acme.example").get(path)
    assert response.status_code == 404
    assert b"Sign in" not in response.data


@pytest.mark.usefixtures("domains")
def test_custom_domain_hides_app_routes_even_from_a_signed_in_user(client, make_client, world):
    ours, _ = world
    client.login(ours.admin_email)
    custom = make_client("book.acme.example")
    custom.http.set_cookie(
        "session",
        client.http.get_cookie("session", domain="app.termin.test").value,
        domain="book.acme.example",
    )
    assert custom.get(f"/crm/contacts/{ours.contact_id}").status_code == 404
    assert custom.get("/crm/contacts").status_code == 404


@pytest.mark.usefixtures("domains")
@pytest.mark.parametrize(
    "host", ["pending.acme.example", "failed.acme.example", "unknown.example", "127.0.0.1"]
)
def test_unverified_and_unknown_hosts_answer_404(make_client, host):
    client = make_client(host)
    assert client.get("/robots.txt").status_code == 404
    assert client.get("/login").status_code == 404
    assert client.get("/meetings/anyone").status_code == 404


@pytest.mark.usefixtures("domains")
def test_custom_domain_serves_page_assets(app, make_client):
    with app.test_request_context():
        htmx = asset_url("htmx.min.js")
    response = make_client("book.acme.example").get(htmx)
    assert response.status_code == 200
    assert b"htmx" in response.data
    response.close()


def test_only_built_files_are_served(client):
    assert client.get("/assets/manifest.json").status_code == 404
    assert client.get("/assets/..%2Fcss%2Fapp.css").status_code == 404
    assert client.get("/assets/htmx.min.js").status_code == 404  # only under its hashed name


@pytest.mark.usefixtures("domains")
def test_x_forwarded_host_is_trusted_only_behind_a_configured_proxy(app, make_client, monkeypatch):
    forwarded = {"X-Forwarded-Host": "book.acme.example"}

    # Straight from the internet: the Host header decides, a forged X-Forwarded-Host changes nothing.
    assert make_client("unknown.example").get("/robots.txt", headers=forwarded).status_code == 404

    # PROXY_COUNT=1 wraps the app as below; then the proxy's X-Forwarded-Host is the host.
    proxied = create_app({**config_for_tests(app.config["SQLALCHEMY_DATABASE_URI"]), "PROXY_COUNT": 1})
    assert isinstance(proxied.wsgi_app, ProxyFix)
    monkeypatch.setattr(app, "wsgi_app", ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1))
    behind_proxy = make_client("internal-lb.local").get("/robots.txt", headers=forwarded)
    assert behind_proxy.status_code == 200
    assert behind_proxy.get_data(as_text=True) == "User-agent: *\nDisallow: /meetings*\n"
