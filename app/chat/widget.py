"""The chat widget on the customer's website: the script and the visitor's panel (every route ``@public``).

* ``GET /widget.js``: the launcher script. On a tenant's verified domain the host names the tenant; on the
  app host ``?id=<widget id>`` does. A disabled (or never enabled) widget answers 200 with a script that
  does nothing, so a site keeps working when chat is off; an id that is not the host's tenant's gets the
  same no-op, so no tenant's settings are ever served on another's domain.
* ``GET /widget/<widget id>/panel``: the panel, an HTML page the script frames. It carries no secret and
  reads no cookie: the conversation's secret arrives in the URL fragment (never sent to a server) or by
  ``postMessage`` from the script, and every request the panel makes carries it in ``X-Chat-Secret``.
* ``GET /widget/<widget id>/messages?after=<id>``: the panel's poller (every ``CHAT_POLL_SECONDS``).
* ``POST /widget/<widget id>/messages`` (``body``): the visitor writes; without a secret it starts a
  conversation and answers the new secret in ``X-Chat-Secret``, which the panel hands to the script.
* ``POST /widget/<widget id>/email`` (``email``): the visitor's email, when asked; links the CRM contact.

A widget id of another tenant on this tenant's domain, or a secret of another tenant's conversation, is a
404 (a secret that matches nothing on a poll, too: the panel then starts afresh). The visitor's forms are
exempt from the session CSRF check (app/chat/forms.py says why) and rate limited per conversation and per
address.
"""

import json
from functools import cache
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, g, render_template, request, url_for
from flask_babel import force_locale

from app.chat import services
from app.chat.forms import VisitorEmailForm, VisitorMessageForm
from app.chat.links import meeting_url, message_view
from app.db import utcnow
from app.domains import services as domains
from app.extensions import csrf
from app.web import limits
from app.web.links import external_url
from app.web.tenancy import public

bp = Blueprint("chat_widget", __name__)

SCRIPT_SOURCE = Path(__file__).resolve().parent.parent.parent / "static" / "js" / "chat-widget.js"
NO_OP = "/* Termin chat is not enabled for this site. */\n"
CONVERSATION_HEADER = "X-Chat-Secret"


@cache
def _script_source() -> str:
    return SCRIPT_SOURCE.read_text(encoding="utf-8")


def _host_settings(widget_id: str | None):
    """The widget this host may serve: its tenant's on a tenant domain, the id's on the app host."""
    if g.on_app_host:
        return services.settings_by_widget_id(widget_id or "")
    found = services.find_settings(g.tenant)
    if found is None or (widget_id is not None and widget_id != found.widget_id):
        return None
    return found


def _here(path: str) -> str:
    return external_url(g.host, path)


@bp.get("/widget.js")
@public
def script():
    found = _host_settings(request.args.get("id"))
    headers = {
        "Content-Type": "application/javascript; charset=utf-8",
        "Cache-Control": "public, max-age=300",
    }
    if found is None or not found.enabled:
        return NO_OP, 200, headers
    config = {
        "panel": _here(url_for("chat_widget.panel", widget_id=found.widget_id)),
        "widget": found.widget_id,
        "color": services.widget_color(found),
        "position": found.position,
        "label": {"en": "Chat with us", "pl": "Czat z nami"}[found.language],
        "close": {"en": "Close chat", "pl": "Zamknij czat"}[found.language],
    }
    # json.dumps of str values cannot end the script; "</" is escaped anyway for the odd inline copy.
    text = _script_source().replace("__TERMIN_CONFIG__", json.dumps(config).replace("</", "<\\/"))
    return text, 200, headers


def _widget_or_404(widget_id: str):
    found = _host_settings(widget_id)
    if found is None or not found.enabled:
        abort(404)
    return found


def _secret() -> str:
    return request.headers.get(CONVERSATION_HEADER, "")


def _conversation(found):
    """The visitor's conversation (None: no secret sent). A secret that names none of this tenant's: 404."""
    secret = _secret()
    if not secret:
        return None
    conversation = services.find_conversation(found.tenant, secret)
    if conversation is None:
        abort(404)
    return conversation


def _conversation_key() -> str:
    secret = _secret()
    return services.hash_secret(secret) if secret else f"new:{limits.client_ip()}"


def _render(found, template: str, **context) -> str:
    with force_locale(found.language):
        return render_template(template, settings=found, **context)


@bp.get("/widget/<widget_id>/panel")
@public
def panel(widget_id: str):
    found = _widget_or_404(widget_id)
    now = utcnow()
    # Book a meeting opens a scheduling page in a frame inside the panel: any host of this tenant.
    hosts = [current_app.config["APP_HOST"], *(d.hostname for d in domains.verified_domains(found.tenant))]
    g.frame_src = [external_url(host, "") for host in hosts]
    online = services.anyone_online(found.tenant, now, current_app.config["CHAT_ONLINE_MINUTES"])
    book = found.booking_page if found.booking_page is not None else None
    return _render(
        found,
        "chat/panel.html",
        online=online,
        book_title=book.title if book is not None else "",
        book_url=meeting_url(book, None) if book is not None else "",
        book_minutes=book.durations[0] if book is not None else 0,
        form=VisitorMessageForm(formdata=None),
        poll_seconds=current_app.config["CHAT_POLL_SECONDS"],
        color=services.widget_color(found),
    )


def _poll_answer(found, conversation, after: int, asked: bool) -> str:
    messages = services.messages_after(conversation, after) if conversation is not None else []
    ask = not asked and services.should_ask_email(found, conversation, utcnow())
    return _render(
        found,
        "chat/_panel_poll.html",
        messages=[message_view(m, conversation) for m in messages],
        last_id=messages[-1].id if messages else after,
        ask=ask,
        asked=asked or ask,
        email_form=VisitorEmailForm(formdata=None),
        poll_seconds=current_app.config["CHAT_POLL_SECONDS"],
    )


@bp.get("/widget/<widget_id>/messages")
@public
def poll(widget_id: str):
    found = _widget_or_404(widget_id)
    conversation = _conversation(found)
    if conversation is None:
        abort(404)
    after = max(0, min(request.args.get("after", 0, type=int) or 0, 2**31 - 1))
    return _poll_answer(found, conversation, after, request.args.get("asked") == "1")


@bp.post("/widget/<widget_id>/messages")
@public
@csrf.exempt
@limits.limit("RATELIMIT_CHAT_IP", key=limits.client_ip, scope="chat-ip")
@limits.limit("RATELIMIT_CHAT_CONVERSATION", key=_conversation_key, scope="chat-conversation")
def send(widget_id: str):
    found = _widget_or_404(widget_id)
    conversation = _conversation(found)
    form = VisitorMessageForm()
    if not form.validate():
        return _render(found, "chat/_panel_form.html", form=form), 422
    try:
        started = services.visitor_says(found.tenant, conversation, form.body.data, utcnow())
    except services.ChatError as error:
        form.body.errors.append(error.message)
        return _render(found, "chat/_panel_form.html", form=form), 422
    headers = {}
    if started is not None:
        conversation = started.conversation
        headers[CONVERSATION_HEADER] = started.secret
    after = request.args.get("after", 0, type=int) or 0
    html = _render(found, "chat/_panel_form.html", form=VisitorMessageForm(formdata=None))
    html += _poll_answer(found, conversation, max(0, min(after, 2**31 - 1)), request.args.get("asked") == "1")
    return html, 200, headers


@bp.post("/widget/<widget_id>/email")
@public
@csrf.exempt
@limits.limit("RATELIMIT_CHAT_IP", key=limits.client_ip, scope="chat-ip")
def email(widget_id: str):
    found = _widget_or_404(widget_id)
    conversation = _conversation(found)
    if conversation is None:
        abort(404)
    form = VisitorEmailForm()
    if not form.validate():
        return _render(found, "chat/_panel_email.html", email_form=form), 422
    services.give_email(found.tenant, conversation, form.email.data, utcnow())
    return _render(found, "chat/_panel_email.html", email_form=None, given=form.email.data)


def no_store(response: Response) -> Response:
    """The panel's answers are one visitor's conversation: never kept by a shared cache."""
    if (
        request.endpoint
        and request.endpoint.startswith("chat_widget.")
        and request.endpoint != "chat_widget.script"
    ):
        response.headers["Cache-Control"] = "no-store"
    return response


bp.after_request(no_store)
