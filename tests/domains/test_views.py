"""The domain manager through HTTP: admins only, clear refusals, another tenant's domains out of reach."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.tenants.models import Domain, Tenant
from tests import factories
from tests.helpers import error_fields, is_fragment, snapshot


def _domains_of(app, tenant_id: int) -> list[Domain]:
    with app.app_context():
        return list(db.session.scalars(sa.select(Domain).where(Domain.tenant_id == tenant_id)))


def _add(app, tenant_id: int, hostname: str, status: str = "pending") -> int:
    with app.app_context():
        domain = factories.make_domain(db.session.get(Tenant, tenant_id), hostname, status=status)
        db.session.commit()
        return domain.id


def test_an_admin_adds_a_domain_and_sees_the_records_to_create(app, world, signed_in):
    ours, _theirs = world
    admin = signed_in(ours.admin_email)

    response = admin.post_form("/settings/domains/", {"hostname": "Spotkania.Łódź.pl"})

    assert response.status_code == 200
    (domain,) = _domains_of(app, ours.tenant_id)
    assert domain.hostname == "spotkania.xn--d-uga0v4h.pl"
    assert domain.status == "pending"
    page = response.get_data(as_text=True)
    assert f"_termin-challenge.{domain.hostname}" in page
    assert domain.verification_token in page
    assert "spotkania.łódź.pl" in page  # shown as people write it


def test_adding_with_htmx_swaps_only_the_manager(world, signed_in):
    ours, _theirs = world
    admin = signed_in(ours.admin_email)

    response = admin.post_form("/settings/domains/", {"hostname": "meet.example.com"}, htmx=True)

    assert response.status_code == 200
    assert is_fragment(response)
    assert 'id="domain-manager"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "hostname",
    ["exa mple.com", "http://x.com/path", "192.0.2.1", "a" * 300 + ".com", "", "meet.example.com:443"],
)
def test_bad_domains_are_refused_naming_the_field(app, world, signed_in, hostname):
    ours, _theirs = world
    admin = signed_in(ours.admin_email)
    before = snapshot(app)

    response = admin.post_form("/settings/domains/", {"hostname": hostname})

    assert response.status_code == 422
    assert error_fields(response) == {"hostname"}
    assert snapshot(app) == before


def test_a_domain_another_tenant_verified_is_refused(app, world, signed_in):
    ours, theirs = world
    _add(app, theirs.tenant_id, "meet.globex.example", status="verified")
    admin = signed_in(ours.admin_email)

    response = admin.post_form("/settings/domains/", {"hostname": "MEET.globex.example"})

    assert response.status_code == 422
    assert "another Termin account" in response.get_data(as_text=True)
    assert _domains_of(app, ours.tenant_id) == []


def test_reps_get_403(world, signed_in):
    ours, _theirs = world
    rep = signed_in(ours.rep_email)

    assert rep.get("/settings/domains/").status_code == 403
    assert rep.post_form("/settings/domains/", {"hostname": "meet.example.com"}).status_code == 403


def test_verify_uses_dns_and_shows_the_outcome(app, world, signed_in, fake_dns):
    ours, _theirs = world
    admin = signed_in(ours.admin_email)
    domain_id = _add(app, ours.tenant_id, "meet.acme.example")
    (domain,) = _domains_of(app, ours.tenant_id)

    missing = admin.post_form(f"/settings/domains/{domain_id}/verify")
    assert "No TXT record was found at _termin-challenge.meet.acme.example" in missing.get_data(as_text=True)

    fake_dns.set_txt("_termin-challenge.meet.acme.example", domain.verification_token)
    found = admin.post_form(f"/settings/domains/{domain_id}/verify")

    assert found.status_code == 200
    assert _domains_of(app, ours.tenant_id)[0].status == "verified"
    assert 'data-status="verified"' in found.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/settings/domains/{id}/verify"),
        ("post", "/settings/domains/{id}/remove"),
        ("get", "/settings/domains/{id}/robots"),
        ("post", "/settings/domains/{id}/robots"),
        ("post", "/settings/domains/{id}/robots/keep-pages-out"),
    ],
)
def test_another_tenants_domain_is_out_of_reach(app, world, signed_in, method, path):
    ours, theirs = world
    their_domain = _add(app, theirs.tenant_id, "meet.globex.example", status="verified")
    admin = signed_in(ours.admin_email)
    before = snapshot(app)

    url = path.format(id=their_domain)
    response = admin.get(url) if method == "get" else admin.post_form(url, {"robots_txt": "Disallow: /"})

    assert response.status_code == 404
    assert snapshot(app) == before


def test_removing_a_domain_stops_serving_it(app, world, signed_in, make_client):
    ours, _theirs = world
    domain_id = _add(app, ours.tenant_id, "meet.acme.example", status="verified")
    assert make_client("meet.acme.example").get("/robots.txt").status_code == 200
    admin = signed_in(ours.admin_email)

    response = admin.post_form(f"/settings/domains/{domain_id}/remove")

    assert response.status_code == 200
    assert "meet.acme.example" not in response.get_data(as_text=True)
    assert make_client("meet.acme.example").get("/robots.txt").status_code == 404


def test_robots_txt_is_edited_and_served_per_domain(app, world, signed_in, make_client):
    ours, theirs = world
    our_domain = _add(app, ours.tenant_id, "meet.acme.example", status="verified")
    their_domain = _add(app, theirs.tenant_id, "meet.globex.example", status="verified")

    signed_in(ours.admin_email).post_form(
        f"/settings/domains/{our_domain}/robots", {"robots_txt": "User-agent: *\nDisallow: /acme"}
    )
    signed_in(theirs.admin_email).post_form(f"/settings/domains/{their_domain}/robots/keep-pages-out")

    assert make_client("meet.acme.example").get("/robots.txt").get_data(as_text=True) == (
        "User-agent: *\nDisallow: /acme\n"
    )
    assert make_client("MEET.globex.example:8443").get("/robots.txt").get_data(as_text=True) == (
        "User-agent: *\nDisallow: /meetings*\n"
    )


def test_a_too_long_robots_txt_is_refused_and_keeps_the_old_one(app, world, signed_in):
    ours, _theirs = world
    domain_id = _add(app, ours.tenant_id, "meet.acme.example", status="verified")
    admin = signed_in(ours.admin_email)
    admin.post_form(f"/settings/domains/{domain_id}/robots", {"robots_txt": "User-agent: *\nDisallow: /a"})

    response = admin.post_form(f"/settings/domains/{domain_id}/robots", {"robots_txt": "x" * 20_001})

    assert response.status_code == 422
    assert error_fields(response) == {"robots_txt"}
    assert _domains_of(app, ours.tenant_id)[0].robots_txt == "User-agent: *\nDisallow: /a\n"
