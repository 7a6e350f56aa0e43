"""Uploaded brand images: proven to be PNG or JPEG by decoding them, bounded, and re-encoded by us.

Nothing the visitor's browser receives is the uploaded file itself. Pillow opens the bytes with only its
PNG and JPEG decoders (an SVG, a GIF, HTML or a script named ``logo.png`` is refused), the header's pixel
size is checked before anything is decoded (a "decompression bomb" of a few KB claiming 50,000 x 50,000
pixels never reaches memory), the whole image is then decoded (a truncated or corrupt file is refused),
turned upright from its EXIF orientation, scaled to what the page shows (twice, for sharp screens) and
written anew, which drops every metadata block (EXIF GPS positions included) and anything appended.
"""

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import BrandError

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MIN_SIDE = 16
MAX_SIDE = 6000
MAX_PIXELS = 30_000_000
FORMATS = ("PNG", "JPEG")


@dataclass(frozen=True)
class Kind:
    """How one kind of brand image is stored: the box it is scaled into and how it is written."""

    name: str
    box: tuple[int, int]
    square: str | None  # "crop": filled (a face), "pad": fitted on transparency (a favicon), None: as is
    format: str  # "PNG" (logos keep transparency and sharp edges) or "JPEG" (photos)


LOGO = Kind("logo", (800, 240), None, "PNG")
FAVICON = Kind("favicon", (96, 96), "pad", "PNG")
PHOTO = Kind("photo", (320, 320), "crop", "JPEG")
KINDS = {kind.name: kind for kind in (LOGO, FAVICON, PHOTO)}
EXTENSIONS = {"PNG": "png", "JPEG": "jpg"}
CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg"}


@dataclass(frozen=True)
class Processed:
    data: bytes
    digest: str  # sha256 of ``data``: the stored file's name, so its URL changes whenever it does
    extension: str
    width: int
    height: int

    @property
    def filename(self) -> str:
        return f"{self.digest}.{self.extension}"

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.extension]


def process(data: bytes, kind: Kind, field: str) -> Processed:
    """The stored form of an upload, or ``BrandError`` naming ``field`` and what is wrong."""
    if not data:
        raise BrandError("image_empty", field)
    if len(data) > MAX_UPLOAD_BYTES:
        raise BrandError("image_too_large", field, limit=MAX_UPLOAD_BYTES // (1024 * 1024))
    with warnings.catch_warnings():
        # Pillow's own bomb guard warns (and past twice its limit raises) while opening: both are refusals.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise BrandError("image_too_many_pixels", field, max=MAX_SIDE) from None
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            raise BrandError("image_type", field) from None
        with image:
            width, height = image.size
            if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
                raise BrandError("image_too_many_pixels", field, max=MAX_SIDE)
            if width < MIN_SIDE or height < MIN_SIDE:
                raise BrandError("image_too_small", field, min=MIN_SIDE)
            try:
                image.load()
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning):
                raise BrandError("image_unreadable", field) from None
            return _encode(image, kind)


def _encode(image: Image.Image, kind: Kind) -> Processed:
    image = ImageOps.exif_transpose(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    if kind.square == "crop":
        image = ImageOps.fit(image, kind.box, Image.Resampling.LANCZOS)
    else:
        image.thumbnail(kind.box, Image.Resampling.LANCZOS)
        if kind.square == "pad":
            side = max(image.size)
            canvas = Image.new("RGBA", (side, side), (255, 255, 255, 0))
            canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
            image = canvas.resize(kind.box, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if kind.format == "JPEG":
        if image.mode == "RGBA":  # a photo with transparency: on white, as the page shows it
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        image.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    else:
        image.save(out, "PNG", optimize=True)
    data = out.getvalue()
    return Processed(
        data, hashlib.sha256(data).hexdigest(), EXTENSIONS[kind.format], image.width, image.height
    )
