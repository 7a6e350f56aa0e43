from flask_babel import lazy_gettext as _l
from wtforms import StringField, TextAreaField
from wtforms.validators import InputRequired

from app.web.forms import TerminForm, strip


class AddDomainForm(TerminForm):
    # Length and shape are checked by services.normalise_hostname, which names what is wrong.
    hostname = StringField(
        _l("Domain"),
        filters=[strip],
        validators=[InputRequired(_l("Enter a domain, like meet.example.com."))],
    )


class RobotsForm(TerminForm):
    robots_txt = TextAreaField(_l("robots.txt"))
