"""Retry-After, read once for Google and Graph (issue 10 item 16): a wait too large to hold (``inf``,
``1e400``) is the longest back-off, never an OverflowError; garbage is no hint at all."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from app.mail import outbox
from app.sync.providers.base import (
    MAX_RETRY_AFTER_SECONDS,
    RateLimited,
    TemporarilyUnavailable,
    parse_retry_after,
)
from tests.fakes.google_calendar import google_harness  # noqa: F401
from tests.fakes.graph import graph_harness  # noqa: F401

NOW = datetime(2030, 5, 1, 8, 0, tzinfo=UTC)
LONGEST = MAX_RETRY_AFTER_SECONDS


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-30", 0.0),
        ("inf", LONGEST),
        ("Infinity", LONGEST),
        ("1e400", LONGEST),
        ("99999999999999999999999", LONGEST),
        (format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        (format_datetime(NOW - timedelta(days=1), usegmt=True), 0.0),
        (format_datetime(NOW + timedelta(days=400), usegmt=True), LONGEST),
        ("nan", None),
        ("soon", None),
        ("Mon, 99 Foo 2030 25:61:61 GMT", None),
        ("", None),
        (None, None),
    ],
)
def test_one_parser_reads_every_form_within_bounds(header, seconds):
    assert parse_retry_after(header, now=NOW) == seconds


def test_the_errors_themselves_never_hold_an_unbounded_wait():
    assert RateLimited("slow down", retry_after=float("inf")).retry_after == LONGEST
    assert TemporarilyUnavailable("down", retry_after=-5).retry_after == 0.0
    assert TemporarilyUnavailable("down", retry_after=float("nan")).retry_after is None


@pytest.mark.parametrize("header", ["inf", "1e400"])
def test_google_and_graph_answer_an_endless_retry_after_with_the_longest_wait(
    google_harness,  # noqa: F811
    graph_harness,  # noqa: F811
    header,
):
    google_harness.emulator.fail_next(429, retry_after=header)
    with pytest.raises(RateLimited) as google:
        google_harness.provider.list_calendars()
    graph_harness.emulator.fail_next(503, retry_after=header)
    with pytest.raises(TemporarilyUnavailable) as graph:
        graph_harness.provider.list_calendars()
    assert google.value.retry_after == graph.value.retry_after == LONGEST


def test_google_and_graph_treat_a_garbled_retry_after_as_no_hint(
    google_harness,  # noqa: F811
    graph_harness,  # noqa: F811
):
    google_harness.emulator.fail_next(503, retry_after="in a while")
    with pytest.raises(TemporarilyUnavailable) as google:
        google_harness.provider.list_calendars()
    graph_harness.emulator.fail_next(429, retry_after="in a while")
    with pytest.raises(RateLimited) as graph:
        graph_harness.provider.list_calendars()
    assert google.value.retry_after is graph.value.retry_after is None


def test_the_outbox_backs_off_an_hour_for_an_endless_retry_after():
    assert outbox.retry_delay(1, float("inf")) == timedelta(seconds=LONGEST)
    assert outbox.retry_delay(1, 1e308 * 10) == timedelta(seconds=LONGEST)
