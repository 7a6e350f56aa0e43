"""OAuth 2.0 for Google and Microsoft 365 calendars: connect, keep the tokens fresh, disconnect.

Connecting is the authorization-code grant with PKCE (S256, RFC 7636) and a random ``state``:

1. ``begin`` builds the provider's authorization URL with a fresh ``state`` and ``code_verifier``. The
   settings view keeps both in the Flask session and redirects the rep there.
2. The provider sends the rep back to the one fixed callback on the app host (STYLE.md 4.4: providers
   only redirect to registered URIs, so tenant domains cannot be used). ``finish`` compares ``state`` with
   the session's copy, so a callback the rep did not start in this browser is refused (CSRF, RFC 6749
   section 10.12); turns the provider's error codes into sentences for the rep; and swaps the code plus
   the verifier for tokens, so a code leaked from the redirect is useless to anyone without the
   verifier, which never leaves our server.
3. ``secret_from_token`` keeps only what later calls need. The caller encrypts it with
   ``app.sync.crypto`` into ``CalendarConnection.secret_encrypted`` and sets ``token_expires_at`` from
   ``expires_at``.
4. ``authorized_session`` is the ``requests.Session`` the Google and Graph providers call through. It
   refreshes the access token shortly *before* it expires (a request never goes out with a token about
   to die mid-flight), and once more when an API call answers 401 (the request is then sent again),
   hands each new token back to be stored, and turns a dead grant into ``AuthRevoked``.
5. ``revoke`` asks Google to forget the grant when a rep disconnects.

Nothing here touches the Flask request or session: callers pass the app config (any Mapping) and what
they stored, so views, RQ workers and tests share the same code. Tokens are never logged.
"""

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError as AuthlibOAuthError

from app.sync.providers.base import AuthRevoked, ProviderError, TemporarilyUnavailable

log = logging.getLogger(__name__)

# A token this close to its expiry counts as expired and is refreshed before the request goes out,
# so clock skew and slow requests never present a token that dies on the way.
REFRESH_LEEWAY_SECONDS = 60

# All that is ever stored: enough to call the API and to refresh. ID tokens, ext_expires_in and the
# like are dropped, so the encrypted blob holds nothing we do not use.
STORED_TOKEN_KEYS = ("access_token", "refresh_token", "expires_at", "scope", "token_type")


class OAuthError(Exception):
    """Connecting an account failed. ``str(error)`` is a sentence the rep can read and act on;
    ``code`` is the OAuth error code when the provider sent one (e.g. ``access_denied``)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class ProviderSpec:
    """What differs between the OAuth providers. Settings are read from app.config by the ``*_key``
    names, all ``<PREFIX>_...`` as in app/config.py."""

    label: str  # the name reps know, used in messages
    prefix: str
    scope: str
    authorize_params: Mapping[str, str]
    # False: the provider has no endpoint to revoke one app's tokens.
    revocable: bool
    # Microsoft wants the scope repeated on refresh requests; Google neither needs nor documents it.
    refresh_with_scope: bool
    # Where a rep can see and remove the apps that have access to the account.
    manage_access_urls: tuple[str, ...]

    @property
    def client_id_key(self) -> str:
        return f"{self.prefix}_CLIENT_ID"

    @property
    def client_secret_key(self) -> str:
        return f"{self.prefix}_CLIENT_SECRET"

    @property
    def authorize_url_key(self) -> str:
        return f"{self.prefix}_AUTHORIZE_URL"

    @property
    def token_url_key(self) -> str:
        return f"{self.prefix}_TOKEN_URL"

    @property
    def revoke_url_key(self) -> str | None:
        return f"{self.prefix}_REVOKE_URL" if self.revocable else None


# Google: the narrowest scopes that still cover every call the Google provider makes (checked against
# the Calendar API reference, "Authorization" section of each method):
GOOGLE_SCOPES = (
    "openid",
    "email",  # with openid: the account's id and address from the userinfo endpoint
    # calendarList.list: the calendars the rep sees, each with the rep's access role.
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly",
    # events.list/insert/update/delete on the rep's calendars and those shared with the rep.
    "https://www.googleapis.com/auth/calendar.events",
    # freeBusy.query: calendar.events does not cover it; this one only reveals busy times.
    "https://www.googleapis.com/auth/calendar.events.freebusy",
    # calendars.insert for the task sub-calendar, without the power to alter or delete any other calendar
    # (which the broad .../auth/calendar scope would grant).
    "https://www.googleapis.com/auth/calendar.app.created",
)

# Microsoft: offline_access is what makes Microsoft issue a refresh token; User.Read gives /me.
MICROSOFT_SCOPES = ("openid", "email", "offline_access", "User.Read", "Calendars.ReadWrite")

PROVIDERS: Mapping[str, ProviderSpec] = MappingProxyType(
    {
        "google": ProviderSpec(
            label="Google",
            prefix="GOOGLE",
            scope=" ".join(GOOGLE_SCOPES),
            authorize_params=MappingProxyType(
                {
                    # A refresh token, so sync keeps working while the rep is away...
                    "access_type": "offline",
                    # ...issued again on every connect (Google only sends one on first consent otherwise,
                    # so a reconnect after a revoked grant would come back without one).
                    "prompt": "consent",
                    # Keep scopes granted earlier to this client (incremental authorization).
                    "include_granted_scopes": "true",
                }
            ),
            revocable=True,
            refresh_with_scope=False,
            manage_access_urls=("https://myaccount.google.com/connections",),
        ),
        "microsoft": ProviderSpec(
            label="Microsoft",
            prefix="MICROSOFT",
            scope=" ".join(MICROSOFT_SCOPES),
            authorize_params=MappingProxyType({}),
            revocable=False,
            refresh_with_scope=True,
            manage_access_urls=(
                "https://myapplications.microsoft.com/",  # work or school accounts
                "https://account.live.com/consent/Manage",  # personal Microsoft accounts
            ),
        ),
    }
)


def _spec(provider: str) -> ProviderSpec:
    try:
        return PROVIDERS[provider]
    except KeyError:
        raise ValueError(
            f"unknown OAuth provider {provider!r}; expected one of {sorted(PROVIDERS)}"
        ) from None


def _timeout(config: Mapping) -> float:
    return config.get("HTTP_TIMEOUT") or 20


def is_configured(config: Mapping, provider: str) -> bool:
    """Whether the operator set this provider's client id and secret.

    Both are needed: the token exchange authenticates with the secret, so an id alone would send reps
    through the provider's consent screen only to fail at the end. Unknown providers (e.g. "caldav",
    which needs no OAuth) are simply not configured.
    """
    spec = PROVIDERS.get(provider)
    if spec is None:
        return False
    return bool(config.get(spec.client_id_key)) and bool(config.get(spec.client_secret_key))


def _client(config: Mapping, spec: ProviderSpec, **kwargs) -> OAuth2Session:
    """An authlib session for ``spec``'s client. Given a secret, authlib sends the client credentials as
    HTTP Basic (RFC 6749 2.3.1) to the token and revocation endpoints; both providers accept that."""
    return OAuth2Session(
        client_id=config.get(spec.client_id_key),
        client_secret=config.get(spec.client_secret_key),
        default_timeout=_timeout(config),
        **kwargs,
    )


def begin(config: Mapping, provider: str, redirect_uri: str) -> tuple[str, str, str]:
    """Start connecting: returns ``(authorization_url, state, code_verifier)``.

    The caller stores ``state`` and ``code_verifier`` in the Flask session (never in the URL or a
    cookie the provider sees) and redirects the rep to ``authorization_url``. ``redirect_uri`` must be
    exactly the URI registered with the provider, i.e. the callback on the fixed app host, and the same
    value must be passed to ``finish``.
    """
    spec = _spec(provider)
    if not is_configured(config, provider):
        raise OAuthError(
            f"{spec.label} calendars are not set up on this Termin server yet. "
            f"Ask your administrator to set {spec.client_id_key} and {spec.client_secret_key}."
        )
    state = secrets.token_urlsafe(32)
    # 64 random bytes -> 86 URL-safe characters: inside RFC 7636's 43..128 and its unreserved alphabet.
    code_verifier = secrets.token_urlsafe(64)
    with _client(
        config, spec, scope=spec.scope, redirect_uri=redirect_uri, code_challenge_method="S256"
    ) as client:
        url, _ = client.create_authorization_url(
            config[spec.authorize_url_key], state=state, code_verifier=code_verifier, **spec.authorize_params
        )
    return url, state, code_verifier


def _callback_error_message(spec: ProviderSpec, error: str, description: str) -> str:
    """A sentence for an error the provider put on the callback (RFC 6749 4.1.2.1 codes, plus OIDC's)."""
    label = spec.label
    if error == "access_denied":
        if "admin" in description.lower():
            # Entra ID tenants that restrict user consent answer access_denied with an AADSTS text
            # about admin approval; "you cancelled" would be the wrong advice there.
            return (
                f"Your organisation must approve Termin in {label} before you can connect. "
                f"Ask your {label} administrator to grant consent, then try again."
            )
        return f"You cancelled the connection at {label}, so nothing was connected. Try again when ready."
    if error in ("login_required", "consent_required", "interaction_required", "account_selection_required"):
        return f"{label} needs you to sign in and approve access. Please try connecting again."
    if error == "invalid_scope":
        return (
            f"{label} refused the permissions Termin asks for. "
            "Ask your administrator to check the app registration."
        )
    if error in ("server_error", "temporarily_unavailable"):
        return f"{label} had a problem and could not finish connecting. Please try again in a few minutes."
    detail = f" ({description})" if description else ""
    return f"{label} refused the connection: {error}{detail}. Please try again."


def finish(
    config: Mapping,
    provider: str,
    redirect_uri: str,
    *,
    expected_state: str | None,
    code_verifier: str | None,
    callback_args: Mapping[str, str],
) -> dict:
    """Complete connecting: check the callback and exchange its code for tokens.

    ``expected_state`` and ``code_verifier`` are what ``begin`` returned (from the Flask session; pop them
    so a callback cannot be replayed); ``callback_args`` is ``request.args``. Returns the provider's
    token response as a plain dict, with ``expires_at`` (epoch seconds) filled in; keep it through
    ``secret_from_token``. Raises ``OAuthError`` with a message for the rep on every failure.
    """
    spec = _spec(provider)
    if not expected_state or not code_verifier:
        # No connection attempt in this browser session: it expired, or the link was opened elsewhere.
        raise OAuthError(
            f"This {spec.label} sign-in is no longer valid (it may have expired or been used already). "
            "Please start connecting again."
        )
    state = callback_args.get("state") or ""
    if not secrets.compare_digest(state.encode(), expected_state.encode()):
        raise OAuthError(
            f"The answer from {spec.label} does not belong to the connection you started here, so it was "
            "ignored. Please start connecting again from this page.",
            code="state_mismatch",
        )
    error = callback_args.get("error")
    if error:
        description = callback_args.get("error_description") or ""
        raise OAuthError(_callback_error_message(spec, error, description), code=error)
    code = callback_args.get("code")
    if not code:
        raise OAuthError(
            f"{spec.label} did not send back an authorization code. Please try connecting again."
        )

    try:
        with _client(config, spec, redirect_uri=redirect_uri) as client:
            token = client.fetch_token(
                config[spec.token_url_key],
                grant_type="authorization_code",
                code=code,
                code_verifier=code_verifier,
            )
    except AuthlibOAuthError as failure:
        log.warning("%s token exchange refused: %s", spec.label, failure.error)
        if failure.error == "invalid_client":
            raise OAuthError(
                f"{spec.label} did not accept Termin's client credentials. Ask your administrator to "
                f"check {spec.client_id_key} and {spec.client_secret_key}.",
                code=failure.error,
            ) from failure
        if failure.error == "invalid_grant":
            raise OAuthError(
                f"The {spec.label} sign-in expired or was already used. Please start connecting again.",
                code=failure.error,
            ) from failure
        raise OAuthError(
            f"{spec.label} refused to finish connecting ({failure.error}). Please try again.",
            code=failure.error,
        ) from failure
    except (requests.RequestException, ValueError) as failure:
        # Connection refused, timeout, a 5xx page or a body that is not a token response.
        log.warning("%s token exchange failed: %s", spec.label, type(failure).__name__)
        raise OAuthError(
            f"Termin could not reach {spec.label} to finish connecting. Please try again in a moment."
        ) from failure

    if not token.get("refresh_token"):
        # Without one, syncing would stop within the hour and the rep would have to reconnect.
        raise OAuthError(
            f"{spec.label} did not grant Termin lasting access to your calendar. Please connect again.",
            code="no_refresh_token",
        )
    return dict(token)


class AuthorizedSession(OAuth2Session):
    """An OAuth2Session that refreshes before expiry, and once on a 401, and speaks Termin's errors.

    authlib refreshes inside the request's auth hook when the token is within ``leeway`` seconds of
    ``expires_at``. A provider may still end an access token early (a password change, an admin's
    action, its own rotation), and only the authorization server can say whether the grant is gone: so
    an API call answered 401 refreshes the token once and is sent again. A 401 after a token refreshed
    in this session is handed back as it is, and the provider turns it into ``AuthRevoked``. What can go
    wrong while refreshing: ``invalid_grant`` (revoked, expired or rotated-away refresh token) ->
    ``AuthRevoked``, a network failure or a 5xx answer -> ``TemporarilyUnavailable``, anything else ->
    ``ProviderError``.
    """

    def __init__(self, *args, provider_label: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.provider_label = provider_label
        self.refreshed = False  # a token was renewed in this session: a 401 now means the grant is gone

    def request(self, method, url, withhold_token=False, auth=None, **kwargs):
        response = super().request(method, url, withhold_token=withhold_token, auth=auth, **kwargs)
        # Token-endpoint calls carry the client's own auth; only bearer calls to an API are retried.
        if response.status_code != 401 or withhold_token or auth is not None or self.refreshed:
            return response
        response.close()
        self.force_refresh()
        return super().request(method, url, **kwargs)

    def ensure_active_token(self, token=None):
        if super().ensure_active_token(token):
            return True
        # Expired and nothing to refresh with: only reconnecting helps.
        raise AuthRevoked(
            f"The {self.provider_label} access expired and cannot be renewed; please reconnect."
        )

    def refresh_token(self, url=None, refresh_token=None, **kwargs):
        label = self.provider_label
        try:
            token = super().refresh_token(url, refresh_token=refresh_token, **kwargs)
        except AuthlibOAuthError as failure:
            description = failure.description or failure.error
            if failure.error == "invalid_grant":
                raise AuthRevoked(f"{label} no longer accepts Termin's access: {description}") from failure
            raise ProviderError(f"{label} refused to renew access: {description}") from failure
        except (requests.RequestException, ValueError) as failure:
            raise TemporarilyUnavailable(
                f"Could not reach {label} to renew access ({type(failure).__name__})."
            ) from failure
        self.refreshed = True
        return token

    def force_refresh(self) -> dict:
        """Refresh now, whatever ``expires_at`` says; returns the stored form of the new token.

        ``request`` calls it on a 401 to a token we believed valid; a second 401 means the grant is gone.
        """
        if not self.token or not self.token.get("refresh_token"):
            raise AuthRevoked(f"There is no {self.provider_label} refresh token; please reconnect.")
        self.refresh_token(self.metadata.get("token_endpoint"))
        return secret_from_token(self.token)


def authorized_session(
    config: Mapping, provider: str, secret: Mapping, on_refresh: Callable[[dict], None]
) -> AuthorizedSession:
    """A ``requests.Session`` that sends ``secret``'s bearer token and keeps it fresh.

    ``secret`` is the decrypted ``CalendarConnection`` secret (from ``secret_from_token``); it is copied,
    never modified. When the access token is within ``REFRESH_LEEWAY_SECONDS`` of ``expires_at``, the
    next request first refreshes it at the provider's token endpoint and calls ``on_refresh`` with the
    new secret (already trimmed by ``secret_from_token``): the caller must encrypt and store it, and
    update ``token_expires_at``, because Microsoft rotates refresh tokens on every refresh. Every request
    gets ``HTTP_TIMEOUT`` unless it passes its own. Refresh failures raise ``AuthRevoked``,
    ``TemporarilyUnavailable`` or ``ProviderError`` from the request call. Use it as a context manager
    (or ``close()`` it) when done.
    """
    spec = _spec(provider)

    def updated(token, refresh_token=None, access_token=None):
        on_refresh(secret_from_token(token))

    return AuthorizedSession(
        client_id=config.get(spec.client_id_key),
        client_secret=config.get(spec.client_secret_key),
        token=dict(secret),  # authlib normalises the dict it is given in place
        token_endpoint=config[spec.token_url_key],
        scope=spec.scope if spec.refresh_with_scope else None,
        update_token=updated,
        leeway=REFRESH_LEEWAY_SECONDS,
        default_timeout=_timeout(config),
        provider_label=spec.label,
    )


def revoke(config: Mapping, provider: str, secret: Mapping) -> bool:
    """Ask the provider to end Termin's grant; True when it confirmed. Never raises for the provider.

    Google: POSTs the refresh token (which ends the whole grant, access tokens included) or, lacking
    one, the access token to ``GOOGLE_REVOKE_URL`` per RFC 7009, authenticating as the client. A token
    Google already considers invalid counts as revoked.

    Microsoft: the identity platform has no endpoint to revoke one app's tokens (revoking sign-in
    sessions would sign the rep out of every app), so this returns False without a request. The page
    that disconnects should tell the rep to remove Termin from their account's app permissions,
    ``PROVIDERS["microsoft"].manage_access_urls``; until then the unused refresh token simply expires.

    Network errors and refusals are logged and swallowed: disconnecting must still succeed locally.
    """
    spec = _spec(provider)
    if spec.revoke_url_key is None:
        return False
    url = config.get(spec.revoke_url_key)
    if secret.get("refresh_token"):
        token, hint = secret["refresh_token"], "refresh_token"
    else:
        token, hint = secret.get("access_token"), "access_token"
    if not url or not token:
        return False
    try:
        with _client(config, spec) as client:
            response = client.revoke_token(url, token=token, token_type_hint=hint)
    except requests.RequestException as failure:
        log.warning("%s token revocation failed: %s", spec.label, type(failure).__name__)
        return False
    if response.status_code == 200:
        return True
    if response.status_code == 400 and _json_error(response) == "invalid_token":
        return True  # already revoked or expired: nothing left to end
    log.warning("%s token revocation answered HTTP %s", spec.label, response.status_code)
    return False


def _json_error(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def secret_from_token(token: Mapping) -> dict:
    """The part of a token response worth storing: access and refresh token, expiry, scope, type.

    ``expires_at`` is absolute epoch seconds (an int, which is what authlib's expiry check reads),
    computed from ``expires_in`` when the response only had that.
    """
    secret = {key: token[key] for key in STORED_TOKEN_KEYS if token.get(key) is not None}
    moment = expires_at(token)
    if moment is not None:
        secret["expires_at"] = int(moment.timestamp())
    return secret


def expires_at(token: Mapping) -> datetime | None:
    """When the access token expires, as an aware UTC datetime (for ``token_expires_at``); None if the
    provider did not say. Reads ``expires_at`` (epoch seconds), else ``expires_in`` from now."""
    value = token.get("expires_at")
    if value is not None:
        try:
            return datetime.fromtimestamp(int(float(value)), UTC)
        except (TypeError, ValueError, OverflowError):
            pass
    seconds = token.get("expires_in")
    if seconds is not None:
        try:
            return datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=int(seconds))
        except (TypeError, ValueError, OverflowError):
            return None
    return None
