"""Brand colours: WCAG ratios, and a readable shade of the same hue for colours that are not."""

import pytest

from app.brand import colors


def test_contrast_ratio_matches_wcag_reference_values():
    assert colors.contrast_ratio("#ffffff", "#000000") == pytest.approx(21.0)
    assert colors.contrast_ratio("#ffffff", "#ffffff") == pytest.approx(1.0)
    # WebAIM's checker gives 4.54:1 for #767676 on white, the classic lightest AA grey.
    assert colors.contrast_ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)
    assert colors.contrast_ratio("#777777", "#ffffff") < colors.AA_TEXT


@pytest.mark.parametrize("text", ["#0B57D0", "0b57d0", "#0bd", "  #0b57d0 "])
def test_hex_colours_are_normalised(text):
    assert colors.normalise_hex(text) in {"#0b57d0", "#00bbdd"}


@pytest.mark.parametrize("text", ["", "blue", "#12345", "#gggggg", "rgb(1,2,3)", "#0b57d0;}"])
def test_anything_else_is_not_a_colour(text):
    assert colors.normalise_hex(text) is None


def test_a_readable_colour_is_kept():
    palette = colors.palette("#0f766e")
    assert palette.accent == "#0f766e"
    assert not palette.adjusted
    assert colors.contrast_ratio(palette.accent, palette.soft) >= colors.AA_TEXT


@pytest.mark.parametrize("color", ["#f5c518", "#ffffff", "#ff6600", "#7fffd4", "#ffff00", "#00ff00"])
def test_a_light_colour_gets_a_darker_readable_shade(color):
    palette = colors.palette(color)
    assert palette.adjusted
    assert palette.ratio < colors.AA_TEXT
    assert colors.contrast_ratio(palette.accent, colors.WHITE) >= colors.AA_TEXT  # white text on buttons
    assert colors.contrast_ratio(palette.accent, palette.soft) >= colors.AA_TEXT  # the free days' text


def test_no_colour_is_termins_own():
    assert colors.palette(None).accent == colors.DEFAULT_ACCENT
    assert "--accent: #0b57d0;" in colors.stylesheet("#0b57d0")
