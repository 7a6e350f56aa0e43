"""A 401 from Google or Graph is not "revoked" until a refresh fails (issue 10 item 8).

Against the Google and Graph emulators, which accept the tokens of the authlib OAuth server fake: an access
token the provider ended early is refreshed once (the authorization server decides) and the call is sent
again; only a refresh refused with ``invalid_grant``, or a 401 to a token just refreshed, is
``AuthRevoked``, and only that puts the account inactive.
"""

from contextlib import closing
from dataclasses import dataclass

import pytest

from app.extensions import db
from app.sync import engine, oauth
from app.sync import services as sync
from app.sync.providers.base import AuthRevoked, CalendarProvider
from app.sync.providers.google import GoogleCalendarProvider
from app.sync.providers.microsoft import GraphCalendarProvider
from tests import factories
from tests.fakes import oauth_server as fake
from tests.fakes.google_calendar import google_harness  # noqa: F401
from tests.fakes.graph import HARNESS_NOW, graph_harness  # noqa: F401
from tests.sync.test_oauth import connect

oauth_server_session = fake.oauth_server_session
oauth_server = fake.oauth_server


@dataclass
class Account:
    """One provider account whose API takes the OAuth server's tokens."""

    name: str
    harness: object
    oauth_server: fake.OAuthServer
    config: dict
    secret: dict
    stored: list[dict]

    def provider(self, secret: dict | None = None) -> CalendarProvider:
        session = oauth.authorized_session(self.config, self.name, secret or self.secret, self.stored.append)
        if self.name == "google":
            emulator = self.harness.emulator
            return GoogleCalendarProvider(
                session, api_url=emulator.api_url, userinfo_url=emulator.userinfo_url
            )
        return GraphCalendarProvider(
            session, graph_url=self.harness.emulator.graph_url, clock=lambda: HARNESS_NOW
        )

    def api_requests(self) -> int:
        return self.harness.request_count


@pytest.fixture(params=["google", "microsoft"])
def account(request, oauth_server) -> Account:
    harness = request.getfixturevalue("google_harness" if request.param == "google" else "graph_harness")
    oauth_server.sign_in(harness.account_email)
    config = {"HTTP_TIMEOUT": 5, **oauth_server.app_settings()}
    token = connect(config, request.param)
    harness.emulator.set_token_validator(oauth_server.validate_token)
    return Account(request.param, harness, oauth_server, config, oauth.secret_from_token(token), [])


def test_a_token_ended_early_is_refreshed_once_and_the_call_goes_through(account):
    account.oauth_server.expire_access_tokens()  # the provider ends it; our expires_at still says valid
    with closing(account.provider()) as provider:
        calendars = provider.list_calendars()
    assert calendars
    assert account.oauth_server.refresh_count == 1
    [stored] = account.stored  # the new token is handed back to be stored
    assert stored["access_token"] != account.secret["access_token"]
    assert account.oauth_server.validate_token(stored["access_token"]) == account.harness.account_email


def test_a_revoked_grant_is_auth_revoked_after_one_refused_refresh(account):
    account.oauth_server.revoke_all_for(account.harness.account_email)
    with closing(account.provider()) as provider, pytest.raises(AuthRevoked) as raised:
        provider.list_calendars()
    assert "no longer accepts" in raised.value.reason
    assert account.stored == []
    assert account.oauth_server.refresh_count == 0


def test_a_401_right_after_a_fresh_token_is_auth_revoked_without_a_second_refresh(account):
    account.oauth_server.expire_access_tokens()
    account.harness.emulator.set_token_validator(lambda _token: None)  # the API refuses every token
    before = account.api_requests()
    with closing(account.provider()) as provider, pytest.raises(AuthRevoked):
        provider.list_calendars()
    assert account.oauth_server.refresh_count == 1
    assert len(account.stored) == 1
    assert account.api_requests() - before == 2  # the call, and its one retry after the refresh


def test_a_token_ended_early_leaves_the_account_active_in_a_sync(account, app_ctx):
    tenant = factories.make_tenant("Acme")
    rep = factories.make_user(tenant, seat="sales")
    with closing(account.provider()) as provider:
        connection = sync.connect(
            tenant,
            rep,
            provider=account.name,
            account=provider.account(),
            calendars=provider.list_calendars(),
            secret=account.secret,
        )
    db.session.flush()
    calendar = connection.default_calendar
    account.oauth_server.expire_access_tokens()

    with closing(account.provider()) as provider:
        report = engine.sync_calendar(calendar, provider, now=HARNESS_NOW)

    assert report.outcome != "auth_revoked"
    assert connection.status == "active"
    assert sync.booking_paused_reason(tenant, rep) is None

    account.oauth_server.revoke_all_for(account.harness.account_email)
    with closing(account.provider(account.stored[-1])) as provider:
        report = engine.sync_calendar(calendar, provider, now=HARNESS_NOW)
    assert report.outcome == "auth_revoked"
    assert connection.status == "inactive"
