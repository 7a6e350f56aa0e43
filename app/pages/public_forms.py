"""The visitor's booking form: the fixed fields, then the page's own questions and its consent box (P1, P6).

The form class is built per page, because the questions are the page's.
"""

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, HiddenField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Email, InputRequired, Length, Optional, ValidationError

from app.pages import services as pages
from app.pages.models import SchedulingPage
from app.web.forms import TerminForm, strip, valid_time_zone

NAME_MAX = 80  # the bookings columns
ANSWER_MAX = 2000


def question_field_name(question: dict) -> str:
    return f"q_{question['id']}"


def _valid_start(form, field) -> None:
    try:
        pages.parse_start(field.data or "")
    except pages.PagesError:
        raise ValidationError(_l("Give the start as an ISO 8601 time with its offset.")) from None


def _valid_duration(form, field) -> None:
    text = (field.data or "").strip() if isinstance(field.data, str) else field.data
    if text in (None, ""):
        return
    try:
        minutes = int(text)
    except (TypeError, ValueError):
        raise ValidationError(_l("Give the meeting length in whole minutes.")) from None
    if minutes not in form.page.durations:
        offered = ", ".join(str(m) for m in form.page.durations)
        raise ValidationError(_l("This page offers meetings of %(offered)s minutes.", offered=offered))


def _name_field(label, missing) -> StringField:
    """A required name of at most ``NAME_MAX`` characters; ``missing`` is the message when it is blank."""
    return StringField(
        label,
        filters=[strip],
        validators=[
            DataRequired(missing),
            Length(max=NAME_MAX, message=_l("At most %(max)d characters.", max=NAME_MAX)),
        ],
    )


class BookingForm(TerminForm):
    """The fields every page asks; ``booking_form`` adds the page's questions and consent."""

    start = HiddenField(filters=[strip], validators=[InputRequired(_l("Pick a time to book.")), _valid_start])
    duration = HiddenField(filters=[strip], validators=[_valid_duration])
    tz = HiddenField(
        filters=[strip], validators=[InputRequired(_l("Say which time zone you are in.")), valid_time_zone]
    )
    idempotency_key = HiddenField(
        filters=[strip],
        validators=[
            Optional(),
            Length(max=100, message=_l("This form is damaged.")),
        ],
    )
    # The sales email the visitor came from (its meeting link's ``?ref=``); never refuses a booking: one that
    # names no email of the tenant's is ignored.
    ref = HiddenField(filters=[strip])
    first_name = _name_field(_l("First name"), _l("Enter your first name."))
    last_name = _name_field(_l("Last name"), _l("Enter your last name."))
    email = EmailField(
        _l("Email"),
        filters=[strip],
        validators=[
            InputRequired(_l("Enter your email address.")),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
            Email(
                message=_l("Enter a valid email address, like name@example.com."), check_deliverability=False
            ),
        ],
    )

    page: SchedulingPage

    def question_fields(self) -> list:
        return [self[question_field_name(q)] for q in self.page.questions]

    def answers(self) -> tuple[dict, ...]:
        """The answers as the booking stores them: the question's id and label as asked now."""
        return tuple(
            {"id": q["id"], "label": q["label"], "answer": (self[question_field_name(q)].data or "").strip()}
            for q in self.page.questions
        )

    def answers_by_key(self) -> dict[str, str]:
        """The answers by the questions' stable keys, for the prefill cookie (D2)."""
        return {
            q["key"]: (self[question_field_name(q)].data or "").strip()
            for q in self.page.questions
            if q.get("key")
        }


def _one_of(choices: list[str], required: bool):
    """A choice answer must be one of the question's choices (blank only when not required)."""

    def check(form, field) -> None:
        value = field.data if isinstance(field.data, str) else None
        if value in (None, ""):
            if required:
                raise ValidationError(_l("Choose one of the answers."))
            field.data = ""
            return
        if value not in choices:
            raise ValidationError(_l("Choose one of the answers shown."))

    return check


def booking_form(page: SchedulingPage, *, formdata=None, **data) -> BookingForm:
    """The form for ``page``, bound to the request (or ``formdata``), prefilled with ``data``.

    The form checks no CSRF token itself: the view checks it for browsers' posts (``csrf.protect()``)
    and not for JSON clients, which have no session.
    """

    class PageBookingForm(BookingForm):
        pass

    for question in page.questions:
        required = bool(question.get("required"))
        label = question.get("label") or question["id"]
        if question.get("kind") == "choice":
            choices = [str(choice) for choice in question.get("choices", ())]
            field = RadioField(
                label,
                choices=[SelectChoice(choice, choice) for choice in choices],
                validators=[_one_of(choices, required)],
                validate_choice=False,
            )
        else:
            validators = [
                DataRequired(_l("Answer this question.")) if required else Optional(),
                Length(max=ANSWER_MAX, message=_l("At most %(max)d characters.", max=ANSWER_MAX)),
            ]
            field = TextAreaField(label, filters=[strip], validators=validators)
        setattr(PageBookingForm, question_field_name(question), field)
    if page.consent_text:
        PageBookingForm.consent = BooleanField(
            page.consent_text, validators=[InputRequired(_l("Please tick the consent box to book."))]
        )
    kwargs: dict = {"meta": {"csrf": False}}
    if formdata is not None:
        kwargs["formdata"] = formdata
    form = PageBookingForm(**kwargs, **data)
    form.page = page
    return form


class VisitorCancelForm(TerminForm):
    """The visitor's reason for cancelling, sent to the rep."""

    reason = TextAreaField(
        filters=[strip],
        validators=[Length(max=ANSWER_MAX, message=_l("At most %(max)d characters.", max=ANSWER_MAX))],
    )


class VisitorRescheduleForm(VisitorCancelForm):
    """The new time the visitor confirmed, and their optional reason for the rep."""

    start = HiddenField()
