"""A short-lived in-process cache ("micro-cache") of the public page's anonymous answers.

A scheduling page under load is asked the same few URLs over and over (the page, its month and day
fragments, ``slots.json``), and every answer is the same for every anonymous visitor for a while. So a
GET of a view marked ``@micro_cached`` is answered from this process's memory when the same request was
answered less than ``PAGE_CACHE_SECONDS`` ago (0 switches it off; the tests run with it off).

What is stored, and what is never:

* The key is the scheme, the host, the host's tenant, the path, the full query string, the locale and
  whether htmx asked for a fragment: two hosts, tenants, languages or queries never share an entry.
* Only requests with none of the app's cookies (session, remember-me, booking prefill) are served from or
  stored in it: those are the ones whose answer can depend on who asks. Other cookies (a tenant's own
  analytics on its domain) are never read by the app, so they do not matter.
* Only a 200 that sets no cookie, left the session untouched and was not marked per-visitor by its view
  (``skip()``: the booking form, with its CSRF token and idempotency key) is stored; with the view's page,
  so it can be dropped.

Staleness: an entry lives ``PAGE_CACHE_SECONDS`` at most. Every commit in this process that writes a
booking, a page, a rep, a tenant or a domain drops the entries of that page (or tenant) at once (an
SQLAlchemy ``after_flush`` hook notes them, ``after_commit`` drops them, a rolled-back transaction
forgets them, a rolled-back savepoint inside one that commits does not; so bookings, cancellations,
reschedules and the rep's own edits made by this process are never served stale); other processes see
them within the TTL. That is safe because no decision is taken from the cache: booking (POST) always
re-checks the slot and the P4/C11 switches in the database, answering 409 for a time taken meanwhile.
The bound is documented in docs/architecture.md.
"""

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import wraps

import sqlalchemy as sa
from flask import Flask, Response, current_app, g, has_app_context, request, session
from flask_babel import get_locale

from app.extensions import db
from app.pages.models import Booking, SchedulingPage
from app.tenants.models import Domain, Tenant, User
from app.web import tenancy
from app.web.htmx import is_fragment_request

EXTENSION = "termin.page_cache"
MAX_ENTRIES = 4096
PREFILL_COOKIE = "termin_prefill"  # app.pages.public's; repeated here so the cache needs no view import

# The clock entries expire by; tests pin it (monkeypatch ``app.pages.cache.clock``).
clock: Callable[[], float] = time.monotonic


@dataclass(frozen=True)
class Entry:
    expires: float
    page_id: int
    tenant_id: int | None
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    noindex: bool

    def response(self) -> Response:
        response = Response(self.body, status=self.status, headers=list(self.headers))
        response.vary.add("Cookie")  # the answer depends on the app's cookies: with one, it is not this
        return response


class PageCache:
    """A bounded LRU of ``Entry``s with an index by page and by tenant, safe across threads."""

    def __init__(self, max_entries: int = MAX_ENTRIES):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> Entry | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry.expires <= clock():
                if entry is not None:
                    del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: Hashable, entry: Entry) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def drop(self, *, page_ids: set[int] = frozenset(), tenant_ids: set[int] = frozenset()) -> None:
        """Forget every entry of these pages and of every page of these tenants."""
        if not page_ids and not tenant_ids:
            return
        with self._lock:
            for key in [
                k for k, e in self._entries.items() if e.page_id in page_ids or e.tenant_id in tenant_ids
            ]:
                del self._entries[key]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0


def page_cache(app: Flask | None = None) -> PageCache:
    app = app or current_app
    cache = app.extensions.get(EXTENSION)
    if cache is None:
        cache = app.extensions.setdefault(EXTENSION, PageCache())
    return cache


def ttl() -> float:
    return float(current_app.config.get("PAGE_CACHE_SECONDS") or 0)


def has_app_cookie() -> bool:
    """The request carries a cookie the app reads (so its answer may be this visitor's own)."""
    names = {PREFILL_COOKIE, current_app.config.get("SESSION_COOKIE_NAME") or "session"}
    names.add(current_app.config.get("REMEMBER_COOKIE_NAME") or "remember_token")
    names.add(current_app.config["REMEMBER_ME_COOKIE"])
    return any(name in request.cookies for name in names)


def request_key() -> tuple | None:
    """The cache key of this request, or None when it must not be cached at all."""
    if request.method != "GET" or ttl() <= 0 or has_app_cookie():
        return None
    tenant = g.get("tenant")
    return (
        request.scheme,
        g.get("host") or request.host,
        tenant.id if tenant is not None else None,
        request.path,
        request.query_string,
        str(get_locale() or ""),
        is_fragment_request(),
    )


def serve(page_id: int, tenant_id: int) -> None:
    """Called by a view once it knows which page it answers for: its answer may be stored with that page,
    under the page's tenant (on the app host the request itself has none), so switching the rep's or the
    company's pages off drops it."""
    g.page_cache_page = page_id
    g.page_cache_tenant = tenant_id


def skip() -> None:
    """Called by a view whose answer is this visitor's own (a form with a CSRF token): never store it."""
    g.page_cache_skip = True


def _storable(response: Response) -> bool:
    return (
        response.status_code == 200
        and g.get("page_cache_page") is not None
        and not g.get("page_cache_skip")
        and "Set-Cookie" not in response.headers
        and not session.modified
        and not response.is_streamed
    )


def micro_cached(view: Callable) -> Callable:
    """Answer the view's anonymous GETs from the micro-cache, and store its cacheable answers there."""

    @wraps(view)
    def cached_view(*args, **kwargs):
        key = request_key()
        if key is None:
            return view(*args, **kwargs)
        cache = page_cache()
        entry = cache.get(key)
        if entry is not None:
            g.noindex = entry.noindex
            g.page_cache_hit = True
            return entry.response()
        response = current_app.make_response(view(*args, **kwargs))
        if _storable(response):
            tenant = g.get("tenant")
            cache.put(
                key,
                Entry(
                    expires=clock() + ttl(),
                    page_id=g.page_cache_page,
                    tenant_id=tenant.id if tenant is not None else g.get("page_cache_tenant"),
                    status=response.status_code,
                    headers=tuple(response.headers.items()),
                    body=response.get_data(),
                    noindex=g.get("noindex", True),
                ),
            )
        return response

    return cached_view


# --- Dropping what a commit changed -------------------------------------------------------------------------

_DROPS = "termin.page_cache.drops"


def _collect(session, _flush_context) -> None:
    """after_flush: note the pages and tenants whose public answers the flushed rows change."""
    drops = session.info.setdefault(_DROPS, {"pages": set(), "tenants": set(), "hosts": set()})
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Booking):
            if obj.page_id is not None:
                drops["pages"].add(obj.page_id)
        elif isinstance(obj, SchedulingPage):
            if obj.id is not None:
                drops["pages"].add(obj.id)
        elif isinstance(obj, Tenant):
            drops["tenants"].add(obj.id)
        elif isinstance(obj, (User, Domain)):
            drops["tenants"].add(obj.tenant_id)
            if isinstance(obj, Domain):
                drops["hosts"].add(obj.hostname)


def _apply(session) -> None:
    """after_commit: drop what the committed transaction changed (in this process; others wait the TTL)."""
    if session.in_nested_transaction():
        return  # only a SAVEPOINT was released; the transaction around it may still roll back
    drops = session.info.pop(_DROPS, None)
    if not drops or not has_app_context():
        return
    page_cache().drop(page_ids=drops["pages"], tenant_ids=drops["tenants"])
    tenancy.forget_hosts(drops["hosts"], drops["tenants"])


def _discard(session, transaction) -> None:
    """after_transaction_end: a rolled-back outermost transaction changed nothing to drop. A savepoint's
    end keeps what was noted, as the transaction around it may still commit (dropping more is harmless)."""
    if transaction.parent is None:
        session.info.pop(_DROPS, None)


def install(app: Flask) -> None:
    """Hook the cache's invalidation into the app's session (once per process)."""
    page_cache(app)
    if not sa.event.contains(db.session, "after_flush", _collect):
        sa.event.listen(db.session, "after_flush", _collect)
        sa.event.listen(db.session, "after_commit", _apply)
        sa.event.listen(db.session, "after_transaction_end", _discard)
