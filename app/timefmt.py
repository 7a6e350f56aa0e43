"""Meeting times as a person writes them, in English and Polish (issue 14, items 5 and 9): the one place.

    Tuesday, 15 December 2026, 14:00-14:45 (Warsaw time)
    wtorek, 15 grudnia 2026, 14:00-14:45 (czas: Warszawa)

never "2:00:00 PM Central European Standard Time". The day is Babel's (CLDR) weekday, day, month and year in
the language of the moment (Flask-Babel's locale: the recipient's under ``force_locale``), the time is the
24-hour clock in both languages, and the zone is named by its exemplar city in that language ("Warsaw",
"Warszawa", "Nowy Jork"), which people recognise where "CET" or "Europe/Warsaw" mean little. Zones without
a city (UTC, ``Etc/GMT+5``) are written as their offset from UTC ("UTC-05:00"), since ``Etc/GMT+5`` is five
hours *behind* and its name would mislead.

Emails, the CRM's meeting record and the contact's timeline use it through the Jinja filters registered by
``register`` (``meeting_time`` and ``moment``) or the functions here.
"""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel.dates import format_date, format_time, get_timezone_location
from flask import Flask
from flask_babel import get_locale
from flask_babel import gettext as _

DAY_PATTERN = "EEEE, d MMMM y"  # "Tuesday, 15 December 2026" / "wtorek, 15 grudnia 2026" (genitive month)
TIME_PATTERN = "HH:mm"


def _locale() -> str:
    locale = get_locale()
    return str(locale) if locale is not None else "en"


def zone(name: str | None) -> ZoneInfo:
    """The zone of an IANA name; UTC for a name this machine does not know (an old booking's, say)."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _offset(moment: datetime) -> str:
    offset = moment.utcoffset() or timedelta(0)
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes > 0 else "-"
    hours, minutes = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours:02d}:{minutes:02d}"


def zone_label(moment: datetime, name: str | None) -> str:
    """The zone of an aware ``moment`` as a person names it: "Warsaw time", "czas: Warszawa", "UTC+05:30"."""
    tz = zone(name)
    key = tz.key
    if key == "UTC" or key.startswith(("Etc/", "UTC", "GMT")) or "/" not in key:
        return _offset(moment.astimezone(tz))
    city = get_timezone_location(tz, locale=_locale(), return_city=True)
    return _("%(city)s time", city=city)


def day(value: date) -> str:
    """ "Tuesday, 15 December 2026" / "wtorek, 15 grudnia 2026"."""
    return format_date(value, DAY_PATTERN, locale=_locale())


def clock(moment: datetime) -> str:
    """ "14:00" (an aware moment already in the zone it is to be read in)."""
    return format_time(moment, TIME_PATTERN, locale=_locale())


def meeting_time(start: datetime, end: datetime, time_zone: str | None) -> str:
    """ "Tuesday, 15 December 2026, 14:00-14:45 (Warsaw time)"; both days when it ends on another one."""
    tz = zone(time_zone)
    local_start, local_end = start.astimezone(tz), end.astimezone(tz)
    if local_end.date() == local_start.date():
        span = f"{day(local_start)}, {clock(local_start)}-{clock(local_end)}"
    else:
        span = f"{day(local_start)}, {clock(local_start)} - {day(local_end)}, {clock(local_end)}"
    return f"{span} ({zone_label(local_start, time_zone)})"


def moment(at: datetime, time_zone: str | None) -> str:
    """ "Tuesday, 15 December 2026, 14:00 (Warsaw time)"."""
    local = at.astimezone(zone(time_zone))
    return f"{day(local)}, {clock(local)} ({zone_label(local, time_zone)})"


def register(app: Flask) -> None:
    """The Jinja filters: ``{{ start|meeting_time(end, zone) }}`` and ``{{ at|moment(zone) }}``."""
    app.add_template_filter(meeting_time, "meeting_time")
    app.add_template_filter(moment, "moment")
