"""Domain names, DNS verification against a real DNS server on loopback, re-checks, robots.txt."""

from datetime import UTC, datetime, timedelta

import pytest

from app.domains import services as domains
from app.domains.dns import lookup_txt
from app.extensions import db
from tests import factories

NOW = datetime(2030, 3, 1, 12, tzinfo=UTC)


@pytest.fixture
def admin(app_ctx):
    tenant = factories.make_tenant()
    return factories.make_user(tenant, role="admin")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("meet.example.com", "meet.example.com"),
        ("  Meet.EXAMPLE.com. ", "meet.example.com"),
        ("example.com", "example.com"),
        ("spotkania.łódź.pl", "spotkania.xn--d-uga0v4h.pl"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
    ],
)
def test_names_are_stored_lower_case_ascii(app_ctx, raw, expected):
    assert domains.normalise_hostname(raw) == expected


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("", "domain_required"),
        ("exa mple.com", "domain_not_a_name"),
        ("http://x.com/path", "domain_not_a_name"),
        ("x.com/path", "domain_not_a_name"),
        ("meet.example.com:8443", "domain_not_a_name"),
        ("192.0.2.10", "domain_ip_address"),
        ("2001:db8::1", "domain_not_a_name"),
        ("a" * 300 + ".com", "domain_too_long"),
        ("localhost", "domain_single_label"),
        ("-bad-.example.com", "domain_invalid"),
        ("under_score.example.com", "domain_invalid"),
        ("example.123", "domain_invalid"),
        ("app.termin.test", "domain_app_host"),
        ("x.app.termin.test", "domain_app_host"),
    ],
)
def test_bad_names_say_what_is_wrong(app_ctx, raw, code):
    with pytest.raises(domains.DomainError) as refused:
        domains.normalise_hostname(raw)

    assert refused.value.code == code


def test_the_txt_lookup_asks_the_configured_server(app_ctx, fake_dns):
    fake_dns.set_txt("_termin-challenge.meet.example.com", "one", "two")

    found = lookup_txt("_termin-challenge.meet.example.com")

    assert found.status == "found"
    assert found.values == ("one", "two")
    assert fake_dns.resolver.queries == ["_termin-challenge.meet.example.com"]


def test_verification_finds_the_token(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "Meet.Example.com")
    fake_dns.set_txt(domain.challenge_name, "v=spf1 -all", domain.verification_token)

    domains.verify_domain(domain, NOW)

    assert domain.status == "verified"
    assert domain.verified_at == NOW
    assert domain.failure_reason is None


def test_a_wrong_token_fails_with_what_was_found(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, "termin-verify=someone-elses")

    domains.verify_domain(domain, NOW)

    assert domain.status == "failed"
    assert domain.failure_reason == "wrong_value|termin-verify=someone-elses"


def test_no_record_fails(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")

    domains.verify_domain(domain, NOW)

    assert domain.status == "failed"
    assert domain.failure_reason == "missing"


def test_a_dns_timeout_changes_no_status(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.go_silent(domain.challenge_name)

    domains.verify_domain(domain, NOW)

    assert domain.status == "pending"
    assert domain.failure_reason == "unreachable"
    assert domain.checked_at == NOW


def test_a_verified_domain_survives_a_short_outage_then_fails(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, domain.verification_token)
    domains.verify_domain(domain, NOW)
    fake_dns.remove(domain.challenge_name)

    domains.verify_domain(domain, NOW + timedelta(hours=1))
    assert domain.status == "verified"
    assert domain.failing_since == NOW + timedelta(hours=1)

    domains.verify_domain(domain, NOW + timedelta(hours=80))
    assert domain.status == "failed"


def test_a_record_back_within_the_grace_period_clears_the_warning(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, domain.verification_token)
    domains.verify_domain(domain, NOW)
    fake_dns.remove(domain.challenge_name)
    domains.verify_domain(domain, NOW + timedelta(hours=1))
    fake_dns.set_txt(domain.challenge_name, domain.verification_token)

    domains.verify_domain(domain, NOW + timedelta(hours=2))

    assert domain.status == "verified"
    assert domain.failing_since is None


def test_a_grace_period_of_zero_fails_a_domain_as_soon_as_its_record_is_gone(
    app, admin, fake_dns, monkeypatch
):
    monkeypatch.setitem(app.config, "DOMAIN_GRACE_HOURS", 0)
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, domain.verification_token)
    domains.verify_domain(domain, NOW)
    fake_dns.remove(domain.challenge_name)

    domains.verify_domain(domain, NOW + timedelta(minutes=1))

    assert domain.status == "failed"


def test_a_domain_verified_by_another_tenant_cannot_be_added(admin, fake_dns):
    other_admin = factories.make_user(factories.make_tenant(), role="admin")
    theirs = domains.add_domain(other_admin.tenant, other_admin, "meet.example.com")
    fake_dns.set_txt(theirs.challenge_name, theirs.verification_token)
    domains.verify_domain(theirs, NOW)

    with pytest.raises(domains.DomainError) as refused:
        domains.add_domain(admin.tenant, admin, "MEET.example.com")

    assert refused.value.code == "domain_taken"


def test_two_pending_claims_the_first_to_prove_it_wins(admin, fake_dns):
    other_admin = factories.make_user(factories.make_tenant(), role="admin")
    ours = domains.add_domain(admin.tenant, admin, "meet.example.com")
    theirs = domains.add_domain(other_admin.tenant, other_admin, "meet.example.com")
    fake_dns.set_txt(ours.challenge_name, ours.verification_token, theirs.verification_token)

    domains.verify_domain(theirs, NOW)
    domains.verify_domain(ours, NOW)

    assert theirs.status == "verified"
    assert ours.status == "failed"
    assert ours.failure_reason == "taken"


def test_adding_twice_is_refused_and_removed_domains_come_back_with_a_new_token(admin, fake_dns):
    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    with pytest.raises(domains.DomainError) as refused:
        domains.add_domain(admin.tenant, admin, "meet.example.com")
    assert refused.value.code == "domain_already_added"
    old_token = domain.verification_token

    domains.remove_domain(admin.tenant, admin, domain, NOW)
    again = domains.add_domain(admin.tenant, admin, "meet.example.com")

    assert again.id == domain.id
    assert again.status == "pending"
    assert again.verification_token != old_token


def test_reps_cannot_manage_domains(admin):
    rep = factories.make_user(admin.tenant)

    with pytest.raises(domains.DomainError) as refused:
        domains.add_domain(admin.tenant, rep, "meet.example.com")

    assert refused.value.code == "domain_admins_only"


def test_due_for_check_takes_pending_often_and_verified_twice_a_day(admin):
    pending = factories.make_domain(admin.tenant, status="pending")
    verified = factories.make_domain(admin.tenant, status="verified")
    removed = factories.make_domain(admin.tenant, status="removed")
    pending.checked_at = verified.checked_at = removed.checked_at = NOW
    db.session.flush()

    assert set(domains.due_for_check(NOW + timedelta(minutes=11), 0, 100)) >= {pending.id}
    assert verified.id not in domains.due_for_check(NOW + timedelta(minutes=11), 0, 100)
    assert verified.id in domains.due_for_check(NOW + timedelta(hours=13), 0, 100)
    assert removed.id not in domains.due_for_check(NOW + timedelta(days=30), 0, 100)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (None, "User-agent: *\nDisallow: /meetings*\n"),
        ("User-agent: *\nDisallow:\n", "User-agent: *\nDisallow: /meetings*\nDisallow:\n"),
        (
            "User-agent: Googlebot\nDisallow: /private\n",
            "User-agent: Googlebot\nDisallow: /private\n\nUser-agent: *\nDisallow: /meetings*\n",
        ),
        ("User-agent: *\nDisallow: /meetings*\n", "User-agent: *\nDisallow: /meetings*\n"),
    ],
)
def test_keeping_pages_out_of_search_adds_one_line(before, after):
    assert domains.with_pages_disallowed(before) == after


def test_robots_text_is_limited_and_normalised(admin):
    domain = factories.make_domain(admin.tenant)

    domains.set_robots(admin.tenant, admin, domain, "User-agent: *\r\nDisallow: /x\r\n\r\n")
    assert domain.robots_txt == "User-agent: *\nDisallow: /x\n"

    with pytest.raises(domains.DomainError) as refused:
        domains.set_robots(admin.tenant, admin, domain, "x" * 20_001)
    assert refused.value.code == "domain_robots_too_long"
    assert domain.robots_txt == "User-agent: *\nDisallow: /x\n"


def test_the_sweeper_rechecks_due_domains(app, admin, fake_dns):
    from app.sweeper import sweep

    domain = domains.add_domain(admin.tenant, admin, "meet.example.com")
    fake_dns.set_txt(domain.challenge_name, domain.verification_token)
    db.session.commit()

    counts = sweep(app, NOW)

    db.session.refresh(domain)
    assert counts["domains"] == 1
    assert domain.status == "verified"
    assert domain.checked_at is not None
