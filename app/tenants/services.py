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
from app.errors import EmailTaken, NotAllowed, WrongPassword
from app.extensions import db
from app.tenants.models import (
    SEATS,
    Domain,
    Invitation,
    PasswordReset,
    RememberToken,
    SignupRequest,
    Tenant,
    User,
    UserSession,
)

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


def request_signup(
    *, company: str, name: str, email: str, password: str, time_zone: str, locale: str, hours: int
) -> tuple[SignupRequest, str] | None:
    """Sign-up, step one: keep what was typed until the address is confirmed, and return the token to
    mail. Nothing is created and the address is not taken yet. None when the address already has an
    account; the caller answers the same either way, so sign-up tells no one which addresses have one."""
    email = normalise_email(email)
    if email_in_use(email):
        return None
    now = utcnow()
    # The address's earlier requests (their links stop working) and anyone's expired ones go.
    db.session.execute(
        sa.delete(SignupRequest).where(sa.or_(SignupRequest.email == email, SignupRequest.expires_at <= now))
    )
    token = secrets.token_urlsafe(32)
    signup = SignupRequest(
        email=email,
        company=company.strip(),
        name=name.strip(),
        password_hash=generate_password_hash(password),
        time_zone=time_zone,
        locale=locale,
        token_hash=_hash_token(token),
        expires_at=now + timedelta(hours=hours),
    )
    db.session.add(signup)
    db.session.flush()
    return signup, token


def signup_for_token(token: str) -> SignupRequest | None:
    """The unexpired sign-up a confirmation link opens (global by the token, like an invitation)."""
    if not token or len(token) > 100:
        return None
    signup = db.session.scalar(sa.select(SignupRequest).where(SignupRequest.token_hash == _hash_token(token)))
    if signup is None or signup.expires_at <= utcnow():
        return None
    return signup


def confirm_signup(signup: SignupRequest) -> User:
    """Sign-up, step two (the address proved): the tenant and its admin. ``EmailTaken`` when the address got
    an account meanwhile (an invitation accepted); the request is spent either way."""
    email = signup.email
    db.session.execute(sa.delete(SignupRequest).where(SignupRequest.email == email))
    if email_in_use(email):
        db.session.flush()
        raise EmailTaken(email)
    tenant = Tenant(name=signup.company)
    db.session.add(tenant)
    return _add_user(
        tenant,
        name=signup.name,
        email=email,
        password_hash=signup.password_hash,
        role="admin",
        seat="none",
        time_zone=signup.time_zone,
        locale=signup.locale,
    )


def _add_user(
    tenant: Tenant,
    *,
    name: str,
    email: str,
    role: str,
    seat: str,
    time_zone: str,
    locale: str,
    password: str | None = None,
    password_hash: str | None = None,
) -> User:
    user = User(
        tenant=tenant,
        name=name.strip(),
        email=normalise_email(email),
        password_hash=password_hash or generate_password_hash(password),
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


def get_user_for_session(user_id: str, session_token: str | None) -> User | None:
    """Flask-Login's loader: the session's user, only while the session's row is there and unexpired (so
    a session ended server-side is ended, whatever cookie the browser still holds). Global by identity."""
    if not user_id.isdigit() or not session_token:
        return None
    user = db.session.scalar(
        sa.select(User)
        .join(UserSession, UserSession.user_id == User.id)
        .where(
            User.id == int(user_id),
            User.is_active,
            UserSession.token_hash == _hash_token(session_token),
            UserSession.expires_at > utcnow(),
        )
    )
    return user


# --- Sessions, remember-me, passwords (issue 15) -----------------------------------------------------------


def start_session(user: User, *, days: int) -> str:
    """A new signed-in session of ``user``; the returned token goes in the session cookie (its hash here).
    The user's expired sessions are cleared on the way, so rows do not pile up."""
    now = utcnow()
    db.session.execute(
        sa.delete(UserSession).where(UserSession.user_id == user.id, UserSession.expires_at <= now)
    )
    token = secrets.token_urlsafe(32)
    db.session.add(
        UserSession(user_id=user.id, token_hash=_hash_token(token), expires_at=now + timedelta(days=days))
    )
    db.session.flush()
    return token


def end_session(session_token: str | None) -> None:
    """Sign-out: this session's row goes, so its cookie (or any copy of it) no longer signs in."""
    if session_token:
        db.session.execute(sa.delete(UserSession).where(UserSession.token_hash == _hash_token(session_token)))
        db.session.flush()


def end_all_sessions(user: User) -> None:
    """Every session and every remember-me token of the user ends (sign out everywhere, password change)."""
    db.session.execute(sa.delete(UserSession).where(UserSession.user_id == user.id))
    db.session.execute(sa.delete(RememberToken).where(RememberToken.user_id == user.id))
    db.session.flush()


def issue_remember_token(user: User, *, days: int) -> str:
    """A fresh random remember-me token (a new one at every sign-in: nothing derived from the user)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        RememberToken(
            user_id=user.id, token_hash=_hash_token(token), expires_at=utcnow() + timedelta(days=days)
        )
    )
    db.session.flush()
    return token


def use_remember_token(token: str, *, days: int) -> tuple[User, str] | None:
    """Sign in from a remember-me cookie: the token is spent and a new one returned (rotation), so a copy
    taken earlier is worth nothing once the owner's browser has used it. None: unknown or expired."""
    if not token or len(token) > 100:
        return None
    row = db.session.scalar(
        sa.select(RememberToken).where(RememberToken.token_hash == _hash_token(token)).with_for_update()
    )
    if row is None:
        return None
    user = db.session.get(User, row.user_id)
    db.session.delete(row)
    db.session.flush()
    if row.expires_at <= utcnow() or user is None or not user.is_active:
        return None
    return user, issue_remember_token(user, days=days)


def forget_remember_token(token: str | None) -> None:
    if token:
        db.session.execute(sa.delete(RememberToken).where(RememberToken.token_hash == _hash_token(token)))
        db.session.flush()


def set_password(user: User, password: str) -> None:
    """A new password ends every session and remember-me token of the user, and every reset link."""
    user.password_hash = generate_password_hash(password)
    end_all_sessions(user)
    db.session.execute(sa.delete(PasswordReset).where(PasswordReset.user_id == user.id))
    db.session.flush()


def change_password(user: User, *, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current):
        raise WrongPassword()
    set_password(user, new)


def request_password_reset(email: str, *, minutes: int) -> tuple[User, str] | None:
    """A one-use reset token for the account with this email, or None when there is none (the caller
    answers the same either way, so the form tells no one which addresses have accounts)."""
    user = get_user_for_email(email)
    if user is None or not user.is_active:
        return None
    token = secrets.token_urlsafe(32)
    db.session.add(
        PasswordReset(
            user_id=user.id, token_hash=_hash_token(token), expires_at=utcnow() + timedelta(minutes=minutes)
        )
    )
    db.session.flush()
    return user, token


def password_reset_for_token(token: str) -> PasswordReset | None:
    """The unused, unexpired reset a link's token opens (global by the token, like an invitation)."""
    if not token or len(token) > 100:
        return None
    reset = db.session.scalar(sa.select(PasswordReset).where(PasswordReset.token_hash == _hash_token(token)))
    if reset is None or reset.expires_at <= utcnow() or not reset.user.is_active:
        return None
    return reset


def reset_password(reset: PasswordReset, password: str) -> User:
    user = reset.user
    set_password(user, password)  # also deletes this reset: the link works once
    return user


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


def update_profile(user: User, *, name: str, time_zone: str, locale: str, title: str | None = None) -> User:
    user.name, user.time_zone, user.locale = name.strip(), time_zone, locale
    if title is not None:
        user.title = title.strip()
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
