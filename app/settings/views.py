"""The rep's calendar settings (C1, C2, C6-C9, C11): connect accounts, pick calendars, fix inactive ones."""

import logging
from pathlib import Path

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.db import utcnow
from app.settings.forms import CalDAVForm, ConnectionForm
from app.sync import health, oauth
from app.sync import services as sync
from app.sync.providers.base import AuthRevoked, ProviderError
from app.sync.providers.caldav import DiscoveryFailed, ServerAddressRefused, ServerNotFound, UnsafeServerURL
from app.web.htmx import is_fragment_request

bp = Blueprint("settings", __name__, url_prefix="/settings")
log = logging.getLogger(__name__)

OAUTH_PROVIDERS = {"google": "Google Calendar", "microsoft": "Microsoft 365"}
README_SECTIONS = {"google": "Google Calendar OAuth client", "microsoft": "Microsoft 365 OAuth client"}
README = Path(__file__).resolve().parents[2] / "README.md"


@bp.before_request
@login_required
def require_login():
    """Every settings route is the signed-in rep's own."""


def _connection_or_404(connection_id: int):
    return sync.get_connection(current_user.tenant, current_user, connection_id) or abort(404)


def _connection_form(connection, formdata=None) -> ConnectionForm:
    form = ConnectionForm(formdata=formdata, prefix=f"connection-{connection.id}")
    if formdata is None:
        form.calendar_sync.data = connection.calendar_sync
        form.scheduling_pages.data = connection.scheduling_pages
        form.task_sync.data = connection.task_sync
        form.default_calendar.data = connection.default_calendar.id if connection.default_calendar else None
        form.availability.data = [c.id for c in connection.calendars if c.checks_availability]
    return form


def _page(caldav_form: CalDAVForm | None = None, status: int = 200):
    connections = sync.list_connections(current_user.tenant, current_user)
    return render_template(
        "settings/calendars.html",
        connections=connections,
        forms={c.id: _connection_form(c) for c in connections},
        caldav_form=caldav_form or CalDAVForm(formdata=None),
        oauth_providers=OAUTH_PROVIDERS,
        configured={name: oauth.is_configured(current_app.config, name) for name in OAUTH_PROVIDERS},
        readme_sections=README_SECTIONS,
        paused=sync.booking_paused_reason(current_user.tenant, current_user),
        task_sync_blocker=sync.task_sync_blocker,
    ), status


@bp.get("/calendars")
def calendars():
    return _page()


@bp.get("/calendars/setup/<provider>")
def oauth_setup_help(provider: str):
    """The README's section on configuring this provider's OAuth client, as shipped with this server."""
    heading = README_SECTIONS.get(provider) or abort(404)
    return render_template("settings/setup_help.html", heading=heading, text=readme_section(heading))


def readme_section(heading: str) -> str:
    lines = README.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"### {heading}") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("#")), len(lines))
    return "\n".join(lines[start:end]).strip()


@bp.post("/calendars/caldav")
def connect_caldav():
    """Connect a CalDAV account; every refusal lands on the field it is about and saves nothing."""
    form = CalDAVForm()
    if form.validate_on_submit():
        try:
            connection = sync.connect_caldav(
                current_user.tenant,
                current_user,
                server_url=form.server_url.data,
                username=form.username.data,
                password=form.password.data,
                shared_urls=form.shared_url_list,
            )
        except UnsafeServerURL as error:
            form.server_url.errors.append(str(error))
        except ServerNotFound as error:
            form.server_url.errors.append(
                _(
                    "Server not found: there is no server named %(host)s. Check the address for typos.",
                    host=error.host,
                )
            )
        except DiscoveryFailed as error:
            form.server_url.errors.append(str(error))
        except ServerAddressRefused as error:
            form.server_url.errors.append(error.reason)
        except AuthRevoked:
            form.password.errors.append(_("The server refused this user name and app password."))
        except ProviderError as error:
            form.server_url.errors.append(
                _("The server could not be reached: %(reason)s", reason=error.reason)
            )
        else:
            sync.request_connection_sync(connection)
            flash(_("Connected %(account)s.", account=connection.account_email), "success")
            return redirect(url_for("settings.calendars"), 303)
    return _page(caldav_form=form, status=422)


@bp.get("/calendars/oauth/<provider>/start")
def oauth_start(provider: str):
    """Send the rep to Google or Microsoft to grant calendar access (authorization code + PKCE)."""
    if provider not in OAUTH_PROVIDERS:
        abort(404)
    if not oauth.is_configured(current_app.config, provider):
        flash(
            _("%(provider)s is not configured on this server yet.", provider=OAUTH_PROVIDERS[provider]),
            "error",
        )
        return redirect(url_for("settings.calendars"), 303)
    url, state, verifier = oauth.begin(current_app.config, provider, _redirect_uri(provider))
    session["oauth"] = {"provider": provider, "state": state, "verifier": verifier}
    return redirect(url, 302)


def _redirect_uri(provider: str) -> str:
    # Providers only accept registered redirect URIs: always the app host, never a tenant's domain.
    return url_for("settings.oauth_callback", provider=provider, _external=True)


@bp.get("/calendars/oauth/<provider>/callback")
def oauth_callback(provider: str):
    """Where the provider sends the rep back; a wrong state or an error parameter changes nothing."""
    if provider not in OAUTH_PROVIDERS:
        abort(404)
    pending = session.pop("oauth", None) or {}
    try:
        if pending.get("provider") != provider:
            raise oauth.OAuthError(_("This sign-in link is not one we started. Please connect again."))
        token = oauth.finish(
            current_app.config,
            provider,
            _redirect_uri(provider),
            expected_state=pending.get("state"),
            code_verifier=pending.get("verifier"),
            callback_args=request.args.to_dict(),
        )
        connection = sync.connect_oauth(current_user.tenant, current_user, provider, token)
    except oauth.OAuthError as error:
        flash(str(error), "error")
        return redirect(url_for("settings.calendars"), 303)
    except ProviderError as error:
        flash(
            _(
                "%(provider)s did not answer as expected: %(reason)s",
                provider=OAUTH_PROVIDERS[provider],
                reason=error.reason,
            ),
            "error",
        )
        return redirect(url_for("settings.calendars"), 303)
    sync.request_connection_sync(connection)
    flash(_("Connected %(account)s.", account=connection.account_email), "success")
    return redirect(url_for("settings.calendars"), 303)


@bp.post("/calendars/<int:connection_id>")
def save_connection(connection_id: int):
    """Apply one account's checkboxes and calendar choices (they take effect on Save, C2)."""
    connection = _connection_or_404(connection_id)
    form = _connection_form(connection, formdata=request.form)
    status, saved = 422, False
    if form.validate_on_submit():
        choices = sync.ConnectionChoices(
            calendar_sync=form.calendar_sync.data,
            scheduling_pages=form.scheduling_pages.data,
            task_sync=form.task_sync.data,
            default_calendar_id=form.default_calendar.data,
            availability_calendar_ids=frozenset(form.availability.data or ()),
        )
        try:
            sync.save_choices(current_user.tenant, current_user, connection, choices)
        except sync.SettingsRefused as refusal:
            getattr(form, refusal.field).errors.append(refusal.message)
        else:
            # A calendar newly checked for availability needs its busy times now, not at the next sweep.
            sync.request_connection_sync(connection)
            status, saved = 200, True
            form = _connection_form(connection)
    if not is_fragment_request():
        if saved:
            flash(_("Saved."), "success")
            return redirect(url_for("settings.calendars"), 303)
        return _page(status=status)
    return render_template(
        "settings/_connection.html",
        connection=connection,
        form=form,
        saved=saved,
        task_sync_blocker=sync.task_sync_blocker,
    ), status


@bp.post("/calendars/<int:connection_id>/refresh")
def refresh_connection(connection_id: int):
    """Check the account's calendars again, e.g. after an owner shared a calendar back."""
    connection = _connection_or_404(connection_id)
    try:
        sync.refresh_calendars(current_user.tenant, current_user, connection)
    except AuthRevoked as error:  # the connection is now marked inactive, with the provider's reason
        flash(
            _("The account no longer grants access (%(reason)s). Reconnect it.", reason=error.reason), "error"
        )
    except ProviderError as error:
        flash(_("Could not reach the calendar server: %(reason)s", reason=error.reason), "error")
    else:
        health.notify_once(connection, utcnow())  # what works again is told, like the probe tells it
        sync.request_connection_sync(connection)
        flash(_("Calendars of %(account)s checked again.", account=connection.account_email), "success")
    return redirect(url_for("settings.calendars"), 303)


@bp.post("/calendars/<int:connection_id>/calendars/<int:calendar_id>/remove")
def remove_calendar(connection_id: int, calendar_id: int):
    connection = _connection_or_404(connection_id)
    calendar = sync.get_calendar(connection, calendar_id) or abort(404)
    if calendar.is_active:
        abort(409, _("Only an inactive calendar can be removed; uncheck an active one instead."))
    sync.remove_calendar(current_user.tenant, current_user, connection, calendar)
    flash(_("Removed the inactive calendar “%(name)s”.", name=calendar.name), "success")
    return redirect(url_for("settings.calendars"), 303)


@bp.post("/calendars/<int:connection_id>/disconnect")
def disconnect(connection_id: int):
    """Forget the account here and, where the provider allows it, revoke our access there too."""
    connection = _connection_or_404(connection_id)
    revoked = False
    if connection.provider in OAUTH_PROVIDERS:
        revoked = oauth.revoke(current_app.config, connection.provider, sync.secret_of(connection))
    account, provider = connection.account_email, connection.provider
    sync.disconnect(current_user.tenant, current_user, connection)
    if provider == "microsoft" and not revoked:
        flash(
            _(
                "Disconnected %(account)s. To withdraw Termin's access at Microsoft as well, remove it "
                "from your account's app permissions.",
                account=account,
            ),
            "success",
        )
    else:
        flash(_("Disconnected %(account)s.", account=account), "success")
    return redirect(url_for("settings.calendars"), 303)


# -- Sync status (issue #4 item 7) -------------------------------------------------------------------------

STOP_POLLING = 286  # htmx stops polling an element that gets this answer


@bp.context_processor
def _sync_status_helpers():
    """What templates/settings/_sync_status.html needs wherever the account's card is rendered."""
    return {
        "is_syncing": health.is_syncing,
        "synced_calendars": health.synced_calendars,
        "relative": _relative,
        "utcnow": utcnow,
    }


def _relative(moment) -> str:
    """ "3 minutes ago", "in 5 minutes": a moment relative to now, in the rep's language."""
    return format_timedelta(moment - utcnow(), add_direction=True)


def _sync_status(connection):
    # While a sync runs or is due the fragment polls again; once idle, 286 ends the polling.
    status = 200 if health.is_syncing(connection) else STOP_POLLING
    return render_template("settings/_sync_status.html", connection=connection), status


@bp.get("/calendars/<int:connection_id>/status")
def sync_status(connection_id: int):
    """The account's sync status block (self-polling htmx fragment)."""
    return _sync_status(_connection_or_404(connection_id))


@bp.post("/calendars/<int:connection_id>/sync")
def sync_now(connection_id: int):
    """Sync the account's calendars now; answers the status block, which then follows the sync."""
    connection = _connection_or_404(connection_id)
    if not health.sync_now(connection):
        abort(409, _("No calendar of this account is synced now (is the account inactive?)."))
    if not is_fragment_request():
        flash(_("Syncing %(account)s now.", account=connection.account_email), "success")
        return redirect(url_for("settings.calendars"), 303)
    return _sync_status(connection)
