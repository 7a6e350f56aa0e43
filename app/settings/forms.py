from urllib.parse import urlsplit

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, StringField, TextAreaField

# DataRequired sees the stripped value, so a field of spaces counts as empty.
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError

from app.web.forms import TerminForm, strip

MAX_SHARED_URLS = 20


class CalDAVForm(TerminForm):
    server_url = StringField(
        _l("Server"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the CalDAV server's address, e.g. caldav.fastmail.com.")),
            Length(max=2048, message=_l("At most %(max)d characters.", max=2048)),
        ],
    )
    username = StringField(
        _l("User name"),
        filters=[strip],
        validators=[
            DataRequired(_l("Enter the account's user name.")),
            Length(max=255, message=_l("At most %(max)d characters.", max=255)),
        ],
    )
    password = PasswordField(
        _l("App password"),
        validators=[
            InputRequired(_l("Enter an app password for this account.")),
            Length(max=1024, message=_l("At most %(max)d characters.", max=1024)),
        ],
    )
    shared_urls = TextAreaField(
        _l("Calendars shared with you (optional)"),
        filters=[strip],
        validators=[Length(max=40_000, message=_l("At most %(max)d characters.", max=40_000))],
    )

    def validate_shared_urls(self, field):
        urls = self.shared_url_list
        if len(urls) > MAX_SHARED_URLS:
            raise ValidationError(_l("At most %(max)d shared calendars.", max=MAX_SHARED_URLS))
        for url in urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValidationError(_l("“%(url)s” is not an http(s) address of a calendar.", url=url))

    @property
    def shared_url_list(self) -> list[str]:
        return [line.strip() for line in (self.shared_urls.data or "").splitlines() if line.strip()]


class ConnectionForm(TerminForm):
    """One account's choices; fields are prefixed per connection so several forms share a page."""

    calendar_sync = BooleanField(_l("Calendar sync"))
    scheduling_pages = BooleanField(_l("Meeting scheduling pages"))
    task_sync = BooleanField(_l("Task sync"))
    default_calendar = SelectField(
        _l("Default calendar (bookings go here)"), coerce=int, choices=[], validate_choice=False
    )
    availability = SelectMultipleField(
        _l("Also check these calendars for availability"), coerce=int, choices=[], validate_choice=False
    )
