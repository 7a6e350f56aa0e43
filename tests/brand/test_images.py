"""Uploads are proven to be PNG or JPEG by decoding, bounded, and re-encoded (never stored as sent)."""

import io

import pytest
from PIL import Image, ImageFile

from app.brand import images
from app.errors import BrandError
from tests.brand import images as samples


def _refused(data: bytes, kind=images.LOGO) -> str:
    with pytest.raises(BrandError) as caught:
        images.process(data, kind, "logo")
    assert caught.value.field == "logo"
    return caught.value.code


def test_a_png_logo_is_re_encoded_within_its_box_keeping_transparency():
    processed = images.process(samples.png(2000, 400, (0, 0, 0, 0)), images.LOGO, "logo")
    image = Image.open(io.BytesIO(processed.data))
    assert image.format == "PNG"
    assert image.mode == "RGBA"
    assert (processed.width, processed.height) == (800, 160) == image.size
    assert processed.filename == f"{processed.digest}.png"
    assert len(processed.digest) == 64


def test_a_photo_is_cropped_square_and_written_as_jpeg_without_metadata():
    exif = Image.Exif()
    exif[0x010F] = "Secret Camera Maker"
    processed = images.process(samples.jpeg(900, 600, exif.tobytes()), images.PHOTO, "photo")
    image = Image.open(io.BytesIO(processed.data))
    assert image.format == "JPEG"
    assert image.size == (320, 320)
    assert b"Secret Camera Maker" not in processed.data
    assert processed.content_type == "image/jpeg"


def test_a_favicon_is_padded_to_a_square():
    processed = images.process(samples.png(300, 100), images.FAVICON, "favicon")
    assert (processed.width, processed.height) == (96, 96)


def test_the_same_image_gives_the_same_name():
    first = images.process(samples.png(), images.LOGO, "logo")
    assert images.process(samples.png(), images.LOGO, "logo").filename == first.filename
    assert images.process(samples.png(color=(1, 2, 3, 255)), images.LOGO, "logo").filename != first.filename


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "image_empty"),
        (samples.SVG, "image_type"),
        (samples.gif(), "image_type"),
        (b"<html><script>alert(1)</script></html>", "image_type"),
        (b"GIF89a" + b"\x00" * 100, "image_type"),
        (samples.png_bomb(), "image_too_many_pixels"),
        (samples.png_bomb(7000, 10), "image_too_many_pixels"),
        (samples.png(8, 8), "image_too_small"),
        (samples.truncated_png(), "image_unreadable"),
    ],
    ids=["empty", "svg", "gif", "html", "gif-magic", "bomb", "too-wide", "tiny", "truncated"],
)
def test_what_is_not_a_usable_png_or_jpeg_is_refused(data, code):
    assert _refused(data) == code


def test_a_file_over_the_limit_is_refused_before_decoding():
    assert _refused(b"\x89PNG" + b"\x00" * images.MAX_UPLOAD_BYTES) == "image_too_large"


def test_the_pixel_check_comes_from_the_header_before_any_decoding(monkeypatch):
    loaded = []
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: loaded.append(self) or None)
    assert _refused(samples.png_bomb()) == "image_too_many_pixels"
    assert loaded == []
