"""Front-end files that come from npm (package.json pins them), served from our own origin, never a CDN."""

from pathlib import Path

from flask import Blueprint, abort, current_app, send_from_directory

bp = Blueprint("assets", __name__, url_prefix="/assets")

# Only these files leave node_modules; nothing else in it is reachable.
VENDORED = {
    "htmx.min.js": ("htmx.org", "dist/htmx.min.js"),
}


@bp.get("/vendor/<name>")
def vendor(name: str):
    """Serve one pinned npm file, cached for a year (the URL changes with the package version)."""
    if name not in VENDORED:
        abort(404)
    package, relative = VENDORED[name]
    root = Path(current_app.config["NODE_MODULES"]) / package
    if not (root / relative).is_file():
        current_app.logger.error("%s is missing: run `npm ci` (make run and make test do)", root / relative)
        abort(404)
    return send_from_directory(root, relative, max_age=365 * 24 * 3600)
