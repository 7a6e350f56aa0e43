"""The template editor and the composer. Shape only; the service checks tokens and meeting links."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, Regexp

from app.emails.models import BODY_MAX, NAME_MAX, SUBJECT_MAX
from app.web.forms import strip

# One line: no CR/LF (header injection) nor any other control character.
_ONE_LINE = Regexp(r"^[^\x00-\x1f\x7f\u2028\u2029\x85]*$", message=_l("The subject must be one line."))
_NO_LINE_CONTROLS = Regexp(
    r"^[^\x00-\x1f\x7f\u2028\u2029\x85]*$", message=_l("Remove the invisible control characters.")
)
_NO_CONTROLS = Regexp(
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$", message=_l("Remove the invisible control characters.")
)


def _bounded(limit: int) -> Length:
    return Length(max=limit, message=_l("At most %(max)d characters.", max=limit))


class _EmailText(FlaskForm):
    subject = StringField(
        _l("Subject"),
        filters=[strip],
        validators=[DataRequired(_l("Write a subject.")), _ONE_LINE, _bounded(SUBJECT_MAX)],
    )
    body = TextAreaField(
        _l("Text"),
        validators=[DataRequired(_l("Write the email's text.")), _NO_CONTROLS, _bounded(BODY_MAX)],
    )
    # *Insert meeting link*: "" is "my default page" ({{ meeting_link }}), else a page id of the user's.
    link_page = SelectField(_l("Meeting link to"), choices=[], validate_choice=False)

    def set_link_choices(self, own, team, labels: dict[str, str]) -> None:
        """The user's pages, then, grouped apart, the team pages they are a member of. ``labels``: "default"
        (the default page's choice), "own" and "team" (the groups' names)."""
        mine = [("", labels["default"])] + [(str(page.id), page.title) for page in own]
        theirs = [(str(page.id), page.title) for page in team]
        self.link_page.choices = {labels["own"]: mine, labels["team"]: theirs} if team else mine
        self._link_ids = {str(page.id) for page in (*own, *team)}
        if not self.link_page.data:
            self.link_page.data = ""  # the default page is preselected (P3)

    def link_page_id(self) -> int | None:
        value = self.link_page.data or ""
        return int(value) if value in getattr(self, "_link_ids", set()) else None


class TemplateForm(_EmailText):
    name = StringField(
        _l("Name"),
        filters=[strip],
        validators=[DataRequired(_l("Give the template a name.")), _NO_LINE_CONTROLS, _bounded(NAME_MAX)],
    )


class ComposeForm(_EmailText):
    template = SelectField(_l("Template"), choices=[], validate_choice=False, validators=[Optional()])
    # The ref the preview was made with, so the email sent is the one shown (the service checks it).
    ref = HiddenField()
