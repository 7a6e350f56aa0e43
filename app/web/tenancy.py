"""Which tenant a request is for, decided by its Host header alone (D6).

The app host serves the application. A verified domain of a tenant serves only that tenant's public
routes (views marked with ``@public``). A domain its tenant removed serves only the views marked
``@follows_old_links`` (a scheduling page, which answers a 301 to where the page lives now), so links
already sent in emails keep working (D3). Every other host gets 404, before any view runs.

With ``PAGE_CACHE_SECONDS`` set, a GET's host -> verified domain lookup is kept that long in this
process (see ``_cached_domain``), so a domain removed or failed in another process stops serving within
it; in this process its commit forgets the host at once (app/pages/cache.py). POSTs always look it up.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import sqlalchemy as sa
from flask import abort, current_app, g, request

from app.extensions import db
from app.tenants import services as tenants
from app.tenants.models import Domain, Tenant

PUBLIC_ATTRIBUTE = "termin_public"
OLD_LINKS_ATTRIBUTE = "termin_follows_old_links"
ANY_HOST_ATTRIBUTE = "termin_any_host"


def any_host(view: Callable) -> Callable:
    """Mark a view every host serves before any lookup (health checks, the TLS ``ask``): no tenant, no I/O."""
    setattr(view, ANY_HOST_ATTRIBUTE, True)
    return view


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
    if _view_attribute(request.endpoint, ANY_HOST_ATTRIBUTE):
        g.on_app_host, g.tenant, g.domain, g.retired_host = False, None, None, False
        return
    if host == current_app.config["APP_HOST"]:
        g.on_app_host, g.tenant, g.domain, g.retired_host = True, None, None, False
        return
    g.on_app_host = False
    g.retired_host = False
    domain = _cached_domain(host) if request.method == "GET" else tenants.get_verified_domain(host)
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


# --- The host cache -----------------------------------------------------------------------------------------

HOSTS_EXTENSION = "termin.host_cache"
MAX_HOSTS = 4096
_hosts_lock = threading.Lock()

# The clock entries expire by; tests pin it (monkeypatch ``app.web.tenancy.clock``).
clock: Callable[[], float] = time.monotonic


def _host_cache() -> OrderedDict:
    return current_app.extensions.setdefault(HOSTS_EXTENSION, OrderedDict())


def _snapshot(obj) -> dict:
    return {attr.key: getattr(obj, attr.key) for attr in sa.inspect(type(obj)).column_attrs}


def _revive(cls, values: dict):
    """A persistent, clean instance in this request's session from stored column values: no query."""
    obj = sa.inspect(cls).class_manager.new_instance()
    for key, value in values.items():
        sa.orm.attributes.set_committed_value(obj, key, value)
    sa.orm.make_transient_to_detached(obj)
    db.session.add(obj)
    return obj


def _cached_domain(host: str) -> Domain | None:
    """``get_verified_domain(host)`` with its tenant, remembered ``PAGE_CACHE_SECONDS`` (0: not at all)."""
    seconds = float(current_app.config.get("PAGE_CACHE_SECONDS") or 0)
    if seconds <= 0:
        return tenants.get_verified_domain(host)
    cache = _host_cache()
    with _hosts_lock:
        hit = cache.get(host)
        if hit is not None and hit[0] <= clock():
            del cache[host]
            hit = None
    identity = sa.orm.util.identity_key
    if hit is not None and db.session.identity_map.get(identity(Domain, hit[1]["id"])) is None:
        tenant = db.session.identity_map.get(identity(Tenant, hit[2]["id"])) or _revive(Tenant, hit[2])
        domain = _revive(Domain, hit[1])
        sa.orm.attributes.set_committed_value(domain, "tenant", tenant)
        return domain
    domain = tenants.get_verified_domain(host)
    if domain is not None:
        entry = (clock() + seconds, _snapshot(domain), _snapshot(domain.tenant), domain.tenant_id)
        with _hosts_lock:
            cache[host] = entry
            cache.move_to_end(host)
            while len(cache) > MAX_HOSTS:
                cache.popitem(last=False)
    return domain


def forget_hosts(hosts: Iterable[str] = (), tenant_ids: Iterable[int] = ()) -> None:
    """Drop these hosts' and these tenants' remembered domains (a commit changed them)."""
    hosts, tenant_ids = set(hosts), set(tenant_ids)
    if not hosts and not tenant_ids:
        return
    cache = _host_cache()
    with _hosts_lock:
        for host in [h for h, entry in cache.items() if h in hosts or entry[3] in tenant_ids]:
            del cache[host]
