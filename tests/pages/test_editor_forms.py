"""The editor's plain-text parsers: weekday ranges, date overrides and durations (no JavaScript needed)."""

import pytest
from wtforms import ValidationError

from app.pages.forms import (
    format_overrides,
    format_ranges,
    parse_durations,
    parse_overrides,
    parse_ranges,
)


@pytest.fixture
def in_request(app):
    """The messages are translated lazily, in the request's language."""
    with app.test_request_context():
        yield


@pytest.mark.parametrize(
    ("text", "ranges"),
    [
        ("", []),
        ("09:00-17:00", [("09:00", "17:00")]),
        ("13:00-17:00, 9:00-12:00", [("09:00", "12:00"), ("13:00", "17:00")]),
        ("09:00 \u2013 12:00; 12:00-13:00", [("09:00", "12:00"), ("12:00", "13:00")]),  # touching is fine
        ("00:00-24:00", [("00:00", "24:00")]),
    ],
)
def test_ranges_are_read_sorted_and_normalised(in_request, text, ranges):
    assert parse_ranges(text) == ranges
    assert parse_ranges(format_ranges(ranges)) == ranges


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("09:00-12:00, 11:30-13:00", "overlap"),
        ("12:00-09:00", "ends before it starts"),
        ("10:00-10:00", "ends before it starts"),
        ("9-17", "HH:MM"),
        ("09:00", "start-end"),
        ("09:60-10:00", "not a time of day"),
        ("24:00-24:00", "cannot start at 24:00"),
        ("09:00-24:30", "not a time of day"),
    ],
)
def test_bad_ranges_are_refused_with_a_reason(in_request, text, message):
    with pytest.raises(ValidationError) as error:
        parse_ranges(text)
    assert message in str(error.value)


def test_overrides_read_days_off_and_other_hours(in_request):
    text = "2030-12-27: 10:00-14:00, 15:00-16:00\n\n2030-12-24: off\n2030-12-31 closed\n2031-01-01:"

    overrides = parse_overrides(text)

    assert overrides == [
        {"day": "2030-12-24", "ranges": []},
        {"day": "2030-12-27", "ranges": [("10:00", "14:00"), ("15:00", "16:00")]},
        {"day": "2030-12-31", "ranges": []},
        {"day": "2031-01-01", "ranges": []},
    ]
    assert parse_overrides(format_overrides(overrides)) == overrides


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("24/12/2030: off", "Line 1"),
        ("2030-12-24: off\n2030-02-30: off", "Line 2"),
        ("2030-12-24: off\n2030-12-24: 10:00-11:00", "given twice"),
        ("2030-12-24: 10:00-09:00", "Line 1: 10:00-09:00 ends before it starts"),
    ],
)
def test_bad_overrides_name_their_line(in_request, text, message):
    with pytest.raises(ValidationError) as error:
        parse_overrides(text)
    assert message in str(error.value)


def test_durations(in_request):
    assert parse_durations("30, 60 15;30") == [30, 60, 15]
    for bad in ("", "0", "4", "721", "30, x", "1.5", ",".join(str(m) for m in range(10, 100, 10))):
        with pytest.raises(ValidationError):
            parse_durations(bad)
