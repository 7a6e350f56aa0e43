"""Flask configuration: embedded defaults, overlaid by the environment, then by the caller's dict.

Every setting can be given as ``TERMIN_<NAME>`` (values are parsed as JSON when they look like it, as
``Flask.config.from_prefixed_env`` does). ``DATABASE_URL`` and ``REDIS_URL`` are also read unprefixed,
because that is what hosting platforms set.
"""

import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

ENV_PREFIX = "TERMIN"


class ConfigError(RuntimeError):
    """A required setting is missing or unusable; the message says which and how to set it."""


def defaults(instance_path: str) -> dict:
    """Settings for the embedded demo: SQLite under instance/, no Redis, cookies over plain HTTP."""
    return {
        "ENV": "development",
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{Path(instance_path) / 'termin.db'}",
        "REDIS_URL": None,
        # A pooled connection is tested before use, so the first requests after a PostgreSQL restart get a
        # fresh one instead of failing on a dead one.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        # What a 503 (PostgreSQL or Redis unavailable, app/web/outage.py) asks clients to wait.
        "OUTAGE_RETRY_AFTER_SECONDS": 10,
        # The host that serves the application itself; every other host must be a verified tenant domain.
        "APP_HOST": "app.localhost",
        "PREFERRED_URL_SCHEME": "http",
        # The port public links carry when a job (no request to copy it from) builds them; None: the
        # scheme's own. Only the demo needs it (it serves on :8000).
        "PUBLIC_PORT": None,
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": False,
        "WTF_CSRF_TIME_LIMIT": None,  # tied to the session instead, so a tab left open overnight still works
        "MAX_CONTENT_LENGTH": 1024 * 1024,
        "INVITATION_DAYS": 7,
        # A signed-in session ends server-side after this many days (or at sign-out, sign-out everywhere,
        # a password change or reset); "Keep me signed in" lasts REMEMBER_DAYS, renewed at each use.
        "SESSION_DAYS": 14,
        "REMEMBER_DAYS": 30,
        "REMEMBER_ME_COOKIE": "termin_remember",  # ours (app/tenants/views.py), not Flask-Login's
        "PASSWORD_RESET_MINUTES": 60,
        # How long a sign-up's confirmation link works; until it is followed nothing is created.
        "SIGNUP_CONFIRM_HOURS": 24,
        # A page asking visitors to confirm their email holds the chosen time this long for the link.
        "BOOKING_HOLD_MINUTES": 10,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ["en", "pl"],
        # Where the built front-end files are (app/web/assets.py); None: static/dist/.
        "ASSETS_DIR": None,
        # Trust X-Forwarded-Host/-Proto from this many proxies (0: none). Only set it behind a proxy you run.
        "PROXY_COUNT": 0,
        # Strict-Transport-Security max-age on HTTPS responses; None: a year in production, off elsewhere.
        "HSTS_SECONDS": None,
        # Fernet keys, comma-separated, newest first; the demo makes one under instance/.
        "ENCRYPTION_KEYS": None,
        # CalDAV servers on private, loopback or link-local addresses are refused (SSRF) unless allowed;
        # None means: allowed in the demo and tests, refused in production.
        "CALDAV_ALLOW_PRIVATE": None,
        "HTTP_TIMEOUT": 20,
        # GET /readyz gives PostgreSQL and Redis this many seconds each to answer before it says 503.
        "READY_TIMEOUT_SECONDS": 2,
        # Log lines: "json" (one object per line) or "text"; None: json in production, text otherwise.
        "LOG_FORMAT": None,
        # Public scheduling pages: anonymous GETs (page, fragments, slots.json) and the host -> domain lookup
        # are kept this many seconds in each process (app/pages/cache.py); 0 switches both caches off.
        "PAGE_CACHE_SECONDS": 5,
        # How jobs run: "rq" (Redis + `make worker`), "thread" (in-process, the embedded demo) or "eager"
        # (right after the commit, in the caller's thread: tests). None: rq when REDIS_URL is set.
        "JOBS_MODE": None,
        # Delivery attempts of one outbox row (a provider write, an email) before it is marked failed.
        "OUTBOX_MAX_ATTEMPTS": 12,
        # Outgoing mail. Without SMTP_HOST (the embedded demo) each message is written as an .eml file to
        # MAIL_DIR (None: instance/mail/) instead; in production mail then waits until SMTP_HOST is set.
        "SMTP_HOST": None,
        "SMTP_PORT": 587,
        "SMTP_USERNAME": None,
        "SMTP_PASSWORD": None,
        "SMTP_STARTTLS": True,
        "SMTP_TIMEOUT": 20,
        "MAIL_FROM": "Termin <no-reply@termin.localhost>",
        "MAIL_DIR": None,
        # A sync claim not renewed for this long means no worker has been able to finish it (none running?):
        # the health probe says so on the calendar ("sync did not finish"). A job RQ lists as queued this
        # long, but found in no queue, was lost with part of Redis and is queued again.
        "SYNC_STALE_SECONDS": 600,
        # The sweeper (`make sweeper`; a thread in the embedded demo) looks for due work this often, reading
        # at most SWEEP_BATCH_SIZE rows per query.
        "SWEEP_INTERVAL_SECONDS": 15,
        # A running job renews its lease (a calendar's sync claim, an outbox attempt; RQ's heartbeat every
        # lease / 4) while it works; one not renewed for this long belongs to a dead worker and is queued
        # again by the next sweep, so a killed job is retried within lease + sweep interval (app/leases.py).
        "JOB_LEASE_SECONDS": 60,
        # RQ stops a job (and counts it failed, to be retried) that runs longer than this, per queue.
        "JOB_TIMEOUT_SECONDS": {"sync": 900, "writes": 300, "mail": 300},
        "SWEEP_BATCH_SIZE": 500,
        # Each connected account is probed (app/sync/health.py) this often.
        "HEALTH_INTERVAL_SECONDS": 900,
        # How often each synced calendar asks its provider for changes, and how far ahead recurring events
        # are expanded into busy blocks (C8).
        "SYNC_INTERVAL_SECONDS": 300,
        "SYNC_HORIZON_DAYS": 400,
        # OAuth clients; a provider whose client id is empty shows how to configure it instead of a button.
        "GOOGLE_CLIENT_ID": "",
        "GOOGLE_CLIENT_SECRET": "",
        "GOOGLE_AUTHORIZE_URL": "https://accounts.google.com/o/oauth2/v2/auth",
        "GOOGLE_TOKEN_URL": "https://oauth2.googleapis.com/token",
        "GOOGLE_REVOKE_URL": "https://oauth2.googleapis.com/revoke",
        "GOOGLE_USERINFO_URL": "https://openidconnect.googleapis.com/v1/userinfo",
        "GOOGLE_API_URL": "https://www.googleapis.com/calendar/v3",
        "MICROSOFT_CLIENT_ID": "",
        "MICROSOFT_CLIENT_SECRET": "",
        "MICROSOFT_AUTHORIZE_URL": "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        "MICROSOFT_TOKEN_URL": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        "MICROSOFT_GRAPH_URL": "https://graph.microsoft.com/v1.0",
        # Rate limits (app/web/limits.py, docs/security.md): Flask-Limiter's counters live in Redis when
        # REDIS_URL is set (None: there, else in this process's memory, as in the demo).
        "RATELIMIT_STORAGE_URI": None,
        "RATELIMIT_STRATEGY": "moving-window",
        "RATELIMIT_KEY_PREFIX": "termin-limits",
        # Redis down: keep counting in each process's memory rather than fail every limited request.
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_HEADERS_ENABLED": False,  # Retry-After is set on the 429 itself
        # Failed sign-ins: per account (whoever tries) and per client address (whichever accounts).
        "RATELIMIT_SIGNIN_ACCOUNT": "10 per 15 minutes",
        "RATELIMIT_SIGNIN_IP": "30 per 15 minutes",
        # Forms anyone may post, per client address.
        "RATELIMIT_SIGNUP_IP": "10 per hour",
        "RATELIMIT_INVITATION_IP": "20 per hour",
        "RATELIMIT_PASSWORD_RESET_IP": "10 per hour",
        # Reset or sign-up emails one address may receive, however many people ask.
        "RATELIMIT_ACCOUNT_MAIL": "3 per hour",
        # Public booking: tries per client address and page; bookings made per visitor email (any page).
        "RATELIMIT_BOOKING_IP": "10 per hour;20 per day",
        "RATELIMIT_BOOKING_EMAIL": "5 per day",
        # Emails to one visitor address (confirmations, changes, cancellations), whatever asked for them.
        "RATELIMIT_VISITOR_MAIL": "10 per day",
        # Anonymous reads of scheduling pages and slots.json, per client address over every page.
        "RATELIMIT_PUBLIC_READ_IP": "300 per minute",
        # Chat widget messages from visitors: per conversation, and per client address over all of them
        # (a new conversation is a message too).
        "RATELIMIT_CHAT_CONVERSATION": "6 per minute",
        "RATELIMIT_CHAT_IP": "20 per minute;200 per day",
        # The chat widget (app/chat): how often the visitor's panel and the Inbox ask for new messages, and
        # how recently a member must have had the Inbox open to count as online.
        "CHAT_POLL_SECONDS": 2,
        "CHAT_ONLINE_MINUTES": 5,
        # Sales emails one rep may send from contacts' records (app/emails): a guard against a runaway
        # script or a stolen session mailing the whole CRM through the company's sender.
        "RATELIMIT_SALES_EMAIL": "60 per hour",
    }


# What production must be told, and the environment variable that tells it.
PRODUCTION_REQUIRED = {
    "SECRET_KEY": f"{ENV_PREFIX}_SECRET_KEY",
    "REDIS_URL": "REDIS_URL",
    "ENCRYPTION_KEYS": f"{ENV_PREFIX}_ENCRYPTION_KEYS",
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
    if config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # An unreachable server answers a 503 within seconds instead of holding the request for minutes.
        options = config["SQLALCHEMY_ENGINE_OPTIONS"] = dict(config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options["connect_args"] = {"connect_timeout": 5, **options.get("connect_args", {})}
    if config["JOBS_MODE"] is None:
        config["JOBS_MODE"] = "rq" if config.get("REDIS_URL") or config["ENV"] == "production" else "thread"
    if config["HSTS_SECONDS"] is None:
        config["HSTS_SECONDS"] = 365 * 24 * 3600 if config["ENV"] == "production" else 0
    if config["RATELIMIT_STORAGE_URI"] is None:
        config["RATELIMIT_STORAGE_URI"] = config.get("REDIS_URL") or "memory://"
    if config["CALDAV_ALLOW_PRIVATE"] is None:
        config["CALDAV_ALLOW_PRIVATE"] = config["ENV"] != "production"
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
        return
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = _local_secret("secret_key", instance_path, lambda: secrets.token_urlsafe(48))
    if not config.get("ENCRYPTION_KEYS"):
        config["ENCRYPTION_KEYS"] = _local_secret("encryption_key", instance_path, _fernet_key)


def _local_secret(name: str, instance_path: str, make) -> str:
    """A per-checkout secret kept under instance/, so demo sessions and stored tokens survive a restart."""
    path = Path(instance_path) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def _fernet_key() -> str:
    return Fernet.generate_key().decode()
