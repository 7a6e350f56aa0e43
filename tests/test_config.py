import pytest

from app import create_app
from app.config import ConfigError, from_environment


def test_production_without_required_settings_fails_fast_naming_them(monkeypatch, tmp_path):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    with pytest.raises(ConfigError) as error:
        create_app({"ENV": "production"})
    message = str(error.value)
    assert "TERMIN_SECRET_KEY is not set" in message
    assert "REDIS_URL is not set" in message
    assert "TERMIN_ENCRYPTION_KEYS is not set" in message
    assert "DATABASE_URL must name a PostgreSQL database" in message
    assert "TERMIN_APP_HOST" in message


def test_production_with_its_settings_starts_with_secure_cookies(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://termin@db.internal/termin")
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6379/0")
    monkeypatch.setenv("TERMIN_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("TERMIN_APP_HOST", "App.Termin.Example")
    monkeypatch.setenv("TERMIN_ENCRYPTION_KEYS", "q8Wd3C6wXlV2x3m0m7b0bYp2bN9qQH5cZ8s7uTt1k2E=")
    app = create_app({"ENV": "production"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://termin@db.internal/termin"
    assert app.config["APP_HOST"] == "app.termin.example"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["CALDAV_ALLOW_PRIVATE"] is False  # no SSRF into the provider's own network


def test_environment_overrides_defaults_and_caller_overrides_environment(monkeypatch):
    monkeypatch.setenv("TERMIN_APP_HOST", "from-env.example")
    monkeypatch.setenv("TERMIN_INVITATION_DAYS", "3")
    assert create_app().config["INVITATION_DAYS"] == 3
    assert create_app().config["APP_HOST"] == "from-env.example"
    assert create_app({"APP_HOST": "from-caller.example"}).config["APP_HOST"] == "from-caller.example"


def test_platform_database_urls_get_the_psycopg_driver():
    assert from_environment({"DATABASE_URL": "postgresql://u@h/d"}) == {
        "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://u@h/d"
    }
