"""Termin: connected calendars, a small CRM and scheduling pages on tenants' own domains."""

import os
from pathlib import Path

from flask import Flask, current_app, g, has_request_context, redirect, request, session, url_for
from flask_babel import format_date, format_time, get_locale, lazy_gettext
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

from app import cli, logs, models  # noqa: F401  (models: every model is mapped before the first query)
from app import config as config_module
from app import timefmt as timefmt_module
from app.brand.views import bp as brand_bp
from app.chat.views import bp as chat_bp
from app.chat.widget import bp as chat_widget_bp
from app.crm.views import bp as crm_bp
from app.domains.tls import bp as tls_bp
from app.domains.views import bp as domains_bp
from app.emails.views import bp as emails_bp
from app.extensions import babel, csrf, db, htmx, limiter, login_manager, migrate
from app.pages import notifications  # noqa: F401  (connects the booking signals to the emails)
from app.pages.editor import bp as pages_bp
from app.pages.public import bp as booking_bp
from app.settings.views import bp as settings_bp
from app.sweeper import start_in_process
from app.tenants.views import bp as tenants_bp
from app.tenants.views import set_remember_cookie
from app.web import assets, outage
from app.web.assets import bp as assets_bp
from app.web.boundary import TerminFlask
from app.web.converters import RouteMap
from app.web.errors import register_error_handlers
from app.web.forms import time_zone_names
from app.web.headers import add_security_headers
from app.web.health import bp as health_bp
from app.web.htmx import vary_on_hx_request
from app.web.json import GuardedJSONProvider
from app.web.public import bp as public_bp
from app.web.tenancy import resolve_host

ROOT = Path(__file__).resolve().parent.parent


class Termin(TerminFlask):
    json_provider_class = GuardedJSONProvider  # request bodies nest at most MAX_DEPTH (web/json.py)
    url_map_class = RouteMap  # one converter per kind of path argument for every route (web/converters.py)


def create_app(config: dict | None = None) -> Flask:
    """Build the application: embedded defaults, then the environment, then ``config``."""
    app = Termin(
        __name__,
        instance_path=str(ROOT / "instance"),
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(config_module.defaults(app.instance_path))
    app.config.from_prefixed_env(config_module.ENV_PREFIX)
    app.config.update(config_module.from_environment(os.environ))
    app.config.update(config or {})
    config_module.finalise(app.config, app.instance_path)

    if app.config["PROXY_COUNT"]:
        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)

    register_extensions(app)
    assets.init_app(app)
    logs.init_app(app)  # first of the request hooks, so every line of a request carries its id
    register_blueprints(app)
    register_request_hooks(app)
    register_template_helpers(app)
    register_cli(app)
    if app.config["JOBS_MODE"] == "thread" and not app.config["TESTING"]:
        # The embedded demo has no `make worker`: its sweeper is a thread of the serving process.
        start_in_process(app)
    return app


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True, compare_type=True)
    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(ROOT / "translations"),
    )
    login_manager.init_app(app)
    login_manager.login_view = "tenants.login"
    login_manager.login_message = lazy_gettext("Please sign in to see this page.")
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(tenants_bp)
    app.register_blueprint(crm_bp)
    app.register_blueprint(emails_bp)
    app.register_blueprint(settings_bp)
    app.register_blueprint(domains_bp)
    app.register_blueprint(brand_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(booking_bp)
    app.register_blueprint(chat_bp)
    app.register_blueprint(chat_widget_bp)
    app.register_blueprint(public_bp)
    app.register_blueprint(assets_bp)
    app.register_blueprint(health_bp)
    app.register_blueprint(tls_bp)
    register_error_handlers(app)
    outage.register(app)

    @app.get("/")
    def index():
        if current_user.is_authenticated:
            return redirect(url_for("crm.contacts"))
        return redirect(url_for("tenants.login"))


def register_request_hooks(app: Flask) -> None:
    app.before_request(resolve_host)
    app.after_request(vary_on_hx_request)
    app.after_request(set_remember_cookie)
    app.after_request(add_security_headers)


def select_locale() -> str | None:
    if not has_request_context():
        return None  # a job or a command: the default, unless it forces the recipient's
    languages = babel_languages()
    chosen = request.args.get("lang")
    if chosen in languages:
        session["locale"] = chosen
        return chosen
    if getattr(g, "on_app_host", False) and current_user.is_authenticated:
        return current_user.locale
    if session.get("locale") in languages:
        return session["locale"]
    return request.accept_languages.best_match(languages) or languages[0]


def select_timezone() -> str | None:
    if not has_request_context():
        return None
    if getattr(g, "on_app_host", False) and current_user.is_authenticated:
        return current_user.time_zone
    return None


def babel_languages() -> list[str]:
    return current_app.config["LANGUAGES"]


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.globals.update(get_locale=get_locale, time_zone_names=time_zone_names)
    timefmt_module.register(app)

    @app.template_filter("when")
    def when(value) -> str:
        """A moment in the viewer's time zone and locale, to the minute: "Jul 1, 2030 10:00 AM"."""
        try:
            return f"{format_date(value, 'medium')} {format_time(value, 'short')}"
        except OverflowError:
            # Within hours of datetime's ends (a provider's event in 9999, say) the viewer's zone has no
            # such day; the moment is still shown, in UTC and saying so.
            day, moment = (
                format_date(value, "medium", rebase=False),
                format_time(value, "short", rebase=False),
            )
            return f"{day} {moment} UTC"


def register_cli(app: Flask) -> None:
    cli.register(app)
