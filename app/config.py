"""Flask configuration: embedded defaults, overlaid by the environment, then by the caller's dict.

Every setting can be given as ``TERMIN_<NAME>`` (values are parsed as JSON when they look like it, as
``Flask.config.from_prefixed_env`` does). ``DATABASE_URL`` and ``REDIS_URL`` are also read unprefixed,
because that is what hosting platforms set.
"""

import os
import secrets
from pathlib import Path

ENV_PREFIX = "TERMIN"


class ConfigError(RuntimeError):
    """A required setting is missing or unusable; the message says which and how to set it."""


def defaults(instance_path: str) -> dict:
    """Settings for the embedded demo: SQLite under instance/, no Redis, cookies over plain HTTP."""
    return {
        "ENV": "development",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(instance_path) / 'termin.db'}",
        "REDIS_URL": None,
        # The host that serves the application itself; every other host must be a verified tenant domain.
        "APP_HOST": "app.localhost",
        "PREFERRED_URL_SCHEME": "http",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": False,
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead, so a tab left open overnight still works
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "INVITATION_DAYS": 7,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ["en", "pl"],
        "NODE_MODULES": str(Path(__file__).resolve().parent.parent / "node_modules"),
        # Trust X-Forwarded-Host/-Proto from this many proxies (0: none). Only set it behind a proxy you run.
        "PROXY_COUNT": 0,
    }


# What production must be told, and the environment variable that tells it.
PRODUCTION_REQUIRED = {
    "SECRET_KEY": f"{ENV_PREFIX}_SECRET_KEY",
    "REDIS_URL": "REDIS_URL",
}


def from_environment(environ: os._Environ | dict) -> dict:
    """The settings the environment gives, TERMIN_-prefixed or the two well-known unprefixed names."""
    found = {}
    if environ.get("DATABASE_URL"):
        found["SQLALCHEMY_DATABASE_URI"] = _sqlalchemy_url(environ["DATABASE_URL"])
    if environ.get("REDIS_URL"):
        found["REDIS_URL"] = environ["REDIS_URL"]
    return found


def _sqlalchemy_url(url: str) -> str:
    # Platforms hand out postgres:// URLs; SQLAlchemy wants the driver named, and we ship psycopg 3.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def finalise(config: dict, instance_path: str) -> None:
    """Fill derived settings and refuse to start a production app that lacks a required one."""
    config["SQLALCHEMY_DATABASE_URI"] = _sqlalchemy_url(config["SQLALCHEMY_DATABASE_URI"])
    config["APP_HOST"] = config["APP_HOST"].strip().lower()
    if config["ENV"] == "production":
        problems = [
            f"{variable} is not set" for name, variable in PRODUCTION_REQUIRED.items() if not config.get(name)
        ]
        if config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
            problems.append("DATABASE_URL must name a PostgreSQL database (SQLite is only for the demo)")
        if config["APP_HOST"].endswith("localhost"):
            problems.append(f"{ENV_PREFIX}_APP_HOST must be the public host name of the application")
        if problems:
            raise ConfigError(
                "Termin cannot start in production: " + "; ".join(problems) + ". See docs/operations.md."
            )
        config["SESSION_COOKIE_SECURE"] = config["REMEMBER_COOKIE_SECURE"] = True
        config["PREFERRED_URL_SCHEME"] = "https"
    elif not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _local_secret_key(instance_path)


def _local_secret_key(instance_path: str) -> str:
    """A per-checkout key kept under instance/, so demo sessions survive a restart."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
