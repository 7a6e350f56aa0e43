"""Coded errors: what a service refuses, as a code and the field at fault, and the one table of their words.

A service raises ``PagesError("slot_taken", "start")``; a view or a job shows ``error.message``, which
looks the code up in ``MESSAGES`` and translates it into the language of the moment it is read (the
visitor's, or the recipient's under ``force_locale``). Nothing anywhere matches an error by its English
text: a new refusal is a new code here, with its message, and the Polish for it in messages.po.

Values that belong in the message (a slug, a limit) travel as ``params`` and fill ``%(name)s``
placeholders. The classes stay per feature, so views catch what they can answer (``SlotTaken`` is a 409,
``BookingPaused`` a 503) and services keep raising their own family.
"""

from datetime import datetime

from flask_babel import format_datetime, gettext


def N_(message: str) -> str:
    """pybabel's standard marker: the message is extracted for translation, and translated when read."""
    return message


class CodedError(Exception):
    """A refusal with a ``code`` (a key of ``MESSAGES``), the ``field`` at fault (or None) and ``params``."""

    default_field: str | None = None

    def __init__(self, code: str, field: str | None = None, **params):
        if code not in MESSAGES:
            raise ValueError(f"error code {code!r} has no message in app/errors.py MESSAGES")
        super().__init__(code)
        self.code = code
        self.field = field if field is not None else self.default_field
        self.params = params

    @property
    def message(self) -> str:
        """The message in the current language, its placeholders filled."""
        return message(self.code, **self.params)


def message(code: str, **params) -> str:
    """The message of ``code`` in the current language; Flask-Babel fills ``params`` after translating. A
    datetime among them is written in the reader's zone and language (a time a rep can send again)."""
    shown = {
        name: format_datetime(value, "short") if isinstance(value, datetime) else value
        for name, value in params.items()
    }
    return gettext(MESSAGES[code], **shown)


# --- The families -------------------------------------------------------------------------------------------


class PagesError(CodedError):
    """A request the scheduling pages cannot take (422 unless a subclass says otherwise)."""


class SlotTaken(PagesError):
    """The start is on the page's grid but no longer free (409)."""

    default_field = "start"


class BookingPaused(PagesError):
    """Booking with this rep is paused because one of their calendars is inactive (C11, 503)."""

    def __init__(self, reason: str):
        super().__init__("booking_paused")
        self.reason = reason  # for the log and the rep's email; the visitor only learns "not right now"


class PageUnavailable(PagesError):
    """The rep or the tenant switched scheduling pages off (P4)."""

    def __init__(self):
        super().__init__("page_unavailable")


class DomainError(CodedError):
    """A request the domain manager refuses; the field is the hostname unless said otherwise."""

    def __init__(self, code: str, field: str | None = "hostname", **params):
        super().__init__(code, field, **params)


class SettingsRefused(CodedError):
    """A calendar settings change the rules (C2, C6-C9, C11) do not allow."""


class TenantsError(CodedError):
    """A request about accounts and users the tenants feature refuses."""


class EmailTaken(TenantsError):
    default_field = "email"

    def __init__(self, email: str):
        super().__init__("email_taken")
        self.email = email


class NotAllowed(TenantsError):
    def __init__(self):
        super().__init__("not_allowed")


class WrongPassword(TenantsError):
    """Changing the password needs the current one (issue 15)."""

    default_field = "current_password"

    def __init__(self):
        super().__init__("wrong_password")


class CrmError(CodedError):
    """A CRM change refused."""


class DuplicateEmail(CrmError):
    """Another contact of the tenant already has this email; ``existing`` is that contact."""

    default_field = "email"

    def __init__(self, existing):
        super().__init__("contact_email_taken")
        self.existing = existing


class BrandError(CodedError):
    """An uploaded brand image or a brand setting refused (issue 14)."""


class ChatError(CodedError):
    """A chat message, setting or action refused (422 unless the view says otherwise)."""


class EmailsError(CodedError):
    """A sales email template or email refused (P3, D3): 422 unless a subclass says otherwise."""


class TemplateLocked(EmailsError):
    """The actor may use this template but not change it (a rep and a team template): 403."""

    def __init__(self):
        super().__init__("email_team_templates_admins_only")


class SendLimitReached(EmailsError):
    """The rep has sent as many emails as ``RATELIMIT_SALES_EMAIL`` allows for now: 429."""

    default_field = "form"


# --- The one table ------------------------------------------------------------------------------------------

MESSAGES: dict[str, str] = {
    "chat_message_empty": N_("Write a message first."),
    "chat_message_too_long": N_("A message can be at most %(limit)d characters long."),
    "chat_conversation_closed": N_("This conversation is closed."),
    "chat_page_not_offered": N_("Choose one of the pages offered."),
    "chat_member_unknown": N_("Choose members of your company."),
    "chat_assignee_unknown": N_("Choose someone who answers the chat."),
    # Scheduling pages: the editor (P1-P4)
    "team_admins_only": N_("Only an admin can see the team's scheduling pages."),
    "company_switch_admins_only": N_("Only an admin can switch every page of the company off or on."),
    "slug_pattern": N_(
        "Use 1-64 lower-case letters, digits and hyphens, starting and ending with a letter or digit."
    ),
    "slug_reserved": N_("“%(slug)s” is reserved; choose another."),
    "slug_taken": N_("“%(slug)s” is already taken; choose another."),
    "page_slug_taken": N_("You already have a page at “%(slug)s”."),
    "redirect_url": N_("Use a web address starting with http:// or https://."),
    "domain_not_verified": N_("Choose the app's address or one of your company's verified domains."),
    "availability_invalid": N_("These hours cannot be used: %(detail)s"),
    "working_hours_invalid": N_("These hours cannot be used: %(detail)s"),
    "daily_limit_min": N_("The daily maximum is at least one meeting."),
    # Team pages (T1) and reminders (T2)
    "page_kind_fixed": N_("A page keeps its kind; create a new page for another kind."),
    "page_kind": N_("Choose one-on-one, round robin or group."),
    "assignment": N_("Choose how meetings are assigned."),
    "team_slug_taken": N_("Another team page already uses this link; choose another."),
    "members_required": N_("Choose at least one member."),
    "members_twice": N_("A member is listed twice."),
    "members_foreign": N_("Choose members among your company's active users."),
    "member_weight": N_("Enter 1 to %(max)d."),
    "team_pages_admins_only": N_("Only an admin can create team pages."),
    "team_page_not_default": N_("A team page has its own link and cannot be anyone's default page."),
    "team_confirm_email": N_(
        "Team pages book at once: they cannot ask visitors to confirm their email first."
    ),
    "reminders_invalid": N_("At most %(max)d reminders, each 5 minutes to 30 days before."),
    # Scheduling pages: the visitor's side (P5, P6, C7, C11)
    "days_range": N_("Ask for 1 to %(max)d days."),
    "month_format": N_("Give the month as YYYY-MM."),
    "day_format": N_("Give the day as YYYY-MM-DD."),
    "date_range": N_("Give a date between 1970 and 2999."),
    "time_zone_unknown": N_("Unknown time zone; use an IANA name such as Europe/Warsaw."),
    "duration_not_offered": N_("This page offers meetings of %(offered)s minutes."),
    "start_format": N_("Give the start as an ISO 8601 time with its offset."),
    "start_offset": N_("Give the start with its UTC offset, e.g. 2026-12-01T09:00:00+01:00."),
    "start_range": N_("Give a time between 1970 and 2999."),
    "start_past": N_("That time is in the past."),
    "start_not_offered": N_("That time is not offered on this page; pick one of the times shown."),
    "slot_taken": N_("Someone has just booked that time; please pick another."),
    "day_full": N_("That day is fully booked; please pick another day."),
    "page_day_full": N_("That day is fully booked on this page; please pick another day."),
    "page_daily_cap_min": N_("Enter at least 1, or leave it empty for no limit."),
    "consent_required": N_("Please tick the consent box to book."),
    "idempotency_key_reused": N_("This form was already used for another booking; reload the page."),
    "page_unavailable": N_("This scheduling page is not available."),
    "booking_paused": N_("Booking is not available right now. Please try again later."),
    "booking_cancelled": N_("This booking was cancelled."),
    "booking_page_gone": N_("The page this meeting was booked on no longer exists; cancel and book again."),
    "length_gone": N_("This page no longer offers meetings of this length; cancel and book again."),
    # Domains (D1-D6)
    "domain_required": N_("Enter a domain, like meet.example.com."),
    "domain_not_a_name": N_(
        "Enter only the domain name, like meet.example.com: no http://, path, port or spaces."
    ),
    "domain_ip_address": N_("An IP address cannot be verified; enter a domain name."),
    "domain_too_long": N_("A domain name has at most %(limit)s characters."),
    "domain_invalid": N_("This is not a valid domain name."),
    "domain_single_label": N_("Enter a full domain name with a dot, like example.com."),
    "domain_app_host": N_("That is Termin's own address; enter your company's domain."),
    "domain_taken": N_("This domain is already connected to another Termin account."),
    "domain_already_added": N_("You have already added this domain."),
    "domain_admins_only": N_("Only an admin can manage domains."),
    "domain_robots_too_long": N_("robots.txt may have at most %(limit)s characters."),
    "domain_robots_binary": N_("robots.txt must be plain text."),
    # Calendar settings (C2, C6-C9, C11)
    "default_calendar_not_writable": N_("Choose a calendar of this account that you can write to."),
    "calendar_not_in_account": N_("That calendar is not part of this account."),
    "calendar_free_busy_only": N_(
        "“%(name)s” is shared with free/busy only, so it cannot be added. Ask its owner to share all event "
        "details."
    ),
    "calendar_inactive": N_("“%(name)s” is inactive; reconnect or remove it first."),
    "task_sync_seat": N_("Task sync needs a Sales or Service seat. Ask an admin for one."),
    # Accounts and the CRM
    "email_taken": N_("This email already has a Termin account."),
    "not_allowed": N_("Your role does not allow this. Ask an admin of your account."),
    "wrong_password": N_("That is not your current password."),
    "contact_email_taken": N_("Another contact already has this email."),
    # Brand: the company's logo, favicon and colour, the rep's photo (E4)
    "image_empty": N_("Choose an image file to upload."),
    "image_too_large": N_("The file is larger than %(limit)s MB; upload a smaller PNG or JPEG."),
    "image_type": N_("Upload a PNG or JPEG image (SVG, GIF and other formats are not accepted)."),
    "image_too_many_pixels": N_("The image is too large; use one of at most %(max)s pixels on each side."),
    "image_too_small": N_("The image is too small; use one of at least %(min)s pixels on each side."),
    "image_unreadable": N_("This image is damaged or incomplete; export it again and upload the new file."),
    "brand_color": N_("Enter a colour as # and six hexadecimal digits, like #0b57d0."),
    # Sales email templates and emails (P3, D3)
    "email_name_required": N_("Give the template a name."),
    "email_subject_required": N_("Write a subject."),
    "email_subject_line_break": N_("The subject must be one line: remove the line breaks."),
    "email_body_required": N_("Write the email's text."),
    "email_too_long": N_("At most %(max)d characters."),
    "email_unknown_token": N_(
        "%(token)s is not a token Termin knows. Use the contact's or your fields, or Insert meeting link."
    ),
    "email_no_default_page": N_(
        "You have no default scheduling page, so {{ meeting_link }} leads nowhere. Make one of your pages "
        "the default, or insert a link to a particular page."
    ),
    "email_page_gone": N_(
        "%(token)s names a scheduling page you no longer have. Insert the meeting link again to pick one of "
        "your pages."
    ),
    "email_pages_off": N_(
        "Scheduling pages are switched off, so a meeting link would lead to a page that cannot be booked. "
        "Switch them on in Scheduling pages, or send the email without the link."
    ),
    "email_team_page_not_member": N_(
        "%(token)s links to the team page “%(title)s”, which you are no longer a member of. Insert the "
        "meeting link again to pick one of your pages."
    ),
    "email_team_page_off": N_(
        "%(token)s links to the team page “%(title)s”, which cannot be booked now (it is switched off or "
        "every member is paused). Pick another page, or send the email without the link."
    ),
    "email_no_address": N_("This contact has no email address. Add one to the contact first."),
    "email_send_limit": N_(
        "You have sent %(amount)d emails recently, the most Termin sends for one person. You can send again "
        "from %(retry_at)s."
    ),
    "email_team_templates_admins_only": N_(
        "Only an admin can change the team's templates. Duplicate it to make your own."
    ),
    "email_not_found": N_("There is nothing at this address."),
}
