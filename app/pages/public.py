"""The visitor's side of scheduling pages, on the app host and on tenants' verified domains (P1-P6, D2-D6).

Routes (blueprint "booking", all ``@public``; the ones a link in an email may lead to also
``@follows_old_links``, so a removed domain still redirects them):

* ``GET /meetings/<user>[/<page>]``: the page. Query parameters, all optional and all plain links or GET
  forms, so it works without JavaScript: ``duration`` (minutes), ``tz`` (the visitor's IANA zone; without
  it the page's zone, and static/js/booking.js reloads with the browser's), ``month`` (YYYY-MM), ``day``
  (YYYY-MM-DD) and ``start`` (an ISO instant: the booking form for that time). With htmx, month and day
  navigation swap only ``#slot-picker`` (the ``_slots.html`` fragment). ``lang`` is the app's own switch.
* ``GET .../slots.json``: ``{"slots": [ISO with offset, ...], "time_zone", "duration", "paused"}``. While
  booking is paused (C11) it answers 200 with no slots and ``"paused": true``, so integrations can tell
  "nothing free" from "not bookable now"; the booking itself answers 503.
* ``POST .../book``: HTML form or JSON; see ``book``.
* ``GET /meetings/booking/<token>``, ``GET .../invite.ics`` and ``GET/POST .../cancel``, ``.../reschedule``:
  the visitor's booking, the token being the only credential (a wrong token, or another tenant's domain:
  404).
* ``POST /meetings/booking/forget``: "Not you?" clears the prefill cookie (D2).

Hosts (D3, D5, D6): a page (and its bookings) is served on its current host only. A request for it on
another host of the same tenant, on the app host, or on a removed domain answers 301 to the current URL
(query kept; 308 for a POST); on another tenant's domain it is a 404. Old slugs 301 too (P2).
"""

import base64
import calendar
import hashlib
import hmac
import itertools
import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from babel import dates as babel_dates
from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
)
from flask_babel import get_locale
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from app.brand.services import brand_for
from app.chat import services as chat
from app.db import utcnow
from app.emails import services as emails
from app.errors import message as error_message
from app.extensions import csrf, limiter
from app.pages import availability, notifications, paths, zones
from app.pages import cache as page_cache
from app.pages import services as pages
from app.pages.links import booking_host, manage_url, page_url
from app.pages.models import Booking, SchedulingPage
from app.pages.public_forms import (
    VisitorCancelForm,
    VisitorRescheduleForm,
    booking_form,
    question_field_name,
)
from app.web import errors as web_errors
from app.web import limits, outage
from app.web.forms import json_formdata, time_zone_names
from app.web.htmx import is_fragment_request
from app.web.links import external_url
from app.web.tenancy import follows_old_links, public

bp = Blueprint("booking", __name__)
bp.record_once(lambda state: page_cache.install(state.app))

PREFILL_COOKIE = "termin_prefill"
SAFE_NEXT = re.compile(r"/meetings/[^\x00-\x20\x7f\\]*")
PREFILL_SALT = "termin.booking.prefill"
PREFILL_MAX_AGE = 365 * 24 * 3600
MANAGE_TOKEN_SALT = b"termin.booking.manage"
# A lost slot (409) offers at most this many other times, from its own day or the next days with any.
MAX_ALTERNATIVES, ALTERNATIVE_DAYS = 12, 14
PICKER_LOOKAHEAD_MONTHS = 2  # with no month asked, the first of this month and the next two with a slot

# --- Requests, hosts and answers ----------------------------------------------------------------------------


def wants_json() -> bool:
    if request.is_json:
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _with_query(url: str) -> str:
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


def _moved(url: str) -> Response:
    """301 to ``url`` with the request's query; 308 for a POST, so the form is sent again there."""
    return redirect(_with_query(url), 308 if request.method == "POST" else 301)


def _app_host() -> str:
    return current_app.config["APP_HOST"]


def _find_page(user_slug: str, page_slug: str | None, suffix: str = "") -> SchedulingPage | Response:
    """The page a public path names, served on this host; a 301 response when it lives elsewhere."""
    resolved = pages.resolve_path(user_slug, page_slug)
    if resolved is None:
        abort(404)
    if g.tenant is not None and resolved.owner.tenant_id != g.tenant.id:
        abort(404)  # another tenant's page: this domain does not serve it (D6)
    hops = 0
    while resolved is not None and resolved.redirect is not None and hops < 3:
        parts = resolved.redirect.split("/")[2:]  # "/meetings/<user>[/<page>]"
        target = resolved.redirect
        resolved = pages.resolve_path(parts[0], parts[1] if len(parts) > 1 else None)
        hops += 1
        if resolved is None or (resolved.redirect is None and resolved.page is None):
            return _moved(external_url(g.host, target + suffix))
    if resolved is None or resolved.page is None:
        abort(404)
    page = resolved.page
    page.owner  # noqa: B018  (from the identity map while ``resolved`` holds it: no second query later)
    if hops:
        return _moved(page_url(page) + suffix)
    host = paths.page_host(page, _app_host())
    if host != g.host:
        return _moved(page_url(page) + suffix)
    page_cache.serve(page.id, page.tenant_id)
    return page


def _find_booking(token: str, suffix: str = "") -> Booking | Response:
    booking = pages.get_booking_by_token(token)
    if booking is None:
        abort(404)
    if g.tenant is not None and booking.tenant_id != g.tenant.id:
        abort(404)
    host = booking_host(booking)
    if host != g.host:
        return _moved(external_url(host, f"/meetings/booking/{token}{suffix}"))
    return booking


def _json_error(status: int, code: str, message: str, **extra) -> Response:
    response = jsonify({"error": code, "message": message, **extra})
    response.status_code = status
    return response


@bp.errorhandler(404)
@bp.errorhandler(405)
@bp.errorhandler(413)
@outage.answers_outages
def _error(error: HTTPException):
    g.noindex = True
    if wants_json() or request.path.endswith(".json"):
        messages = {
            404: ("not_found", _("There is nothing at this address. Check the link you followed.")),
            405: ("method_not_allowed", _("This address does not accept that kind of request.")),
            413: ("too_large", _("What you sent is larger than we accept. Send less and try again.")),
        }
        code, message = messages[error.code]
        return _json_error(error.code, code, message)
    return web_errors._http_error(error)


@bp.after_request
def _robots(response: Response) -> Response:
    """D4: booking pages, JSON and hidden pages are never indexed; only a page left visible may be."""
    if g.get("noindex", True):
        response.headers["X-Robots-Tag"] = "noindex"
    # The language is picked from Accept-Language or the session's choice: caches must keep them apart.
    response.vary.update(("Accept-Language", "Cookie"))
    return response


# --- Formatting in the visitor's zone and language ----------------------------------------------------------


def _locale() -> str:
    return str(get_locale() or "en")


# The same days and times are formatted on every request (a month grid, a day's times): remember them per
# locale, so a page costs dictionary look-ups instead of Babel's pattern formatting.
@lru_cache(maxsize=8192)
def _format_day(day: date, locale: str) -> str:
    return babel_dates.format_date(day, "full", locale=locale)


@lru_cache(maxsize=16384)
def _format_time(moment: datetime, zone: str, locale: str) -> str:
    return babel_dates.format_time(moment, "short", tzinfo=ZoneInfo(zone), locale=locale)


def format_day(day: date) -> str:
    return _format_day(day, _locale())


def format_time(moment: datetime, zone: str) -> str:
    return _format_time(moment, zone, _locale())


def format_when(moment: datetime, zone: str) -> str:
    local = moment.astimezone(ZoneInfo(zone))
    return f"{format_day(local.date())}, {format_time(moment, zone)}"


def format_month(first: date) -> str:
    return _format_month(first, _locale())


@lru_cache(maxsize=1024)
def _format_month(first: date, locale: str) -> str:
    return babel_dates.format_date(first, "LLLL y", locale=locale)


@lru_cache(maxsize=16)
def _weekday_names(locale: str) -> dict:
    return dict(babel_dates.get_day_names("abbreviated", context="stand-alone", locale=locale))


utc_offset = zones.offset_label


def zone_options(selected: str) -> Markup:
    """Every zone as a place with its offset (app/pages/zones.py), ``selected`` marked."""
    return zones.zone_options(selected, _locale(), utcnow())


def zone_place(zone: str) -> str:
    """ "Warsaw, Poland" for ``Europe/Warsaw``, in the visitor's language."""
    return zones.place_name(zone, _locale())


def absolute_url(path: str) -> str:
    """``path`` on this request's host, for link previews (Open Graph needs absolute addresses)."""
    return external_url(g.host, path)


@bp.context_processor
def _helpers() -> dict:
    return {
        "format_day": format_day,
        "format_time": format_time,
        "format_when": format_when,
        "format_month": format_month,
        "utc_offset": utc_offset,
        "zone_options": zone_options,
        "zone_place": zone_place,
        "absolute_url": absolute_url,
        "timedelta": timedelta,
        "zone_info": ZoneInfo,
        "weekday_names": lambda: _weekday_names(_locale()),
        "picker_view": picker_view,
    }


# --- The slot picker ----------------------------------------------------------------------------------------


@dataclass
class Picker:
    """One month of the visitor's calendar, the days with free times, and one chosen day's times."""

    time_zone: str
    month: date  # the first of the month shown
    today: date
    slots_by_day: dict[date, list[datetime]]
    day: date | None
    weeks: list[list[date]] = field(default_factory=list)
    lookahead_empty: bool = False

    @property
    def day_slots(self) -> list[datetime]:
        return self.slots_by_day.get(self.day, []) if self.day else []

    @property
    def previous_month(self) -> date | None:
        previous = (self.month - timedelta(days=1)).replace(day=1)
        return previous if previous >= self.today.replace(day=1) else None

    @property
    def next_month(self) -> date:
        return (self.month + timedelta(days=32)).replace(day=1)


@dataclass(frozen=True)
class DayCell:
    """One cell of the month grid, ready to print: the template only writes these out."""

    day: date | None  # None: a day of the next or previous month (an empty cell)
    iso: str = ""
    label: str = ""
    link: str | None = None  # None: no free time that day
    chosen: bool = False


@dataclass(frozen=True)
class SlotButton:
    start: datetime
    iso: str
    text: str
    label: str
    link: str


def picker_view(picker: Picker, nav, time_zone: str, mode: str) -> dict:
    """The month grid's cells and the chosen day's times, formatted in Python once per request rather than
    through a dozen Jinja calls per cell (a month has ~30 cells and a day ~16 times)."""
    free_labels: dict[int, str] = {}
    none_label = _("no free times")
    weeks = []
    for week in picker.weeks:
        row = []
        for d in week:
            if d.month != picker.month.month:
                row.append(DayCell(None))
                continue
            iso, slots = d.isoformat(), picker.slots_by_day.get(d)
            if slots:
                count = len(slots)
                if count not in free_labels:
                    free_labels[count] = _("%(count)d free times", count=count)
                label = f"{format_day(d)}: {free_labels[count]}"
                row.append(DayCell(d, iso, label, nav(day=iso), d == picker.day))
            else:
                row.append(DayCell(d, iso, f"{format_day(d)}: {none_label}"))
        weeks.append(row)
    times = []
    for slot in picker.day_slots:
        iso, when = slot.isoformat(), format_when(slot, time_zone)
        if mode == "reschedule":  # the link shows the new time and asks to confirm it
            label, link = _("Move the meeting to %(time)s", time=when), nav(start=iso)
        else:
            label, link = _("Book %(time)s", time=when), nav(start=iso)
        times.append(SlotButton(slot, iso, format_time(slot, time_zone), label, link))
    return {"weeks": weeks, "times": times}


def _month_days(first: date) -> int:
    return calendar.monthrange(first.year, first.month)[1]


def build_picker(slots_for, time_zone: str, now: datetime, month: date | None, day: date | None) -> Picker:
    """``slots_for(first_day, days)`` gives free starts (UTC); group them by the visitor's local dates."""
    today = now.astimezone(ZoneInfo(time_zone)).date()
    lookahead_empty = False
    if day is not None:
        month = day.replace(day=1)
    if month is None:
        # Nothing asked: the first month, from this one, that has a free time.
        month = today.replace(day=1)
        for _offset in range(PICKER_LOOKAHEAD_MONTHS + 1):
            grouped = availability.group_by_local_date(slots_for(month, _month_days(month)), time_zone)
            if grouped:
                break
            month = (month + timedelta(days=32)).replace(day=1)
        else:
            month, lookahead_empty = today.replace(day=1), True
            grouped = availability.group_by_local_date(slots_for(month, _month_days(month)), time_zone)
    else:
        grouped = availability.group_by_local_date(slots_for(month, _month_days(month)), time_zone)
    if day is None and grouped:
        day = min(grouped)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    return Picker(time_zone, month, today, grouped, day, weeks, lookahead_empty)


def _parse_month(text: str | None) -> date | None:
    if not text:
        return None
    try:
        year, month = text.split("-")
        first = date(int(year), int(month), 1)
    except ValueError:
        raise pages.PagesError("month_format", "month") from None
    return _in_range(first, "month")


def _parse_day(text: str | None, field_name: str = "day") -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise pages.PagesError("day_format", field_name) from None
    return _in_range(day, field_name)


def _in_range(day: date, field_name: str) -> date:
    """A month or day the picker can show (its neighbours and windows stay within ``date``'s range)."""
    if not pages.FIRST_DAY <= day <= pages.LAST_DAY - timedelta(days=pages.MAX_SLOT_DAYS):
        raise pages.PagesError("date_range", field_name)
    return day


def _parse_tz(text: str | None, default: str) -> str:
    if not text:
        return default
    if text not in time_zone_names():
        raise pages.PagesError("time_zone_unknown", "tz")
    return text


def _parse_duration(page: SchedulingPage, text: str | None) -> int:
    if not text:
        return page.durations[0]
    try:
        minutes = int(text)
    except ValueError:
        minutes = -1
    if minutes not in page.durations:
        offered = ", ".join(str(m) for m in page.durations)
        raise pages.PagesError("duration_not_offered", "duration", offered=offered)
    return minutes


def page_link(page: SchedulingPage, **params) -> str:
    """A link to the page on this host (relative), with the given query parameters (None ones left out)."""
    query = {key: value for key, value in params.items() if value not in (None, "")}
    path = paths.page_path(page)
    return f"{path}?{urlencode(query)}" if query else path


# --- Prefill (D2) -------------------------------------------------------------------------------------------


def _prefill_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=PREFILL_SALT)


def read_prefill(page: SchedulingPage) -> dict | None:
    """What this visitor gave on this host before, if the cookie was made here, for this tenant."""
    raw = request.cookies.get(PREFILL_COOKIE)
    if not raw:
        return None
    try:
        data = _prefill_serializer().loads(raw, max_age=PREFILL_MAX_AGE)
    except BadSignature:
        return None
    if not isinstance(data, dict) or data.get("host") != g.host or data.get("tenant") != page.tenant_id:
        return None
    return data


def set_prefill(response: Response, page: SchedulingPage, form) -> None:
    value = _prefill_serializer().dumps(
        {
            "host": g.host,
            "tenant": page.tenant_id,
            "first_name": form.first_name.data,
            "last_name": form.last_name.data,
            "email": form.email.data,
            # The answers of this page only, by question key: they prefill the same questions of this
            # page and nothing else (another page's "Company" is not this page's "Company size").
            "page": page.id,
            "answers": form.answers_by_key(),
        }
    )
    # No Domain attribute: the cookie stays on the host that served the page.
    response.set_cookie(
        PREFILL_COOKIE,
        value,
        max_age=PREFILL_MAX_AGE,
        httponly=True,
        samesite="Lax",
        secure=request.is_secure,
        path="/meetings/",
    )


def _prefill_data(page: SchedulingPage, prefill: dict | None) -> dict:
    if not prefill:
        return {}
    data = {key: str(prefill.get(key) or "") for key in ("first_name", "last_name", "email")}
    answers = prefill.get("answers") if isinstance(prefill.get("answers"), dict) else {}
    if prefill.get("page") != page.id:
        return data  # another page's answers (or a cookie from before keys): the names and email only
    for question in page.questions:
        answer = answers.get(question.get("key"))
        if question.get("key") and isinstance(answer, str):
            data[question_field_name(question)] = answer
    return data


@bp.post("/meetings/booking/forget")
@public
def forget():
    """ "Not you?": forget the details this host remembered for the booking form."""
    target = request.form.get("next", "")
    if not SAFE_NEXT.fullmatch(target):  # a path on this host only: no scheme, "//", "\\" or controls
        target = None
    response = (
        redirect(target, 303)
        if target
        else make_response(render_template("booking/forgotten.html", noindex=True))
    )
    response.delete_cookie(PREFILL_COOKIE, path="/meetings/", httponly=True, samesite="Lax")
    return response


# --- The page -----------------------------------------------------------------------------------------------


def _manage_token(page: SchedulingPage, key: str) -> str:
    """The booking's token, derived from the form's idempotency key, so a double submit finds it again."""
    digest = hmac.new(
        current_app.secret_key.encode(), MANAGE_TOKEN_SALT + f":{page.id}:{key}".encode(), hashlib.sha256
    ).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def email_ref() -> str | None:
    """The ``ref`` of the sales email whose meeting link brought the visitor (checked when booking)."""
    ref = request.values.get("ref", "")
    return ref if emails.REF_PATTERN.match(ref) else None


def _page_nav(page: SchedulingPage, time_zone: str, minutes: int):
    """Links within the page keep the visitor's choices: the zone when they gave one, the length."""
    tz = time_zone if request.values.get("tz") else None
    duration = minutes if len(page.durations) > 1 else None
    # One base for every link of the page (a month grid has ~30): the path and the kept choices, once.
    # ``ref`` (a sales email's meeting link) rides along to the booking form, which records the email.
    base = page_link(page, duration=duration, tz=tz, ref=email_ref())
    joiner = "&" if "?" in base else "?"

    def nav(**params) -> str:
        query = {key: value for key, value in params.items() if value not in (None, "")}
        return f"{base}{joiner}{urlencode(query)}" if query else base

    return nav


def _page_context(page: SchedulingPage, **context) -> dict:
    g.noindex = page.hide_from_search
    context.setdefault("brand", brand_for(page.owner.tenant))
    # A day the visitor picked (not the first free one shown by default): its first time takes the focus.
    context.setdefault("day_chosen", bool(request.args.get("day")))
    if "time_zone" in context:
        context.setdefault("nav", _page_nav(page, context["time_zone"], context["duration"]))
    if context.get("start") is not None:
        context["start_day"] = context["start"].astimezone(ZoneInfo(context["time_zone"])).date()
    return {
        "mode": "book",
        "page": page,
        "noindex": page.hide_from_search,
        "tz_given": bool(request.args.get("tz")) or request.method == "POST",
        "page_link": page_link,
        **context,
    }


def _render_page(page: SchedulingPage, status: int = 200, **context):
    template = "booking/_slots.html" if is_fragment_request() and "picker" in context else "booking/page.html"
    return render_template(template, **_page_context(page, **context)), status


def _unavailable(page: SchedulingPage, as_json: bool = False):
    """P4: the rep or the tenant switched pages off. 404, so crawlers drop it; it comes back unchanged."""
    g.noindex = True
    if as_json:
        return _json_error(404, "page_unavailable", _("This scheduling page is not available."))
    return render_template("booking/unavailable.html", page=page, noindex=True), 404


def _paused_visit(page: SchedulingPage, now: datetime, email: str = "") -> bool:
    """C11: while booking with the rep is paused, a visit is an attempt to book: it is counted and the rep
    told (hourly at most), committed with the answer by the request's boundary. False: not paused."""
    if pages.record_paused_attempt(page, email, now) is None:
        return False
    page_cache.skip()  # every visit counts, so none is answered from the micro-cache
    return True


def _slots_for(page: SchedulingPage, time_zone: str, now: datetime, length: timedelta, except_booking=None):
    def slots_for(first_day: date, days: int) -> list[datetime]:
        start, end = availability.visitor_window(first_day, days, time_zone)
        return pages.free_slots(page, start, end, now=now, duration=length, except_booking=except_booking)

    return slots_for


def _ip_and_page() -> str:
    """The client address and the page's path: booking tries are counted per visitor and page."""
    args = request.view_args or {}
    return f"{limits.client_ip()}|{args.get('user_slug', '')}/{args.get('page_slug') or ''}"


def _booked(response: Response) -> bool:
    """A booking made now (201 JSON, 303 form) or a time held for one (202); a replay of one (200) or a
    refusal is not counted."""
    return response.status_code in (201, 202, 303)


_public_read = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_PUBLIC_READ_IP"], scope="public-read", key_func=limits.client_ip
)


@bp.get("/meetings/<user_slug>")
@bp.get("/meetings/<user_slug>/<page_slug>")
@follows_old_links
@_public_read
@page_cache.micro_cached
def page_view(user_slug: str, page_slug: str | None = None):
    found = _find_page(user_slug, page_slug)
    if isinstance(found, Response):
        return found
    page = found
    if pages.unavailable_reason(page):
        return _unavailable(page)
    now = utcnow()
    errors: dict[str, str] = {}
    args = request.args
    time_zone, minutes, month, day, start = page.time_zone, page.durations[0], None, None, None
    for name, parse in (
        ("tz", lambda: _parse_tz(args.get("tz"), page.time_zone)),
        ("duration", lambda: _parse_duration(page, args.get("duration"))),
        ("month", lambda: _parse_month(args.get("month"))),
        ("day", lambda: _parse_day(args.get("day"))),
        ("start", lambda: pages.parse_start(args["start"]) if args.get("start") else None),
    ):
        try:
            value = parse()
        except pages.PagesError as error:
            errors[name] = error.message
            continue
        if name == "tz":
            time_zone = value
        elif name == "duration":
            minutes = value
        elif name == "month":
            month = value
        elif name == "day":
            day = value
        else:
            start = value
    status = 422 if errors else 200
    paused = _paused_visit(page, now)
    common = dict(time_zone=time_zone, duration=minutes, errors=errors, paused=paused, now=now)
    if paused:
        return _render_page(page, status, **common)
    length = timedelta(minutes=minutes)
    slots_for = _slots_for(page, time_zone, now, length)
    message = None
    if start is not None:
        local_day = start.astimezone(ZoneInfo(time_zone)).date()
        if start in slots_for(local_day, 1):
            page_cache.skip()  # the form carries a CSRF token and an idempotency key: this visitor's own
            prefill = read_prefill(page)
            form = booking_form(
                page,
                start=start.isoformat(),
                duration=str(minutes),
                tz=time_zone,
                idempotency_key=secrets.token_urlsafe(24),
                ref=email_ref() or "",
                **_prefill_data(page, prefill),
            )
            return _render_page(page, status, form=form, start=start, prefill=prefill, **common)
        message = _("That time is no longer free; please pick another.")
        day = local_day
    picker = build_picker(slots_for, time_zone, now, month, day)
    return _render_page(page, status, picker=picker, message=message, **common)


@bp.get("/meetings/<user_slug>/slots.json")
@bp.get("/meetings/<user_slug>/<page_slug>/slots.json")
@follows_old_links
@_public_read
@page_cache.micro_cached
def slots_json(user_slug: str, page_slug: str | None = None):
    """The free starts as ISO 8601 with the visitor's offset; see the module docstring for the shape."""
    found = _find_page(user_slug, page_slug, "/slots.json")
    if isinstance(found, Response):
        return found
    page = found
    if pages.unavailable_reason(page):
        return _unavailable(page, as_json=True)
    now = utcnow()
    args, errors = request.args, {}
    time_zone, minutes, first_day, days = page.time_zone, page.durations[0], None, 7
    try:
        time_zone = _parse_tz(args.get("tz"), page.time_zone)
    except pages.PagesError as error:
        errors["tz"] = error.message
    try:
        minutes = _parse_duration(page, args.get("duration"))
    except pages.PagesError as error:
        errors["duration"] = error.message
    try:
        first_day = _parse_day(args.get("start"), "start")
    except pages.PagesError as error:
        errors["start"] = error.message
    if args.get("days"):
        try:
            days = int(args["days"])
        except ValueError:
            days = 0
        if not 1 <= days <= pages.MAX_SLOT_DAYS:
            errors["days"] = _("Ask for 1 to %(max)d days.", max=pages.MAX_SLOT_DAYS)
    if errors:
        return jsonify({"errors": errors}), 422
    if first_day is None:
        first_day = now.astimezone(ZoneInfo(time_zone)).date()
    body = {"slots": [], "time_zone": time_zone, "duration": minutes, "paused": False}
    if _paused_visit(page, now):
        body["paused"] = True
        return jsonify(body)
    slots = pages.visitor_slots(
        page, first_day, days, time_zone, now=now, duration=timedelta(minutes=minutes)
    )
    zone = ZoneInfo(time_zone)
    body["slots"] = [slot.astimezone(zone).isoformat() for slot in slots]
    return jsonify(body)


# --- Booking ------------------------------------------------------------------------------------------------


def _json_formdata() -> MultiDict | None:
    return json_formdata(request.get_json(silent=True))


def _form_errors(form) -> dict[str, str]:
    return {name: " ".join(str(e) for e in messages) for name, messages in form.errors.items() if messages}


def booking_json(booking: Booking, token: str | None) -> dict:
    zone = ZoneInfo(booking.time_zone)
    body = {
        "id": booking.id,
        "status": booking.status,
        "start": booking.start_at.astimezone(zone).isoformat(),
        "end": booking.end_at.astimezone(zone).isoformat(),
        "duration": int((booking.end_at - booking.start_at).total_seconds() // 60),
        "time_zone": booking.time_zone,
        "first_name": booking.first_name,
        "last_name": booking.last_name,
        "email": booking.email,
        "answers": booking.answers,
        "page": {"id": booking.page_id, "title": booking.page.title if booking.page else None},
    }
    if token and pages.hash_token(token) == booking.manage_token_hash:
        body["manage_url"] = manage_url(booking, token)
        body["cancel_url"] = manage_url(booking, token, "cancel")
        body["reschedule_url"] = manage_url(booking, token, "reschedule")
    return body


def _form_context(page: SchedulingPage, form, now: datetime) -> dict:
    time_zone = form.tz.data if form.tz.data in time_zone_names() else page.time_zone
    try:
        start = pages.parse_start(form.start.data or "")
    except pages.PagesError:
        start = None
    try:
        minutes = int(form.duration.data or "")
    except ValueError:
        minutes = page.durations[0]
    if minutes not in page.durations:
        minutes = page.durations[0]
    return dict(
        form=form, start=start, time_zone=time_zone, duration=minutes, errors={}, now=now, paused=False
    )


def _paused_answer(page: SchedulingPage, as_json: bool, now: datetime):
    if as_json:
        return _json_error(503, "booking_paused", error_message("booking_paused"))
    time_zone = request.form.get("tz") if request.form.get("tz") in time_zone_names() else page.time_zone
    return _render_page(
        page, 503, time_zone=time_zone, duration=page.durations[0], errors={}, paused=True, now=now
    )


def _taken_answer(page: SchedulingPage, form, error: pages.PagesError, as_json: bool, now: datetime):
    if as_json:
        return _json_error(409, "slot_taken", error.message, errors={"start": error.message})
    context = _form_context(page, form, now)
    slots_for = _slots_for(page, context["time_zone"], now, timedelta(minutes=context["duration"]))
    day = context["start"].astimezone(ZoneInfo(context["time_zone"])).date() if context["start"] else None
    # What the visitor typed is kept: the form comes back with the free times nearest the lost one to pick
    # from, that day's or else the next days', so nothing has to be typed twice.
    alternatives = []
    if day is not None:
        alternatives = slots_for(day, 1) or slots_for(day + timedelta(days=1), ALTERNATIVE_DAYS)
    if alternatives:
        zone = ZoneInfo(context["time_zone"])
        offered = [start.astimezone(zone) for start in alternatives[:MAX_ALTERNATIVES]]
        by_day = [(day, list(starts)) for day, starts in itertools.groupby(offered, key=lambda s: s.date())]
        return _render_page(page, 409, alternatives=by_day, message=error.message, **context)
    picker = build_picker(slots_for, context["time_zone"], now, None, day)
    context.pop("form")
    context.pop("start")
    return _render_page(page, 409, picker=picker, message=error.message, **context)


def _invalid_answer(page: SchedulingPage, form, as_json: bool, now: datetime, extra: dict | None = None):
    for name, message in (extra or {}).items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
        else:
            form.form_errors.append(message)
    if as_json:
        errors = _form_errors(form)
        if form.form_errors:
            errors["form"] = " ".join(str(e) for e in form.form_errors)
        return jsonify({"errors": errors}), 422
    return _render_page(page, 422, **_form_context(page, form, now))


@bp.post("/meetings/<user_slug>/book")
@bp.post("/meetings/<user_slug>/<page_slug>/book")
@follows_old_links
@csrf.exempt
@limits.limit("RATELIMIT_BOOKING_IP", key=_ip_and_page, scope="ip")
@limits.limit("RATELIMIT_BOOKING_EMAIL", key=limits.form_email, scope="email", deduct_when=_booked)
def book(user_slug: str, page_slug: str | None = None):
    """Book a time. JSON (``Accept: application/json`` or a JSON body): 201 ``{"booking": {...}}`` (200 with
    the same booking for a repeated idempotency key), 409 taken, 422 ``{"errors": {field: message}}``, 503
    paused, 404 page off, 429 over a limit (tries per address and page, bookings per visitor email).
    HTML: 303 to the booking's page (or the page's redirect address); 422 the form
    again with each error beside its field, 409 the day's times again, 503 booking unavailable.
    """
    as_json = wants_json()
    if not as_json:
        csrf.protect()  # JSON clients (integrations) have no session; browsers' forms carry the token
    found = _find_page(user_slug, page_slug, "/book")
    if isinstance(found, Response):
        return found
    page = found
    if pages.unavailable_reason(page):
        return _unavailable(page, as_json)
    now = utcnow()
    formdata = None
    if request.is_json:
        formdata = _json_formdata()
        if formdata is None:
            return jsonify({"errors": {"body": _("Send the booking as a JSON object.")}}), 422
    form = booking_form(page, formdata=formdata)
    if pages.booking_paused_reason(page) is not None:
        email = (form.email.data or "").lower() if form.email.validate(form) else ""
        try:
            pages.refuse_while_paused(page, email, now)
        except pages.BookingPaused:  # the attempt is kept (committed) and the rep told, hourly at most
            return _paused_answer(page, as_json, now)
    if not form.validate():
        return _invalid_answer(page, form, as_json, now)
    key = form.idempotency_key.data or secrets.token_urlsafe(24)
    token = _manage_token(page, key)
    minutes = int(form.duration.data) if form.duration.data else page.durations[0]
    booking_request = pages.BookingRequest(
        start=pages.parse_start(form.start.data),
        duration=timedelta(minutes=minutes),
        first_name=form.first_name.data,
        last_name=form.last_name.data,
        email=form.email.data.lower(),
        time_zone=form.tz.data,
        idempotency_key=key,
        locale=_locale(),
        answers=form.answers(),
        consented=bool(page.consent_text) and bool(form.consent.data),
        manage_token=token,
        sent_email_id=emails.attribution_for(page.owner.tenant, form.ref.data),
    )
    if page.confirm_email:
        return _hold(page, form, booking_request, as_json, now)
    try:
        result = pages.book(page, booking_request, now=now)
    except pages.PageUnavailable:
        return _unavailable(page, as_json)
    except pages.BookingPaused:
        return _paused_answer(page, as_json, now)
    except pages.SlotTaken as error:
        return _taken_answer(page, form, error, as_json, now)
    except pages.PagesError as error:
        return _invalid_answer(page, form, as_json, now, {error.field or "form": error.message})
    # The answer is built now, before the boundary commits: nothing in it reads the database afterwards.
    booking = result.booking
    if result.created:  # a meeting link shown in a chat conversation: the chat shows the booked time (P5)
        chat.record_booking(page.owner.tenant, booking, form.ref.data)
    if as_json:
        return jsonify({"booking": booking_json(booking, token)}), 201 if result.created else 200
    if pages.hash_token(token) != booking.manage_token_hash:  # booked by another way, with its own token
        return _invalid_answer(
            page, form, as_json, now, {"idempotency_key": _("This form was already used.")}
        )
    target = page.redirect_url or manage_url(booking, token)
    response = redirect(target, 303)
    set_prefill(response, page, form)
    return response


def _hold(page: SchedulingPage, form, booking_request: pages.BookingRequest, as_json: bool, now: datetime):
    """The page asks visitors to confirm their email: hold the time and mail the link (202)."""
    minutes = current_app.config["BOOKING_HOLD_MINUTES"]
    try:
        held, _token = pages.hold(page, booking_request, now=now, minutes=minutes)
    except pages.PageUnavailable:
        return _unavailable(page, as_json)
    except pages.BookingPaused:
        return _paused_answer(page, as_json, now)
    except pages.SlotTaken as error:
        return _taken_answer(page, form, error, as_json, now)
    except pages.PagesError as error:
        return _invalid_answer(page, form, as_json, now, {error.field or "form": error.message})
    if as_json:
        zone = ZoneInfo(booking_request.time_zone)
        body = {
            "status": "awaiting_email_confirmation",
            "start": held.start_at.astimezone(zone).isoformat(),
            "end": held.end_at.astimezone(zone).isoformat(),
            "email": held.email,
            "held_until": held.expires_at.astimezone(zone).isoformat(),
        }
        return jsonify({"hold": body}), 202
    g.noindex = True
    return render_template(
        "booking/hold_sent.html", page=page, held=held, minutes=minutes, time_zone=booking_request.time_zone
    ), 202


@bp.route("/meetings/booking/confirm/<token>", methods=["GET", "POST"])
@follows_old_links
def confirm_hold(token: str):
    """The emailed link of a held time. A GET shows a button (mail scanners follow links); the POST books."""
    g.noindex = True
    now = utcnow()
    held = pages.get_hold_by_token(token, now)
    if held is None or (g.tenant is not None and held.tenant_id != g.tenant.id):
        return render_template("booking/hold_expired.html", noindex=True), 410
    page = held.page
    host = paths.page_host(page, _app_host())
    if host != g.host:
        return _moved(external_url(host, f"/meetings/booking/confirm/{token}"))
    if request.method == "GET":
        return render_template("booking/hold_confirm.html", page=page, held=held, noindex=True)
    manage_token = _manage_token(page, held.request["idempotency_key"])
    try:
        result = pages.confirm_hold(held, now=now, manage_token=manage_token)
    except pages.PageUnavailable:
        return _unavailable(page)
    except pages.BookingPaused:
        return _paused_answer(page, False, now)
    except pages.PagesError as error:  # taken meanwhile (the hold had run out), past, no longer offered
        return render_template("booking/hold_expired.html", message=error.message, noindex=True), 409
    return redirect(page.redirect_url or manage_url(result.booking, manage_token), 303)


# --- The visitor's booking ----------------------------------------------------------------------------------


def _booking_zone(booking: Booking) -> str:
    asked = request.args.get("tz") or request.form.get("tz")
    return asked if asked in time_zone_names() else booking.time_zone


def _booking_context(booking: Booking, token: str, now: datetime, **context) -> dict:
    g.noindex = True
    page = booking.page
    return {
        "booking": booking,
        "token": token,
        "page": page,
        "brand": brand_for(booking.owner.tenant),
        "time_zone": _booking_zone(booking),
        "now": now,
        "can_change": booking.is_confirmed and booking.start_at > now and page is not None,
        "can_reschedule": page is not None and pages.offers_length(page, booking.end_at - booking.start_at),
        "page_href": paths.page_path(page) if page is not None else None,
        "noindex": True,
        "tz_given": True,
        **context,
    }


@bp.get("/meetings/booking/<token>")
@follows_old_links
def booking_view(token: str):
    found = _find_booking(token)
    if isinstance(found, Response):
        return found
    return render_template(
        "booking/booking.html",
        **_booking_context(found, token, utcnow()),
        calendar_links=notifications.add_to_calendar_links(found, token),
    )


@bp.get("/meetings/booking/<token>/invite.ics")
@follows_old_links
def booking_ics(token: str):
    """The booking as an event to add to a calendar (METHOD:PUBLISH, nothing to answer; the path keeps
    its old name for links already sent). Same UID and SEQUENCE as the invitation, so a calendar that has
    both keeps one event (and a cancelled booking's file cancels it)."""
    found = _find_booking(token, "/invite.ics")
    if isinstance(found, Response):
        return found
    ics = notifications.calendar_file(found, token)
    if ics is None:
        abort(404)
    response = Response(ics, mimetype="text/calendar")
    name = "meeting.ics" if found.is_confirmed else "cancel.ics"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/meetings/booking/<token>/cancel", methods=["GET", "POST"])
@follows_old_links
def cancel(token: str):
    found = _find_booking(token, "/cancel")
    if isinstance(found, Response):
        return found
    booking, now = found, utcnow()
    context = _booking_context(booking, token, now, errors={})
    if request.method == "GET" or not booking.is_confirmed:
        if request.method == "POST":
            return redirect(manage_url(booking, token), 303)
        return render_template("booking/cancel.html", **context)
    form = VisitorCancelForm(meta={"csrf": False})  # CSRFProtect has checked the token already
    reason = form.reason.data or ""
    if not form.validate():
        context["errors"] = {"reason": " ".join(str(error) for error in form.reason.errors)}
        return render_template("booking/cancel.html", reason=reason, **context), 422
    if booking.start_at <= now:
        context["errors"] = {"reason": _("This meeting has already started; it can no longer be cancelled.")}
        return render_template("booking/cancel.html", reason=reason, **context), 409
    pages.cancel_booking(booking, reason=reason, by_visitor=True, now=now)
    return redirect(manage_url(booking, token), 303)


@bp.route("/meetings/booking/<token>/reschedule", methods=["GET", "POST"])
@follows_old_links
def reschedule(token: str):
    found = _find_booking(token, "/reschedule")
    if isinstance(found, Response):
        return found
    booking, now = found, utcnow()
    page = booking.page
    if page is None or not booking.is_confirmed or booking.start_at <= now:
        if request.method == "POST":
            return redirect(manage_url(booking, token), 303)
        return render_template("booking/booking.html", **_booking_context(booking, token, now))
    if pages.unavailable_reason(page):
        return _unavailable(page)
    if not pages.offers_length(page, booking.end_at - booking.start_at):
        # The rep changed the page's lengths since: the meeting cannot move, only be cancelled.
        notice = error_message("length_gone")
        context = _booking_context(booking, token, now, notice=notice)
        return render_template("booking/booking.html", **context), 409 if request.method == "POST" else 200
    time_zone = _booking_zone(booking)
    context = _booking_context(booking, token, now, errors={}, message=None)
    if request.method == "GET":
        paused = _paused_visit(page, now, booking.email)
    else:
        paused = pages.booking_paused_reason(page) is not None
    status, posted_day = 200, None
    slots_for = _slots_for(page, time_zone, now, booking.end_at - booking.start_at, except_booking=booking)
    if request.method == "POST":
        form = VisitorRescheduleForm(meta={"csrf": False})  # CSRFProtect has checked the token already
        context["reason"] = form.reason.data or ""
        try:
            start = pages.parse_start(form.start.data or "")
            posted_day = start.astimezone(ZoneInfo(time_zone)).date()
            if not form.validate():
                context["errors"] = {"reason": " ".join(str(error) for error in form.reason.errors)}
                return render_template(
                    "booking/reschedule_confirm.html", new_start=start, paused=False, **context
                ), 422
            pages.reschedule_booking(booking, start, token, now=now, reason=context["reason"])
        except pages.BookingPaused:  # the attempt is kept (committed) and the rep told, hourly at most
            paused, status = True, 503
        except pages.PageUnavailable:
            return _unavailable(page)
        except pages.SlotTaken as error:
            context["message"], status = error.message, 409
        except pages.PagesError as error:
            context["errors"], status = {error.field or "start": error.message}, 422
        else:
            return redirect(manage_url(booking, token), 303)
    elif not paused and request.args.get("start"):
        # A time picked: show it beside the current one and ask to confirm (with an optional reason).
        try:
            start = pages.parse_start(request.args["start"])
        except pages.PagesError as error:
            context["errors"], status = {"start": error.message}, 422
        else:
            posted_day = start.astimezone(ZoneInfo(time_zone)).date()
            if start in slots_for(posted_day, 1):
                return render_template(
                    "booking/reschedule_confirm.html", new_start=start, paused=False, reason="", **context
                )
            context["message"] = _("That time is no longer free; please pick another.")
    if paused:
        return render_template("booking/reschedule.html", paused=True, **context), status
    try:
        month = _parse_month(request.args.get("month"))
        day = _parse_day(request.args.get("day")) or posted_day
    except pages.PagesError as error:
        context["errors"][error.field] = error.message
        month = day = None
        status = 422
    tz = time_zone if request.values.get("tz") else None

    def nav(**params) -> str:
        query = {key: value for key, value in {"tz": tz, **params}.items() if value not in (None, "")}
        path = f"/meetings/booking/{token}/reschedule"
        return f"{path}?{urlencode(query)}" if query else path

    context.update(
        picker=build_picker(slots_for, time_zone, now, month, day),
        nav=nav,
        mode="reschedule",
        day_chosen=bool(request.args.get("day")),
    )
    template = "booking/_slots.html" if is_fragment_request() else "booking/reschedule.html"
    return render_template(template, paused=False, **context), status
