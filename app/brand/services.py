"""The brand: set by an admin (company name, colour, logo, favicon) and by each rep (photo, headline), read
by the public pages, the emails and the chat widget through ``brand_for(tenant)``.

Images: ``images.process`` proves and re-encodes an upload; ``store`` keeps it as a ``BrandImage`` named by
its content hash; ``/brand/<name>`` (app/brand/views.py) serves it for ever from any process, the first
time from the database and afterwards from ``image_cache`` (bounded, in memory), so a page's repeat visit
costs no query for its images (and, with ``Cache-Control: immutable``, usually no request at all).
"""

import threading
from collections import OrderedDict
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app

from app.brand import colors, images
from app.brand.models import BrandImage
from app.errors import BrandError, NotAllowed
from app.extensions import db
from app.tenants.models import Tenant, User
from app.web.links import app_host_url

IMAGE_PREFIX = "/brand/"
COLORS_PREFIX = "/brand/colors/"
EXTENSION = "termin.brand_images"
IMAGE_CACHE_BYTES = 32 * 1024 * 1024  # per process: ~1,000 logos and photos


@dataclass(frozen=True)
class Brand:
    """What a tenant's public pages, emails and widget show. ``accent`` is always readable with white text
    (4.5:1); ``color`` is what the admin chose. Paths are relative (served by every host of the tenant);
    ``logo_url`` is absolute on the app host, for emails."""

    name: str
    color: str | None
    palette: colors.Palette
    logo: str | None
    favicon: str | None

    @property
    def accent(self) -> str:
        return self.palette.accent

    @property
    def is_set(self) -> bool:
        return bool(self.color or self.logo or self.favicon)

    @property
    def logo_path(self) -> str | None:
        return image_path(self.logo)

    @property
    def favicon_path(self) -> str | None:
        return image_path(self.favicon)

    @property
    def stylesheet_path(self) -> str | None:
        """The CSS of the brand colour (no inline styles: the CSP allows none), or None for Termin's own."""
        return f"{COLORS_PREFIX}{self.color.lstrip('#')}.css" if self.color else None

    @property
    def logo_url(self) -> str | None:
        return app_host_url(self.logo_path) if self.logo else None


def brand_for(tenant: Tenant) -> Brand:
    """The tenant's brand; everything unset falls back to the company's name and Termin's colour."""
    return Brand(
        name=(tenant.brand_name or "").strip() or tenant.name,
        color=tenant.brand_color,
        palette=colors.palette(tenant.brand_color),
        logo=tenant.brand_logo,
        favicon=tenant.brand_favicon,
    )


def image_path(filename: str | None) -> str | None:
    return f"{IMAGE_PREFIX}{filename}" if filename else None


def photo_path(user: User) -> str | None:
    """The rep's photo as the pages link it."""
    return image_path(user.photo)


def image_url(filename: str | None) -> str | None:
    """An image's absolute address on the app host (emails; the Open Graph preview builds its own)."""
    return app_host_url(image_path(filename)) if filename else None


# --- Changing the brand -------------------------------------------------------------------------------------


def store(tenant: Tenant, processed: images.Processed, kind: str) -> str:
    """Keep a processed image for the tenant (once per content) and return its file name."""
    existing = db.session.scalar(
        sa.select(BrandImage.id).where(
            BrandImage.tenant_id == tenant.id, BrandImage.filename == processed.filename
        )
    )
    if existing is None:
        db.session.add(
            BrandImage(
                tenant_id=tenant.id,
                kind=kind,
                filename=processed.filename,
                content_type=processed.content_type,
                width=processed.width,
                height=processed.height,
                data=processed.data,
            )
        )
        db.session.flush()
    return processed.filename


def update_brand(
    tenant: Tenant,
    actor: User,
    *,
    name: str,
    color: str | None,
    logo: bytes | None = None,
    favicon: bytes | None = None,
    remove_logo: bool = False,
    remove_favicon: bool = False,
) -> Brand:
    """An admin sets the company's brand. Images are given as the uploaded bytes (None: unchanged); with
    no favicon of its own, a new logo also gives one (the logo fitted into a square)."""
    if not actor.is_admin or actor.tenant_id != tenant.id:
        raise NotAllowed()
    chosen = None
    if color:
        chosen = colors.normalise_hex(color)
        if chosen is None:
            raise BrandError("brand_color", "color")
    # Every upload is decoded before anything changes, so one bad file leaves the brand as it was.
    new_logo = images.process(logo, images.LOGO, "logo") if logo is not None else None
    new_favicon = images.process(favicon, images.FAVICON, "favicon") if favicon is not None else None
    derived = None
    if new_logo is not None and new_favicon is None and (remove_favicon or not tenant.brand_favicon):
        derived = images.process(logo, images.FAVICON, "logo")
    tenant.brand_name = (name or "").strip()
    tenant.brand_color = chosen
    if remove_logo:
        tenant.brand_logo = None
    if remove_favicon:
        tenant.brand_favicon = None
    if new_logo is not None:
        tenant.brand_logo = store(tenant, new_logo, "logo")
    if new_favicon is not None:
        tenant.brand_favicon = store(tenant, new_favicon, "favicon")
    elif derived is not None:
        tenant.brand_favicon = store(tenant, derived, "favicon")
    db.session.flush()
    return brand_for(tenant)


def update_public_profile(
    user: User, *, headline: str, photo: bytes | None = None, remove_photo: bool = False
) -> User:
    """A rep's photo and one-line headline, shown beside their name on their scheduling pages."""
    processed = images.process(photo, images.PHOTO, "photo") if photo is not None else None
    user.headline = " ".join((headline or "").split())
    if remove_photo:
        user.photo = None
    if processed is not None:
        user.photo = store(user.tenant, processed, "photo")
    db.session.flush()
    return user


# --- Serving images -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CachedImage:
    tenant_ids: frozenset[int]  # who stored these bytes (the same logo may be two tenants')
    content_type: str
    data: bytes


class ImageCache:
    """Images by file name, least recently served dropped first past ``max_bytes``. Entries never go stale:
    a file name is its content's hash."""

    def __init__(self, max_bytes: int = IMAGE_CACHE_BYTES):
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, CachedImage] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, filename: str) -> CachedImage | None:
        with self._lock:
            entry = self._entries.get(filename)
            if entry is not None:
                self._entries.move_to_end(filename)
            return entry

    def put(self, filename: str, entry: CachedImage) -> None:
        with self._lock:
            old = self._entries.pop(filename, None)
            if old is not None:
                self._size -= len(old.data)
            self._entries[filename] = entry
            self._size += len(entry.data)
            while self._size > self.max_bytes and len(self._entries) > 1:
                _name, dropped = self._entries.popitem(last=False)
                self._size -= len(dropped.data)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._size = 0


def image_cache() -> ImageCache:
    """This app's (this process's) cache of served images."""
    return current_app.extensions.setdefault(EXTENSION, ImageCache())


def get_image(filename: str, *, tenant_id: int | None = None) -> CachedImage | None:
    """The stored image of that name, or None. With ``tenant_id`` (a custom domain's tenant), only if
    that tenant stored it; a cached entry that does not list the tenant is read again (it may have
    stored the same bytes since)."""
    entry = image_cache().get(filename)
    if entry is not None and (tenant_id is None or tenant_id in entry.tenant_ids):
        return entry
    rows = db.session.execute(
        sa.select(BrandImage.tenant_id, BrandImage.content_type, BrandImage.data).where(
            BrandImage.filename == filename
        )
    ).all()
    if not rows:
        return None
    entry = CachedImage(frozenset(row.tenant_id for row in rows), rows[0].content_type, bytes(rows[0].data))
    image_cache().put(filename, entry)
    if tenant_id is not None and tenant_id not in entry.tenant_ids:
        return None
    return entry
