"""app.sync.oauth against a real OAuth 2.0 server on 127.0.0.1 (tests/fakes/oauth_server.py), over HTTP.

The rep's browser is played by ``requests``: it opens the authorization URL without following the
redirect and hands the callback's query to ``finish``, as the settings view will hand ``request.args``.
"""

import socket
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from app.sync import crypto, oauth
from app.sync.providers.base import AuthRevoked, TemporarilyUnavailable
from tests.fakes import oauth_server as fake
from tests.fakes.oauth_server import DEFAULT_USER_EMAIL, callback_uri, redirect_query

# The fake's fixtures, made visible to this module (tests/sync/conftest.py does not import them).
oauth_server_session = fake.oauth_server_session
oauth_server = fake.oauth_server

PROVIDERS = ("google", "microsoft")


@pytest.fixture
def config(oauth_server):
    """Termin's settings with both providers pointed at the test server."""
    return {"HTTP_TIMEOUT": 5, **oauth_server.app_settings()}


def closed_port_url(path: str = "/token") -> str:
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def open_in_browser(authorization_url: str) -> dict[str, str]:
    """Visit the authorization URL; return the query the provider redirects back with."""
    response = requests.get(authorization_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith("http://app.termin.test/settings/calendars/oauth/")
    return redirect_query(location)


def connect(config, provider: str) -> dict:
    """The whole happy path: begin, approve at the provider, finish."""
    redirect_uri = callback_uri(provider)
    url, state, verifier = oauth.begin(config, provider, redirect_uri)
    args = open_in_browser(url)
    return oauth.finish(
        config, provider, redirect_uri, expected_state=state, code_verifier=verifier, callback_args=args
    )


def userinfo(oauth_server, access_token: str) -> requests.Response:
    return requests.get(
        oauth_server.userinfo_url, headers={"Authorization": f"Bearer {access_token}"}, timeout=5
    )


def must_not_refresh(secret: dict) -> None:
    raise AssertionError("on_refresh was called although no refresh could succeed")


def about_to_expire(token: dict, seconds: int = 30) -> dict:
    """The stored secret, as if the access token had ``seconds`` left (inside the 60 s leeway)."""
    return {**oauth.secret_from_token(token), "expires_at": int(time.time()) + seconds}


# -- connecting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_full_flow_gives_a_refresh_token_and_a_working_access_token(oauth_server, config, provider):
    token = connect(config, provider)

    assert token["access_token"]
    assert token["refresh_token"]
    assert token["expires_at"] > time.time() + 3000
    assert token["token_type"].lower() == "bearer"
    answer = userinfo(oauth_server, token["access_token"])
    assert answer.status_code == 200
    assert answer.json()["email"] == DEFAULT_USER_EMAIL
    assert oauth_server.validate_token(token["access_token"]) == DEFAULT_USER_EMAIL


def test_google_authorization_request_asks_for_offline_access_with_pkce(oauth_server, config):
    url, state, verifier = oauth.begin(config, "google", callback_uri("google"))
    params = {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}

    assert url.startswith(oauth_server.authorize_url + "?")
    assert params["response_type"] == "code"
    assert params["client_id"] == oauth_server.client_id("google")
    assert params["redirect_uri"] == callback_uri("google")
    assert params["state"] == state
    assert params["code_challenge_method"] == "S256"
    assert params["code_challenge"]
    assert verifier not in url
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["include_granted_scopes"] == "true"
    scopes = params["scope"].split()
    assert {"openid", "email"} <= set(scopes)
    assert "https://www.googleapis.com/auth/calendar.events" in scopes
    assert "https://www.googleapis.com/auth/calendar" not in scopes  # the narrow set, not full control


def test_microsoft_authorization_request_asks_for_offline_access_scope(config):
    url, _, _ = oauth.begin(config, "microsoft", callback_uri("microsoft"))
    params = parse_qs(urlsplit(url).query)

    assert params["scope"][0].split() == [
        "openid",
        "email",
        "offline_access",
        "User.Read",
        "Calendars.ReadWrite",
    ]
    assert params["code_challenge_method"] == ["S256"]
    assert "access_type" not in params
    assert "prompt" not in params


def test_each_begin_has_fresh_state_and_verifier(config):
    first = oauth.begin(config, "google", callback_uri("google"))
    second = oauth.begin(config, "google", callback_uri("google"))
    assert first[1] != second[1]
    assert first[2] != second[2]
    assert 43 <= len(first[2]) <= 128


def test_pkce_is_enforced_a_wrong_verifier_gets_no_token(oauth_server, config):
    redirect_uri = callback_uri("google")
    url, state, _ = oauth.begin(config, "google", redirect_uri)
    _, _, other_verifier = oauth.begin(config, "google", redirect_uri)
    args = open_in_browser(url)

    with pytest.raises(oauth.OAuthError) as failure:
        oauth.finish(
            config,
            "google",
            redirect_uri,
            expected_state=state,
            code_verifier=other_verifier,
            callback_args=args,
        )
    assert failure.value.code == "invalid_grant"
    assert "start connecting again" in str(failure.value)
    assert oauth_server.issued_access_tokens() == []


def test_the_server_refuses_an_authorization_request_without_pkce(oauth_server, config):
    """The fake insists on S256 PKCE, so a client that forgot it could not pass these tests."""
    response = requests.get(
        oauth_server.authorize_url,
        params={
            "response_type": "code",
            "client_id": oauth_server.client_id("google"),
            "redirect_uri": callback_uri("google"),
            "state": "abc",
        },
        allow_redirects=False,
        timeout=5,
    )
    assert response.status_code == 302
    assert redirect_query(response.headers["Location"])["error"] == "invalid_request"


def test_state_mismatch_is_refused_before_the_code_is_used(oauth_server, config):
    redirect_uri = callback_uri("google")
    url, _, verifier = oauth.begin(config, "google", redirect_uri)
    args = open_in_browser(url)

    with pytest.raises(oauth.OAuthError) as failure:
        oauth.finish(
            config,
            "google",
            redirect_uri,
            expected_state="a-state-from-another-attempt",
            code_verifier=verifier,
            callback_args=args,
        )
    assert failure.value.code == "state_mismatch"
    assert "does not belong to the connection you started" in str(failure.value)
    assert oauth_server.issued_access_tokens() == []


@pytest.mark.parametrize("missing", ["state_in_callback", "state_in_session"])
def test_missing_state_is_refused(config, missing):
    redirect_uri = callback_uri("google")
    url, state, verifier = oauth.begin(config, "google", redirect_uri)
    args = open_in_browser(url)
    if missing == "state_in_callback":
        del args["state"]
    else:
        state = None

    with pytest.raises(oauth.OAuthError) as failure:
        oauth.finish(
            config, "google", redirect_uri, expected_state=state, code_verifier=verifier, callback_args=args
        )
    assert "start connecting again" in str(failure.value).lower()


@pytest.mark.parametrize(("provider", "label"), [("google", "Google"), ("microsoft", "Microsoft")])
def test_cancelling_at_the_provider_gives_a_clear_message(oauth_server, config, provider, label):
    oauth_server.deny_next_authorization()
    redirect_uri = callback_uri(provider)
    url, state, verifier = oauth.begin(config, provider, redirect_uri)
    args = open_in_browser(url)
    assert args["error"] == "access_denied"
    assert args["state"] == state

    with pytest.raises(oauth.OAuthError) as failure:
        oauth.finish(
            config, provider, redirect_uri, expected_state=state, code_verifier=verifier, callback_args=args
        )
    assert failure.value.code == "access_denied"
    assert str(failure.value).startswith(f"You cancelled the connection at {label}")


def test_admin_consent_required_is_not_called_cancelling(config):
    _, state, verifier = oauth.begin(config, "microsoft", callback_uri("microsoft"))
    args = {
        "state": state,
        "error": "access_denied",
        "error_description": "AADSTS65004: The user needs admin approval to access this app.",
    }
    with pytest.raises(oauth.OAuthError) as failure:
        oauth.finish(
            config,
            "microsoft",
            callback_uri("microsoft"),
            expected_state=state,
            code_verifier=verifier,
            callback_args=args,
        )
    assert "administrator" in str(failure.value)
    assert "cancelled" not in str(failure.value)


def test_wrong_client_secret_points_at_the_settings(config):
    config = {**config, "GOOGLE_CLIENT_SECRET": "not-the-secret"}
    with pytest.raises(oauth.OAuthError) as failure:
        connect(config, "google")
    assert failure.value.code == "invalid_client"
    assert "GOOGLE_CLIENT_SECRET" in str(failure.value)


def test_unreachable_token_endpoint_gives_a_clear_message(config):
    redirect_uri = callback_uri("google")
    url, state, verifier = oauth.begin(config, "google", redirect_uri)
    args = open_in_browser(url)
    config = {**config, "GOOGLE_TOKEN_URL": closed_port_url()}

    with pytest.raises(oauth.OAuthError) as failure:
        oauth.finish(
            config, "google", redirect_uri, expected_state=state, code_verifier=verifier, callback_args=args
        )
    assert "could not reach Google" in str(failure.value)


def test_is_configured_needs_client_id_and_secret(config):
    assert oauth.is_configured(config, "google")
    assert oauth.is_configured(config, "microsoft")
    assert not oauth.is_configured({**config, "GOOGLE_CLIENT_ID": ""}, "google")
    assert not oauth.is_configured({**config, "MICROSOFT_CLIENT_SECRET": ""}, "microsoft")
    assert not oauth.is_configured(config, "caldav")
    with pytest.raises(oauth.OAuthError, match="GOOGLE_CLIENT_ID"):
        oauth.begin({**config, "GOOGLE_CLIENT_ID": ""}, "google", callback_uri("google"))


# -- using and refreshing tokens -----------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_session_refreshes_a_token_about_to_expire_before_the_request(oauth_server, config, provider):
    token = connect(config, provider)
    secret = about_to_expire(token)
    original = dict(secret)
    oauth_server.expire_access_tokens()  # the old access token would now get a 401
    refreshed = []
    before = oauth_server.refresh_count

    with oauth.authorized_session(config, provider, secret, refreshed.append) as session:
        answer = session.get(oauth_server.userinfo_url)

    assert answer.status_code == 200
    assert answer.json()["email"] == DEFAULT_USER_EMAIL
    assert oauth_server.refresh_count == before + 1
    assert len(refreshed) == 1
    new = refreshed[0]
    assert set(new) <= set(oauth.STORED_TOKEN_KEYS)
    assert new["access_token"] != token["access_token"]
    assert new["expires_at"] > time.time() + 3000
    assert oauth_server.validate_token(new["access_token"]) == DEFAULT_USER_EMAIL
    assert userinfo(oauth_server, new["access_token"]).status_code == 200
    if provider == "microsoft":  # rotates refresh tokens: the new one must be stored
        assert new["refresh_token"] != token["refresh_token"]
    else:  # Google keeps the refresh token; authlib carries it over
        assert new["refresh_token"] == token["refresh_token"]
    assert secret == original  # the caller's dict is left alone


def test_session_does_not_refresh_a_fresh_token(oauth_server, config):
    token = connect(config, "google")
    refreshed = []
    with oauth.authorized_session(config, "google", oauth.secret_from_token(token), refreshed.append) as s:
        assert s.get(oauth_server.userinfo_url).status_code == 200
        assert s.get(oauth_server.userinfo_url).status_code == 200
    assert oauth_server.refresh_count == 0
    assert refreshed == []


def test_rotated_refresh_token_replaces_the_old_one(oauth_server, config):
    token = connect(config, "microsoft")
    stored = []
    with oauth.authorized_session(config, "microsoft", about_to_expire(token), stored.append) as session:
        session.get(oauth_server.userinfo_url).raise_for_status()

    # The superseded refresh token is dead; the one handed to on_refresh works.
    with (
        oauth.authorized_session(config, "microsoft", about_to_expire(token), stored.append) as session,
        pytest.raises(AuthRevoked),
    ):
        session.get(oauth_server.userinfo_url)
    with oauth.authorized_session(config, "microsoft", about_to_expire(stored[0]), stored.append) as session:
        assert session.get(oauth_server.userinfo_url).status_code == 200


@pytest.mark.parametrize("provider", PROVIDERS)
def test_revoked_refresh_token_raises_auth_revoked(oauth_server, config, provider):
    token = connect(config, provider)
    oauth_server.revoke_all_for(DEFAULT_USER_EMAIL)
    refreshed = []

    with (
        oauth.authorized_session(config, provider, about_to_expire(token), refreshed.append) as session,
        pytest.raises(AuthRevoked) as failure,
    ):
        session.get(oauth_server.userinfo_url)
    assert "invalid_grant" in failure.value.reason or "no longer accepts" in failure.value.reason
    assert refreshed == []


def test_expired_token_without_refresh_token_raises_auth_revoked(oauth_server, config):
    token = connect(config, "google")
    secret = {**oauth.secret_from_token(token), "expires_at": int(time.time()) - 10}
    del secret["refresh_token"]
    with (
        oauth.authorized_session(config, "google", secret, must_not_refresh) as session,
        pytest.raises(AuthRevoked),
    ):
        session.get(oauth_server.userinfo_url)


def test_unreachable_token_endpoint_on_refresh_is_temporary(oauth_server, config):
    token = connect(config, "google")
    config = {**config, "GOOGLE_TOKEN_URL": closed_port_url()}
    refreshed = []
    with (
        oauth.authorized_session(config, "google", about_to_expire(token), refreshed.append) as session,
        pytest.raises(TemporarilyUnavailable),
    ):
        session.get(oauth_server.userinfo_url)
    assert refreshed == []


def test_an_early_401_refreshes_once_and_sends_the_request_again(oauth_server, config):
    """A provider may end an access token before expires_at: the session refreshes once and retries."""
    token = connect(config, "google")
    oauth_server.expire_access_tokens()
    refreshed = []
    with oauth.authorized_session(config, "google", oauth.secret_from_token(token), refreshed.append) as s:
        assert s.get(oauth_server.userinfo_url).status_code == 200
        oauth_server.expire_access_tokens()
        # A 401 to the token just refreshed is the provider's answer to keep: the grant is gone.
        assert s.get(oauth_server.userinfo_url).status_code == 401
    [new] = refreshed
    assert new["access_token"] != token["access_token"]
    assert oauth_server.refresh_count == 1


# -- disconnecting -------------------------------------------------------------------------------


def test_revoke_google_posts_the_refresh_token_and_ends_the_grant(oauth_server, config):
    token = connect(config, "google")
    secret = oauth.secret_from_token(token)

    assert oauth.revoke(config, "google", secret) is True

    assert oauth_server.revoked_tokens == [token["refresh_token"]]
    assert oauth_server.validate_token(token["access_token"]) is None
    assert userinfo(oauth_server, token["access_token"]).status_code == 401
    with (
        oauth.authorized_session(config, "google", about_to_expire(token), must_not_refresh) as session,
        pytest.raises(AuthRevoked),
    ):
        session.get(oauth_server.userinfo_url)


def test_revoke_google_with_only_an_access_token(oauth_server, config):
    token = connect(config, "google")
    secret = {"access_token": token["access_token"], "token_type": "Bearer"}
    assert oauth.revoke(config, "google", secret) is True
    assert oauth_server.revoked_tokens == [token["access_token"]]
    assert oauth_server.validate_token(token["access_token"]) is None


def test_revoke_microsoft_is_not_possible_and_sends_nothing(oauth_server, config):
    token = connect(config, "microsoft")
    assert oauth.revoke(config, "microsoft", oauth.secret_from_token(token)) is False
    assert oauth_server.revoked_tokens == []
    assert oauth_server.validate_token(token["access_token"]) == DEFAULT_USER_EMAIL
    assert oauth.PROVIDERS["microsoft"].manage_access_urls


def test_revoke_swallows_network_errors(oauth_server, config, caplog):
    token = connect(config, "google")
    config = {**config, "GOOGLE_REVOKE_URL": closed_port_url("/revoke")}
    assert oauth.revoke(config, "google", oauth.secret_from_token(token)) is False
    assert "revocation failed" in caplog.text
    assert token["refresh_token"] not in caplog.text


# -- storing -------------------------------------------------------------------------------------


def test_secret_keeps_only_what_is_needed():
    token = {
        "access_token": "at-123",
        "refresh_token": "rt-456",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "scope": "openid email",
        "token_type": "Bearer",
        "id_token": "eyJhbGciOi.x.y",
    }
    secret = oauth.secret_from_token(token)
    assert set(secret) == {"access_token", "refresh_token", "expires_at", "scope", "token_type"}
    assert isinstance(secret["expires_at"], int)
    assert abs(secret["expires_at"] - (time.time() + 3599)) < 5
    assert oauth.expires_at({}) is None
    assert oauth.expires_at({"expires_at": 1_900_000_000}).isoformat() == "2030-03-17T17:46:40+00:00"


def test_secret_round_trips_through_crypto_without_leaking_tokens(oauth_server, config, app_ctx):
    token = connect(config, "microsoft")
    secret = oauth.secret_from_token(token)

    ciphertext = crypto.encrypt(secret)

    assert crypto.decrypt(ciphertext) == secret
    for value in (secret["access_token"], secret["refresh_token"]):
        assert value not in ciphertext
        assert value[:12] not in ciphertext
    assert oauth.expires_at(crypto.decrypt(ciphertext)) == oauth.expires_at(token)
