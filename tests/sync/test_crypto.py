"""Secrets at rest (issue bar): never in clear text in the database or the logs; keys rotate."""

import logging

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.extensions import db
from app.sync import crypto
from app.sync import services as sync
from app.sync.providers.base import Account, RemoteCalendar
from tests import factories

PASSWORD = "clear-text-app-password-1234"


def raw_secret(connection_id: int) -> str:
    return db.session.execute(
        sa.text("SELECT secret_encrypted FROM calendar_connections WHERE id = :id"), {"id": connection_id}
    ).scalar_one()


@pytest.fixture
def connection(app_ctx):
    rep = factories.make_user(factories.make_tenant(), seat="sales")
    return sync.connect(
        rep.tenant,
        rep,
        provider="google",
        account=Account("sub-1", "rep@example.com"),
        calendars=[RemoteCalendar("primary", "Main", "owner", is_primary=True)],
        secret={"access_token": "ya29.CLEAR-ACCESS", "refresh_token": "1//CLEAR-REFRESH", "expires_at": 1},
    )


def test_tokens_are_not_in_the_raw_column(connection):
    raw = raw_secret(connection.id)
    assert "CLEAR-ACCESS" not in raw
    assert "CLEAR-REFRESH" not in raw
    assert sync.secret_of(connection)["refresh_token"] == "1//CLEAR-REFRESH"


def test_rotation_re_encrypts_with_the_new_key_and_old_key_can_then_go(app, connection, monkeypatch):
    old_key = app.config["ENCRYPTION_KEYS"]
    new_key = Fernet.generate_key().decode()
    before = raw_secret(connection.id)
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", f"{new_key},{old_key}")
    assert sync.rotate_secrets() == 1
    after = raw_secret(connection.id)
    assert after != before
    monkeypatch.setitem(app.config, "ENCRYPTION_KEYS", new_key)  # the old key is dropped
    assert crypto.decrypt(after)["access_token"] == "ya29.CLEAR-ACCESS"
    with pytest.raises(crypto.SecretUnreadable):
        crypto.decrypt(before)


def test_rotate_secrets_command(app, connection, monkeypatch):
    db.session.commit()  # the CLI runs in its own app context, through the same test connection
    monkeypatch.setitem(
        app.config, "ENCRYPTION_KEYS", f"{Fernet.generate_key().decode()},{app.config['ENCRYPTION_KEYS']}"
    )
    result = app.test_cli_runner().invoke(args=["rotate-secrets"])
    assert result.exit_code == 0, result.output
    assert "Re-encrypted 1 calendar secret(s)" in result.output


def test_connecting_caldav_logs_no_password(app, client, radicale_server, caplog):
    from tests.fakes import radicale

    radicale.reset(radicale_server)
    with app.app_context():
        user = factories.make_user(factories.make_tenant(), seat="sales")
        email = user.email
        db.session.commit()
    client.login(email)
    caplog.set_level(logging.DEBUG)
    response = client.post_form(
        "/settings/calendars/caldav",
        {
            "server_url": radicale_server.url,
            "username": radicale.REP,
            "password": radicale.PASSWORDS[radicale.REP],
        },
    )
    assert response.status_code == 303
    assert caplog.records, "debug logging was captured"
    assert radicale.PASSWORDS[radicale.REP] not in caplog.text
    with app.app_context():
        row = db.session.execute(sa.text("SELECT secret_encrypted FROM calendar_connections")).scalar_one()
    assert radicale.PASSWORDS[radicale.REP] not in row
