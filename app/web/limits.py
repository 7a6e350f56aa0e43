"""Rate limits (S1): who may do how much, counted by Flask-Limiter (``app.extensions.limiter``).

Counters live in Redis in production (``RATELIMIT_STORAGE_URI``, the app's ``REDIS_URL`` unless set) and in
the process's memory in the embedded demo and the tests. Every limit is a setting in the ``limits`` notation
("10 per 15 minutes", several joined by ";"), read when a request is checked, so ``TERMIN_RATELIMIT_*``
changes it without code. They are listed, with why each is what it is, in docs/security.md.

A request over a limit is answered 429 with ``Retry-After`` (seconds) by ``rate_limited``: the translated
error page, or ``{"error": "rate_limited", "retry_after": s, "message": ...}`` when the client asks for JSON.
A refused request runs no view, so it writes nothing.

Keys: the client address is ``request.remote_addr``, which ``ProxyFix`` sets from X-Forwarded-For only when
``PROXY_COUNT`` says how many proxies to believe (app/__init__.py); otherwise a forged header changes
nothing. Sign-in is also counted per account, so spreading guesses over many addresses does not help.
"""

import math
import time
from datetime import UTC, datetime

from flask import Response, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_limiter import RateLimitExceeded
from limits import parse_many

from app.extensions import limiter
from app.web.htmx import is_fragment_request


def client_ip() -> str:
    """The client's address, as ProxyFix left it (the socket's peer unless PROXY_COUNT trusts a proxy)."""
    return request.remote_addr or "unknown"


def _setting(name: str):
    return lambda: current_app.config[name]


def limit(setting: str, *, key, scope: str, methods=("POST",), deduct_when=None):
    """Limit a view by the setting ``setting``, counted under ``scope`` per ``key()``."""
    return limiter.limit(
        _setting(setting),
        key_func=key,
        scope=scope,
        methods=list(methods) if methods else None,
        deduct_when=deduct_when,
    )


def form_email() -> str:
    """The email a form (or JSON body) names, normalised; "" when there is none."""
    value = request.form.get("email")
    if value is None and request.is_json:
        body = request.get_json(silent=True)
        value = body.get("email") if isinstance(body, dict) else None
    return str(value or "").strip().lower()[:254]


def try_spend(setting: str, scope: str, key: str) -> bool:
    """Count one use of ``setting`` for ``key`` outside a view's decorator (a mail about to be queued);
    False when the limit is spent, and nothing is counted then."""
    items = parse_many(current_app.config[setting])
    strategy = limiter.limiter
    identifiers = (current_app.config["RATELIMIT_KEY_PREFIX"], scope, key)
    if not all(strategy.test(item, *identifiers) for item in items):
        return False
    for item in items:
        strategy.hit(item, *identifiers)
    return True


def retry_at(setting: str, scope: str, key: str) -> datetime:
    """When ``key`` may next spend ``setting`` (now if it may already): the latest reset of a spent window."""
    items = parse_many(current_app.config[setting])
    identifiers = (current_app.config["RATELIMIT_KEY_PREFIX"], scope, key)
    resets = [
        stats.reset_time
        for stats in (limiter.limiter.get_window_stats(item, *identifiers) for item in items)
        if stats.remaining <= 0
    ]
    return datetime.fromtimestamp(max(resets, default=time.time()), UTC)


def _retry_after(error: RateLimitExceeded) -> int:
    """Seconds until the breached limit lets the next request through (at least one)."""
    current = limiter.current_limit
    if current is not None:
        return max(1, math.ceil(current.reset_at - time.time()))
    return max(1, int(error.limit.limit.get_expiry()))


def wants_json() -> bool:
    if request.is_json or request.path.endswith(".json"):
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def rate_limited(error: RateLimitExceeded) -> Response:
    """429 with Retry-After: JSON for clients that ask for it, else the error page (or its fragment)."""
    seconds = _retry_after(error)
    minutes = math.ceil(seconds / 60)
    message = ngettext(
        "Too many attempts. Please wait %(num)d minute and try again.",
        "Too many attempts. Please wait %(num)d minutes and try again.",
        minutes,
    )
    if wants_json():
        response = jsonify({"error": "rate_limited", "retry_after": seconds, "message": message})
    else:
        template = "errors/_message.html" if is_fragment_request() else "errors/page.html"
        html = render_template(
            template,
            status=429,
            title=_("Too many attempts"),
            message=message,
            on_app_host=g.get("on_app_host", False),
        )
        response = Response(html, mimetype="text/html")
    response.status_code = 429
    response.headers["Retry-After"] = str(seconds)
    return response
