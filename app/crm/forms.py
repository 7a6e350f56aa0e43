from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from wtforms import (
    DateField,
    EmailField,
    SearchField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
    TimeField,
    ValidationError,
)
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional

from app.crm.services import ContactData
from app.web.forms import TerminForm, strip


def _text(label, limit, required=False):
    validators = [Length(max=limit, message=_l("At most %(max)d characters.", max=limit))]
    if required:
        # DataRequired, not InputRequired: it sees the value after the strip filter, so "   " is empty too.
        validators.insert(0, DataRequired(_l("This field is required.")))
    return StringField(label, filters=[strip], validators=validators)


class ContactSearchForm(TerminForm):
    """The contact list's search box, read from the query string."""

    class Meta:
        csrf = False  # a GET: nothing is changed

    q = SearchField(
        _l("Search contacts"),
        filters=[strip],
        validators=[Length(max=200, message=_l("At most %(max)d characters.", max=200))],
    )


class ContactForm(TerminForm):
    email = EmailField(
        _l("Email"),
        filters=[strip],
        validators=[
            InputRequired(_l("Enter the contact's email address.")),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
            Email(
                message=_l("Enter a valid email address, like name@example.com."), check_deliverability=False
            ),
        ],
    )
    first_name = _text(_l("First name"), 80)
    last_name = _text(_l("Last name"), 80)
    company = _text(_l("Company"), 120)
    phone = _text(_l("Phone"), 40)
    notes = TextAreaField(
        _l("Notes"),
        filters=[strip],
        validators=[
            Length(max=10_000, message=_l("At most %(max)d characters.", max=10_000)),
        ],
    )

    def data_for_service(self) -> ContactData:
        return ContactData(
            email=self.email.data,
            first_name=self.first_name.data or "",
            last_name=self.last_name.data or "",
            company=self.company.data or "",
            phone=self.phone.data or "",
            notes=self.notes.data or "",
        )


DURATIONS = [
    SelectChoice("15", _l("15 min")),
    SelectChoice("30", _l("30 min")),
    SelectChoice("45", _l("45 min")),
    SelectChoice("60", _l("1 h")),
    SelectChoice("90", _l("1 h 30 min")),
    SelectChoice("120", _l("2 h")),
]


def local_to_utc(day: date, at: time, zone_name: str) -> datetime:
    """A wall-clock time in ``zone_name`` as UTC; a time the clocks skip over raises ValueError."""
    zone = ZoneInfo(zone_name)
    local = datetime.combine(day, at, tzinfo=zone)
    as_utc = local.astimezone(UTC)
    if as_utc.astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise ValueError("nonexistent local time")
    return as_utc


class MeetingForm(TerminForm):
    title = _text(_l("Title"), 200, required=True)
    date = DateField(_l("Date"), validators=[InputRequired(_l("Choose the meeting's date."))])
    start_time = TimeField(_l("Start time"), validators=[InputRequired(_l("Choose the start time."))])
    duration = SelectField(_l("Duration"), choices=DURATIONS, coerce=int, default=30)
    notes = TextAreaField(
        _l("Notes"),
        filters=[strip],
        validators=[
            Length(max=10_000, message=_l("At most %(max)d characters.", max=10_000)),
        ],
    )

    def __init__(self, *args, time_zone: str = "UTC", **kwargs):
        super().__init__(*args, **kwargs)
        self.time_zone = time_zone

    def validate_start_time(self, field):
        if self.date.data and field.data:
            try:
                self.start_at = local_to_utc(self.date.data, field.data, self.time_zone)
            except ValueError:
                raise ValidationError(
                    _l(
                        "This time does not exist in %(zone)s: the clocks skip it. Pick another time.",
                        zone=self.time_zone,
                    )
                ) from None

    @property
    def end_at(self) -> datetime:
        return self.start_at + timedelta(minutes=self.duration.data)


class TaskForm(TerminForm):
    title = _text(_l("Task"), 200, required=True)
    due_date = DateField(_l("Due date"), validators=[Optional()])
    due_time = TimeField(_l("Due time"), validators=[Optional()], default=time(9, 0))

    def __init__(self, *args, time_zone: str = "UTC", **kwargs):
        super().__init__(*args, **kwargs)
        self.time_zone = time_zone
        self.due_at = None

    def validate(self, extra_validators=None) -> bool:
        # Not a validate_due_time method: Optional() ends due_time's validation chain when the time is
        # left empty, which skipped the method and silently dropped a due date given without a time.
        if not super().validate(extra_validators):
            return False
        if self.due_date.data is None:
            return True
        try:
            self.due_at = local_to_utc(self.due_date.data, self.due_time.data or time(9, 0), self.time_zone)
        except ValueError:
            self.due_time.errors.append(
                _l(
                    "This time does not exist in %(zone)s: the clocks skip it. Pick another time.",
                    zone=self.time_zone,
                )
            )
            return False
        return True
