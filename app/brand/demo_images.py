"""The demo's brand images, drawn at seed time (no binary files in the repository): a logo for Demo Company
and a portrait placeholder per rep. They go through the same ``images.process`` as any upload."""

import io

from PIL import Image, ImageDraw, ImageFont

DEMO_COLOR = "#0f766e"  # a teal that reads well with white text (5.5:1)


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def logo(name: str = "Demo Company", color: str = DEMO_COLOR) -> bytes:
    """A wide logo on transparency: a rounded mark with the initial, then the name."""
    height, scale = 120, 2
    font = ImageFont.load_default(size=54 * scale)
    mark_font = ImageFont.load_default(size=64 * scale)
    text_width = int(font.getlength(name))
    width = (height + 24) * scale + text_width + 16 * scale
    image = Image.new("RGBA", (width, height * scale), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    side = height * scale
    draw.rounded_rectangle((0, 0, side - 1, side - 1), radius=28 * scale, fill=color)
    draw.text((side // 2, side // 2), name[:1], font=mark_font, fill="white", anchor="mm")
    draw.text(((height + 24) * scale, side // 2), name, font=font, fill="#1b1f24", anchor="lm")
    return _png(image.resize((width // scale, height), Image.Resampling.LANCZOS))


def portrait(background: str, skin: str, hair: str, shirt: str) -> bytes:
    """A square, friendly head-and-shoulders drawing standing in for a rep's photo."""
    side = 400
    image = Image.new("RGB", (side, side), background)
    draw = ImageDraw.Draw(image)
    draw.ellipse((60, 270, 340, 560), fill=shirt)  # shoulders
    draw.rectangle((175, 230, 225, 290), fill=skin)  # neck
    draw.ellipse((120, 70, 280, 250), fill=hair)  # hair behind the face
    draw.ellipse((135, 95, 265, 255), fill=skin)  # face
    draw.pieslice((125, 70, 275, 200), 180, 360, fill=hair)  # fringe
    for eye in (172, 228):
        draw.ellipse((eye - 7, 165, eye + 7, 179), fill="#2b2b2b")
    draw.arc((170, 185, 230, 225), 20, 160, fill="#8a3b2e", width=5)  # smile
    return _png(image)


REP_PORTRAITS = {
    "rita@example.com": dict(background="#d9efe9", skin="#f1c7a5", hair="#6b3b1f", shirt="#0f766e"),
    "tom@example.com": dict(background="#e4e7f5", skin="#d9a27c", hair="#2d2a26", shirt="#334155"),
}
