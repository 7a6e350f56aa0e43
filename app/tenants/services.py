"""Tenants, accounts and invitations. Services flush; the view or job that called them commits."""

import hashlib
import re
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from blinker import Namespace
from werkzeug.security import check_password_hash, generate_password_hash

from app.db import utcnow
from app.errors import EmailTaken, NotAllowed
from app.extensions import db
from app.tenants.models import SEATS, Domain, Invitation, Tenant, User

_signals = Namespace()
# Sent as ``seat_changed.send(user, previous=<old seat>)`` inside the transaction that changed the seat, so
# the features built on tenants (task sync, C6) react at once without tenants importing them.
seat_changed = _signals.signal("seat-changed")

# Words that can never be a rep's page slug: they are, or may become, paths of their own.
RESERVED_SLUGS = frozenset(
    {
        "admin",
        "api",
        "app",
        "assets",
        "book",
        "booking",
        "cancel",
        "embed",
        "help",
        "login",
        "logout",
        "meetings",
        "new",
        "reschedule",
        "robots",
        "settings",
        "signup",
        "slots",
        "static",
        "support",
        "www",
    }
)
# A hash to check against when the email is unknown, so a login takes as long either way.
_UNKNOWN_USER_HASH = generate_password_hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    token: str  # shown once, in the link; only its hash is stored


def normalise_email(email: str) -> str:
    return email.strip().lower()


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def email_in_use(email: str) -> bool:
    return db.session.scalar(sa.select(sa.exists().where(User.email == normalise_email(email))))


def create_tenant(*, company: str, name: str, email: str, password: str, time_zone: str, locale: str) -> User:
    """Sign up: a new tenant with its first user, an admin."""
    if email_in_use(email):
        raise EmailTaken(email)
    tenant = Tenant(name=company.strip())
    db.session.add(tenant)
    return _add_user(
        tenant,
        name=name,
        email=email,
        password=password,
        role="admin",
        seat="none",
        time_zone=time_zone,
        locale=locale,
    )


def _add_user(
    tenant: Tenant, *, name: str, email: str, password: str, role: str, seat: str, time_zone: str, locale: str
) -> User:
    user = User(
        tenant=tenant,
        name=name.strip(),
        email=normalise_email(email),
        password_hash=generate_password_hash(password),
        role=role,
        seat=seat,
        time_zone=time_zone,
        locale=locale,
        page_slug=free_page_slug(name),
    )
    db.session.add(user)
    db.session.flush()
    return user


def slugify(text: str) -> str:
    # NFKD splits most accents off; Polish ł has no decomposition, so it is mapped by hand.
    text = text.replace("ł", "l").replace("Ł", "L")
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower())[:48].strip("-")  # cut first: no trailing "-"


def free_page_slug(name: str) -> str:
    """A page slug from the user's name that no one else holds and no route reserves."""
    base = slugify(name) or "rep"
    if base in RESERVED_SLUGS:
        base = f"{base}-1"
    candidate, n = base, 1
    while _slug_held(candidate):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


# A rep's old slugs keep redirecting to them (P2), so a new user must not get one: old links in emails would
# open someone else's page, maybe in another tenant. The aliases live with the pages (app/pages/models.py),
# which build on this module, so the table is named here rather than imported.
_USER_SLUG_ALIASES = sa.table("slug_aliases", sa.column("slug"), sa.column("page_id"))


def _slug_held(slug: str) -> bool:
    held_now = sa.exists().where(User.page_slug == slug)
    held_before = (
        sa.exists().where(_USER_SLUG_ALIASES.c.slug == slug).where(_USER_SLUG_ALIASES.c.page_id.is_(None))
    )
    return bool(db.session.scalar(sa.select(sa.or_(held_now, held_before))))


def authenticate(email: str, password: str) -> User | None:
    user = get_user_for_email(email)
    if user is None:
        check_password_hash(_UNKNOWN_USER_HASH, password)
        return None
    if not user.is_active or not check_password_hash(user.password_hash, password):
        return None
    return user


def get_user_for_session(user_id: str) -> User | None:
    """Flask-Login's loader: the session's own identity, so the only lookup not scoped by tenant."""
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.is_active else None


def get_user_for_email(email: str) -> User | None:
    """Sign-in and seeding look a user up by email, which is unique across tenants."""
    return db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def get_user(tenant: Tenant, user_id: int) -> User | None:
    return db.session.scalar(sa.select(User).where(User.tenant_id == tenant.id, User.id == user_id))


def list_users(tenant: Tenant) -> list[User]:
    return list(db.session.scalars(sa.select(User).where(User.tenant_id == tenant.id).order_by(User.name)))


def _require_admin(actor: User) -> None:
    if not actor.is_admin:
        raise NotAllowed()


def set_seat(tenant: Tenant, actor: User, user: User, seat: str) -> User:
    _require_admin(actor)
    if user.tenant_id != tenant.id or seat not in SEATS:
        raise NotAllowed()
    previous, user.seat = user.seat, seat
    db.session.flush()
    if previous != seat:
        seat_changed.send(user, previous=previous)
    return user


def update_profile(user: User, *, name: str, time_zone: str, locale: str) -> User:
    user.name, user.time_zone, user.locale = name.strip(), time_zone, locale
    db.session.flush()
    return user


def invite(tenant: Tenant, actor: User, *, email: str, role: str, seat: str, days: int) -> IssuedInvitation:
    """Issue an invitation link for ``email``; an earlier pending one for the same email is replaced."""
    _require_admin(actor)
    email = normalise_email(email)
    if email_in_use(email):
        raise EmailTaken(email)
    for old in db.session.scalars(
        sa.select(Invitation).where(
            Invitation.tenant_id == tenant.id, Invitation.email == email, Invitation.accepted_at.is_(None)
        )
    ):
        db.session.delete(old)
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        tenant=tenant,
        email=email,
        role=role,
        seat=seat,
        invited_by=actor,
        token_hash=_hash_token(token),
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(invitation)
    db.session.flush()
    return IssuedInvitation(invitation, token)


def renew_invitation(tenant: Tenant, actor: User, invitation: Invitation, *, days: int) -> IssuedInvitation:
    """A fresh link (and expiry) for a pending invitation; the old link stops working."""
    _require_admin(actor)
    token = secrets.token_urlsafe(32)
    invitation.token_hash = _hash_token(token)
    invitation.expires_at = utcnow() + timedelta(days=days)
    db.session.flush()
    return IssuedInvitation(invitation, token)


def revoke_invitation(tenant: Tenant, actor: User, invitation: Invitation) -> None:
    _require_admin(actor)
    db.session.delete(invitation)
    db.session.flush()


def get_invitation(tenant: Tenant, invitation_id: int) -> Invitation | None:
    return db.session.scalar(
        sa.select(Invitation).where(
            Invitation.tenant_id == tenant.id,
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
        )
    )


def list_pending_invitations(tenant: Tenant) -> list[Invitation]:
    return list(
        db.session.scalars(
            sa.select(Invitation)
            .where(Invitation.tenant_id == tenant.id, Invitation.accepted_at.is_(None))
            .order_by(Invitation.created_at.desc())
        )
    )


def invitation_for_token(token: str) -> Invitation | None:
    """The pending, unexpired invitation a link's token opens, if any. The token is the tenant scope."""
    invitation = db.session.scalar(sa.select(Invitation).where(Invitation.token_hash == _hash_token(token)))
    if invitation is None or invitation.accepted_at is not None or invitation.expires_at <= utcnow():
        return None
    return invitation


def accept_invitation(
    invitation: Invitation, *, name: str, password: str, time_zone: str, locale: str
) -> User:
    if email_in_use(invitation.email):
        raise EmailTaken(invitation.email)
    user = _add_user(
        invitation.tenant,
        name=name,
        email=invitation.email,
        password=password,
        role=invitation.role,
        seat=invitation.seat,
        time_zone=time_zone,
        locale=locale,
    )
    invitation.accepted_at = utcnow()
    db.session.flush()
    return user


def get_verified_domain(hostname: str) -> Domain | None:
    """The verified domain for a normalised host name (one tenant at most holds a name verified)."""
    return db.session.scalar(
        sa.select(Domain).where(Domain.hostname == hostname, Domain.status == "verified")
    )


def get_removed_domain(hostname: str) -> Domain | None:
    """The domain last removed under this name, whose old page links still redirect (D3)."""
    return db.session.scalar(
        sa.select(Domain)
        .where(Domain.hostname == hostname, Domain.status == "removed")
        .order_by(Domain.removed_at.desc().nulls_last(), Domain.id.desc())
        .limit(1)
    )
