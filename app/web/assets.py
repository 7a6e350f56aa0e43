"""Front-end files with content hashes in their names, built once at install time and cached for ever.

``build()`` copies every file of ``SOURCES`` (our CSS and JS, and htmx from npm: package.json pins it) into
``static/dist/`` as ``<name>.<sha256 prefix>.<ext>`` and writes ``static/dist/manifest.json`` (logical name ->
built name). ``make install`` runs it (``scripts/build_assets.py``), so production needs no npm and no
node_modules at run time; ``static/dist/`` is not committed. Templates link through ``asset_url("app.css")``;
``/assets/<built name>`` serves the file with ``Cache-Control: public, max-age=31536000, immutable``: a
changed file has a new name, so a browser never asks again for one it has.

In production a missing manifest stops the app at start (run the build). Elsewhere (the demo, tests) the app
builds on start, so an edited CSS file shows after a restart without a separate step; the build only adds
files (names are content hashes) and replaces the manifest atomically, so two processes may build at once.
"""

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from flask import Blueprint, Flask, abort, current_app, send_from_directory, url_for

from app.config import ConfigError

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "static" / "dist"
MANIFEST = "manifest.json"
# logical name -> where it comes from (relative to the repository; node_modules/ is npm's)
SOURCES = {
    "app.css": "static/css/app.css",
    "booking.css": "static/css/booking.css",
    "app.js": "static/js/app.js",
    "booking.js": "static/js/booking.js",
    "copy.js": "static/js/copy.js",
    "favicon.svg": "static/img/favicon.svg",
    "chat-panel.css": "static/css/chat-panel.css",
    "chat-panel.js": "static/js/chat-panel.js",
    "chat-inbox.css": "static/css/chat-inbox.css",
    "htmx.min.js": "node_modules/htmx.org/dist/htmx.min.js",
}
IMMUTABLE = "public, max-age=31536000, immutable"
EXTENSION = "termin.assets"

bp = Blueprint("assets", __name__, url_prefix="/assets")


def hashed_name(logical: str, content: bytes) -> str:
    """``htmx.min.js`` -> ``htmx.min.3f2a9c0d1e.js``: the hash before the last suffix."""
    stem, dot, suffix = logical.rpartition(".")
    return f"{stem}.{hashlib.sha256(content).hexdigest()[:10]}{dot}{suffix}"


def build(root: Path = ROOT, dist: Path = DIST, *, clean: bool = False) -> dict[str, str]:
    """Write every source into ``dist`` under its hashed name and the manifest; returns the manifest.

    ``clean`` first removes what an earlier build left (the install step does; a running app never does,
    since another process may still serve those files).
    """
    if clean and dist.exists():
        shutil.rmtree(dist)
    dist.mkdir(parents=True, exist_ok=True)
    manifest = {}
    for logical, relative in SOURCES.items():
        source = root / relative
        if not source.is_file():
            raise ConfigError(f"{source} is missing: run `npm ci` (make install does) before building assets")
        content = source.read_bytes()
        built = hashed_name(logical, content)
        target = dist / built
        if not target.exists():
            _write_atomically(target, content)
        manifest[logical] = built
    _write_atomically(dist / MANIFEST, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return manifest


def _write_atomically(target: Path, content: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    with os.fdopen(handle, "wb") as file:
        file.write(content)
    os.chmod(temporary, 0o644)
    os.replace(temporary, target)


def init_app(app: Flask) -> None:
    """Load the manifest (building it outside production) and give templates ``asset_url``."""
    dist = Path(app.config.get("ASSETS_DIR") or DIST)
    if app.config["ENV"] == "production":
        path = dist / MANIFEST
        if not path.is_file():
            raise ConfigError(
                f"{path} is missing: build the front-end files at install time (`make install`, or "
                "`python scripts/build_assets.py` after `npm ci`). See docs/operations.md."
            )
        manifest = json.loads(path.read_text())
    else:
        manifest = build(dist=dist)
    app.extensions[EXTENSION] = {"dir": dist, "manifest": manifest}
    app.jinja_env.globals["asset_url"] = asset_url


def asset_url(logical: str) -> str:
    """The URL of a built file by its logical name (``app.css``, ``htmx.min.js``)."""
    return url_for("assets.built", name=current_app.extensions[EXTENSION]["manifest"][logical])


@bp.get("/<name>")
def built(name: str):
    """One built file; only names the manifest lists, so nothing else in the folder is reachable."""
    assets = current_app.extensions[EXTENSION]
    if name not in assets["manifest"].values():
        abort(404)
    response = send_from_directory(assets["dir"], name, max_age=365 * 24 * 3600)
    response.headers["Cache-Control"] = IMMUTABLE
    return response
