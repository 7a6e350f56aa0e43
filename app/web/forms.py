"""Form pieces shared by every feature, and the base every form of the app derives from."""

from datetime import date
from functools import cache
from zoneinfo import available_timezones

from flask import abort, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.form import SUBMIT_METHODS
from werkzeug.datastructures import MultiDict
from wtforms import FieldList, FormField, PasswordField, TextAreaField, ValidationError

from app.web.converters import MAX_ID

# Years a person may type into any date field: wide enough for any real meeting, task or birthday, and far
# enough from datetime's ends (years 1 and 9999) that no time zone can push a stored moment past them.
FIRST_YEAR, LAST_YEAR = 1900, 2200
# No one types these. NUL cannot be stored in PostgreSQL text; the others corrupt what is shown or sent.
_CONTROLS = frozenset(chr(c) for c in [*range(0x20), 0x7F]) - {"\t", "\n", "\r"}
# A one-line field may end up in an email header (a subject, a display name), where a line break would
# start a new header; the Unicode line separators are refused with them.
_LINE_BREAKS = frozenset("\t\n\r\x85\u2028\u2029")

NO_CONTROLS = _l("Remove the invisible control characters from this field.")
ONE_LINE = _l("Keep this to one line: remove the line break.")
YEARS = _l("Choose a date between %(first)d and %(last)d.", first=FIRST_YEAR, last=LAST_YEAR)
TOO_LARGE = _l("This number is too large.")


@cache
def time_zone_names() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


def valid_time_zone(form, field) -> None:
    if field.data not in time_zone_names():
        raise ValidationError(_l("Choose a time zone from the list, such as Europe/Warsaw."))


def strip(value):
    return value.strip() if isinstance(value, str) else value


def leaf_fields(fields):
    """Every field of a form, the fields of its rows (``FieldList`` of ``FormField``) included."""
    for field in fields:
        if isinstance(field, FieldList):
            yield from leaf_fields(field.entries)
        elif isinstance(field, FormField):
            yield from leaf_fields(field.form)
        else:
            yield field


def refusal(field):
    """Why no form may accept this field's value, or None: the rules every input of the app shares."""
    values = field.data if isinstance(field.data, list | tuple) else [field.data]
    for value in values:
        if isinstance(value, str) and not isinstance(field, PasswordField):  # a secret may hold anything
            if not _CONTROLS.isdisjoint(value):
                return NO_CONTROLS
            if not isinstance(field, TextAreaField) and not _LINE_BREAKS.isdisjoint(value):
                return ONE_LINE
        elif isinstance(value, date) and not FIRST_YEAR <= value.year <= LAST_YEAR:
            return YEARS
        elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_ID:
            return TOO_LARGE
    return None


def json_formdata(data) -> MultiDict | None:
    """A JSON object's members as form data: scalars as text, booleans as a ticked box or not, anything
    nested as its text (which no field accepts). None when the body is not an object."""
    if not isinstance(data, dict):
        return None
    formdata = MultiDict()
    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, bool):
            formdata[str(key)] = "y" if value else ""
        elif isinstance(value, str | int | float):
            formdata[str(key)] = str(value)
        else:
            formdata[str(key)] = repr(value)
    return formdata


class TerminForm(FlaskForm):
    """The base of every form: control characters, line breaks in one-line fields, dates outside
    ``FIRST_YEAR``-``LAST_YEAR`` and numbers past a database integer are refused here, naming the field,
    so no view or service ever sees them (and a new field is covered without saying so)."""

    class Meta(FlaskForm.Meta):
        def wrap_formdata(self, form, formdata):
            automatic = formdata is not None and not hasattr(formdata, "getlist")  # Flask-WTF's sentinel
            if automatic and request.is_json and request.method in SUBMIT_METHODS and not request.form:
                # Flask-WTF would take a JSON body as it is: a list fails, nested members reach the fields.
                formdata = json_formdata(request.get_json())
                if formdata is None:
                    abort(400, description=str(_l("Send the form's fields as one JSON object.")))
                return formdata
            return super().wrap_formdata(form, formdata)

    def validate(self, extra_validators=None) -> bool:
        refused = {field: refusal(field) for field in leaf_fields(self)}
        if not any(refused.values()):
            return super().validate(extra_validators)
        # Nothing else is checked: some validators look values up, and such a value must reach none of them.
        for field, reason in refused.items():
            field.errors = [str(reason)] if reason else []
        return False
