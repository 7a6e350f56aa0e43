"""The widget settings, the Inbox's reply box and the visitor's panel. Shape only; the services check
the pages, members and assignees against the tenant."""

from flask_babel import lazy_gettext as _l
from wtforms import (
    BooleanField,
    EmailField,
    IntegerField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, Regexp

from app.chat.models import MESSAGE_MAX, WELCOME_MAX
from app.web.forms import TerminForm, strip


def _bounded(limit: int) -> Length:
    return Length(max=limit, message=_l("At most %(max)d characters.", max=limit))


class WidgetSettingsForm(TerminForm):
    enabled = BooleanField(_l("Show the chat on our website"))
    members = SelectMultipleField(_l("Who answers"), choices=[], coerce=int, validate_choice=False)
    welcome_message = TextAreaField(
        _l("Welcome message"), filters=[strip], validators=[_bounded(WELCOME_MAX)]
    )
    color = StringField(
        _l("Colour"),
        filters=[strip],
        validators=[
            Optional(),
            Regexp(r"^#[0-9a-fA-F]{6}$", message=_l("Give the colour as #rrggbb, e.g. #2563eb.")),
        ],
    )
    position = SelectField(
        _l("Position"),
        choices=[SelectChoice("right", _l("Bottom right")), SelectChoice("left", _l("Bottom left"))],
    )
    language = SelectField(
        _l("Language"), choices=[SelectChoice("en", "English"), SelectChoice("pl", "Polski")]
    )
    booking_page = SelectField(_l("Book a meeting offers"), choices=[], validate_choice=False)
    ask_email_after_seconds = IntegerField(
        _l("Ask for an email after (seconds without an answer)"),
        validators=[
            DataRequired(_l("Give a number of seconds.")),
            NumberRange(min=10, max=86400, message=_l("Between %(min)d and %(max)d seconds.")),
        ],
    )

    def set_choices(self, users, pages, none_label) -> None:
        self.members.choices = [SelectChoice(u.id, u.name) for u in users]
        self.booking_page.choices = [SelectChoice("", none_label)] + [
            SelectChoice(str(p.id), p.title) for p in pages
        ]

    def booking_page_id(self) -> int | None:
        value = self.booking_page.data or ""
        return int(value) if value.isdigit() else None


class _NoSession(TerminForm):
    """The visitor's forms are authenticated by the conversation's secret, sent in a header, never by a
    cookie: a cross-site frame has no session to tie a CSRF token to, and a forged request cannot know the
    secret, so there is nothing for a CSRF token to protect (docs/security.md)."""

    class Meta(TerminForm.Meta):
        csrf = False


class VisitorMessageForm(_NoSession):
    body = TextAreaField(
        _l("Message"),
        validators=[DataRequired(_l("Write a message first.")), _bounded(MESSAGE_MAX)],
    )


class VisitorEmailForm(_NoSession):
    email = EmailField(
        _l("Your email"),
        filters=[strip],
        validators=[DataRequired(_l("Give your email.")), Email(_l("Give a valid email.")), _bounded(254)],
    )


class ReplyForm(TerminForm):
    body = TextAreaField(
        _l("Reply"), validators=[DataRequired(_l("Write a message first.")), _bounded(MESSAGE_MAX)]
    )


class MeetingLinkForm(TerminForm):
    page = SelectField(_l("Meeting link to"), choices=[], validate_choice=False)

    def set_choices(self, pages, default_id) -> None:
        self.page.choices = [SelectChoice(str(p.id), p.title) for p in pages]
        if not self.page.data and default_id is not None:
            self.page.data = str(default_id)  # the rep's default page is preselected (P3)

    def page_id(self) -> int | None:
        value = self.page.data or ""
        return int(value) if value.isdigit() else None


class AssignForm(TerminForm):
    assignee = SelectField(_l("Assigned to"), choices=[], validate_choice=False)

    def assignee_id(self) -> int | None:
        value = self.assignee.data or ""
        return int(value) if value.isdigit() else None


class StatusForm(TerminForm):
    status = SelectField(
        choices=[SelectChoice("open", "open"), SelectChoice("closed", "closed")], validators=[DataRequired()]
    )
