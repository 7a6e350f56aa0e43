from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, EmailField, PasswordField, SelectChoice, SelectField, StringField
from wtforms.validators import DataRequired, Email, EqualTo, InputRequired, Length, Regexp

from app.tenants.models import LOCALES
from app.web.forms import TerminForm, strip, valid_time_zone

PASSWORD_MIN = 10

ROLE_CHOICES = [SelectChoice("rep", _l("Rep")), SelectChoice("admin", _l("Admin"))]
SEAT_CHOICES = [
    SelectChoice("none", _l("No seat")),
    SelectChoice("sales", _l("Sales seat")),
    SelectChoice("service", _l("Service seat")),
]
LOCALE_NAMES = {"en": "English", "pl": "Polski"}
LOCALE_CHOICES = [SelectChoice(code, LOCALE_NAMES[code]) for code in LOCALES]


def _email_field(label):
    return EmailField(
        label,
        filters=[strip],
        validators=[
            InputRequired(_l("Enter an email address.")),
            Length(max=254, message=_l("An email address has at most 254 characters.")),
            Email(
                message=_l("Enter a valid email address, like name@example.com."), check_deliverability=False
            ),
        ],
    )


def _password_field(label):
    return PasswordField(
        label,
        validators=[
            InputRequired(_l("Enter a password.")),
            Length(
                min=PASSWORD_MIN,
                max=128,
                message=_l("A password has %(min)d to %(max)d characters.", min=PASSWORD_MIN, max=128),
            ),
        ],
    )


def _name_field(label):
    return StringField(
        label,
        filters=[strip],
        validators=[
            DataRequired(_l("Enter a name.")),  # sees the stripped value, so "   " is no name
            Length(max=120, message=_l("At most 120 characters.")),
        ],
    )


def _time_zone_field():
    return StringField(
        _l("Time zone"),
        filters=[strip],
        default="Europe/Warsaw",
        validators=[InputRequired(_l("Choose a time zone.")), valid_time_zone],
    )


class SignupForm(TerminForm):
    company = _name_field(_l("Company"))
    name = _name_field(_l("Your name"))
    email = _email_field(_l("Work email"))
    password = _password_field(_l("Password"))
    time_zone = _time_zone_field()


class LoginForm(TerminForm):
    email = _email_field(_l("Email"))
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Enter your password."))])
    remember = BooleanField(_l("Keep me signed in"))


class InviteForm(TerminForm):
    email = _email_field(_l("Email"))
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default="rep")
    seat = SelectField(_l("Seat"), choices=SEAT_CHOICES, default="none")


class SeatForm(TerminForm):
    seat = SelectField(_l("Seat"), choices=SEAT_CHOICES)


class AcceptInvitationForm(TerminForm):
    name = _name_field(_l("Your name"))
    password = _password_field(_l("Choose a password"))
    time_zone = _time_zone_field()


class ProfileForm(TerminForm):
    name = _name_field(_l("Name"))
    title = StringField(
        _l("Job title"),
        filters=[strip],
        validators=[
            Length(max=120, message=_l("At most 120 characters.")),
            Regexp(
                r"^[^\x00-\x1f\x7f]*$", message=_l("Remove the invisible control characters from this field.")
            ),
        ],
    )
    time_zone = _time_zone_field()
    locale = SelectField(_l("Language"), choices=LOCALE_CHOICES)


class ChangePasswordForm(TerminForm):
    current_password = PasswordField(
        _l("Current password"), validators=[InputRequired(_l("Enter your current password."))]
    )
    password = _password_field(_l("New password"))
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            EqualTo("password", message=_l("The two new passwords differ. Type the same one twice."))
        ],
    )


class ForgotPasswordForm(TerminForm):
    email = _email_field(_l("Email"))


class ResetPasswordForm(TerminForm):
    password = _password_field(_l("New password"))
    confirm = PasswordField(
        _l("New password again"),
        validators=[
            EqualTo("password", message=_l("The two new passwords differ. Type the same one twice."))
        ],
    )


class ConfirmForm(TerminForm):
    """A button that only carries the CSRF token."""
