"""Meeting times as people write them (app/timefmt.py), in English and Polish, across zones and DST."""

from datetime import UTC, datetime

import pytest
from flask_babel import force_locale

from app import timefmt

START = datetime(2026, 12, 15, 13, 0, tzinfo=UTC)  # 14:00 in Warsaw
END = datetime(2026, 12, 15, 13, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("locale", "zone", "expected"),
    [
        ("en", "Europe/Warsaw", "Tuesday, 15 December 2026, 14:00-14:45 (Warsaw time)"),
        ("pl", "Europe/Warsaw", "wtorek, 15 grudnia 2026, 14:00-14:45 (czas: Warszawa)"),
        ("en", "America/New_York", "Tuesday, 15 December 2026, 08:00-08:45 (New York time)"),
        ("pl", "America/New_York", "wtorek, 15 grudnia 2026, 08:00-08:45 (czas: Nowy Jork)"),
        ("en", "Asia/Kolkata", "Tuesday, 15 December 2026, 18:30-19:15 (Kolkata time)"),
        ("en", "UTC", "Tuesday, 15 December 2026, 13:00-13:45 (UTC)"),
        # Etc/GMT+5 is five hours *behind* UTC: its name would mislead, its offset does not.
        ("en", "Etc/GMT+5", "Tuesday, 15 December 2026, 08:00-08:45 (UTC-05:00)"),
        ("en", "Not/AZone", "Tuesday, 15 December 2026, 13:00-13:45 (UTC)"),
    ],
)
def test_a_meeting_reads_as_a_person_writes_it(app, locale, zone, expected):
    with app.test_request_context(), force_locale(locale):
        assert timefmt.meeting_time(START, END, zone) == expected


def test_a_meeting_over_midnight_names_both_days_and_dst_is_followed(app):
    with app.test_request_context(), force_locale("en"):
        late = timefmt.meeting_time(
            datetime(2026, 12, 15, 22, 30, tzinfo=UTC),
            datetime(2026, 12, 15, 23, 15, tzinfo=UTC),
            "Europe/Warsaw",
        )
        assert late == "Tuesday, 15 December 2026, 23:30 - Wednesday, 16 December 2026, 00:15 (Warsaw time)"
        summer = timefmt.moment(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "Europe/Warsaw")
        assert summer == "Wednesday, 1 July 2026, 14:00 (Warsaw time)"
    with app.test_request_context(), force_locale("pl"):
        assert timefmt.moment(datetime(2026, 7, 1, 12, 0, tzinfo=UTC), "Europe/Warsaw") == (
            "środa, 1 lipca 2026, 14:00 (czas: Warszawa)"
        )


def test_the_jinja_filters_use_the_same_words(app):
    with app.test_request_context(), force_locale("pl"):
        template = app.jinja_env.from_string(
            "{{ s|meeting_time(e, 'Europe/Warsaw') }} / {{ s|moment('UTC') }}"
        )
        assert template.render(s=START, e=END) == (
            "wtorek, 15 grudnia 2026, 14:00-14:45 (czas: Warszawa) / wtorek, 15 grudnia 2026, 13:00 (UTC)"
        )
