"""The Brand settings form (admins) and the rep's public profile form (photo and headline)."""

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, StringField
from wtforms.validators import Length, Optional, Regexp

from app.web.forms import TerminForm, strip

IMAGE_ACCEPT = "image/png,image/jpeg"


class BrandForm(TerminForm):
    name = StringField(
        _l("Company name on your pages"),
        filters=[strip],
        validators=[Length(max=120, message=_l("At most 120 characters."))],
    )
    color = StringField(
        _l("Brand colour"),
        filters=[strip],
        validators=[
            Optional(),
            Regexp(
                r"^#?(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})$",
                message=_l("Enter a colour as # and six hexadecimal digits, like #0b57d0."),
            ),
        ],
    )
    logo = FileField(_l("Logo"))
    remove_logo = BooleanField(_l("Remove the logo"))
    favicon = FileField(_l("Favicon (the small icon on the browser tab)"))
    remove_favicon = BooleanField(_l("Remove the favicon"))


class PublicProfileForm(TerminForm):
    headline = StringField(
        _l("Headline"),
        filters=[strip],
        validators=[Length(max=120, message=_l("At most 120 characters."))],
    )
    photo = FileField(_l("Photo"))
    remove_photo = BooleanField(_l("Remove the photo"))
