"""Security headers on every response (S3), set by one ``after_request`` rather than an extension: the rules
are few, and which routes may be framed depends on our own blueprints.

* ``Content-Security-Policy``: scripts, styles, fonts and fetches from Termin's own origin only, no inline
  script or style (templates carry none: behaviour lives in ``static/js``), no plugins, no ``<base>``
  tricks. ``frame-ancestors 'none'`` (and ``X-Frame-Options: DENY`` for old browsers) everywhere except the
  public booking routes (blueprint ``booking``: the page, its slots, the booking and its manage pages),
  which any site may embed in an ``<iframe>`` (E3).
* ``Referrer-Policy: strict-origin-when-cross-origin``: links to other sites never carry a path, so a
  booking's manage token or a reset link cannot leak through a Referer.
* ``X-Content-Type-Options: nosniff``.
* ``Strict-Transport-Security`` on responses served over HTTPS when ``HSTS_SECONDS`` is set (production:
  a year), for that host only: a tenant's custom domain is never told to force HTTPS on its subdomains.
"""

from flask import Response, current_app, g, request

# The chat widget's panel (app/chat/widget.py) is framed by the customer's website like a booking page.
FRAMABLE_BLUEPRINTS = frozenset({"booking", "chat_widget"})

_POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
)
APP_POLICY = "; ".join((*_POLICY, "frame-ancestors 'none'"))
FRAMABLE_POLICY = "; ".join(_POLICY)


def is_framable() -> bool:
    return request.blueprint in FRAMABLE_BLUEPRINTS


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    if is_framable():
        headers["Content-Security-Policy"] = FRAMABLE_POLICY
        # A view that frames pages of other hosts itself (the chat panel frames the scheduling page a
        # meeting link names) lists their origins in ``g.frame_src``.
        if g.get("frame_src"):
            headers["Content-Security-Policy"] += "; frame-src 'self' " + " ".join(g.frame_src)
    else:
        headers["Content-Security-Policy"] = APP_POLICY
        headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "strict-origin-when-cross-origin"
    headers["X-Content-Type-Options"] = "nosniff"
    seconds = int(current_app.config.get("HSTS_SECONDS") or 0)
    if seconds and request.is_secure:
        headers["Strict-Transport-Security"] = f"max-age={seconds}"
    return response
