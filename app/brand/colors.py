"""Brand colours made readable: WCAG 2.2 contrast ratios and a darker shade of the same hue when needed.

Pure functions, no Flask. A company's colour is used for buttons (white text on it), links and the chosen
day (the colour as text on white or on a light tint of itself), so every one of those pairs must reach
``AA_TEXT`` (4.5:1, WCAG 2.2 SC 1.4.3). A colour that does not is kept in spirit: it is darkened step by
step in HSL lightness (hue and saturation kept) until every pair does; the settings screen says so.
"""

import colorsys
import re
from dataclasses import dataclass

AA_TEXT = 4.5
WHITE = "#ffffff"
DEFAULT_ACCENT = "#0b57d0"  # Termin's own (static/css/app.css --accent)
HEX = re.compile(r"#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})")
TINT = 0.9  # how much white the soft background of available days has


def normalise_hex(text: str) -> str | None:
    """``#AbC`` / ``aabbcc`` -> ``#aabbcc``; None for anything that is not a hex colour."""
    match = HEX.fullmatch((text or "").strip())
    if match is None:
        return None
    digits = match.group(1).lower()
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return f"#{digits}"


def _rgb(color: str) -> tuple[float, float, float]:
    digits = color.lstrip("#")
    return tuple(int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4))  # type: ignore[return-value]


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(1.0, c)) * 255):02x}" for c in rgb)


def relative_luminance(color: str) -> float:
    """WCAG 2.2's relative luminance of an sRGB colour."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    """(L1 + 0.05) / (L2 + 0.05), lighter over darker: 1.0 to 21.0."""
    a, b = relative_luminance(first), relative_luminance(second)
    lighter, darker = max(a, b), min(a, b)
    return (lighter + 0.05) / (darker + 0.05)


def mix(color: str, other: str, amount: float) -> str:
    """``amount`` of ``other`` blended into ``color`` (0: color, 1: other)."""
    return _hex(tuple(c + (o - c) * amount for c, o in zip(_rgb(color), _rgb(other), strict=True)))


def _darker(color: str, step: float = 0.02) -> str:
    h, lightness, s = colorsys.rgb_to_hls(*_rgb(color))
    return _hex(colorsys.hls_to_rgb(h, max(0.0, lightness - step), s))


@dataclass(frozen=True)
class Palette:
    """What pages paint with: ``accent`` (buttons, links, chosen day; white text on it), ``soft`` (the
    background of a day with free times, ``accent`` text on it) and whether ``accent`` had to be darkened."""

    chosen: str
    accent: str
    soft: str
    adjusted: bool

    @property
    def ratio(self) -> float:
        """The chosen colour's own contrast with white text."""
        return contrast_ratio(self.chosen, WHITE)

    @property
    def accent_ratio(self) -> float:
        return contrast_ratio(self.accent, WHITE)


def palette(color: str | None) -> Palette:
    """The readable palette of a brand colour (Termin's own when None or not a colour)."""
    chosen = normalise_hex(color or "") or DEFAULT_ACCENT
    soft = mix(chosen, WHITE, TINT)
    accent = chosen
    # Each step lowers the lightness by 2 points, so black (21:1 on white) is reached in at most 50.
    for _step in range(60):
        if contrast_ratio(accent, WHITE) >= AA_TEXT and contrast_ratio(accent, soft) >= AA_TEXT:
            break
        accent = _darker(accent)
    return Palette(chosen, accent, soft, accent != chosen)


def stylesheet(color: str) -> str:
    """The CSS custom properties of a brand colour's palette (the page's styles read only these)."""
    colors = palette(color)
    focus = mix(colors.accent, WHITE, 0.45)
    return (
        f":root {{ --accent: {colors.accent}; --accent-ink: {WHITE}; --accent-soft: {colors.soft}; "
        f"--accent-soft-ink: {colors.accent}; --focus: {focus}; }}\n"
    )
