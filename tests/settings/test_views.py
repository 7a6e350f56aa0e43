"""The rep's calendar settings page against real peers: Radicale, the OAuth server, the Google emulator."""

import re
import socket
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from app.extensions import db
from app.mail.models import OutboxMessage
from app.sync import services as sync
from app.sync.models import Calendar, CalendarConnection
from tests import factories
from tests.fakes import radicale
from tests.fakes.google_calendar import _running_emulator
from tests.fakes.oauth_server import DEFAULT_USER_EMAIL


@dataclass(frozen=True)
class Reps:
    rep: str
    colleague: str
    stranger: str
    seatless: str


@pytest.fixture
def reps(app):
    with app.app_context():
        acme = factories.make_tenant("Acme")
        globex = factories.make_tenant("Globex")
        made = Reps(
            rep=factories.make_user(acme, seat="sales").email,
            colleague=factories.make_user(acme, seat="sales").email,
            stranger=factories.make_user(globex, seat="sales").email,
            seatless=factories.make_user(acme, seat="none").email,
        )
        db.session.commit()
    return made


@pytest.fixture
def caldav(radicale_server):
    radicale.reset(radicale_server)
    return radicale_server


def caldav_form(server, **overrides):
    shared = "\n".join(
        [
            server.calendar_url(radicale.OWNER2, radicale.SHARED),
            server.calendar_url(radicale.OWNER2, radicale.BUSY),
        ]
    )
    return {
        "server_url": server.url,
        "username": radicale.REP,
        "password": radicale.PASSWORDS[radicale.REP],
        "shared_urls": shared,
        **overrides,
    }


def connection_count(app) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(CalendarConnection))


def only_connection(app) -> dict:
    with app.app_context():
        connection = db.session.scalar(sa.select(CalendarConnection))
        return {
            "id": connection.id,
            "calendars": {
                c.name: (c.id, c.access, c.checks_availability, c.status) for c in connection.calendars
            },
            "calendar_sync": connection.calendar_sync,
            "scheduling_pages": connection.scheduling_pages,
            "secret": connection.secret_encrypted,
        }


def connect_caldav(client, server, **overrides):
    response = client.post_form("/settings/calendars/caldav", caldav_form(server, **overrides))
    assert response.status_code == 303, response.get_data(as_text=True)


def checkbox(page: str, element_id: str) -> str:
    match = re.search(rf'<input[^>]*id="{element_id}"[^>]*>', page)
    assert match, f"no checkbox {element_id}"
    return match.group(0)


def error_for(page: str, field: str) -> str:
    match = re.search(rf'<p class="error"[^>]*data-field="{field}">(.*?)</p>', page, re.S)
    assert match, f"no error shown for {field}"
    return match.group(1)


def test_connecting_a_caldav_account_turns_both_options_on(app, client, reps, caldav):
    client.login(reps.rep)
    connect_caldav(client, caldav)
    stored = only_connection(app)
    assert stored["calendar_sync"]
    assert stored["scheduling_pages"]
    assert radicale.PASSWORDS[radicale.REP] not in stored["secret"]
    assert stored["calendars"]["Team (shared)"][1] == "reader"
    assert stored["calendars"]["Owner2 busy"][1] == "freebusy"
    with app.app_context():  # connecting syncs the account at once: busy times do not wait for a sweep
        synced = {c.name: c.last_synced_at for c in db.session.scalars(sa.select(Calendar))}
    assert synced["Calendar"] is not None
    assert synced["Owner2 busy"] is None  # free/busy-only calendars are never read

    page = client.get("/settings/calendars").get_data(as_text=True)
    prefix = f"connection-{stored['id']}"
    assert " checked" in checkbox(page, f"{prefix}-calendar_sync")
    assert " checked" in checkbox(page, f"{prefix}-scheduling_pages")
    assert " checked" not in checkbox(page, f"{prefix}-task_sync")
    assert "shared with free/busy only" in page


def test_choices_apply_on_save_and_free_busy_calendars_are_refused(app, client, reps, caldav):
    client.login(reps.rep)
    connect_caldav(client, caldav)
    stored = only_connection(app)
    prefix = f"connection-{stored['id']}"
    calendars = stored["calendars"]
    form = {
        f"{prefix}-calendar_sync": "y",
        f"{prefix}-default_calendar": str(calendars["Calendar"][0]),
        f"{prefix}-availability": [str(calendars["Team (shared)"][0])],
    }
    response = client.post_form(f"/settings/calendars/{stored['id']}", form, htmx=True)
    assert response.status_code == 200
    assert "Saved" in response.get_data(as_text=True)
    saved = only_connection(app)
    assert not saved["scheduling_pages"]
    assert saved["calendars"]["Team (shared)"][2]

    form[f"{prefix}-availability"] = [str(calendars["Owner2 busy"][0])]
    response = client.post_form(f"/settings/calendars/{stored['id']}", form, htmx=True)
    assert response.status_code == 422
    assert "free/busy only" in error_for(response.get_data(as_text=True), "availability")
    assert only_connection(app)["calendars"] == saved["calendars"]


def test_task_sync_is_disabled_with_the_reason_without_a_seat(app, client, reps, caldav):
    client.login(reps.seatless)
    connect_caldav(client, caldav)
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert " disabled" in checkbox(page, f"connection-{only_connection(app)['id']}-task_sync")
    assert "Task sync needs a Sales or Service seat" in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"password": "wrong-password"}, "password", "refused this user name and app password"),
        ({"server_url": "http://127.0.0.1:9"}, "server_url", ""),
        ({"server_url": "   "}, "server_url", "Enter the CalDAV server"),
        ({"shared_urls": "ftp://files.example.com/cal"}, "shared_urls", "not an http(s) address"),
        ({"username": "x" * 300}, "username", "At most 255"),
    ],
)
def test_bad_caldav_input_is_named_and_saves_nothing(app, client, reps, caldav, overrides, field, message):
    client.login(reps.rep)
    response = client.post_form("/settings/calendars/caldav", caldav_form(caldav, **overrides))
    assert response.status_code == 422
    assert message in error_for(response.get_data(as_text=True), field)
    assert connection_count(app) == 0


def test_private_addresses_are_refused_when_the_deployment_forbids_them(
    app, client, reps, caldav, monkeypatch
):
    monkeypatch.setitem(app.config, "CALDAV_ALLOW_PRIVATE", False)
    client.login(reps.rep)
    for url in (caldav.url, "http://169.254.169.254/latest", "http://10.0.0.5/dav"):
        response = client.post_form("/settings/calendars/caldav", caldav_form(caldav, server_url=url))
        assert response.status_code == 422
        assert error_for(response.get_data(as_text=True), "server_url")
    assert connection_count(app) == 0


@pytest.mark.parametrize("allow_private", [False, True])
def test_a_server_name_that_does_not_exist_is_server_not_found(
    app, client, reps, caldav, monkeypatch, allow_private
):
    """A typo in the server's name: "server not found" beside the address, not a gaierror (or a 500)."""
    monkeypatch.setitem(app.config, "CALDAV_ALLOW_PRIVATE", allow_private)
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    client.login(reps.rep)
    typo = "https://caldav.fastmial.invalid/dav/"
    response = client.post_form("/settings/calendars/caldav", caldav_form(caldav, server_url=typo))

    assert response.status_code == 422
    message = error_for(response.get_data(as_text=True), "server_url")
    assert "Server not found: there is no server named caldav.fastmial.invalid." in message
    assert "gaierror" not in response.get_data(as_text=True)
    assert connection_count(app) == 0


def test_check_calendars_again_brings_an_inactive_account_back_and_tells_the_rep(app, client, reps, caldav):
    """An account put inactive by a 404 from a server that was not its own (say) works again: *Check
    calendars again* makes it active at once and the rep, who was told of the outage, is told it is back."""
    client.login(reps.rep)
    connect_caldav(client, caldav)
    connection_id = only_connection(app)["id"]
    with app.app_context():
        connection = db.session.get(CalendarConnection, connection_id)
        sync.mark_connection_inactive(connection, "404 Not Found: no calendar home at this address")
        connection.inactive_notified_at = connection.inactive_since
        db.session.commit()
        paused = sync.booking_paused_reason(connection.user.tenant, connection.user)
    assert paused

    response = client.post_form(f"/settings/calendars/{connection_id}/refresh", {})

    assert response.status_code == 303
    with app.app_context():
        connection = db.session.get(CalendarConnection, connection_id)
        assert connection.is_active
        assert connection.inactive_notified_at is None
        assert sync.booking_paused_reason(connection.user.tenant, connection.user) is None
        [mail] = [
            row.payload
            for row in db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send"))
        ]
        assert mail["to"] == [reps.rep]
        assert mail["subject"] == f"Your calendar works again in Termin: “{connection.account_email}”"


def test_lost_calendar_goes_inactive_then_reconnects_or_is_removed(app, client, reps, caldav):
    client.login(reps.rep)
    connect_caldav(client, caldav)
    stored = only_connection(app)
    prefix = f"connection-{stored['id']}"
    team_id = stored["calendars"]["Team (shared)"][0]
    client.post_form(
        f"/settings/calendars/{stored['id']}",
        {
            f"{prefix}-calendar_sync": "y",
            f"{prefix}-scheduling_pages": "y",
            f"{prefix}-availability": [str(team_id)],
        },
    )
    caldav.set_shares({f"{radicale.OWNER2}/{radicale.BUSY}": "f"})  # the owner stops sharing Team
    assert client.post_form(f"/settings/calendars/{stored['id']}/refresh").status_code == 303
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert "Inactive calendars" in page
    assert "Booking with you is paused" in page
    assert only_connection(app)["calendars"]["Team (shared)"][3] == "inactive"

    caldav.set_shares(dict(radicale.DEFAULT_SHARES))  # shared again: reconnect restores the choice
    client.post_form(f"/settings/calendars/{stored['id']}/refresh")
    team = only_connection(app)["calendars"]["Team (shared)"]
    assert team[3] == "active"
    assert team[2], "the availability choice survived"

    caldav.set_shares({f"{radicale.OWNER2}/{radicale.BUSY}": "f"})
    client.post_form(f"/settings/calendars/{stored['id']}/refresh")
    response = client.post_form(f"/settings/calendars/{stored['id']}/calendars/{team_id}/remove")
    assert response.status_code == 303
    assert "Team (shared)" not in only_connection(app)["calendars"]
    assert "Booking with you is paused" not in client.get("/settings/calendars").get_data(as_text=True)


def test_only_inactive_calendars_can_be_removed(app, client, reps, caldav):
    client.login(reps.rep)
    connect_caldav(client, caldav)
    stored = only_connection(app)
    team_id = stored["calendars"]["Team (shared)"][0]
    assert (
        client.post_form(f"/settings/calendars/{stored['id']}/calendars/{team_id}/remove").status_code == 409
    )
    assert "Team (shared)" in only_connection(app)["calendars"]


@pytest.mark.parametrize("who", ["colleague", "stranger"])
def test_other_reps_cannot_see_change_or_disconnect_a_connection(app, client, make_client, reps, caldav, who):
    client.login(reps.rep)
    connect_caldav(client, caldav)
    before = only_connection(app)
    other = make_client()
    other.login(getattr(reps, who))
    assert radicale.REP not in other.get("/settings/calendars").get_data(as_text=True)
    connection_id = before["id"]
    calendar_id = before["calendars"]["Calendar"][0]
    for url in (
        f"/settings/calendars/{connection_id}",
        f"/settings/calendars/{connection_id}/refresh",
        f"/settings/calendars/{connection_id}/calendars/{calendar_id}/remove",
        f"/settings/calendars/{connection_id}/disconnect",
    ):
        assert other.post_form(url, {f"connection-{connection_id}-calendar_sync": ""}).status_code == 404, url
    assert only_connection(app) == before


def test_settings_need_a_signed_in_user_on_the_app_host(app, client, make_client, reps):
    assert client.get("/settings/calendars").status_code == 302
    with app.app_context():
        factories.make_domain(factories.make_tenant(), "book.acme.example")
        db.session.commit()
    assert make_client("book.acme.example").get("/settings/calendars").status_code == 404


def test_unconfigured_oauth_provider_explains_itself(app, client, reps, monkeypatch):
    monkeypatch.setitem(app.config, "GOOGLE_CLIENT_ID", "")
    client.login(reps.rep)
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert "Not configured on this server" in page
    assert "/settings/calendars/setup/google" in page
    help_page = client.get("/settings/calendars/setup/google").get_data(as_text=True)
    assert "Google Calendar API" in help_page
    assert "authorised redirect URI" in help_page


# -- Google through the real OAuth flow --------------------------------------------------------------------


@pytest.fixture
def google(app, oauth_server, monkeypatch, request):
    emulator = _running_emulator(request.config)
    emulator.reset()
    emulator.add_account(DEFAULT_USER_EMAIL, name="Rita Rep")
    emulator.set_token_validator(oauth_server.validate_token)
    for key, value in {**oauth_server.app_settings(), "GOOGLE_API_URL": emulator.api_url}.items():
        monkeypatch.setitem(app.config, key, value)
    return emulator


def authorize(client, oauth_server) -> str:
    """Start the flow in Termin and let the OAuth server approve; returns the callback URL."""
    start = client.get("/settings/calendars/oauth/google/start")
    assert start.status_code == 302
    query = parse_qs(urlsplit(start.location).query)
    assert query["code_challenge_method"] == ["S256"]
    approved = requests.get(start.location, allow_redirects=False, timeout=10)
    assert approved.status_code == 302
    return approved.headers["Location"]


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def test_google_connects_through_oauth_and_disconnect_revokes(app, client, reps, google, oauth_server):
    client.login(reps.rep)
    callback = authorize(client, oauth_server)
    assert client.get(path_of(callback)).status_code == 303
    stored = only_connection(app)
    assert stored["calendar_sync"]
    assert stored["scheduling_pages"]
    with app.app_context():
        connection = db.session.get(CalendarConnection, stored["id"])
        assert connection.provider == "google"
        assert connection.account_email == DEFAULT_USER_EMAIL
        assert connection.default_calendar.external_id == DEFAULT_USER_EMAIL
    assert "refresh_token" not in stored["secret"]

    assert client.post_form(f"/settings/calendars/{stored['id']}/disconnect").status_code == 303
    assert oauth_server.revoked_tokens
    assert connection_count(app) == 0


def test_oauth_callback_with_a_wrong_state_changes_nothing(app, client, reps, google, oauth_server):
    client.login(reps.rep)
    callback = authorize(client, oauth_server)
    forged = re.sub(r"state=[^&]+", "state=forged", path_of(callback))
    response = client.get(forged)
    assert response.status_code == 303
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert "does not belong to the connection you started here" in page
    assert connection_count(app) == 0


def test_oauth_callback_with_an_error_parameter_changes_nothing(app, client, reps, google, oauth_server):
    client.login(reps.rep)
    oauth_server.deny_next_authorization()
    callback = authorize(client, oauth_server)
    assert "error=access_denied" in callback
    client.get(path_of(callback))
    page = client.get("/settings/calendars").get_data(as_text=True)
    assert "cancelled" in page
    assert connection_count(app) == 0


def test_reconnecting_google_keeps_the_same_connection_and_choices(app, client, reps, google, oauth_server):
    client.login(reps.rep)
    client.get(path_of(authorize(client, oauth_server)))
    first = only_connection(app)
    prefix = f"connection-{first['id']}"
    client.post_form(f"/settings/calendars/{first['id']}", {f"{prefix}-calendar_sync": "y"})
    oauth_server.revoke_all_for(DEFAULT_USER_EMAIL)
    client.post_form(f"/settings/calendars/{first['id']}/refresh")
    with app.app_context():
        assert db.session.get(CalendarConnection, first["id"]).status == "inactive"
    client.get(path_of(authorize(client, oauth_server)))
    again = only_connection(app)
    assert again["id"] == first["id"]
    assert not again["scheduling_pages"]
    with app.app_context():
        assert db.session.get(CalendarConnection, first["id"]).status == "active"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Calendar)) >= 1
