"""The ``ask`` endpoint of Caddy's on-demand TLS (deploy/Caddyfile): may Caddy get a certificate for a name?

Caddy asks ``GET /tls/ask?domain=<name>`` before it requests a certificate for a name it has not seen, the
first time a visitor's TLS handshake names it. The answer is yes (200) only for a **verified** domain of some
tenant; an unknown, pending, failed or removed name gets 404 and no certificate, so nobody can make us ask a
certificate authority for names that are not our tenants' (and run into its rate limits). Caddy calls it on
loopback, by address: it is served on every host, before tenancy looks the host up.
"""

from flask import Blueprint, request

from app.tenants import services as tenants
from app.web.tenancy import any_host, normalise_host

bp = Blueprint("tls", __name__)


@bp.get("/tls/ask")
@any_host
def ask():
    """200 when ``domain`` is a verified domain of some tenant, else 404 (Caddy then issues nothing)."""
    name = normalise_host(request.args.get("domain", ""))
    if not name or tenants.get_verified_domain(name) is None:
        return "no\n", 404, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
    return "yes\n", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
