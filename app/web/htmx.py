"""Small helpers for views that answer both full-page and htmx fragment requests."""

from flask import Response, redirect, render_template, request

from app.extensions import htmx


def is_fragment_request() -> bool:
    """True when htmx will swap part of the page (not boosted navigation, not a history restore)."""
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def render_page_or_fragment(page: str, fragment: str, **context) -> str:
    return render_template(fragment if is_fragment_request() else page, **context)


def hx_redirect(url: str) -> Response:
    """Send the browser to ``url``: an HX-Redirect for htmx, a 303 for a plain form post."""
    if htmx:
        response = Response(status=200)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url, 303)


def vary_on_hx_request(response: Response) -> Response:
    # The same URL answers a whole page or a fragment; caches must keep them apart.
    if request.headers.get("HX-Request") or response.mimetype == "text/html":
        response.vary.add("HX-Request")
    return response
