"""Review findings on the domain manager: odd DNS answers, removed and re-added domains, robots.txt."""

from datetime import UTC, datetime

import pytest

from app.domains import services as domains
from app.extensions import db
from tests import factories

NOW = datetime(2030, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def admin(app_ctx):
    tenant = factories.make_tenant()
    return factories.make_user(tenant, role="admin")


@pytest.mark.parametrize("value", ["bad\x00value", "line\r\nbreak", "bell\x07", "termin-verify=\x00"])
def test_a_txt_record_with_control_characters_is_stored_and_shown_safely(admin, fake_dns, value):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, value)

    domains.verify_domain(domain, NOW)
    db.session.flush()  # PostgreSQL refuses NUL in text: this raised before the fix

    assert domain.status == "failed"
    code, _sep, found = domain.failure_reason.partition("|")
    assert code == "wrong_value"
    assert not any(ord(c) < 32 or ord(c) == 127 for c in found)
    assert "\ufffd" in found


def test_a_long_txt_answer_fits_the_reason_column(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, *["x" * 250] * 8)

    domains.verify_domain(domain, NOW)
    db.session.flush()

    assert len(domain.failure_reason) <= 500


def test_a_domain_removed_then_verified_elsewhere_cannot_be_added_back(admin, fake_dns):
    ours = domains.add_domain(admin.tenant, admin, "meet.example.com")
    domains.remove_domain(admin.tenant, admin, ours, NOW)
    other = factories.make_user(factories.make_tenant("Other"), role="admin")
    theirs = domains.add_domain(other.tenant, other, "meet.example.com")
    fake_dns.set_txt(theirs.challenge_name, theirs.verification_token)
    domains.verify_domain(theirs, NOW)
    assert theirs.status == "verified"

    with pytest.raises(domains.DomainError) as refused:
        domains.add_domain(admin.tenant, admin, "Meet.Example.com.")

    assert refused.value.code == "domain_taken"
    assert ours.status == "removed"


def test_a_removed_domain_is_out_of_the_managers_reach(admin):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    domains.remove_domain(admin.tenant, admin, domain, NOW)

    assert domains.get_domain(admin.tenant, domain.id) is None
    assert domains.list_domains(admin.tenant) == []


@pytest.mark.parametrize("action", ["verify", "remove", "robots", "robots/keep-pages-out"])
def test_ids_out_of_range_are_404_in_the_domain_manager(world, signed_in, action):
    ours, _theirs = world

    response = signed_in(ours.admin_email).post_form(f"/settings/domains/{'9' * 20}/{action}")

    assert response.status_code == 404
