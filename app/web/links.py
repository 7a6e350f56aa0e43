"""Absolute links built from a host at the moment they are shown or sent, never stored (D3).

A page's host can change (a rep moves it to another domain), so what is stored is the page and its
domain; the link is made here each time. The port: a request knows the one it came in on (the demo
serves everything on :8000); a job has no request, so PUBLIC_PORT says it (None: the scheme's default).
"""

from flask import current_app, has_request_context, request


def _port() -> str | None:
    if has_request_context():
        host = request.host
        if not host.startswith("[") and ":" in host:
            return host.rsplit(":", 1)[1]
        return None
    port = current_app.config.get("PUBLIC_PORT")
    return str(port) if port else None


def external_url(host: str, path: str) -> str:
    """``scheme://host[:port]/path`` for ``host``, with the scheme and port the app is reached on."""
    scheme = request.scheme if has_request_context() else current_app.config["PREFERRED_URL_SCHEME"]
    port = _port()
    default = {"http": "80", "https": "443"}.get(scheme)
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{scheme}://{netloc}{path}"


def app_host_url(path: str) -> str:
    """An absolute link on the app host (the CRM, settings)."""
    return external_url(current_app.config["APP_HOST"], path)
