"""Which tenant a request is for, decided by its Host header alone (D6).

The app host serves the application. A verified domain of a tenant serves only that tenant's public
routes (views marked with ``@public``). A domain its tenant removed serves only the views marked
``@follows_old_links`` (a scheduling page, which answers a 301 to where the page lives now), so links
already sent in emails keep working (D3). Every other host gets 404, before any view runs.
"""

from collections.abc import Callable

from flask import abort, current_app, g, request

from app.tenants import services as tenants

PUBLIC_ATTRIBUTE = "termin_public"
OLD_LINKS_ATTRIBUTE = "termin_follows_old_links"


def public(view: Callable) -> Callable:
    """Mark a view as one a tenant's custom domain may serve (scheduling pages, robots.txt)."""
    setattr(view, PUBLIC_ATTRIBUTE, True)
    return view


def follows_old_links(view: Callable) -> Callable:
    """Mark a public view that a removed domain still serves, to redirect old links (implies ``@public``)."""
    setattr(view, OLD_LINKS_ATTRIBUTE, True)
    return public(view)


def normalise_host(raw: str) -> str:
    """``Example.COM:8443`` -> ``example.com``: ports ignored, case folded, a trailing dot dropped."""
    host = raw.strip().lower()
    if host.startswith("["):  # an IPv6 literal: never a tenant domain, but keep it intact
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0].rstrip(".") if ":" in host else host.rstrip(".")


def resolve_host() -> None:
    """before_request: set ``g.tenant``/``g.domain`` for a custom domain, or 404 what no one serves."""
    host = normalise_host(request.host)
    g.host = host
    if host == current_app.config["APP_HOST"]:
        g.on_app_host, g.tenant, g.domain, g.retired_host = True, None, None, False
        return
    g.on_app_host = False
    g.retired_host = False
    domain = tenants.get_verified_domain(host)
    if domain is None and _view_attribute(request.endpoint, OLD_LINKS_ATTRIBUTE):
        domain = tenants.get_removed_domain(host)
        g.retired_host = domain is not None
    if domain is None or not is_public_endpoint(request.endpoint):
        abort(404)
    g.tenant, g.domain = domain.tenant, domain


def is_public_endpoint(endpoint: str | None) -> bool:
    if endpoint is None:
        return False
    if endpoint == "static" or endpoint.startswith("assets."):
        return True
    return _view_attribute(endpoint, PUBLIC_ATTRIBUTE)


def _view_attribute(endpoint: str | None, name: str) -> bool:
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return bool(getattr(view, name, False))
