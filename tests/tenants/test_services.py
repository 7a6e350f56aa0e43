"""The tenants services on their own: tenant-scoped getters, accounts, slugs, invitations, seats."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from werkzeug.security import check_password_hash

from app.db import utcnow
from app.extensions import db
from app.tenants import services
from app.tenants.models import Invitation, Tenant, User
from tests import factories

pytestmark = pytest.mark.usefixtures("app_ctx")


@pytest.fixture
def two():
    """Two tenants, each with an admin, a rep and a pending invitation (ORM objects, in app_ctx)."""
    tenants = []
    for name in ("Acme", "Globex"):
        tenant = factories.make_tenant(name)
        admin = factories.make_user(tenant, role="admin")
        rep = factories.make_user(tenant, seat="sales")
        issued = services.invite(
            tenant, admin, email=f"new@{name.lower()}.example.com", role="rep", seat="none", days=7
        )
        tenants.append((tenant, admin, rep, issued))
    return tenants


def _count(model) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model))


# --- Getters are scoped by tenant --------------------------------------------------------------------------


def test_get_user_returns_none_for_another_tenants_user(two):
    (acme, _, acme_rep, _), (globex, _, globex_rep, _) = two
    assert services.get_user(acme, acme_rep.id) is acme_rep
    assert services.get_user(acme, globex_rep.id) is None
    assert services.get_user(globex, acme_rep.id) is None


def test_get_invitation_returns_none_for_another_tenants_invitation(two):
    (acme, _, _, acme_issued), (globex, _, _, globex_issued) = two
    assert services.get_invitation(acme, acme_issued.invitation.id) is acme_issued.invitation
    assert services.get_invitation(acme, globex_issued.invitation.id) is None
    assert services.get_invitation(globex, acme_issued.invitation.id) is None


def test_get_invitation_returns_none_once_accepted(two):
    (acme, _, _, issued), _ = two
    services.accept_invitation(
        issued.invitation, name="Jo", password="long enough pw", time_zone="UTC", locale="en"
    )
    assert services.get_invitation(acme, issued.invitation.id) is None


def test_list_users_and_pending_invitations_are_per_tenant(two):
    (acme, acme_admin, acme_rep, acme_issued), (globex, *_) = two
    assert set(services.list_users(acme)) == {acme_admin, acme_rep}
    assert services.list_pending_invitations(acme) == [acme_issued.invitation]
    assert acme_rep not in services.list_users(globex)


def test_user_for_session_is_the_user_while_the_session_stands_and_the_user_is_active(two):
    (_, _, rep, _), (_, _, other, _) = two
    token = services.start_session(rep, days=14)
    assert services.get_user_for_session(str(rep.id), token) is rep
    assert services.get_user_for_session(str(other.id), token) is None  # the session is rep's
    assert services.get_user_for_session(str(rep.id), None) is None
    assert services.get_user_for_session(str(rep.id), "forged") is None
    assert services.get_user_for_session("not-a-number", token) is None
    assert services.get_user_for_session("999999999", token) is None
    rep.is_active = False
    assert services.get_user_for_session(str(rep.id), token) is None
    rep.is_active = True
    services.end_session(token)
    assert services.get_user_for_session(str(rep.id), token) is None


# --- Sign-up and sign-in -----------------------------------------------------------------------------------


def test_create_tenant_makes_an_admin_with_a_normalised_email():
    user = services.create_tenant(
        company="  Nowa Firma ",
        name=" Łukasz Żółć ",
        email="  Lukasz@NOWA.pl ",
        password="long enough pw",
        time_zone="Europe/Warsaw",
        locale="pl",
    )

    assert (user.email, user.name, user.role, user.seat, user.page_slug) == (
        "lukasz@nowa.pl",
        "Łukasz Żółć",
        "admin",
        "none",
        "lukasz-zolc",
    )
    assert user.tenant.name == "Nowa Firma"
    assert user.password_hash != "long enough pw"
    assert check_password_hash(user.password_hash, "long enough pw")


def test_create_tenant_refuses_a_used_email_in_any_case_and_writes_nothing(two):
    (_, _, rep, _), _ = two
    tenants, users = _count(Tenant), _count(User)

    with pytest.raises(services.EmailTaken) as raised:
        services.create_tenant(
            company="Copycat",
            name="Cat",
            email=rep.email.upper(),
            password="long enough pw",
            time_zone="UTC",
            locale="en",
        )

    assert raised.value.field == "email"
    assert (_count(Tenant), _count(User)) == (tenants, users)


def test_authenticate(two):
    (_, _, rep, _), _ = two
    assert services.authenticate(rep.email, factories.PASSWORD) is rep
    assert services.authenticate(f"  {rep.email.upper()} ", factories.PASSWORD) is rep
    assert services.authenticate(rep.email, "wrong horse battery") is None
    assert services.authenticate("nobody@example.com", factories.PASSWORD) is None
    rep.is_active = False
    assert services.authenticate(rep.email, factories.PASSWORD) is None


# --- Slugs -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Łukasz Żółć", "lukasz-zolc"),
        ("ŁÓDŹ", "lodz"),
        ("Gęślą jaźń", "gesla-jazn"),
        ("  Anna   Maria  ", "anna-maria"),
        ("O'Brien & Sons!", "o-brien-sons"),
        ("Jürgen Müller", "jurgen-muller"),
        ("!!!", ""),
        ("", ""),
    ],
)
def test_slugify(text, slug):
    assert services.slugify(text) == slug


def test_slugify_keeps_slugs_short_and_without_a_trailing_hyphen():
    slug = services.slugify("a" * 47 + " " + "b" * 10)
    assert slug == "a" * 47
    assert len(services.slugify("x" * 100)) == 48


# Listed here, not read from RESERVED_SLUGS, so that dropping a word from it fails a test.
ROUTE_WORDS = [
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
]


@pytest.mark.parametrize("word", ROUTE_WORDS)
def test_free_page_slug_never_hands_out_a_reserved_word(word):
    slug = services.free_page_slug(word.upper())
    assert slug not in ROUTE_WORDS
    assert slug.startswith(word)


def _take_slug(slug: str) -> None:
    user = factories.make_user(factories.make_tenant())
    user.page_slug = slug
    db.session.flush()


def test_free_page_slug_avoids_taken_slugs_in_any_tenant():
    assert services.free_page_slug("Jan Kowalski") == "jan-kowalski"
    _take_slug("jan-kowalski")
    assert services.free_page_slug("Jan Kowalski") == "jan-kowalski-2"
    _take_slug("jan-kowalski-2")
    assert services.free_page_slug("Jan Kowalski") == "jan-kowalski-3"


def test_free_page_slug_never_hands_out_a_slug_that_still_redirects_to_its_old_owner():
    from app.pages import services as pages

    rep = factories.make_user(factories.make_tenant(), name="Jan Kowalski")
    rep.page_slug = "jan-kowalski"
    pages.change_user_slug(rep, "jan-k")

    # Another company's new rep of the same name: old links to /meetings/jan-kowalski stay Jan's.
    assert services.free_page_slug("Jan Kowalski") == "jan-kowalski-2"
    assert pages.resolve_path("jan-kowalski", None).owner == rep


def test_free_page_slug_of_a_reserved_word_also_avoids_collisions():
    _take_slug("admin-1")
    slug = services.free_page_slug("Admin")
    assert slug not in services.RESERVED_SLUGS
    assert slug != "admin-1"
    assert slug.startswith("admin")


def test_free_page_slug_falls_back_to_rep_for_names_without_letters():
    assert services.free_page_slug("李雷") == "rep"
    _take_slug("rep")
    assert services.free_page_slug("!!!") == "rep-2"


def test_users_get_their_slug_when_signing_up():
    first = services.create_tenant(
        company="A",
        name="Jan Kowalski",
        email="jan1@example.com",
        password="long enough pw",
        time_zone="UTC",
        locale="en",
    )
    second = services.create_tenant(
        company="B",
        name="Jan Kowalski",
        email="jan2@example.com",
        password="long enough pw",
        time_zone="UTC",
        locale="en",
    )
    assert (first.page_slug, second.page_slug) == ("jan-kowalski", "jan-kowalski-2")


# --- Invitations -------------------------------------------------------------------------------------------


def test_invite_stores_only_the_tokens_hash():
    tenant = factories.make_tenant()
    admin = factories.make_user(tenant, role="admin")

    issued = services.invite(
        tenant, admin, email=" Someone@Example.com", role="admin", seat="service", days=3
    )

    invitation = issued.invitation
    assert (invitation.email, invitation.role, invitation.seat, invitation.invited_by) == (
        "someone@example.com",
        "admin",
        "service",
        admin,
    )
    assert issued.token not in invitation.token_hash
    assert len(issued.token) >= 32
    assert services.invitation_for_token(issued.token) is invitation
    assert utcnow() + timedelta(days=2) < invitation.expires_at <= utcnow() + timedelta(days=3)


def test_invite_replaces_a_pending_invitation_for_the_same_email():
    tenant = factories.make_tenant()
    admin = factories.make_user(tenant, role="admin")
    first = services.invite(tenant, admin, email="x@example.com", role="rep", seat="none", days=7)

    second = services.invite(tenant, admin, email="X@example.com", role="rep", seat="sales", days=7)

    assert services.invitation_for_token(first.token) is None
    assert services.invitation_for_token(second.token) is second.invitation
    assert services.list_pending_invitations(tenant) == [second.invitation]


def test_invite_refuses_an_email_with_an_account_and_a_rep_actor(two):
    (acme, admin, rep, _), (_, _, globex_rep, _) = two
    with pytest.raises(services.EmailTaken):
        services.invite(acme, admin, email=globex_rep.email, role="rep", seat="none", days=7)
    with pytest.raises(services.NotAllowed):
        services.invite(acme, rep, email="fresh@example.com", role="admin", seat="none", days=7)


def test_invitation_for_token_refuses_expired_used_and_unknown_tokens(two):
    (acme, admin, _, issued), _ = two
    expired = services.invite(acme, admin, email="late@example.com", role="rep", seat="none", days=7)
    expired.invitation.expires_at = utcnow() - timedelta(seconds=1)
    services.accept_invitation(
        issued.invitation, name="Jo", password="long enough pw", time_zone="UTC", locale="en"
    )

    assert services.invitation_for_token(expired.token) is None
    assert services.invitation_for_token(issued.token) is None
    assert services.invitation_for_token("never-issued") is None


def test_renew_invalidates_the_old_token(two):
    (acme, admin, _, issued), _ = two
    old_hash = issued.invitation.token_hash

    renewed = services.renew_invitation(acme, admin, issued.invitation, days=7)

    assert renewed.invitation is issued.invitation
    assert renewed.invitation.token_hash != old_hash
    assert services.invitation_for_token(issued.token) is None
    assert services.invitation_for_token(renewed.token) is issued.invitation


def test_accept_invitation_creates_the_user_in_the_inviting_tenant(two):
    (acme, admin, _, _), _ = two
    issued = services.invite(acme, admin, email="joiner@example.com", role="admin", seat="service", days=7)

    user = services.accept_invitation(
        issued.invitation, name="Jo Joiner", password="long enough pw", time_zone="Asia/Tokyo", locale="pl"
    )

    assert (user.tenant, user.email, user.role, user.seat, user.time_zone, user.locale) == (
        acme,
        "joiner@example.com",
        "admin",
        "service",
        "Asia/Tokyo",
        "pl",
    )
    assert issued.invitation.accepted_at is not None


def test_accept_invitation_refuses_when_the_email_got_an_account_meanwhile(two):
    (acme, admin, _, _), (globex, *_) = two
    issued = services.invite(acme, admin, email="race@example.com", role="rep", seat="none", days=7)
    factories.make_user(globex, email="race@example.com")

    with pytest.raises(services.EmailTaken):
        services.accept_invitation(
            issued.invitation, name="Jo", password="long enough pw", time_zone="UTC", locale="en"
        )

    assert issued.invitation.accepted_at is None


def test_revoke_invitation_deletes_it(two):
    (acme, admin, _, issued), _ = two
    invitation_id = issued.invitation.id

    services.revoke_invitation(acme, admin, issued.invitation)

    assert db.session.get(Invitation, invitation_id) is None
    assert services.invitation_for_token(issued.token) is None


def test_only_an_admin_may_renew_or_revoke(two):
    (acme, _, rep, issued), _ = two
    with pytest.raises(services.NotAllowed):
        services.renew_invitation(acme, rep, issued.invitation, days=7)
    with pytest.raises(services.NotAllowed):
        services.revoke_invitation(acme, rep, issued.invitation)


# --- Seats and profile -------------------------------------------------------------------------------------


def test_set_seat(two):
    (acme, admin, rep, _), _ = two
    services.set_seat(acme, admin, rep, "service")
    assert rep.seat == "service"


@pytest.mark.parametrize("case", ["rep-actor", "other-tenants-user", "unknown-seat"])
def test_set_seat_refuses(two, case):
    (acme, admin, rep, _), (_, _, globex_rep, _) = two
    actor, user, seat = {
        "rep-actor": (rep, rep, "service"),
        "other-tenants-user": (admin, globex_rep, "service"),
        "unknown-seat": (admin, rep, "platinum"),
    }[case]
    before = user.seat

    with pytest.raises(services.NotAllowed):
        services.set_seat(acme, actor, user, seat)

    assert user.seat == before


def test_update_profile_strips_the_name(two):
    (_, _, rep, _), _ = two
    services.update_profile(rep, name="  Renata  ", time_zone="Asia/Tokyo", locale="pl")
    assert (rep.name, rep.time_zone, rep.locale) == ("Renata", "Asia/Tokyo", "pl")


def test_verified_domain_lookup_ignores_pending_domains():
    tenant = factories.make_tenant()
    verified = factories.make_domain(tenant, "book.example.com")
    factories.make_domain(tenant, "pending.example.com", status="pending")
    assert services.get_verified_domain("book.example.com") is verified
    assert services.get_verified_domain("pending.example.com") is None
