"""The words for each ``EmailsError`` code, translated when shown (never matched as English text)."""

from flask_babel import format_datetime
from flask_babel import lazy_gettext as _l

from app.emails.services import EmailsError

MESSAGES = {
    "name_required": _l("Give the template a name."),
    "subject_required": _l("Write a subject."),
    "subject_line_break": _l("The subject must be one line: remove the line breaks."),
    "body_required": _l("Write the email's text."),
    "too_long": _l("At most %(max)d characters."),
    "unknown_token": _l(
        "%(token)s is not a token Termin knows. Use the contact's or your fields, or Insert meeting link."
    ),
    "no_default_page": _l(
        "You have no default scheduling page, so {{ meeting_link }} leads nowhere. Make one of your pages "
        "the default, or insert a link to a particular page."
    ),
    "page_gone": _l(
        "%(token)s names a scheduling page you no longer have. Insert the meeting link again to pick one of "
        "your pages."
    ),
    "pages_off": _l(
        "Scheduling pages are switched off, so a meeting link would lead to a page that cannot be booked. "
        "Switch them on in Scheduling pages, or send the email without the link."
    ),
    "no_email": _l("This contact has no email address. Add one to the contact first."),
    "rate_limited": _l(
        "You have sent %(limit)d emails in the last hour, the most Termin sends for one person. You can "
        "send again from %(retry_at)s."
    ),
    "team_admins_only": _l("Only an admin can change the team's templates. Duplicate it to make your own."),
    "not_found": _l("There is nothing at this address."),
}


def say(error: EmailsError) -> str:
    params = dict(error.params)
    if "retry_at" in params:
        params["retry_at"] = format_datetime(params["retry_at"], "short")
    return str(MESSAGES[error.code]) % params if params else str(MESSAGES[error.code])
