"""The rep's forms for scheduling pages: the page editor, the user slug, the P4 switches.

Everything is plain text that works without JavaScript: a weekday's hours are "09:00-12:00, 13:00-17:00",
a date override is a line "2026-12-24: off" or "2026-12-27: 10:00-14:00", durations are "30, 60" and the
questions are rows with a few empty ones to fill. The form checks what it can with translated messages;
``app.pages.services`` re-checks everything (slug, zone, ranges, domain) and its ``PagesError.field``
names the input the view puts the error beside.
"""

import re
from datetime import date
from itertools import pairwise

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    DateField,
    FieldList,
    Form,
    FormField,
    HiddenField,
    IntegerField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    ValidationError,
)
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from app.pages.models import SchedulingPage
from app.pages.services import SLUG_PATTERN, PageSettings, RepLimits
from app.tenants.services import RESERVED_SLUGS
from app.web.forms import FIRST_YEAR, LAST_YEAR, YEARS, TerminForm, strip, valid_time_zone

WEEKDAYS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)
EMPTY_QUESTION_ROWS = 3
MAX_QUESTIONS = 20
MAX_DURATIONS = 8
MAX_OVERRIDES = 366
MAX_MINUTES = 12 * 60  # a meeting, an increment
MAX_BUFFER = 24 * 60
MAX_NOTICE = 60 * 24 * 60  # 60 days
MAX_HORIZON = 730
MAX_DAILY_BOOKINGS = 500
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_RANGE_SPLIT = re.compile("\\s*[-\u2013\u2014]\\s*")  # hyphen, en dash, em dash
_QUESTION_ID = re.compile(r"^q\d{1,6}$")
OFF_WORDS = {"off", "closed", "wolne", "nieczynne"}


def _length(limit: int) -> Length:
    return Length(max=limit, message=_l("At most %(max)d characters.", max=limit))


def _minutes(label, maximum: int, *, default=0, optional=False):
    validators = [
        NumberRange(min=0, max=maximum, message=_l("Enter whole minutes from 0 to %(max)d.", max=maximum))
    ]
    validators.insert(0, Optional() if optional else InputRequired(_l("Enter a number of minutes.")))
    return IntegerField(label, default=default, validators=validators)


def check_slug_text(value: str) -> str:
    """The slug's one spelling, or ``ValidationError`` with a translated reason (same rules as services)."""
    slug = (value or "").strip().lower()
    if not SLUG_PATTERN.match(slug):
        raise ValidationError(
            _l("Use 1-64 lower-case letters, digits and hyphens, starting and ending with a letter or digit.")
        )
    if slug in RESERVED_SLUGS:
        raise ValidationError(_l("“%(slug)s” is a reserved word; choose another.", slug=slug))
    return slug


def _slug_field(form, field) -> None:
    field.data = check_slug_text(field.data)


# --- Hours ----------------------------------------------------------------------------------------------


def _wall_minutes(text: str) -> int:
    match = _TIME.match(text)
    if not match:
        raise ValidationError(_l("Write times as HH:MM, like 09:00-12:00."))
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValidationError(_l("“%(time)s” is not a time of day.", time=text))
    return hours * 60 + minutes


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_ranges(text: str) -> list[tuple[str, str]]:
    """ "09:00-12:00, 13:00-17:00" as [("09:00", "12:00"), ...], sorted; ``ValidationError`` when a range
    is malformed, ends before it starts or overlaps another. "24:00" ends a day."""
    text = (text or "").strip()
    if not text:
        return []
    ranges = []
    for part in re.split(r"\s*[,;]\s*", text):
        if not part:
            continue
        pieces = _RANGE_SPLIT.split(part.strip())
        if len(pieces) != 2:
            raise ValidationError(_l("Write each range as start-end, like 09:00-12:00."))
        start, end = _wall_minutes(pieces[0]), _wall_minutes(pieces[1])
        if start >= 24 * 60:
            raise ValidationError(_l("A range cannot start at 24:00."))
        if end <= start:
            raise ValidationError(
                _l("%(range)s ends before it starts.", range=f"{_hhmm(start)}-{_hhmm(end)}")
            )
        ranges.append((start, end))
    ranges.sort()
    for (_s1, e1), (s2, e2) in pairwise(ranges):
        if s2 < e1:
            raise ValidationError(
                _l(
                    "%(first)s and %(second)s overlap.",
                    first=f"{_hhmm(_s1)}-{_hhmm(e1)}",
                    second=f"{_hhmm(s2)}-{_hhmm(e2)}",
                )
            )
    return [(_hhmm(s), _hhmm(e)) for s, e in ranges]


def format_ranges(ranges) -> str:
    return ", ".join(f"{start}-{end}" for start, end in ranges)


def parse_overrides(text: str) -> list[dict]:
    """Lines "YYYY-MM-DD: off" or "YYYY-MM-DD: 10:00-14:00, 15:00-16:00" as [{"day", "ranges"}]."""
    overrides: dict[date, list] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        day_text, _sep, rest = line.partition(" ") if ":" not in line[:11] else line.partition(":")
        day_text, rest = day_text.strip(), rest.strip()
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise ValidationError(
                _l("Line %(number)d: start with a date as YYYY-MM-DD, like 2026-12-24: off.", number=number)
            ) from None
        if not FIRST_YEAR <= day.year <= LAST_YEAR:
            raise ValidationError(_l("Line %(number)d: %(problem)s", number=number, problem=str(YEARS)))
        if day in overrides:
            raise ValidationError(_l("Line %(number)d: %(day)s is given twice.", number=number, day=day_text))
        if rest.lower() in OFF_WORDS or rest == "":
            ranges = []
        else:
            try:
                ranges = parse_ranges(rest)
            except ValidationError as error:
                raise ValidationError(
                    _l("Line %(number)d: %(problem)s", number=number, problem=str(error))
                ) from None
        overrides[day] = ranges
    if len(overrides) > MAX_OVERRIDES:
        raise ValidationError(_l("At most %(max)d dates.", max=MAX_OVERRIDES))
    return [{"day": day.isoformat(), "ranges": ranges} for day, ranges in sorted(overrides.items())]


def format_overrides(overrides) -> str:
    return "\n".join(
        f"{item['day']}: {format_ranges(item['ranges']) if item.get('ranges') else 'off'}"
        for item in overrides
    )


def parse_durations(text: str) -> list[int]:
    values = []
    for part in re.split(r"[\s,;]+", (text or "").strip()):
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or not 5 <= int(part) <= MAX_MINUTES:
            raise ValidationError(
                _l("Give each length as whole minutes from 5 to %(max)d, like 30, 60.", max=MAX_MINUTES)
            )
        if int(part) not in values:
            values.append(int(part))
    if not values:
        raise ValidationError(_l("Give at least one meeting length in minutes, like 30."))
    if len(values) > MAX_DURATIONS:
        raise ValidationError(_l("At most %(max)d meeting lengths.", max=MAX_DURATIONS))
    return values


MAX_REMINDERS = 3
MAX_REMINDER_MINUTES = 30 * 24 * 60


def parse_reminders(text: str) -> list[int]:
    """ "1440, 60" as [1440, 60]: at most three, each 5 minutes to 30 days before the start."""
    values = []
    for part in re.split(r"[\s,;]+", (text or "").strip()):
        if not part:
            continue
        if not (part.isascii() and part.isdigit()) or not 5 <= int(part) <= MAX_REMINDER_MINUTES:
            raise ValidationError(
                _l(
                    "Give each reminder as minutes before, from 5 to %(max)d, like 1440, 60.",
                    max=MAX_REMINDER_MINUTES,
                )
            )
        if int(part) not in values:
            values.append(int(part))
    if len(values) > MAX_REMINDERS:
        raise ValidationError(_l("At most %(max)d reminders.", max=MAX_REMINDERS))
    return sorted(values, reverse=True)


# --- The page editor ------------------------------------------------------------------------------------


class QuestionForm(Form):
    """One custom question of the booking form; a row left without a question is ignored."""

    qid = HiddenField()
    text = StringField(_l("Question"), filters=[strip], validators=[_length(300)])
    kind = SelectField(
        _l("Answer"),
        choices=[SelectChoice("text", _l("Text")), SelectChoice("choice", _l("One of a few choices"))],
        default="text",
    )
    choices = TextAreaField(_l("Choices, one a line"), filters=[strip], validators=[_length(2000)])
    required = BooleanField(_l("Required"))

    def choice_list(self) -> list[str]:
        return [line.strip()[:200] for line in (self.choices.data or "").splitlines() if line.strip()]

    def validate_choices(self, field):
        if self.text.data and self.kind.data == "choice" and len(self.choice_list()) < 2:
            raise ValidationError(_l("Give at least two choices, one a line."))


class MemberRow(Form):
    """One user of the tenant on a team page's editor: on the page or not, weight, paused."""

    user_id = HiddenField()
    included = BooleanField(_l("On this page"))
    weight = IntegerField(
        _l("Weight"),
        default=1,
        validators=[
            Optional(),
            NumberRange(min=1, max=100, message=_l("Enter 1 to %(max)d.", max=100)),
        ],
    )
    paused = BooleanField(_l("Paused"))


ASSIGNMENT_CHOICES = [
    SelectChoice("even", _l("Even: the member with the fewest bookings of this page")),
    SelectChoice("weighted", _l("Weighted: bookings shared in proportion to each member's weight")),
    SelectChoice("owner_first", _l("Contact owner first: a known contact's owner when free, else even")),
]


class WeeklyHoursFields:
    """A range list per weekday ("09:00-12:00, 13:00-17:00"), shared by a page's hours and the rep's own;
    WTForms collects fields from mixins too."""

    day_0 = StringField(WEEKDAYS[0], filters=[strip], validators=[_length(300)], default="09:00-17:00")
    day_1 = StringField(WEEKDAYS[1], filters=[strip], validators=[_length(300)], default="09:00-17:00")
    day_2 = StringField(WEEKDAYS[2], filters=[strip], validators=[_length(300)], default="09:00-17:00")
    day_3 = StringField(WEEKDAYS[3], filters=[strip], validators=[_length(300)], default="09:00-17:00")
    day_4 = StringField(WEEKDAYS[4], filters=[strip], validators=[_length(300)], default="09:00-17:00")
    day_5 = StringField(WEEKDAYS[5], filters=[strip], validators=[_length(300)])
    day_6 = StringField(WEEKDAYS[6], filters=[strip], validators=[_length(300)])

    @property
    def day_fields(self):
        return [getattr(self, f"day_{n}") for n in range(7)]


class PageForm(WeeklyHoursFields, TerminForm):
    title = StringField(
        _l("Title"),
        filters=[strip],
        validators=[DataRequired(_l("Give the page a title.")), _length(200)],
    )
    slug = StringField(
        _l("Page link"),
        filters=[strip],
        validators=[DataRequired(_l("Choose the last part of the page's link.")), _slug_field],
    )
    description = TextAreaField(_l("Description"), filters=[strip], validators=[_length(5000)])
    location = StringField(
        _l("Location"),
        filters=[strip],
        validators=[_length(500)],
        description=_l("A room, an address, a call link."),
    )
    durations = StringField(
        _l("Meeting lengths (minutes)"),
        filters=[strip],
        default="30",
        description=_l("One or more, separated by commas: the visitor picks one. The first is the default."),
    )
    time_zone = StringField(
        _l("Time zone of these hours"),
        filters=[strip],
        validators=[InputRequired(_l("Choose a time zone.")), valid_time_zone],
    )
    overrides = TextAreaField(
        _l("Date overrides"),
        filters=[strip],
        validators=[_length(20_000)],
        description=_l(
            "One date a line. “2026-12-24: off” is a day off; “2026-12-27: 10:00-14:00” gives that date "
            "these hours instead of its weekday's."
        ),
    )
    buffer_before = _minutes(_l("Buffer before (minutes)"), MAX_BUFFER)
    buffer_after = _minutes(_l("Buffer after (minutes)"), MAX_BUFFER)
    min_notice = _minutes(_l("Minimum notice (minutes)"), MAX_NOTICE, default=240)
    increment = IntegerField(
        _l("Start times every (minutes)"),
        validators=[
            Optional(),
            NumberRange(min=5, max=MAX_MINUTES, message=_l("Enter 5 to %(max)d minutes.", max=MAX_MINUTES)),
        ],
        description=_l("Leave empty to step by the meeting's length."),
    )
    window = RadioField(
        _l("How far ahead"),
        choices=[
            SelectChoice("rolling", _l("A number of days from today")),
            SelectChoice("range", _l("Between two dates")),
        ],
        default="rolling",
        validators=[InputRequired(_l("Choose how far ahead visitors may book."))],
    )
    horizon_days = IntegerField(
        _l("Days ahead"),
        default=60,
        validators=[
            Optional(),
            NumberRange(min=1, max=MAX_HORIZON, message=_l("Enter 1 to %(max)d days.", max=MAX_HORIZON)),
        ],
    )
    max_bookings_per_day = IntegerField(
        _l("Most bookings a day"),
        validators=[
            Optional(),
            NumberRange(
                min=1, max=MAX_DAILY_BOOKINGS, message=_l("Enter 1 to %(max)d.", max=MAX_DAILY_BOOKINGS)
            ),
        ],
        description=_l("Leave empty for no limit. A day that has this many bookings offers no more times."),
    )
    date_from = DateField(_l("From"), validators=[Optional()])
    date_to = DateField(_l("To"), validators=[Optional()])
    questions = FieldList(
        FormField(QuestionForm), min_entries=0, max_entries=MAX_QUESTIONS + EMPTY_QUESTION_ROWS
    )
    consent_text = TextAreaField(
        _l("Consent checkbox text"),
        filters=[strip],
        validators=[_length(2000)],
        description=_l("Leave empty for no checkbox. When set, visitors must tick it to book."),
    )
    after_booking = RadioField(
        _l("After booking"),
        choices=[
            SelectChoice("message", _l("Show a confirmation message")),
            SelectChoice("redirect", _l("Send the visitor to a web address")),
        ],
        default="message",
        validators=[InputRequired(_l("Choose what visitors see after booking."))],
    )
    confirmation_message = TextAreaField(
        _l("Confirmation message"), filters=[strip], validators=[_length(5000)]
    )
    redirect_url = StringField(
        _l("Redirect address"), filters=[strip], validators=[_length(2048)], description="https://…"
    )
    domain_id = SelectField(_l("Served on"), choices=[], default="", validate_choice=False)
    confirm_email = BooleanField(
        _l("Ask visitors to confirm their email before the booking is final"),
        description=_l(
            "The time is held for a few minutes while they follow the link we email them; then it is booked."
        ),
    )
    hide_from_search = BooleanField(
        _l("Hide from search engines"),
        description=_l("Adds a noindex tag, so search engines drop the page even where robots.txt does not."),
    )

    reminders = StringField(
        _l("Reminders (minutes before)"),
        filters=[strip],
        validators=[_length(100)],
        description=_l("Up to three, like 1440, 60 (a day and an hour before). Leave empty for none."),
    )
    remind_rep = BooleanField(_l("Remind the rep too"))
    # Team pages only (T1); ignored on a one-on-one page.
    assignment = SelectField(_l("Who gets each meeting"), choices=ASSIGNMENT_CHOICES, default="even")
    members = FieldList(FormField(MemberRow), min_entries=0, max_entries=1000)

    def __init__(self, *args, domains=(), app_host: str = "", kind: str = "one_on_one", users=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.kind = kind
        self.users = {user.id: user for user in users}
        if kind != "one_on_one" and not self.members.entries:
            for user in users:
                row = self.members.append_entry()
                row.user_id.data, row.weight.data = str(user.id), 1
        self.domain_id.choices = [SelectChoice("", app_host)] + [
            SelectChoice(str(d.id), d.hostname) for d in domains
        ]
        self.weekly_errors: list[str] = []
        self.general_errors: list[str] = []
        self.parsed: dict = {}

    def add_empty_questions(self, extra: int = EMPTY_QUESTION_ROWS) -> None:
        """Leave ``extra`` empty rows after the filled ones (no JavaScript needed), and number the rows."""
        filled = len([q for q in self.questions if q.text.data])
        while len(self.questions.entries) < min(filled + extra, self.questions.max_entries):
            self.questions.append_entry()
        for number, row in enumerate(self.questions, start=1):
            row.text.label.text = _l("Question %(number)d", number=number)

    # Each parser's result is kept in ``parsed`` for ``settings``.
    def validate_durations(self, field):
        self.parsed["durations"] = parse_durations(field.data)

    def validate_overrides(self, field):
        self.parsed["overrides"] = parse_overrides(field.data)

    def validate_reminders(self, field):
        self.parsed["reminders"] = parse_reminders(field.data)

    def validate_domain_id(self, field):
        if field.data not in {choice.value for choice in field.choices}:
            raise ValidationError(_l("Choose the app's address or one of your company's verified domains."))

    def validate_redirect_url(self, field):
        if self.after_booking.data != "redirect":
            return
        if not field.data:
            raise ValidationError(_l("Enter the address to send visitors to."))
        if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+", field.data, re.IGNORECASE) or any(
            c.isspace() or not c.isprintable() or c == "\\" for c in field.data
        ):
            raise ValidationError(_l("Use a web address starting with http:// or https://."))

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        weekly = []
        for weekday, day_field in enumerate(self.day_fields):
            try:
                weekly.extend((weekday, s, e) for s, e in parse_ranges(day_field.data))
            except ValidationError as error:
                day_field.errors = [*day_field.errors, str(error)]
                valid = False
        self.parsed["weekly"] = weekly
        if valid and not weekly and not any(o["ranges"] for o in self.parsed.get("overrides", [])):
            self.weekly_errors.append(str(_l("Give the hours of at least one day.")))
            valid = False
        if self.window.data == "rolling":
            if self.horizon_days.data is None and not self.horizon_days.errors:
                self.horizon_days.errors = [str(_l("Enter how many days ahead visitors may book."))]
                valid = False
        elif self.window.data == "range":
            for date_field in (self.date_from, self.date_to):
                if date_field.data is None and not date_field.errors:
                    date_field.errors = [str(_l("Choose a date."))]
                    valid = False
            if self.date_from.data and self.date_to.data and self.date_from.data > self.date_to.data:
                self.date_to.errors = [*self.date_to.errors, str(_l("The last date is before the first."))]
                valid = False
        labels = [q for q in self.questions if q.text.data]
        if len(labels) > MAX_QUESTIONS:
            self.general_errors.append(str(_l("At most %(max)d questions.", max=MAX_QUESTIONS)))
            valid = False
        return valid

    def questions_for_service(self, existing: list[dict]) -> list[dict]:
        """The filled rows, keeping each question's id (answers of bookings refer to it)."""
        known = {q["id"] for q in existing}
        used: set[str] = set()
        rows = [q for q in self.questions if q.text.data]
        numbers = [int(i[1:]) for i in known if _QUESTION_ID.match(i)]
        next_number = max(numbers, default=0) + 1
        result = []
        for row in rows:
            qid = row.qid.data or ""
            if qid not in known or qid in used:
                qid = f"q{next_number}"
                next_number += 1
            used.add(qid)
            question = {
                "id": qid,
                "label": row.text.data,
                "kind": row.kind.data,
                "required": bool(row.required.data),
            }
            question["choices"] = row.choice_list() if row.kind.data == "choice" else []
            result.append(question)
        return result

    def settings(self, existing_questions: list[dict]) -> PageSettings:
        rolling = self.window.data == "rolling"
        redirect = self.after_booking.data == "redirect"
        return PageSettings(
            title=self.title.data,
            slug=self.slug.data,
            time_zone=self.time_zone.data,
            weekly=self.parsed["weekly"],
            durations=self.parsed["durations"],
            description=self.description.data or "",
            location=self.location.data or "",
            overrides=self.parsed.get("overrides", []),
            increment=self.increment.data,
            buffer_before=self.buffer_before.data,
            buffer_after=self.buffer_after.data,
            min_notice=self.min_notice.data,
            horizon_days=self.horizon_days.data if rolling else None,
            date_from=None if rolling else self.date_from.data,
            date_to=None if rolling else self.date_to.data,
            questions=self.questions_for_service(existing_questions),
            consent_text=self.consent_text.data or "",
            confirmation_message="" if redirect else (self.confirmation_message.data or ""),
            redirect_url=(self.redirect_url.data or "") if redirect else "",
            domain_id=int(self.domain_id.data) if self.domain_id.data else None,
            hide_from_search=bool(self.hide_from_search.data),
            reminders=self.parsed.get("reminders", []),
            remind_rep=bool(self.remind_rep.data),
            kind=self.kind,
            assignment=self.assignment.data or "even",
            members=self.members_for_service(),
            max_bookings_per_day=self.max_bookings_per_day.data,
            confirm_email=bool(self.confirm_email.data),
        )

    def members_for_service(self) -> list[dict]:
        if self.kind == "one_on_one":
            return []
        return [
            {
                "user_id": int(row.user_id.data),
                "weight": row.weight.data or 1,
                "paused": bool(row.paused.data),
            }
            for row in self.members
            if row.included.data and (row.user_id.data or "").isdigit()
        ]

    def validate_members(self, field):
        if self.kind == "one_on_one":
            return
        if not any(row.included.data for row in field):
            raise ValidationError(_l("Choose at least one member."))
        for row in field:
            if not (row.user_id.data or "").isdigit() or int(row.user_id.data) not in self.users:
                raise ValidationError(_l("Choose members among your company's active users."))

    def fill_from(self, page: SchedulingPage) -> None:
        """Show a stored page (a GET of the edit form)."""
        self.title.data, self.slug.data = page.title, page.slug
        self.description.data, self.location.data = page.description, page.location
        self.durations.data = ", ".join(str(m) for m in page.durations)
        self.time_zone.data = page.time_zone
        for weekday, day_field in enumerate(self.day_fields):
            day_field.data = format_ranges(
                (s, e) for d, s, e in page.availability.get("weekly", ()) if d == weekday
            )
        self.overrides.data = format_overrides(page.availability.get("overrides", ()))
        self.buffer_before.data, self.buffer_after.data = page.buffer_before, page.buffer_after
        self.min_notice.data, self.increment.data = page.min_notice, page.increment
        self.max_bookings_per_day.data = page.max_bookings_per_day
        self.confirm_email.data = page.confirm_email
        if page.date_from and page.date_to:
            self.window.data = "range"
            self.date_from.data, self.date_to.data = page.date_from, page.date_to
            self.horizon_days.data = page.horizon_days or 60
        else:
            self.window.data, self.horizon_days.data = "rolling", page.horizon_days
        while self.questions.entries:
            self.questions.pop_entry()
        for question in page.questions:
            row = self.questions.append_entry()
            row.qid.data, row.text.data = question["id"], question["label"]
            row.kind.data, row.required.data = question.get("kind", "text"), question.get("required", False)
            row.choices.data = "\n".join(question.get("choices", ()))
        self.consent_text.data = page.consent_text
        self.after_booking.data = "redirect" if page.redirect_url else "message"
        self.confirmation_message.data, self.redirect_url.data = page.confirmation_message, page.redirect_url
        served = page.domain is not None and page.domain.is_verified
        self.domain_id.data = str(page.domain_id) if served else ""
        self.hide_from_search.data = page.hide_from_search
        self.reminders.data = ", ".join(str(minutes) for minutes in page.reminders or ())
        self.remind_rep.data = page.remind_rep
        if page.is_team:
            self.assignment.data = page.assignment
            while self.members.entries:
                self.members.pop_entry()
            on_page = {member.user_id for member in page.members}
            for member in page.members:
                row = self.members.append_entry()
                row.user_id.data, row.included.data = str(member.user_id), True
                row.weight.data, row.paused.data = member.weight, member.paused
            for user_id in self.users:
                if user_id not in on_page:
                    row = self.members.append_entry()
                    row.user_id.data, row.weight.data = str(user_id), 1


# --- The rep's own limits (T1, T4) -----------------------------------------------------------------------

MAX_TIME_OFF = 200
MAX_DAILY_MEETINGS = 100
_DATE_SPLIT = re.compile("\\s+(?:[-\u2013\u2014]|to|do|\\.\\.)\\s+|\\.\\.|\\s*[\u2013\u2014]\\s*")


def parse_time_off(text: str) -> list[tuple[date, date]]:
    """Lines "2026-12-24" (one day) or "2026-12-24 - 2027-01-02" (inclusive) as sorted date pairs."""
    found = []
    for number, line in enumerate((text or "").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        pieces = [piece.strip() for piece in _DATE_SPLIT.split(line)]
        try:
            days = [date.fromisoformat(piece) for piece in pieces]
        except ValueError:
            raise ValidationError(
                _l("Line %(number)d: write a date as YYYY-MM-DD, or two joined by “ - ”.", number=number)
            ) from None
        if len(days) not in (1, 2):
            raise ValidationError(_l("Line %(number)d: at most two dates a line.", number=number))
        if any(not FIRST_YEAR <= day.year <= LAST_YEAR for day in days):
            raise ValidationError(_l("Line %(number)d: %(problem)s", number=number, problem=str(YEARS)))
        first, last = days[0], days[-1]
        if last < first:
            raise ValidationError(_l("Line %(number)d: the last date is before the first.", number=number))
        found.append((first, last))
    if len(found) > MAX_TIME_OFF:
        raise ValidationError(_l("At most %(max)d lines.", max=MAX_TIME_OFF))
    return sorted(found)


def format_time_off(time_off) -> str:
    return "\n".join(first if first == last else f"{first} - {last}" for first, last in time_off)


class RepLimitsForm(WeeklyHoursFields, TerminForm):
    """The rep's working hours, time off and daily maximum, honoured by every page they are booked on."""

    limit_hours = BooleanField(_l("Only offer times within my working hours"))
    time_off = TextAreaField(
        _l("Time off"),
        filters=[strip],
        validators=[_length(10_000)],
        description=_l(
            "One a line: a date (2026-12-24) or a range (2026-12-24 - 2027-01-02). No meetings then."
        ),
    )
    daily_meeting_limit = IntegerField(
        _l("Most meetings a day"),
        validators=[
            Optional(),
            NumberRange(
                min=1,
                max=MAX_DAILY_MEETINGS,
                message=_l("Enter 1 to %(max)d, or leave empty for no maximum.", max=MAX_DAILY_MEETINGS),
            ),
        ],
        description=_l("Across all your pages; when a day holds this many, its other times disappear."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.parsed: dict = {}

    def validate_time_off(self, field):
        self.parsed["time_off"] = parse_time_off(field.data)

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        weekly = []
        for weekday, day_field in enumerate(self.day_fields):
            try:
                weekly.extend((weekday, s, e) for s, e in parse_ranges(day_field.data))
            except ValidationError as error:
                day_field.errors = [*day_field.errors, str(error)]
                valid = False
        self.parsed["weekly"] = weekly
        return valid

    def limits(self) -> RepLimits:
        return RepLimits(
            working_hours=self.parsed["weekly"] if self.limit_hours.data else None,
            time_off=self.parsed.get("time_off", []),
            daily_meeting_limit=self.daily_meeting_limit.data,
        )

    def fill_from(self, user) -> None:
        self.limit_hours.data = user.working_hours is not None
        if user.working_hours is not None:
            for weekday, day_field in enumerate(self.day_fields):
                day_field.data = format_ranges((s, e) for d, s, e in user.working_hours if d == weekday)
        self.time_off.data = format_time_off(user.time_off or [])
        self.daily_meeting_limit.data = user.daily_meeting_limit


# --- The list page's small forms -------------------------------------------------------------------------


class UserSlugForm(TerminForm):
    page_slug = StringField(
        _l("Your link"),
        filters=[strip],
        validators=[DataRequired(_l("Choose your part of the link.")), _slug_field],
    )


class SwitchForm(TerminForm):
    """A P4 switch: ``disabled`` "1" turns pages off, "0" on."""

    disabled = RadioField(
        choices=[SelectChoice("1", "off"), SelectChoice("0", "on")], validators=[InputRequired()]
    )


class CancelBookingForm(TerminForm):
    reason = TextAreaField(_l("Reason (sent to the visitor)"), filters=[strip], validators=[_length(2000)])
