"""Sign-up, sign-in, the team page and invitations over HTTP: who may do what, bad input, happy paths."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlalchemy as sa
import time_machine

from app.db import utcnow
from app.extensions import db
from app.tenants import services
from app.tenants.models import Invitation, SignupRequest, Tenant, User
from tests import factories
from tests.conftest import APP_HOST, Client
from tests.helpers import error_fields, is_fragment, snapshot

INVITATION_LINK = re.compile(r'value="http://app\.termin\.test(/invitations/[^"]+)"')
NEW_PASSWORD = "a long enough password"


def invitation_path(response) -> str:
    [path] = INVITATION_LINK.findall(response.get_data(as_text=True))
    return path


def session_user_id(client: Client) -> str | None:
    with client.http.session_transaction(base_url=f"http://{APP_HOST}") as session:
        return session.get("_user_id")


def set_cookie(response, name: str) -> str:
    [cookie] = [c for c in response.headers.getlist("Set-Cookie") if c.startswith(f"{name}=")]
    return cookie


def _user(app, email: str) -> User | None:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        if user is not None:
            db.session.expunge(user)
        return user


@pytest.fixture
def ids(app, world):
    """Tenant A's ids for every id-taking team route, and its admin's id."""
    ours, _ = world
    admin = _user(app, ours.admin_email)
    return {"rep_id": ours.rep_id, "admin_id": admin.id, "invitation_id": ours.invitation_id}


@pytest.fixture
def pending(app, world):
    """A pending invitation to tenant A whose link (token) the test knows: (invitation id, link path)."""
    ours, _ = world
    with app.app_context():
        tenant = db.session.get(Tenant, ours.tenant_id)
        admin = db.session.scalar(sa.select(User).where(User.email == ours.admin_email))
        issued = services.invite(
            tenant, admin, email="joiner@acme.example.com", role="rep", seat="service", days=1
        )
        db.session.commit()
        return issued.invitation.id, f"/invitations/{issued.token}"


# --- Sign-up -----------------------------------------------------------------------------------------------


def signup_data(**overrides) -> dict:
    return {
        "company": "Nowa Firma",
        "name": "Łukasz Żółć",
        "email": "  Lukasz@Nowa-Firma.PL ",
        "password": NEW_PASSWORD,
        "time_zone": "Europe/Warsaw",
        **overrides,
    }


def confirmation_link(sink, address: str) -> str:
    [mail] = [m for m in sink.messages if address in m["To"]]
    text = mail.get_body(("plain",)).get_content()
    return re.search(r"http://[^\s]+/signup/confirm/[^\s]+", text).group(0).split(APP_HOST, 1)[1]


def test_signup_creates_the_tenant_only_once_the_address_is_confirmed(app, client, sink):
    response = client.post_form("/signup", signup_data(), headers={"Accept-Language": "pl"})

    assert response.status_code == 200
    assert 'id="signup-sent"' in response.get_data(as_text=True)
    assert _user(app, "lukasz@nowa-firma.pl") is None  # nothing exists yet
    assert session_user_id(client) is None
    link = confirmation_link(sink, "lukasz@nowa-firma.pl")
    with app.app_context():
        [pending] = db.session.scalars(sa.select(SignupRequest)).all()
        assert link.rsplit("/", 1)[1] not in pending.token_hash  # only the hash is kept
        assert pending.password_hash != NEW_PASSWORD

    assert client.get(link).status_code == 200  # a GET (a mail scanner) creates nothing
    assert _user(app, "lukasz@nowa-firma.pl") is None
    confirmed = client.post_form(link)

    assert (confirmed.status_code, confirmed.headers["Location"]) == (303, "/crm/contacts")
    user = _user(app, "lukasz@nowa-firma.pl")
    assert user is not None
    assert (user.role, user.seat, user.name, user.time_zone, user.locale, user.page_slug) == (
        "admin",
        "none",
        "Łukasz Żółć",
        "Europe/Warsaw",
        "pl",
        "lukasz-zolc",
    )
    with app.app_context():
        tenant = db.session.get(Tenant, user.tenant_id)
        assert tenant.name == "Nowa Firma"
        assert [u.email for u in tenant.users] == ["lukasz@nowa-firma.pl"]
        assert db.session.scalars(sa.select(SignupRequest)).all() == []
    assert session_user_id(client) == str(user.id)
    assert client.get("/crm/contacts").status_code == 200
    assert client.get("/team").status_code == 200
    assert Client(app).login("lukasz@nowa-firma.pl", NEW_PASSWORD).status_code == 303
    # The link is spent.
    assert Client(app).get(link).status_code == 404


def test_signup_answers_the_same_whether_or_not_the_address_has_an_account(world, app, sink):
    ours, _ = world
    taken = Client(app).post_form("/signup", signup_data(email=ours.admin_email.upper()))
    free = Client(app).post_form("/signup", signup_data(email="free@nowa-firma.pl"))

    assert taken.status_code == free.status_code == 200
    strip = re.compile(r'content="[^"]+"|"X-CSRFToken": "[^"]+"')
    assert strip.sub("", taken.get_data(as_text=True)).replace(ours.admin_email, "") == strip.sub(
        "", free.get_data(as_text=True)
    ).replace("free@nowa-firma.pl", "")
    # The account holder is told by email instead, with the ways back in; no sign-up is kept for it.
    [note] = [m for m in sink.messages if ours.admin_email in m["To"]]
    assert "already has an account" in note.get_body(("plain",)).get_content()
    with app.app_context():
        assert [r.email for r in db.session.scalars(sa.select(SignupRequest))] == ["free@nowa-firma.pl"]


def test_an_unconfirmed_signup_never_blocks_an_invitation(world, app, signed_in, sink):
    ours, _ = world
    Client(app).post_form("/signup", signup_data(email="wanted@acme.example.com"))
    link = confirmation_link(sink, "wanted@acme.example.com")

    invited = signed_in(ours.admin_email).post_form(
        "/team/invitations", {"email": "wanted@acme.example.com", "role": "rep", "seat": "none"}
    )
    assert invited.status_code == 200
    joiner = Client(app)
    joined = joiner.post_form(
        invitation_path(invited), {"name": "Wanda Wanted", "password": NEW_PASSWORD, "time_zone": "UTC"}
    )
    assert joined.status_code == 303
    assert _user(app, "wanted@acme.example.com").tenant_id == ours.tenant_id

    # The stale sign-up link cannot take the address over now.
    late = Client(app).post_form(link)
    assert late.status_code == 409
    assert _user(app, "wanted@acme.example.com").tenant_id == ours.tenant_id


def test_a_signup_link_expires_and_only_the_newest_works(app, sink):
    Client(app).post_form("/signup", signup_data())
    first = confirmation_link(sink, "lukasz@nowa-firma.pl")
    sink.reset()
    Client(app).post_form("/signup", signup_data())
    second = confirmation_link(sink, "lukasz@nowa-firma.pl")

    assert Client(app).get(first).status_code == 404
    later = datetime.now(UTC) + timedelta(hours=app.config["SIGNUP_CONFIRM_HOURS"], minutes=1)
    with time_machine.travel(later, tick=False):
        assert Client(app).get(second).status_code == 404
    assert Client(app).get(second).status_code == 200


def test_signup_page_renders(client):
    response = client.get("/signup")
    assert response.status_code == 200
    assert 'name="company"' in response.get_data(as_text=True)


BAD_SIGNUPS = [
    pytest.param({"email": ""}, "email", id="empty-email"),
    pytest.param({"email": "not-an-email"}, "email", id="malformed-email"),
    pytest.param({"password": "short"}, "password", id="short-password"),
    pytest.param({"password": "x" * 9}, "password", id="nine-characters"),
    pytest.param({"password": ""}, "password", id="no-password"),
    pytest.param({"time_zone": "Mars/Olympus_Mons"}, "time_zone", id="unknown-time-zone"),
    pytest.param({"time_zone": "europe/warsaw"}, "time_zone", id="time-zone-wrong-case"),
    pytest.param({"time_zone": ""}, "time_zone", id="no-time-zone"),
    pytest.param({"company": ""}, "company", id="no-company"),
    pytest.param({"company": "   "}, "company", id="blank-company"),
    pytest.param({"name": "x" * 121}, "name", id="name-121"),
]


@pytest.mark.usefixtures("world")
@pytest.mark.parametrize(("overrides", "field"), BAD_SIGNUPS)
def test_bad_signup_is_refused_naming_the_field(app, client, overrides, field):
    before = snapshot(app)

    response = client.post_form("/signup", signup_data(**overrides))

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert session_user_id(client) is None
    assert snapshot(app) == before


# --- Sign-in and sign-out ----------------------------------------------------------------------------------


def test_login_signs_in_with_safe_session_cookie_flags(world, client):
    ours, _ = world

    response = client.post_form(
        "/login", {"email": "  REP@Acme.Example.COM ", "password": factories.PASSWORD}
    )

    assert (response.status_code, response.headers["Location"]) == (303, "/crm/contacts")
    cookie = set_cookie(response, "session")
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie
    assert session_user_id(client) == str(ours.rep_id)
    assert client.get("/crm/contacts").status_code == 200


def test_keep_me_signed_in_sets_a_remember_cookie_with_safe_flags(world, client):
    ours, _ = world

    response = client.post_form(
        "/login", {"email": ours.rep_email, "password": factories.PASSWORD, "remember": "y"}
    )

    cookie = set_cookie(response, "termin_remember")
    token = cookie.split(";")[0].split("=", 1)[1]
    assert len(token) >= 40
    assert "|" not in token  # random, not Flask-Login's "<user id>|<signature>"
    assert "; HttpOnly" in cookie
    assert "; SameSite=Lax" in cookie


BAD_LOGINS = [
    pytest.param({"password": "wrong horse battery"}, "password", id="wrong-password"),
    pytest.param({"email": "nobody@acme.example.com"}, "password", id="unknown-email"),
    pytest.param({"password": ""}, "password", id="no-password"),
    pytest.param({"email": "not-an-email"}, "email", id="malformed-email"),
    pytest.param({"email": ""}, "email", id="no-email"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_LOGINS)
def test_failed_login_answers_422_and_signs_no_one_in(world, client, overrides, field):
    ours, _ = world

    response = client.post_form(
        "/login", {"email": ours.rep_email, "password": factories.PASSWORD, **overrides}
    )

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert session_user_id(client) is None
    assert urlsplit(client.get("/crm/contacts").headers["Location"]).path == "/login"


def test_wrong_password_and_unknown_email_get_the_same_answer(world, make_client):
    ours, _ = world
    wrong = make_client().post_form("/login", {"email": ours.rep_email, "password": "wrong horse battery"})
    unknown = make_client().post_form("/login", {"email": "ghost@acme.example.com", "password": "wrong"})
    message = "That email and password do not match an account."
    assert message in wrong.get_data(as_text=True)
    assert message in unknown.get_data(as_text=True)


def test_a_deactivated_user_cannot_sign_in(app, world, client):
    ours, _ = world
    with app.app_context():
        db.session.get(User, ours.rep_id).is_active = False
        db.session.commit()

    response = client.post_form("/login", {"email": ours.rep_email, "password": factories.PASSWORD})

    assert response.status_code == 422
    assert session_user_id(client) is None


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "//evil.example/crm", "https://evil.example/", "http:evil.example", "/\\evil.example"],
)
def test_login_never_redirects_off_the_app_host(world, client, target):
    ours, _ = world

    response = client.post_form(
        "/login", {"email": ours.rep_email, "password": factories.PASSWORD}, query_string={"next": target}
    )

    assert response.status_code == 303
    location = response.headers["Location"]
    assert location.startswith("/")
    assert not location.startswith("//")
    assert "\\" not in location
    assert urlsplit(location).netloc == ""
    if target.startswith("//"):
        assert location == "/crm/contacts"


def test_login_follows_a_local_next(world, client):
    ours, _ = world
    response = client.post_form(
        "/login",
        {"email": ours.rep_email, "password": factories.PASSWORD},
        query_string={"next": "/crm/tasks"},
    )
    assert response.headers["Location"] == "/crm/tasks"


def test_login_page_sends_a_signed_in_user_on(world, signed_in):
    ours, _ = world
    response = signed_in(ours.rep_email).get("/login")
    assert (response.status_code, response.headers["Location"]) == (302, "/crm/contacts")


def test_logout_is_a_post_and_ends_the_session(world, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)

    assert client.get("/logout").status_code == 405
    assert session_user_id(client) == str(ours.rep_id)

    response = client.post_form("/logout")

    assert (response.status_code, response.headers["Location"]) == (303, "/login")
    assert session_user_id(client) is None
    assert urlsplit(client.get("/crm/contacts").headers["Location"]).path == "/login"


def test_logout_without_csrf_token_is_refused(world, signed_in):
    ours, _ = world
    client = signed_in(ours.rep_email)

    response = client.post("/logout")

    assert response.status_code == 400
    assert "csrf_token" in response.get_data(as_text=True)
    assert session_user_id(client) == str(ours.rep_id)


@pytest.mark.parametrize("token", [None, "forged"], ids=["missing", "forged"])
def test_signup_without_a_valid_csrf_token_is_refused(app, client, token):
    client.get("/signup")  # a session, so only the token is at fault
    before = snapshot(app)

    response = client.post("/signup", data=signup_data() | ({"csrf_token": token} if token else {}))

    assert response.status_code == 400
    assert "csrf_token" in response.get_data(as_text=True)
    assert snapshot(app) == before


# --- Who may use the team routes ---------------------------------------------------------------------------

TEAM_ID_ROUTES = [
    pytest.param("/team/users/{rep_id}/seat", {"user-{rep_id}-seat": "service"}, id="rep-seat"),
    pytest.param("/team/users/{admin_id}/seat", {"user-{admin_id}-seat": "sales"}, id="admin-seat"),
    pytest.param("/team/invitations/{invitation_id}/renew", {}, id="renew"),
    pytest.param("/team/invitations/{invitation_id}/revoke", {}, id="revoke"),
]


def _fill(template: str | dict, ids: dict):
    if isinstance(template, str):
        return template.format(**ids)
    return {key.format(**ids): value for key, value in template.items()}


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize(("url", "data"), TEAM_ID_ROUTES)
def test_another_tenants_admin_gets_404_and_changes_nothing(app, world, ids, signed_in, url, data, htmx):
    _, theirs = world
    client = signed_in(theirs.admin_email)
    before = snapshot(app)

    response = client.post_form(_fill(url, ids), _fill(data, ids), htmx=htmx)

    assert response.status_code == 404
    assert "acme.example.com" not in response.get_data(as_text=True)
    assert snapshot(app) == before


@pytest.mark.parametrize(("url", "data"), TEAM_ID_ROUTES)
def test_the_own_admin_reaches_every_team_id_route(world, ids, signed_in, url, data):
    """The control for the test above: tenant A's admin gets through, so B's 404s are tenant scoping."""
    ours, _ = world
    response = signed_in(ours.admin_email).post_form(_fill(url, ids), _fill(data, ids))
    assert response.status_code in (200, 303)


TEAM_ROUTES = [
    pytest.param("GET", "/team", None, id="team-page"),
    pytest.param(
        "POST", "/team/invitations", {"email": "sneaky@acme.example.com", "role": "admin"}, id="invite"
    ),
    *(pytest.param("POST", *param.values, id=param.id) for param in TEAM_ID_ROUTES),
]


def _send(client: Client, method: str, url: str, data: dict | None, ids: dict):
    if method == "GET":
        return client.get(url)
    return client.post_form(_fill(url, ids), _fill(data, ids))


@pytest.mark.parametrize(("method", "url", "data"), TEAM_ROUTES)
def test_a_rep_gets_403_on_team_routes(app, world, ids, signed_in, method, url, data):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = _send(client, method, url, data, ids)

    assert response.status_code == 403
    assert snapshot(app) == before


@pytest.mark.parametrize(("method", "url", "data"), TEAM_ROUTES)
def test_anonymous_visitors_are_sent_to_login_from_team_routes(app, ids, client, method, url, data):
    before = snapshot(app)

    response = _send(client, method, url, data, ids)

    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert snapshot(app) == before


@pytest.mark.parametrize("url", ["/account", "/crm/contacts"])
def test_anonymous_get_of_signed_in_pages_keeps_the_destination(client, url):
    location = urlsplit(client.get(url).headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [url]


def test_team_page_lists_only_the_own_tenant(world, signed_in):
    ours, theirs = world

    body = signed_in(ours.admin_email).get("/team").get_data(as_text=True)

    assert ours.rep_email in body
    assert "new@acme.example.com" in body  # the pending invitation
    assert theirs.rep_email not in body
    assert theirs.admin_email not in body
    assert "new@globex.example.com" not in body


# --- Invitations -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_invite_then_accept_creates_a_user_in_the_inviting_tenant(app, world, signed_in, make_client, htmx):
    ours, theirs = world
    admin = signed_in(ours.admin_email)

    response = admin.post_form(
        "/team/invitations", {"email": "Newbie@Acme.Example.com ", "role": "rep", "seat": "sales"}, htmx=htmx
    )

    assert response.status_code == 200
    assert is_fragment(response) is htmx
    assert "Send this link to newbie@acme.example.com" in response.get_data(as_text=True)
    link = invitation_path(response)
    with app.app_context():
        invitation = db.session.scalar(
            sa.select(Invitation).where(Invitation.email == "newbie@acme.example.com")
        )
        assert (invitation.tenant_id, invitation.role, invitation.seat) == (ours.tenant_id, "rep", "sales")
        assert link.rsplit("/", 1)[1] not in invitation.token_hash  # only the hash is kept

    joiner = make_client()
    page = joiner.get(link)
    assert page.status_code == 200
    assert "Join Acme on Termin" in page.get_data(as_text=True)
    assert "newbie@acme.example.com" in page.get_data(as_text=True)

    joined = joiner.post_form(
        link, {"name": "Nina Newbie", "password": NEW_PASSWORD, "time_zone": "America/New_York"}
    )

    assert (joined.status_code, joined.headers["Location"]) == (303, "/crm/contacts")
    user = _user(app, "newbie@acme.example.com")
    assert (user.tenant_id, user.role, user.seat, user.name, user.time_zone, user.page_slug) == (
        ours.tenant_id,
        "rep",
        "sales",
        "Nina Newbie",
        "America/New_York",
        "nina-newbie",
    )
    assert session_user_id(joiner) == str(user.id)
    assert joiner.get(f"/crm/contacts/{ours.contact_id}").status_code == 200
    assert joiner.get(f"/crm/contacts/{theirs.contact_id}").status_code == 404

    before = snapshot(app)
    again = make_client()
    assert again.get(link).status_code == 404
    reused = again.post_form(link, {"name": "Second Go", "password": NEW_PASSWORD, "time_zone": "UTC"})
    assert reused.status_code == 404
    assert "This invitation link does not work" in reused.get_data(as_text=True)
    assert snapshot(app) == before


def test_an_admin_invitation_makes_an_admin(app, world, signed_in, make_client):
    ours, _ = world
    response = signed_in(ours.admin_email).post_form(
        "/team/invitations", {"email": "boss@acme.example.com", "role": "admin", "seat": "service"}
    )
    joiner = make_client()

    joiner.post_form(
        invitation_path(response), {"name": "Bea Boss", "password": NEW_PASSWORD, "time_zone": "UTC"}
    )

    user = _user(app, "boss@acme.example.com")
    assert (user.tenant_id, user.role, user.seat) == (ours.tenant_id, "admin", "service")
    assert joiner.get("/team").status_code == 200


def test_a_second_invitation_to_the_same_email_replaces_the_first(
    app, world, signed_in, pending, make_client
):
    ours, _ = world
    first_id, first_link = pending

    response = signed_in(ours.admin_email).post_form(
        "/team/invitations", {"email": "joiner@acme.example.com"}
    )

    assert make_client().get(first_link).status_code == 404
    assert make_client().get(invitation_path(response)).status_code == 200
    with app.app_context():
        assert db.session.get(Invitation, first_id) is None


BAD_INVITES = [
    pytest.param({"email": ""}, "email", id="empty-email"),
    pytest.param({"email": "not-an-email"}, "email", id="malformed-email"),
    pytest.param({"email": "REP@globex.example.com"}, "email", id="email-has-an-account"),
    pytest.param({"role": "owner"}, "role", id="unknown-role"),
    pytest.param({"seat": "platinum"}, "seat", id="unknown-seat"),
]


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize(("overrides", "field"), BAD_INVITES)
def test_bad_invitation_is_refused_naming_the_field(app, world, signed_in, overrides, field, htmx):
    ours, _ = world
    client = signed_in(ours.admin_email)
    before = snapshot(app)

    response = client.post_form(
        "/team/invitations",
        {"email": "fine@acme.example.com", "role": "rep", "seat": "none", **overrides},
        htmx=htmx,
    )

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert is_fragment(response) is htmx
    assert not INVITATION_LINK.search(response.get_data(as_text=True))
    assert snapshot(app) == before


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_renew_gives_a_new_link_and_the_old_one_stops_working(
    app, world, signed_in, pending, make_client, htmx
):
    ours, _ = world
    invitation_id, old_link = pending
    with app.app_context():
        old_expiry = db.session.get(Invitation, invitation_id).expires_at

    response = signed_in(ours.admin_email).post_form(f"/team/invitations/{invitation_id}/renew", htmx=htmx)

    assert response.status_code == 200
    assert is_fragment(response) is htmx
    new_link = invitation_path(response)
    assert new_link != old_link
    assert make_client().get(old_link).status_code == 404
    assert make_client().get(new_link).status_code == 200
    with app.app_context():
        invitation = db.session.get(Invitation, invitation_id)
        assert invitation.expires_at > old_expiry + timedelta(days=5)  # 1 day before, 7 days now


def test_renew_brings_back_an_expired_invitation(app, world, signed_in, pending, make_client):
    ours, _ = world
    invitation_id, _ = pending
    with app.app_context():
        db.session.get(Invitation, invitation_id).expires_at = utcnow() - timedelta(days=1)
        db.session.commit()

    response = signed_in(ours.admin_email).post_form(f"/team/invitations/{invitation_id}/renew")

    assert make_client().get(invitation_path(response)).status_code == 200


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_revoke_deletes_the_invitation_and_its_link(app, world, signed_in, pending, make_client, htmx):
    ours, _ = world
    invitation_id, link = pending

    response = signed_in(ours.admin_email).post_form(f"/team/invitations/{invitation_id}/revoke", htmx=htmx)

    assert response.status_code == 200
    assert "joiner@acme.example.com" not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Invitation, invitation_id) is None
    assert make_client().get(link).status_code == 404


def test_an_accepted_invitation_can_no_longer_be_renewed(app, world, signed_in, pending, make_client):
    ours, _ = world
    invitation_id, link = pending
    make_client().post_form(link, {"name": "Jo Joiner", "password": NEW_PASSWORD, "time_zone": "UTC"})

    response = signed_in(ours.admin_email).post_form(f"/team/invitations/{invitation_id}/renew")

    assert response.status_code == 404


@pytest.fixture
def dead_link(app, pending, request):
    """A link that opens nothing: expired, already used, or never issued."""
    invitation_id, link = pending
    with app.app_context():
        invitation = db.session.get(Invitation, invitation_id)
        if request.param == "expired":
            invitation.expires_at = utcnow() - timedelta(seconds=1)
        elif request.param == "used":
            services.accept_invitation(
                invitation, name="Jo Joiner", password=NEW_PASSWORD, time_zone="UTC", locale="en"
            )
        db.session.commit()
    return "/invitations/not-a-token-anyone-was-given" if request.param == "unknown" else link


@pytest.mark.parametrize("dead_link", ["expired", "used", "unknown"], indirect=True)
def test_dead_invitation_links_show_the_invalid_page(app, client, dead_link):
    before = snapshot(app)

    page = client.get(dead_link)
    posted = client.post_form(dead_link, {"name": "Late Comer", "password": NEW_PASSWORD, "time_zone": "UTC"})

    for response in (page, posted):
        assert response.status_code == 404
        assert "This invitation link does not work" in response.get_data(as_text=True)
    assert session_user_id(client) is None
    assert snapshot(app) == before


BAD_ACCEPTS = [
    pytest.param({"password": "short"}, "password", id="short-password"),
    pytest.param({"time_zone": "Mars/Olympus_Mons"}, "time_zone", id="unknown-time-zone"),
    pytest.param({"name": ""}, "name", id="no-name"),
    pytest.param({"name": "   "}, "name", id="blank-name"),
    pytest.param({"name": "x" * 121}, "name", id="name-121"),
]


@pytest.mark.parametrize(("overrides", "field"), BAD_ACCEPTS)
def test_bad_input_when_accepting_is_refused_and_the_link_keeps_working(
    app, pending, client, overrides, field
):
    _, link = pending
    before = snapshot(app)

    response = client.post_form(
        link, {"name": "Jo Joiner", "password": NEW_PASSWORD, "time_zone": "UTC", **overrides}
    )

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert session_user_id(client) is None
    assert snapshot(app) == before
    assert client.get(link).status_code == 200


def test_accepting_when_the_email_got_an_account_meanwhile_is_refused(app, world, pending, client):
    _, theirs = world
    _, link = pending
    with app.app_context():
        factories.make_user(db.session.get(Tenant, theirs.tenant_id), email="joiner@acme.example.com")
        db.session.commit()
    before = snapshot(app)

    response = client.post_form(link, {"name": "Jo Joiner", "password": NEW_PASSWORD, "time_zone": "UTC"})

    assert response.status_code == 422
    assert "already has an account" in response.get_data(as_text=True)
    assert snapshot(app) == before


# --- Seats -------------------------------------------------------------------------------------------------


def _seat(app, user_id: int) -> str:
    with app.app_context():
        return db.session.get(User, user_id).seat


def test_admin_sets_a_seat_with_htmx_and_gets_the_row(app, world, signed_in):
    ours, _ = world

    response = signed_in(ours.admin_email).post_form(
        f"/team/users/{ours.rep_id}/seat", {f"user-{ours.rep_id}-seat": "service"}, htmx=True
    )

    assert response.status_code == 200
    row = response.get_data(as_text=True)
    assert row.lstrip().startswith(f'<tr id="user-{ours.rep_id}">')
    assert '<option selected value="service">' in row
    assert "Saved" in row
    assert _seat(app, ours.rep_id) == "service"


def test_admin_sets_a_seat_with_a_plain_form(app, world, signed_in):
    ours, _ = world
    client = signed_in(ours.admin_email)

    response = client.post_form(f"/team/users/{ours.rep_id}/seat", {f"user-{ours.rep_id}-seat": "none"})

    assert (response.status_code, response.headers["Location"]) == (303, "/team")
    assert _seat(app, ours.rep_id) == "none"
    assert "saved." in client.get("/team").get_data(as_text=True)


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
@pytest.mark.parametrize("seat", ["platinum", "", None], ids=["unknown", "empty", "missing"])
def test_invalid_seat_is_refused_naming_the_field(app, world, signed_in, seat, htmx):
    ours, _ = world
    client = signed_in(ours.admin_email)
    before = snapshot(app)

    data = {} if seat is None else {f"user-{ours.rep_id}-seat": seat}
    response = client.post_form(f"/team/users/{ours.rep_id}/seat", data, htmx=htmx)

    assert response.status_code == 422
    assert error_fields(response) == {"seat"}
    assert is_fragment(response) is htmx
    assert snapshot(app) == before


# --- Account -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
def test_update_own_profile(app, world, signed_in, htmx):
    ours, _ = world
    client = signed_in(ours.rep_email)
    assert client.get("/account").status_code == 200

    response = client.post_form(
        "/account",
        {"name": " Renata Rep ", "title": " Account executive ", "time_zone": "Asia/Tokyo", "locale": "pl"},
        htmx=htmx,
    )

    if htmx:
        assert (response.status_code, response.headers["HX-Redirect"]) == (200, "/account")
    else:
        assert (response.status_code, response.headers["Location"]) == (303, "/account")
    user = _user(app, ours.rep_email)
    assert (user.name, user.time_zone, user.locale) == ("Renata Rep", "Asia/Tokyo", "pl")
    assert user.title == "Account executive"  # signed under sales emails ({{ rep.title }})


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"time_zone": "Nowhere/Special"}, "time_zone"),
        ({"locale": "de"}, "locale"),
        ({"name": ""}, "name"),
        ({"title": "Boss\r\nBcc: x"}, "title"),
        ({"title": "x" * 121}, "title"),
    ],
)
def test_bad_profile_input_is_refused(app, world, signed_in, overrides, field):
    ours, _ = world
    client = signed_in(ours.rep_email)
    before = snapshot(app)

    response = client.post_form("/account", {"name": "Rep", "time_zone": "UTC", "locale": "en", **overrides})

    assert response.status_code == 422
    assert error_fields(response) == {field}
    assert snapshot(app) == before
