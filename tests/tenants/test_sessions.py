"""Revocable sessions (issue 15, S2): sign-out, sign-out everywhere, a password change and a reset end
sessions server-side, so neither a copied session cookie nor a remember-me cookie signs in afterwards.
Remember-me tokens are random, stored hashed, rotated at each use and expire. Forgot password never says
whether an address has an account."""

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from app.extensions import db
from app.mail.models import OutboxMessage
from app.tenants.models import PasswordReset, RememberToken, UserSession
from tests import factories
from tests.conftest import APP_HOST, Client

NEW_PASSWORD = "a brand new passphrase"
CONTACTS = "/crm/contacts"


def cookie(client: Client, name: str) -> str | None:
    found = client.http.get_cookie(name, domain=APP_HOST)
    return found.value if found is not None else None


def browser_with(app, **cookies) -> Client:
    """A fresh browser holding copies of these cookies (a stolen session or remember-me cookie)."""
    other = Client(app)
    for name, value in cookies.items():
        other.http.set_cookie(name, value, domain=APP_HOST)
    return other


def is_signed_in(client: Client) -> bool:
    response = client.get(CONTACTS)
    assert response.status_code in (200, 302), response.status_code
    return response.status_code == 200


def sign_in(app, email: str, *, remember: bool = False) -> Client:
    client = Client(app)
    data = {"email": email, "password": factories.PASSWORD}
    if remember:
        data["remember"] = "y"
    assert client.post_form("/login", data).status_code == 303
    return client


def rows(app, model) -> list:
    with app.app_context():
        found = db.session.scalars(sa.select(model)).all()
        db.session.expunge_all()
        return found


# --- Sign-out -----------------------------------------------------------------------------------------------


def test_sign_out_ends_the_session_server_side(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email)
    stolen = browser_with(app, session=cookie(browser, "session"))
    assert is_signed_in(stolen)

    assert browser.post_form("/logout").status_code == 303

    assert not is_signed_in(browser)
    assert not is_signed_in(stolen)
    assert rows(app, UserSession) == []


def test_a_remember_cookie_signs_in_once_and_is_swapped_for_a_new_one(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email, remember=True)
    first = cookie(browser, "termin_remember")
    [stored] = rows(app, RememberToken)
    assert first not in stored.token_hash  # only a hash is kept

    restored = browser_with(app, termin_remember=first)
    assert is_signed_in(restored)
    second = cookie(restored, "termin_remember")
    assert second
    assert second != first
    # The spent token is worth nothing now: a copy of it taken before does not sign in.
    assert not is_signed_in(browser_with(app, termin_remember=first))
    assert is_signed_in(browser_with(app, termin_remember=second))


def test_each_sign_in_issues_a_different_remember_token(app, world):
    ours, _ = world
    one = cookie(sign_in(app, ours.rep_email, remember=True), "termin_remember")
    two = cookie(sign_in(app, ours.rep_email, remember=True), "termin_remember")
    assert one
    assert two
    assert one != two


def test_sign_out_ends_the_remember_cookie_too(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email, remember=True)
    remember = cookie(browser, "termin_remember")

    browser.post_form("/logout")

    assert not is_signed_in(browser_with(app, termin_remember=remember))
    assert rows(app, RememberToken) == []


def test_a_remember_token_expires(app, world):
    ours, _ = world
    remember = cookie(sign_in(app, ours.rep_email, remember=True), "termin_remember")
    later = datetime.now(UTC) + timedelta(days=app.config["REMEMBER_DAYS"], minutes=1)
    with time_machine.travel(later, tick=False):
        assert not is_signed_in(browser_with(app, termin_remember=remember))


def test_a_session_expires_server_side(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email)
    later = datetime.now(UTC) + timedelta(days=app.config["SESSION_DAYS"], minutes=1)
    with time_machine.travel(later, tick=False):
        assert not is_signed_in(browser)


# --- Sign out everywhere ------------------------------------------------------------------------------------


def test_sign_out_everywhere_ends_every_session_and_remember_cookie(app, world):
    ours, theirs = world
    laptop = sign_in(app, ours.rep_email)
    phone = sign_in(app, ours.rep_email, remember=True)
    phone_remember = cookie(phone, "termin_remember")
    colleague = sign_in(app, ours.admin_email)
    stranger = sign_in(app, theirs.rep_email)

    response = laptop.post_form("/account/sign-out-everywhere")

    assert response.status_code == 303
    assert not is_signed_in(laptop)
    assert not is_signed_in(phone)
    assert not is_signed_in(browser_with(app, termin_remember=phone_remember))
    # Other users keep their sessions.
    assert is_signed_in(colleague)
    assert is_signed_in(stranger)


def test_sign_out_everywhere_needs_a_post_with_csrf(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email)
    assert browser.get("/account/sign-out-everywhere").status_code == 405
    assert browser.post("/account/sign-out-everywhere").status_code == 400
    assert is_signed_in(browser)


# --- Change password ----------------------------------------------------------------------------------------


def test_changing_the_password_ends_every_other_session(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email)
    other = sign_in(app, ours.rep_email, remember=True)
    other_remember = cookie(other, "termin_remember")
    old_session = cookie(browser, "session")

    wrong = browser.post_form(
        "/account/password", {"current_password": "not it", "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    )
    assert wrong.status_code == 422
    assert 'data-field="current_password"' in wrong.get_data(as_text=True)
    assert is_signed_in(other)

    changed = browser.post_form(
        "/account/password",
        {"current_password": factories.PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD},
    )

    assert changed.status_code == 303
    assert is_signed_in(browser)  # a new session for the browser that changed it
    assert not is_signed_in(browser_with(app, session=old_session))
    assert not is_signed_in(other)
    assert not is_signed_in(browser_with(app, termin_remember=other_remember))
    assert (
        Client(app).post_form("/login", {"email": ours.rep_email, "password": factories.PASSWORD}).status_code
        == 422
    )
    assert Client(app).login(ours.rep_email, NEW_PASSWORD).status_code == 303


def test_change_password_checks_the_new_one(app, world):
    ours, _ = world
    browser = sign_in(app, ours.rep_email)
    response = browser.post_form(
        "/account/password", {"current_password": factories.PASSWORD, "password": "short", "confirm": "other"}
    )
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert 'data-field="password"' in body
    assert 'data-field="confirm"' in body
    assert Client(app).login(ours.rep_email).status_code == 303  # unchanged


# --- Forgot password ----------------------------------------------------------------------------------------


def reset_mails(sink, address: str) -> list:
    """The reset mails the SMTP sink received for ``address`` (the outbox keeps no token once sent)."""
    return [m for m in sink.messages if address in m["To"] and "password" in m["Subject"].lower()]


def reset_link(sink, address: str) -> str:
    text = reset_mails(sink, address)[-1].get_body(("plain",)).get_content()
    return re.search(r"http://[^\s]+/password/reset/[^\s]+", text).group(0).split(APP_HOST, 1)[1]


def without_tokens(response, email: str) -> str:
    """The page without what differs per request (CSRF tokens) and the address typed."""
    body = re.sub(r'content="[^"]+"|"X-CSRFToken": "[^"]+"', "", response.get_data(as_text=True))
    return body.replace(email, "")


def test_forgot_password_answers_the_same_for_any_address(app, world, sink):
    ours, _ = world
    known = Client(app).post_form("/password/forgot", {"email": ours.rep_email})
    unknown = Client(app).post_form("/password/forgot", {"email": "nobody@acme.example.com"})

    assert known.status_code == unknown.status_code == 200
    assert without_tokens(known, ours.rep_email) == without_tokens(unknown, "nobody@acme.example.com")
    assert len(reset_mails(sink, ours.rep_email)) == 1
    assert reset_mails(sink, "nobody@acme.example.com") == []


def test_a_reset_link_sets_a_new_password_once_and_ends_every_session(app, world, sink):
    ours, _ = world
    elsewhere = sign_in(app, ours.rep_email, remember=True)
    elsewhere_remember = cookie(elsewhere, "termin_remember")
    Client(app).post_form("/password/forgot", {"email": ours.rep_email})
    link = reset_link(sink, ours.rep_email)
    token = link.rsplit("/", 1)[1]
    [stored] = rows(app, PasswordReset)
    assert token not in stored.token_hash
    # The delivered mail's stored copy keeps no live link.
    [sent] = [row for row in rows(app, OutboxMessage) if ours.rep_email in row.payload["to"]]
    assert sent.status == "delivered"
    assert token not in str(sent.payload)

    browser = Client(app)
    assert browser.get(link).status_code == 200
    done = browser.post_form(link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})

    assert done.status_code == 303
    assert is_signed_in(browser)
    assert not is_signed_in(elsewhere)
    assert not is_signed_in(browser_with(app, termin_remember=elsewhere_remember))
    assert Client(app).login(ours.rep_email, NEW_PASSWORD).status_code == 303
    # One use only.
    assert Client(app).get(link).status_code == 404
    assert (
        Client(app)
        .post_form(link, {"password": "yet another one!", "confirm": "yet another one!"})
        .status_code
        == 404
    )


def test_a_reset_link_expires_after_an_hour(app, world, sink):
    ours, _ = world
    Client(app).post_form("/password/forgot", {"email": ours.rep_email})
    link = reset_link(sink, ours.rep_email)
    later = datetime.now(UTC) + timedelta(minutes=61)
    with time_machine.travel(later, tick=False):
        assert Client(app).get(link).status_code == 404
    assert Client(app).get("/password/reset/not-a-real-token").status_code == 404


def test_reset_mails_to_one_address_are_bounded(app, world, sink):
    ours, _ = world
    for n in range(5):
        client = Client(app)
        client.http.environ_base["REMOTE_ADDR"] = f"192.0.2.{n + 1}"
        assert client.post_form("/password/forgot", {"email": ours.rep_email}).status_code == 200
    assert len(reset_mails(sink, ours.rep_email)) == 3


def test_forgot_password_is_limited_per_address(app, world):
    client = Client(app)
    for n in range(10):
        assert client.post_form("/password/forgot", {"email": f"someone{n}@example.com"}).status_code == 200
    refused = client.post_form("/password/forgot", {"email": "one.more@example.com"})
    assert refused.status_code == 429
    assert refused.headers["Retry-After"]


@pytest.mark.parametrize("path", ["/account/password", "/account/sign-out-everywhere"])
def test_account_security_pages_need_a_session(client, path):
    response = client.get(path) if path.endswith("password") else client.post_form(path)
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
