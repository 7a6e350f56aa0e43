"""A real OAuth 2.0 authorization server on 127.0.0.1 for the Google and Microsoft flows.

Built from authlib's own server parts (authorization code grant with PKCE, refresh token grant, RFC 7009
revocation, a bearer-protected userinfo endpoint), so app.sync.oauth is tested against a server that
follows the RFCs rather than against mocks. Storage is plain Python objects behind a lock; the werkzeug
server is threaded.

Two confidential clients are registered, "google" and "microsoft", differing as the real ones do where
it matters to a client: the Microsoft one rotates refresh tokens on every refresh, the Google one keeps
them. Revoking either a refresh or an access token ends the whole grant (Google's behaviour).

The Google and Graph emulators accept this server's access tokens through ``validate_token``.

Fixtures: ``oauth_server_session`` (one server per test session) and ``oauth_server`` (the same server,
reset for each test). Import both into a conftest or test module to use them.
"""

import hmac
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
from authlib.common.security import is_secure_transport
from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from tests.conftest import APP_HOST

PROVIDERS = ("google", "microsoft")
DEFAULT_USER_EMAIL = "rep@oauth.example.com"
ACCESS_TOKEN_SECONDS = 3600
CODE_SECONDS = 600  # RFC 6749 4.1.2: codes must be short-lived; ten minutes is its suggested maximum


def callback_uri(provider: str, host: str = APP_HOST) -> str:
    """The callback the settings page registers: the fixed app host, one path per provider."""
    return f"http://{host}/settings/calendars/oauth/{provider}/callback"


@dataclass
class User:
    id: str
    email: str
    name: str


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    rotates_refresh_tokens: bool
    allowed_scopes: frozenset[str] | None = None  # None: whatever the client asks for

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        if self.allowed_scopes is None:
            return scope
        return " ".join(s for s in scope.split() if s in self.allowed_scopes)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret):
        return hmac.compare_digest(client_secret.encode(), self.client_secret.encode())

    def check_endpoint_auth_method(self, method, endpoint):
        # Confidential clients only: a secret is always required, in the header or the body.
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: User
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


@dataclass
class Grant:
    """One consent: the refresh token and every access token issued under it."""

    client_id: str
    user: User
    scope: str
    refresh_token: str | None
    revoked: bool = False

    def check_client(self, client):
        return client.get_client_id() == self.client_id

    def get_scope(self):
        return self.scope


@dataclass
class Token(TokenMixin):
    access_token: str
    grant: Grant
    issued_at: float
    expires_in: int
    revoked: bool = False

    def check_client(self, client):
        return self.grant.check_client(client)

    def get_scope(self):
        return self.grant.scope

    def get_expires_in(self):
        return self.expires_in

    def is_expired(self):
        return time.time() >= self.issued_at + self.expires_in

    def is_revoked(self):
        return self.revoked or self.grant.revoked

    def get_user(self):
        return self.grant.user

    def get_client(self):
        raise NotImplementedError("not needed by this server")


@dataclass
class _State:
    """Everything a test can change; ``OAuthServer.reset`` starts it afresh."""

    users: dict[str, User]
    current_user: User
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)  # by access token
    grants: dict[str, Grant] = field(default_factory=dict)  # by refresh token
    deny_next: bool = False
    refresh_count: int = 0
    revoked_tokens: list[str] = field(default_factory=list)
    last_authorization_params: dict[str, str] = field(default_factory=dict)


class S256CodeChallenge(CodeChallenge):
    """PKCE for every client, S256 only: authlib's stock extension insists only for public clients."""

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("Missing 'code_challenge': PKCE is required.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
        super().validate_code_challenge(grant, redirect_uri)


class OAuthServer:
    """The server, its clients and its state, with the helpers tests and emulators use."""

    def __init__(self, redirect_uris: Mapping[str, Iterable[str]] | None = None):
        self._lock = threading.RLock()
        self._redirect_uris = {
            provider: list((redirect_uris or {}).get(provider, [callback_uri(provider)]))
            for provider in PROVIDERS
        }
        self._clients = {
            provider: Client(
                client_id=f"termin-{provider}-test-client",
                client_secret=secrets.token_urlsafe(24),
                redirect_uris=list(self._redirect_uris[provider]),
                rotates_refresh_tokens=provider == "microsoft",
            )
            for provider in PROVIDERS
        }
        self._state = self._fresh_state()
        self.app = self._create_app()
        self._http = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self._http.server_port}"
        self._thread = threading.Thread(target=self._http.serve_forever, name="oauth-server", daemon=True)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> "OAuthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def reset(self) -> None:
        """Forget every code, token and grant; approve again; the default user signs in."""
        with self._lock:
            self._state = self._fresh_state()
            for provider, client in self._clients.items():
                client.redirect_uris = list(self._redirect_uris[provider])
                client.allowed_scopes = None

    @staticmethod
    def _fresh_state() -> _State:
        user = User(id="oauth-user-1", email=DEFAULT_USER_EMAIL, name="Rita Rep")
        return _State(users={user.email: user}, current_user=user)

    # -- what clients are configured with --------------------------------------------------------

    @property
    def authorize_url(self) -> str:
        return f"{self.url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    @property
    def revoke_url(self) -> str:
        return f"{self.url}/revoke"

    @property
    def userinfo_url(self) -> str:
        return f"{self.url}/userinfo"

    def client_id(self, provider: str) -> str:
        return self._clients[provider].client_id

    def client_secret(self, provider: str) -> str:
        return self._clients[provider].client_secret

    def app_settings(self) -> dict:
        """The GOOGLE_* and MICROSOFT_* settings that point Termin at this server."""
        settings = {}
        for provider in PROVIDERS:
            prefix = provider.upper()
            settings |= {
                f"{prefix}_CLIENT_ID": self.client_id(provider),
                f"{prefix}_CLIENT_SECRET": self.client_secret(provider),
                f"{prefix}_AUTHORIZE_URL": self.authorize_url,
                f"{prefix}_TOKEN_URL": self.token_url,
            }
        settings |= {"GOOGLE_REVOKE_URL": self.revoke_url, "GOOGLE_USERINFO_URL": self.userinfo_url}
        return settings

    def add_redirect_uri(self, provider: str, uri: str) -> None:
        """Register another callback for this test (reset drops it)."""
        with self._lock:
            self._clients[provider].redirect_uris.append(uri)

    def restrict_scopes(self, provider: str, scopes: Iterable[str]) -> None:
        """Grant only these scopes to the client for this test, as a provider's app registration can."""
        with self._lock:
            self._clients[provider].allowed_scopes = frozenset(scopes)

    # -- the resource owner ----------------------------------------------------------------------

    def sign_in(self, email: str, name: str = "") -> User:
        """The user who approves the next authorizations (created on first use)."""
        with self._lock:
            user = self._state.users.get(email)
            if user is None:
                user = User(id=f"oauth-user-{len(self._state.users) + 1}", email=email, name=name or email)
                self._state.users[email] = user
            self._state.current_user = user
            return user

    def deny_next_authorization(self) -> None:
        """The next /authorize answers access_denied, as if the user pressed Cancel."""
        with self._lock:
            self._state.deny_next = True

    # -- what tests and emulators inspect or break -----------------------------------------------

    def validate_token(self, access_token: str) -> str | None:
        """The email of the user an access token acts for, or None if unknown, expired or revoked."""
        with self._lock:
            token = self._state.tokens.get(access_token)
            if token is None or token.is_expired() or token.is_revoked():
                return None
            return token.grant.user.email

    def revoke_all_for(self, user: str) -> None:
        """End every grant the user (by email) gave, as removing the app in the account settings does."""
        with self._lock:
            for grant in self._state.grants.values():
                if grant.user.email == user:
                    grant.revoked = True
            for token in self._state.tokens.values():
                if token.grant.user.email == user:
                    token.grant.revoked = True

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working now; refresh tokens still do.

        Clients still believe their tokens valid (their ``expires_at`` is unchanged), so pair this with
        a client-side ``expires_at`` in the past, or expect a 401 that the client answers by refreshing.
        """
        with self._lock:
            now = time.time()
            for token in self._state.tokens.values():
                token.issued_at = now - token.expires_in - 1

    @property
    def refresh_count(self) -> int:
        """Successful refresh_token grants so far."""
        return self._state.refresh_count

    @property
    def revoked_tokens(self) -> list[str]:
        """Token strings the revocation endpoint was asked to revoke, in order (known or not)."""
        with self._lock:
            return list(self._state.revoked_tokens)

    @property
    def last_authorization_params(self) -> dict[str, str]:
        """The query of the most recent /authorize request."""
        with self._lock:
            return dict(self._state.last_authorization_params)

    def issued_access_tokens(self) -> list[str]:
        with self._lock:
            return list(self._state.tokens)

    # -- the Flask application -------------------------------------------------------------------

    def _create_app(self) -> Flask:
        app = Flask(__name__)
        app.config.update(
            OAUTH2_REFRESH_TOKEN_GENERATOR=True,
            OAUTH2_TOKEN_EXPIRES_IN={
                "authorization_code": ACCESS_TOKEN_SECONDS,
                "refresh_token": ACCESS_TOKEN_SECONDS,
            },
        )
        fake = self

        def state() -> _State:
            return fake._state  # looked up on every call: reset replaces it

        class CodeGrant(grants.AuthorizationCodeGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def save_authorization_code(self, code, request):
                data = request.payload.data
                with fake._lock:
                    state().codes[code] = AuthorizationCode(
                        code=code,
                        client_id=request.client.get_client_id(),
                        redirect_uri=request.payload.redirect_uri,
                        scope=request.scope,
                        user=request.user,
                        code_challenge=data.get("code_challenge"),
                        code_challenge_method=data.get("code_challenge_method"),
                        expires_at=time.time() + CODE_SECONDS,
                    )

            def query_authorization_code(self, code, client):
                with fake._lock:
                    item = state().codes.get(code)
                if item and item.client_id == client.get_client_id() and item.expires_at > time.time():
                    return item
                return None

            def delete_authorization_code(self, authorization_code):
                with fake._lock:
                    state().codes.pop(authorization_code.code, None)

            def authenticate_user(self, authorization_code):
                return authorization_code.user

        class RefreshGrant(grants.RefreshTokenGrant):
            TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def authenticate_refresh_token(self, refresh_token):
                with fake._lock:
                    grant = state().grants.get(refresh_token)
                if grant and not grant.revoked:
                    return grant
                return None

            def authenticate_user(self, refresh_token):
                return refresh_token.user

            def issue_token(self, user, refresh_token):
                # Microsoft sends a new refresh token with every refresh; Google keeps the first one.
                scope = self.request.payload.scope or refresh_token.get_scope()
                return self.generate_token(
                    user=user, scope=scope, include_refresh_token=self.request.client.rotates_refresh_tokens
                )

            def revoke_old_credential(self, refresh_token):
                pass  # save_token already re-keyed a rotated grant, so the old string no longer works

        def save_token(token, request):
            with fake._lock:
                grant = request.refresh_token  # the Grant, when this is a refresh
                if grant is None:
                    grant = Grant(
                        client_id=request.client.get_client_id(),
                        user=request.user,
                        scope=token.get("scope", ""),
                        refresh_token=token.get("refresh_token"),
                    )
                else:
                    state().refresh_count += 1
                    if token.get("refresh_token"):
                        state().grants.pop(grant.refresh_token, None)
                        grant.refresh_token = token["refresh_token"]
                if grant.refresh_token:
                    state().grants[grant.refresh_token] = grant
                state().tokens[token["access_token"]] = Token(
                    access_token=token["access_token"],
                    grant=grant,
                    issued_at=time.time(),
                    expires_in=int(token.get("expires_in", ACCESS_TOKEN_SECONDS)),
                )

        def query_client(client_id):
            with fake._lock:
                return next((c for c in fake._clients.values() if c.client_id == client_id), None)

        class Revocation(RevocationEndpoint):
            CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

            def query_token(self, token_string, token_type_hint):
                with fake._lock:
                    state().revoked_tokens.append(token_string)
                    token = state().tokens.get(token_string)
                    grant = state().grants.get(token_string)
                if token_type_hint == "refresh_token":
                    return grant or token
                return token or grant

            def revoke_token(self, token, request):
                # Revoking either kind ends the grant: its refresh token and all its access tokens.
                with fake._lock:
                    (token.grant if isinstance(token, Token) else token).revoked = True

        class Validator(BearerTokenValidator):
            def authenticate_token(self, token_string):
                with fake._lock:
                    return state().tokens.get(token_string)

        server = AuthorizationServer(app, query_client=query_client, save_token=save_token)
        server.register_grant(CodeGrant, [S256CodeChallenge(required=True)])
        server.register_grant(RefreshGrant)
        server.register_endpoint(Revocation)
        require_oauth = ResourceProtector()
        require_oauth.register_token_validator(Validator())

        @app.get("/authorize")
        def authorize():
            with fake._lock:
                state().last_authorization_params = request.args.to_dict()
                deny, state().deny_next = state().deny_next, False
                user = state().current_user
            try:
                grant = server.get_consent_grant(end_user=user)
            except OAuth2Error as error:
                # Redirects back with ?error= when the redirect URI is trusted, else answers 400 here.
                return server.handle_error_response(None, error)
            # No consent page: approve at once for the signed-in user, or deny when told to.
            return server.create_authorization_response(grant=grant, grant_user=None if deny else user)

        @app.post("/token")
        def issue_token():
            return server.create_token_response()

        @app.post("/revoke")
        def revoke_token():
            return server.create_endpoint_response(RevocationEndpoint.ENDPOINT_NAME)

        @app.get("/userinfo")
        @require_oauth()
        def userinfo():
            user = current_token.get_user()
            return jsonify(sub=user.id, email=user.email, email_verified=True, name=user.name)

        return app


@pytest.fixture(scope="session")
def oauth_server_session():
    """One server for the whole run (starting one per test would cost a port and a thread each)."""
    server = OAuthServer()
    with pytest.MonkeyPatch.context() as patch:
        # authlib's server refuses requests whose URL is not https. Current authlib (1.9 here) lets
        # plain http on a loopback address through (RFC 8252 7.3), so nothing is needed; older releases
        # need AUTHLIB_INSECURE_TRANSPORT. It is set only when this authlib would refuse 127.0.0.1,
        # and only for this fixture's lifetime, since it switches the check off process-wide.
        if not is_secure_transport(server.token_url):
            patch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def oauth_server(oauth_server_session):
    """The session's server, with no codes, tokens or grants left over from earlier tests."""
    oauth_server_session.reset()
    yield oauth_server_session
    oauth_server_session.reset()


def redirect_query(location: str) -> dict[str, str]:
    """The query of a redirect's Location, as the callback view would see it in ``request.args``."""
    return dict(parse_qsl(urlsplit(location).query))
