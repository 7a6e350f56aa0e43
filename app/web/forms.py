"""Form pieces shared by every feature."""

from functools import cache
from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from wtforms import ValidationError


@cache
def time_zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def valid_time_zone(form, field) -> None:
    if field.data not in time_zone_names():
        raise ValidationError(_l("Choose a time zone from the list, such as Europe/Warsaw."))


def strip(value):
    return value.strip() if isinstance(value, str) else value
