"""The time zone picker's choices: every IANA zone as a place a person recognises, in their language.

``"Europe/Warsaw"`` is offered as "Warsaw, Poland (UTC+01:00)" (Polish: "Warszawa, Polska (UTC+01:00)"),
sorted by city, so the plain ``<select>`` (no JavaScript) jumps to a city as it is typed; static/js/booking.js
turns it into a search box over city, country and zone name that also shows each zone's local time.

Names come from CLDR through Babel (the city, and the country from CLDR's zone-to-territory table), once per
process and language. Offsets change at DST transitions, so the options are made again every
``BUCKET_SECONDS``; within one bucket every page shares one string, as before (the benchmark's page costs the
same).
"""

from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import get_global
from babel.dates import get_timezone_location
from markupsafe import Markup, escape

from app.web.forms import time_zone_names

BUCKET_SECONDS = 900
UNKNOWN_TERRITORIES = frozenset({"001", "ZZ"})


def offset_label(moment: datetime, zone: str) -> str:
    offset = moment.astimezone(ZoneInfo(zone)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@lru_cache(maxsize=4)
def places(locale: str) -> tuple[tuple[str, str], ...]:
    """(zone, "City, Country") for every zone, sorted by that text in ``locale``."""
    territories = get_global("zone_territories")
    names = Locale.parse(locale).territories
    found = []
    for zone in time_zone_names():
        if zone != "UTC" and (zone not in territories or zone.startswith("Etc/")):
            continue  # an alias (US/Eastern, Poland, Europe/Kiev) or Etc/GMT+5: its canonical zone is listed
        try:
            city = get_timezone_location(ZoneInfo(zone), locale, return_city=True)
        except (LookupError, ValueError):
            city = zone.rsplit("/", 1)[-1].replace("_", " ")
        territory = territories.get(zone)
        country = names.get(territory) if territory and territory not in UNKNOWN_TERRITORIES else None
        place = f"{city}, {country}" if country and country != city else city
        found.append((zone, place))
    return tuple(sorted(found, key=lambda item: (item[1].casefold(), item[0])))


@lru_cache(maxsize=8)
def _options(locale: str, bucket: int) -> str:
    moment = datetime.fromtimestamp(bucket * BUCKET_SECONDS, UTC)
    return "".join(
        str(Markup('<option value="{0}">{1} ({2})</option>').format(zone, place, offset_label(moment, zone)))
        for zone, place in places(locale)
    )


@lru_cache(maxsize=512)
def _marked(selected: str, locale: str, bucket: int) -> Markup:
    html = _options(locale, bucket)
    if selected in time_zone_names():
        option = f'<option value="{escape(selected)}">'
        if option in html:
            html = html.replace(option, option[:-1] + " selected>", 1)
        else:  # an alias still accepted in links (?tz=US/Eastern): offered first, as it was asked
            moment = datetime.fromtimestamp(bucket * BUCKET_SECONDS, UTC)
            label = f"{selected} ({offset_label(moment, selected)})"
            html = str(Markup('<option value="{0}" selected>{1}</option>').format(selected, label)) + html
    return Markup(html)  # noqa: S704 (made of escaped parts only)


def zone_options(selected: str, locale: str, now: datetime) -> Markup:
    """Every zone as an ``<option>``, ``selected`` marked: one string per language, quarter hour and zone
    chosen, so a page neither loops over 600 zones nor escapes them on each request."""
    return _marked(selected, locale, int(now.timestamp()) // BUCKET_SECONDS)


def place_name(zone: str, locale: str) -> str:
    """ "Warsaw, Poland" for ``Europe/Warsaw`` (the zone's own name when CLDR has no place for it)."""
    return dict(places(locale)).get(zone, zone)
