"""The domain manager: add, verify, re-check, remove a tenant's domains, and edit their robots.txt.

Rules kept here:

* **Names.** A domain is stored as its ASCII (IDNA 2008 with UTS 46 mapping) lower-case form without a
  trailing dot: ``Łódź.Example`` is ``xn--d-uga0v4h.example``. Apex and subdomains are both fine; IP
  addresses, single labels, ports, schemes and paths are refused, and so is the app host and anything
  under it.
* **Ownership** is a TXT record at ``_termin-challenge.<domain>`` holding the domain's token. Several
  tenants may claim a name while it is pending; the first to prove it holds it, and a name verified by one
  tenant cannot be added by another (a partial unique index keeps it so under races too).
* **Re-checks.** A job re-reads the record of every domain, pending ones often and verified ones twice a
  day. A verified domain whose record disappears stays verified for ``DOMAIN_GRACE_HOURS`` (a DNS hiccup
  must not take pages down), then fails. A lookup that gets no answer (a timeout) changes no status.
* **Removal** keeps the row as "removed": its host then serves only redirects from old page and booking
  links to where they live now (D3), and 404 for everything else.
* Reasons are stored as ``code`` or ``code|detail`` and worded (translated) when shown.
"""

import ipaddress
import re
import secrets
from datetime import datetime, timedelta

import idna
import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from app.domains import dns
from app.errors import DomainError
from app.extensions import db
from app.tenants.models import Domain, Tenant, User

MAX_HOSTNAME = 253
MAX_ROBOTS = 20_000
PAGES_DISALLOW = "Disallow: /meetings*"
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # controls, replaced in what a TXT record is shown as
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
# Defaults of the settings this module reads (docs/operations.md documents them; config.py does not set them).
DEFAULTS = {
    "DOMAIN_RECHECK_SECONDS": 12 * 3600,
    "DOMAIN_PENDING_RECHECK_SECONDS": 600,
    "DOMAIN_GRACE_HOURS": 72,
}


def _setting(name: str) -> int:
    # 0 is a real value here (a grace period of none), so only a missing setting takes the default.
    value = current_app.config.get(name)
    return int(DEFAULTS[name] if value is None or value == "" else value)


# --- Names --------------------------------------------------------------------------------------------------


def normalise_hostname(raw: str) -> str:
    """The one stored spelling of a domain an admin typed, or ``DomainError`` saying what is wrong."""
    text = (raw or "").strip()
    if not text:
        raise DomainError("domain_required")
    if "://" in text or any(c in text for c in "/?#@:") or any(c.isspace() for c in text):
        raise DomainError("domain_not_a_name")
    text = text.rstrip(".")
    try:
        ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        raise DomainError("domain_ip_address")
    if len(text) > MAX_HOSTNAME:
        raise DomainError("domain_too_long", limit=MAX_HOSTNAME)
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError):
        raise DomainError("domain_invalid") from None
    if len(ascii_name) > MAX_HOSTNAME:
        raise DomainError("domain_too_long", limit=MAX_HOSTNAME)
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise DomainError("domain_single_label")
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        raise DomainError("domain_invalid")
    app_host = current_app.config["APP_HOST"]
    if ascii_name == app_host or ascii_name.endswith("." + app_host):
        raise DomainError("domain_app_host")
    return ascii_name


def display_name(domain: Domain) -> str:
    """The domain as people read it (Unicode), for an IDNA name; the stored ASCII form otherwise."""
    try:
        return idna.decode(domain.hostname)
    except (idna.IDNAError, UnicodeError):
        return domain.hostname


# --- Reading ------------------------------------------------------------------------------------------------


def list_domains(tenant: Tenant) -> list[Domain]:
    return list(
        db.session.scalars(
            sa.select(Domain)
            .where(Domain.tenant_id == tenant.id, Domain.status != "removed")
            .order_by(Domain.hostname)
        )
    )


def get_domain(tenant: Tenant, domain_id: int) -> Domain | None:
    return db.session.scalar(
        sa.select(Domain).where(
            Domain.tenant_id == tenant.id, Domain.id == domain_id, Domain.status != "removed"
        )
    )


def verified_domains(tenant: Tenant) -> list[Domain]:
    return [domain for domain in list_domains(tenant) if domain.is_verified]


def _verified_elsewhere(hostname: str, tenant_id: int) -> bool:
    return bool(
        db.session.scalar(
            sa.select(
                sa.exists().where(
                    Domain.hostname == hostname, Domain.status == "verified", Domain.tenant_id != tenant_id
                )
            )
        )
    )


def _require_admin(tenant: Tenant, actor: User) -> None:
    if not actor.is_admin or actor.tenant_id != tenant.id:
        raise DomainError("domain_admins_only", field=None)


def pointing_target() -> tuple[str, list[str]]:
    """Where a domain must point: the CNAME target, and A/AAAA addresses for an apex (which cannot CNAME)."""
    config = current_app.config
    target = config.get("DOMAIN_CNAME_TARGET") or config["APP_HOST"]
    addresses = [a.strip() for a in (config.get("DOMAIN_A_ADDRESSES") or "").split(",") if a.strip()]
    return target, addresses


# --- Changing -----------------------------------------------------------------------------------------------


def add_domain(tenant: Tenant, actor: User, raw: str) -> Domain:
    """Claim a domain for the tenant, pending until its TXT record is found."""
    _require_admin(tenant, actor)
    hostname = normalise_hostname(raw)
    if _verified_elsewhere(hostname, tenant.id):
        raise DomainError("domain_taken")
    domain = db.session.scalar(
        sa.select(Domain).where(Domain.tenant_id == tenant.id, Domain.hostname == hostname)
    )
    if domain is not None and domain.status != "removed":
        raise DomainError("domain_already_added")
    if domain is None:
        domain = Domain(tenant_id=tenant.id, hostname=hostname)
        db.session.add(domain)
    # A removed domain added again starts over with a new token: whoever controls DNS now must prove it.
    domain.status = "pending"
    domain.verification_token = f"termin-verify={secrets.token_hex(16)}"
    domain.verified_at = domain.removed_at = domain.failing_since = domain.checked_at = None
    domain.failure_reason = None
    db.session.flush()
    return domain


def remove_domain(tenant: Tenant, actor: User, domain: Domain, now: datetime) -> None:
    """Stop serving the domain; pages on it move to the app host, and their old links redirect there."""
    _require_admin(tenant, actor)
    domain.status = "removed"
    domain.removed_at = now
    db.session.flush()


def verify_domain(domain: Domain, now: datetime) -> Domain:
    """Look the TXT record up now and record what it says (the button, and the periodic re-check)."""
    lookup = dns.lookup_txt(domain.challenge_name)
    domain.checked_at = now
    if lookup.status == "unreachable":
        # Nothing learnt about the record: keep the status, say why nothing changed.
        domain.failure_reason = "unreachable"
    elif domain.verification_token in lookup.values:
        _found(domain, now)
    else:
        found = _CONTROLS.sub("\ufffd", ", ".join(lookup.values))[:300]  # TXT strings may hold any byte
        reason = "missing" if lookup.status == "missing" else "wrong_value|" + found
        _not_found(domain, now, reason)
    db.session.flush()
    return domain


def _found(domain: Domain, now: datetime) -> None:
    if domain.is_verified:
        domain.failing_since, domain.failure_reason = None, None
        return
    if _verified_elsewhere(domain.hostname, domain.tenant_id):
        domain.status, domain.failure_reason = "failed", "taken"
        return
    try:
        with db.session.begin_nested():
            domain.status, domain.verified_at = "verified", now
            domain.failing_since, domain.failure_reason = None, None
            db.session.flush()
    except IntegrityError:  # another tenant verified the same name a moment ago
        domain.status, domain.verified_at, domain.failure_reason = "failed", None, "taken"


def _not_found(domain: Domain, now: datetime, reason: str) -> None:
    domain.failure_reason = reason
    if not domain.is_verified:
        domain.status = "failed"
        return
    domain.failing_since = domain.failing_since or now
    if now - domain.failing_since >= timedelta(hours=_setting("DOMAIN_GRACE_HOURS")):
        domain.status = "failed"


def due_for_check(now: datetime, after: int, limit: int) -> list[int]:
    """Ids of domains whose record should be read again (the sweeper's finder; all tenants)."""
    verified_before = now - timedelta(seconds=_setting("DOMAIN_RECHECK_SECONDS"))
    pending_before = now - timedelta(seconds=_setting("DOMAIN_PENDING_RECHECK_SECONDS"))
    return list(
        db.session.scalars(
            sa.select(Domain.id)
            .where(
                Domain.id > after,
                Domain.status != "removed",
                sa.or_(
                    Domain.checked_at.is_(None),
                    sa.and_(Domain.status == "verified", Domain.checked_at < verified_before),
                    sa.and_(Domain.status != "verified", Domain.checked_at < pending_before),
                ),
            )
            .order_by(Domain.id)
            .limit(limit)
        )
    )


# --- robots.txt (D4) ----------------------------------------------------------------------------------------


def set_robots(tenant: Tenant, actor: User, domain: Domain, text: str) -> Domain:
    """Store the domain's own robots.txt (empty: serve the default)."""
    _require_admin(tenant, actor)
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if len(text) > MAX_ROBOTS:
        raise DomainError("domain_robots_too_long", field="robots_txt", limit=MAX_ROBOTS)
    if "\x00" in text:
        raise DomainError("domain_robots_binary", field="robots_txt")
    text = text.strip()
    domain.robots_txt = text + "\n" if text else None
    db.session.flush()
    return domain


def with_pages_disallowed(text: str | None) -> str:
    """``text`` with ``Disallow: /meetings*`` in its ``User-agent: *`` group (added if missing)."""
    lines = (text or "").strip().splitlines()
    if any(line.strip().lower() == PAGES_DISALLOW.lower() for line in lines):
        return "\n".join(lines) + "\n"
    for index, line in enumerate(lines):
        if re.fullmatch(r"\s*user-agent:\s*\*\s*", line, re.IGNORECASE):
            lines.insert(index + 1, PAGES_DISALLOW)
            return "\n".join(lines) + "\n"
    group = ["User-agent: *", PAGES_DISALLOW]
    return "\n".join([*lines, "", *group] if lines else group) + "\n"


def keep_pages_out_of_search(tenant: Tenant, actor: User, domain: Domain) -> Domain:
    """The one click of D4: scheduling pages out of search engines on this domain."""
    return set_robots(tenant, actor, domain, with_pages_disallowed(domain.robots_txt))
