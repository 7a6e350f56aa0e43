"""Emails about bookings (P6, C11): the visitor's confirmation, updates and cancellation, and the rep's news.

Every mail is queued with ``app.mail.smtp.send_mail`` (an outbox row that commits with the booking) and
written in its recipient's language and time zone: the visitor's from the booking (``booking.locale``,
``booking.time_zone``), the rep's from their account. Times are written as a person writes them and name
their zone by its city (``app.timefmt``).

Exactly one invitation reaches the visitor per booking, reschedule and cancellation (P6), from one sender
(``writes.provider_invites``): when the booking is written to a Google or Microsoft calendar, the provider
mails the invitation, its update and its cancellation (the event names the visitor as attendee), and these
mails carry no calendar object at all, only a line saying the invitation comes separately. Otherwise (a
CalDAV calendar, or none) these mails are the invitation (iMIP, RFC 6047): a REQUEST on booking and on
each reschedule, a CANCEL (SEQUENCE one higher) on cancellation, with the meeting's UID, the same as the
event in the rep's calendar, so the visitor's calendar app files them all under one event; ``writes``
sends no iMIP of its own for a booking (source "page") for that reason. A meeting that will not be
written (no account with scheduling pages on) gets its UID here, by the same rule.

Besides, the visitor gets "add to my calendar" links (Google Calendar, Outlook on the web, and the
booking's METHOD:PUBLISH file, which has the meeting's UID): an event to add, never one to answer. The
organizer is ``writes.organizer_address``: the calendar account's address, never a bare user name.

Links are built when the mail is made (D3): the visitor's on the page's current host (``links``), the
rep's on the app host. The mails are plain text, like every other mail Termin sends.

What a visitor typed (names, answers, a reason) appears only in bodies, as plain text, never in a subject
line: visitors' subjects are made of the page title, the rep's name and the time. One visitor address gets
at most ``RATELIMIT_VISITOR_MAIL`` mails a day (the rest are dropped and logged), so a booking form cannot
be used to send mail at will.

The booking services do not call these: they send ``app.pages.signals`` and the handlers here are
connected to them (this module is imported by ``create_app``), so the services need not import what
depends on them.
"""

import logging
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _

from app import timefmt
from app.db import utcnow
from app.extensions import db
from app.mail import imip, outbox, smtp
from app.pages import links, signals
from app.pages.models import Booking, BookingAttempt, BookingHold, SchedulingPage
from app.sync import writes
from app.sync.providers.base import Attendee
from app.tenants.models import User
from app.web import limits
from app.web.links import app_host_url

log = logging.getLogger(__name__)


@signals.booking_confirmed.connect
def booking_confirmed(booking: Booking, token: str) -> None:
    """The visitor's confirmation (with the invitation and the links) and the rep's notice."""
    meeting = booking.meeting
    if meeting is not None and not meeting.uid:
        # Only logged, never written to a calendar: the invitation still needs a UID its updates share.
        meeting.uid = writes.new_uid()
        db.session.flush()
    page, owner = booking.page, booking.owner
    with _visitor_locale(booking):
        what = _what(booking)
        when = _when(booking.start_at, booking.end_at, booking.time_zone)
        body = [
            _("Hello %(name)s,", name=booking.first_name),
            _("Your meeting with %(name)s is booked.", name=owner.name),
            "\n".join(_details(booking, what, when)),
        ]
        if page is not None and page.confirmation_message:
            body.append(page.confirmation_message)
        termin_invites = not writes.provider_invites(meeting) if meeting is not None else False
        if termin_invites:
            body.append(_("The attached invitation puts the meeting in your calendar."))
        elif meeting is not None:
            body.append(
                _(
                    "%(name)s's calendar sends you the invitation in a separate email: accept it there to "
                    "keep the meeting in your calendar.",
                    name=owner.name,
                )
            )
        body += _add_to_calendar(booking, token, what)
        body.append("\n".join(_manage_links(booking, token)))
        body.append(_("To reach %(name)s, reply to this email.", name=owner.name))
        _send_visitor(
            booking,
            subject=_("Booked: %(what)s, %(when)s", what=what, when=when),
            body=body,
            method="REQUEST" if termin_invites else None,
            token=token,
        )
    with _rep_locale(owner):
        when = _when(booking.start_at, booking.end_at, owner.time_zone)
        body = [
            _("%(visitor)s (%(email)s) booked “%(page)s” with you.", **_visitor_and_page(booking)),
            "\n".join(_time_and_place(booking, when)),
        ]
        body += _answers(booking)
        body += _rep_footer(booking)
        _send_rep(
            booking,
            subject=_("New booking on “%(page)s”: %(when)s", page=_page_title(booking), when=when),
            body=body,
        )


@signals.booking_held.connect
def booking_held(held: BookingHold, token: str, *, minutes: int) -> None:
    """The link a visitor must follow before their booking is made (the page asks to confirm the email)."""
    page, owner = held.page, held.owner
    if not limits.try_spend("RATELIMIT_VISITOR_MAIL", "visitor-mail", held.email):
        log.warning("hold %s: mail to the visitor not sent, the address had its day's share", held.id)
        return
    with force_locale(held.request.get("locale") or "en"):
        what = _("%(title)s with %(name)s", title=page.title, name=owner.name)
        when = _when(held.start_at, held.end_at, held.request.get("time_zone") or page.time_zone)
        body = [
            _("Hello %(name)s,", name=held.request.get("first_name") or ""),
            _("Please confirm your email to book this meeting:"),
            "\n".join([_("What: %(what)s", what=what), _("When: %(when)s", when=when)]),
            links.hold_confirm_url(page, token),
            _(
                "The time is held for you for %(minutes)d minutes; without confirmation it is released and "
                "nothing is booked. If you did not ask for this, ignore this email.",
                minutes=minutes,
            ),
        ]
        subject = _("Confirm your booking: %(what)s", what=what)
    smtp.send_mail(
        held.tenant_id,
        to=held.email,
        subject=subject,
        text="\n\n".join(body) + "\n",
        reply_to=owner.email,
        sender_name=owner.name,
        secrets=[token],
    )


@signals.booking_rescheduled.connect
def booking_rescheduled(
    booking: Booking, token: str, *, previous_start: datetime, previous_end: datetime
) -> None:
    """Both sides: the new time and the old one; the visitor gets the updated invitation and the links."""
    owner = booking.owner
    meeting = booking.meeting
    termin_invites = meeting is not None and not writes.provider_invites(meeting)
    with _visitor_locale(booking):
        what = _what(booking)
        when = _when(booking.start_at, booking.end_at, booking.time_zone)
        before = _when(previous_start, previous_end, booking.time_zone)
        body = [
            _("Hello %(name)s,", name=booking.first_name),
            _("Your meeting with %(name)s has moved to a new time.", name=owner.name),
            "\n".join(_details(booking, what, when)),
            _("Previous time: %(when)s", when=before),
        ]
        if termin_invites:
            body.append(_("The attached invitation moves the meeting in your calendar."))
        elif meeting is not None:
            body.append(
                _(
                    "%(name)s's calendar sends you the updated invitation in a separate email.",
                    name=owner.name,
                )
            )
        body += _add_to_calendar(booking, token, what)
        body += [
            "\n".join(_manage_links(booking, token)),
            _("To reach %(name)s, reply to this email.", name=owner.name),
        ]
        _send_visitor(
            booking,
            subject=_("Rescheduled: %(what)s, now %(when)s", what=what, when=when),
            body=body,
            method="REQUEST" if termin_invites else None,
            token=token,
        )
    with _rep_locale(owner):
        when = _when(booking.start_at, booking.end_at, owner.time_zone)
        before = _when(previous_start, previous_end, owner.time_zone)
        body = [
            _(
                "%(visitor)s (%(email)s) moved their booking of “%(page)s” to a new time.",
                **_visitor_and_page(booking),
            ),
            "\n".join(_time_and_place(booking, when)),
            _("Previous time: %(when)s", when=before),
        ]
        body += _rep_footer(booking)
        _send_rep(
            booking,
            subject=_("Booking on “%(page)s” moved to %(when)s", page=_page_title(booking), when=when),
            body=body,
        )


@signals.booking_cancelled.connect
def booking_cancelled(booking: Booking, *, by_visitor: bool) -> None:
    """The visitor always gets the CANCEL that takes the meeting out of their calendar; when they cancelled
    it themselves the rep is told, with their reason; when the rep did, the visitor gets a link to book again.
    """
    owner = booking.owner
    reason = booking.cancel_reason.strip()
    meeting = booking.meeting
    termin_invites = meeting is not None and not writes.provider_invites(meeting)
    # The provider cancels what it sent; an event it never wrote (cancelled first) had no invitation.
    provider_cancels = meeting is not None and not termin_invites and bool(meeting.provider_event_id)
    with _visitor_locale(booking):
        what = _what(booking)
        when = _when(booking.start_at, booking.end_at, booking.time_zone)
        body = [_("Hello %(name)s,", name=booking.first_name)]
        if by_visitor:
            body.append(_("Your meeting with %(name)s is cancelled, as you asked.", name=owner.name))
        else:
            body.append(_("%(name)s has cancelled your meeting.", name=owner.name))
        body.append("\n".join(_details(booking, what, when)))
        if reason and not by_visitor:
            body.append(_("Reason: %(reason)s", reason=reason))
        if termin_invites:
            body.append(_("The attached cancellation takes the meeting out of your calendar."))
        elif provider_cancels:
            body.append(
                _(
                    "%(name)s's calendar sends you the cancellation in a separate email; it takes the "
                    "meeting out of your calendar.",
                    name=owner.name,
                )
            )
        if booking.page is not None:
            body.append(_("To book another time: %(url)s", url=links.page_url(booking.page)))
        _send_visitor(
            booking,
            subject=_("Cancelled: %(what)s, %(when)s", what=what, when=when),
            body=body,
            method="CANCEL" if termin_invites else None,
        )
    if not by_visitor:
        return  # the rep cancelled it: they know
    with _rep_locale(owner):
        when = _when(booking.start_at, booking.end_at, owner.time_zone)
        body = [
            _("%(visitor)s (%(email)s) cancelled their booking of “%(page)s”.", **_visitor_and_page(booking)),
            "\n".join(_time_and_place(booking, when)),
            _("Their reason: %(reason)s", reason=reason) if reason else _("They gave no reason."),
        ]
        body += _rep_footer(booking, calendar_note=False)
        _send_rep(
            booking,
            subject=_("Booking on “%(page)s” cancelled: %(when)s", page=_page_title(booking), when=when),
            body=body,
        )


@signals.booking_attempted_while_paused.connect
def booking_attempted_while_paused(page: SchedulingPage, attempt: BookingAttempt) -> None:
    """C11: tell the rep someone tried to book while booking is paused, why, and how to fix it.

    ``services.record_paused_attempt`` calls this at most once an hour per rep.
    """
    owner = page.owner
    settings_url = _app_link("settings.calendars")
    with _rep_locale(owner):
        at = _moment(attempt.last_attempt_at, owner.time_zone)
        if attempt.email:
            opening = _(
                "%(email)s tried to book a meeting on your page “%(page)s” (%(when)s), but booking with you "
                "is paused.",
                email=attempt.email,
                page=page.title,
                when=at,
            )
        else:
            opening = _(
                "Someone tried to book a meeting on your page “%(page)s” (%(when)s), but booking with you "
                "is paused.",
                page=page.title,
                when=at,
            )
        body = [
            opening,
            _("Why: %(reason)s", reason=attempt.reason),
            _(
                "Nobody can book you until it is fixed. Reconnect the account, or remove the inactive "
                "calendar, on your calendar settings page:"
            ),
            settings_url,
            _("You get this email at most once an hour, however many people try to book."),
        ]
        subject = _("Someone tried to book you on “%(page)s” while booking is paused", page=page.title)
    smtp.send_mail(page.tenant_id, to=owner.email, subject=subject, text="\n\n".join(body) + "\n")


# --- Reminders (T2) ---------------------------------------------------------------------------------------


@signals.reminders_due.connect
def schedule_reminders(booking: Booking, *, token: str, now: datetime) -> None:
    """Queue the page's reminders of ``booking``'s current start in the outbox, each held back until its
    instant (the sweeper hands it to a worker then). A reminder whose instant has already passed is not
    queued: the confirmation just sent says it all."""
    page = booking.page
    if page is None or not page.reminders:
        return
    for minutes in page.reminders:
        due = booking.start_at - timedelta(minutes=minutes)
        if due <= now:
            continue
        for to in ("visitor", "rep") if page.remind_rep else ("visitor",):
            payload = {
                "booking_id": booking.id,
                "start": booking.start_at.isoformat(),
                "minutes": minutes,
                "to": to,
                # The manage links need the token, which the database keeps only hashed.
                "token": token if to == "visitor" else "",
            }
            outbox.add(booking.tenant_id, "booking.reminder", payload, deliver_at=due)


def send_reminder(tenant_id: int, payload: dict) -> None:
    """Outbox "booking.reminder": remind the visitor (or the rep) of a booking, unless it was cancelled,
    moved (its new time has reminders of its own) or has started: never after the start, however late a
    worker comes back."""
    booking = db.session.scalar(
        sa.select(Booking).where(Booking.tenant_id == tenant_id, Booking.id == payload["booking_id"])
    )
    if booking is None or not booking.is_confirmed:
        return
    if booking.start_at != datetime.fromisoformat(payload["start"]) or utcnow() >= booking.start_at:
        return
    if payload["to"] == "rep":
        owner = booking.owner
        with _rep_locale(owner):
            when = _when(booking.start_at, booking.end_at, owner.time_zone)
            body = [
                _(
                    "Reminder: %(visitor)s (%(email)s) booked “%(page)s” with you.",
                    **_visitor_and_page(booking),
                ),
                "\n".join(_time_and_place(booking, when)),
            ]
            body += _rep_footer(booking, calendar_note=False)
            subject = _("Reminder: %(visitor)s, %(when)s", visitor=booking.visitor_name, when=when)
        _send_rep(booking, subject=subject, body=body)
        return
    with _visitor_locale(booking):
        what = _what(booking)
        when = _when(booking.start_at, booking.end_at, booking.time_zone)
        body = [
            _("Hello %(name)s,", name=booking.first_name),
            _("This is a reminder of your meeting with %(name)s.", name=booking.owner.name),
            "\n".join(_details(booking, what, when)),
            "\n".join(_manage_links(booking, payload["token"])),
            _("To reach %(name)s, reply to this email.", name=booking.owner.name),
        ]
        subject = _("Reminder: %(what)s, %(when)s", what=what, when=when)
    owner = booking.owner
    smtp.send_mail(
        booking.tenant_id,
        to=booking.email,
        subject=subject,
        text="\n\n".join(body) + "\n",
        reply_to=owner.email,
        sender_name=owner.name,
    )


@signals.team_member_excluded.connect
def team_member_excluded(page: SchedulingPage, *, member: User, reason: str, admins: list[User]) -> None:
    """T1: tell the tenant's admins, once, that a team page leaves a member out for an inactive calendar
    (round robin books the others; a group page cannot be booked until it is fixed)."""
    for admin in admins:
        with _rep_locale(admin):
            if page.kind == "group":
                effect = _("Nobody can book this group page until it is fixed.")
            else:
                effect = _("Meetings on this page go to the other members until it is fixed.")
            body = [
                _(
                    "%(member)s is left out of the team page “%(page)s”: one of their calendars is inactive.",
                    member=member.name,
                    page=page.title,
                ),
                _("Why: %(reason)s", reason=reason),
                effect,
                _(
                    "They can reconnect the account, or remove the inactive calendar, on their calendar "
                    "settings page."
                ),
            ]
            subject = _("%(member)s is left out of “%(page)s”", member=member.name, page=page.title)
        smtp.send_mail(page.tenant_id, to=admin.email, subject=subject, text="\n\n".join(body) + "\n")


# --- Parts -------------------------------------------------------------------------------------------------


def _visitor_locale(booking: Booking):
    return force_locale(booking.locale or "en")


def _rep_locale(owner: User):
    return force_locale(owner.locale or "en")


def _page_title(booking: Booking) -> str:
    return booking.page.title if booking.page is not None else _("Meeting")


def _what(booking: Booking) -> str:
    return _("%(title)s with %(name)s", title=_page_title(booking), name=booking.owner.name)


def _minutes(booking: Booking) -> int:
    return int((booking.end_at - booking.start_at).total_seconds() // 60)


def _location(booking: Booking) -> str:
    return booking.page.location if booking.page is not None else ""


def _visitor_and_page(booking: Booking) -> dict:
    """The placeholders of the rep's news: who booked (``visitor``, ``email``) and which page."""
    return {"visitor": booking.visitor_name, "email": booking.email, "page": _page_title(booking)}


def _details(booking: Booking, what: str, when: str) -> list[str]:
    """The visitor's summary: what, then when, how long and where."""
    return [_("What: %(what)s", what=what), *_time_and_place(booking, when)]


def _time_and_place(booking: Booking, when: str) -> list[str]:
    lines = [
        _("When: %(when)s", when=when),
        _("Duration: %(minutes)s min", minutes=_minutes(booking)),
    ]
    if _location(booking):
        lines.append(_("Where: %(location)s", location=_location(booking)))
    return lines


def _add_to_calendar(booking: Booking, token: str, what: str) -> list[str]:
    """The "add to my calendar" links: an event to add, not an invitation (nothing to answer)."""
    meeting = booking.meeting
    if meeting is None or not meeting.uid:
        return []
    add = links.add_to_calendar(booking, token, title=what, details=_file_description(booking, token))
    return [
        "\n".join(
            [
                _("Not using the invitation? Add the meeting to your calendar:"),
                _("Google Calendar: %(url)s", url=add.google),
                _("Outlook.com: %(url)s", url=add.outlook_com),
                _("Outlook (Microsoft 365): %(url)s", url=add.outlook_office),
                _("Other calendar apps (.ics file): %(url)s", url=add.ics),
            ]
        )
    ]


def add_to_calendar_links(booking: Booking, token: str) -> links.AddToCalendar | None:
    """The booking page's "add to my calendar" links, in the visitor's language; None without a meeting."""
    meeting = booking.meeting
    if meeting is None or not meeting.uid or not booking.is_confirmed:
        return None
    with _visitor_locale(booking):
        return links.add_to_calendar(
            booking, token, title=_what(booking), details=_file_description(booking, token)
        )


def _file_description(booking: Booking, token: str) -> str:
    return _("Reschedule or cancel: %(url)s", url=links.manage_url(booking, token)) if token else ""


def _manage_links(booking: Booking, token: str) -> list[str]:
    return [
        _("Your booking: %(url)s", url=links.manage_url(booking, token)),
        _("Reschedule: %(url)s", url=links.manage_url(booking, token, "reschedule")),
        _("Cancel: %(url)s", url=links.manage_url(booking, token, "cancel")),
    ]


def _answers(booking: Booking) -> list[str]:
    answered = [item for item in booking.answers or () if str(item.get("answer") or "").strip()]
    if not answered:
        return []
    lines = [_("Their answers:")]
    lines += [f"{item.get('label', '')}: {item['answer']}" for item in answered]
    return ["\n".join(lines)]


def _rep_footer(booking: Booking, *, calendar_note: bool = True) -> list[str]:
    parts = []
    if booking.contact is not None:
        parts.append(
            _(
                "Contact record in Termin: %(url)s",
                url=_app_link("crm.contact", contact_id=booking.contact.id),
            )
        )
    meeting = booking.meeting
    if calendar_note and meeting is not None and meeting.calendar_id is None:
        parts.append(
            _(
                "The meeting is logged in Termin but not written to a calendar: none of your calendar "
                "accounts has scheduling pages switched on."
            )
        )
    return parts


def _send_visitor(
    booking: Booking, *, subject: str, body: list[str], method: str | None, token: str = ""
) -> None:
    """The visitor's mail; ``method`` (REQUEST, CANCEL) attaches Termin's invitation, None nothing. Not
    sent when the address had its day's share already: whoever types an address into a booking form must
    not be able to flood it (RATELIMIT_VISITOR_MAIL)."""
    if not limits.try_spend("RATELIMIT_VISITOR_MAIL", "visitor-mail", booking.email):
        log.warning("booking %s: mail to the visitor not sent, the address had its day's share", booking.id)
        return
    ics = _ics(booking, method, token) if method else None
    owner = booking.owner
    smtp.send_mail(
        booking.tenant_id,
        to=booking.email,
        subject=subject,
        text="\n\n".join(body) + "\n",
        ics=ics,
        ics_method=method if ics else None,
        reply_to=owner.email,
        sender_name=owner.name,
        secrets=[token],
    )


def _send_rep(booking: Booking, *, subject: str, body: list[str]) -> None:
    smtp.send_mail(
        booking.tenant_id,
        to=booking.owner.email,
        subject=subject,
        text="\n\n".join(body) + "\n",
        reply_to=booking.email,
    )


def calendar_file(booking: Booking, token: str) -> str | None:
    """The booking's "add to my calendar" file for its page: an event to add (PUBLISH), or, once the
    booking is cancelled, the CANCEL that takes it out again; None without a meeting."""
    with _visitor_locale(booking):
        return _ics(booking, "PUBLISH" if booking.is_confirmed else "CANCEL", token)


def _ics(booking: Booking, method: str, token: str) -> str | None:
    """The iCalendar object for the visitor, or None when the meeting is gone (nothing to name)."""
    meeting = booking.meeting
    if meeting is None or not meeting.uid:
        return None
    owner = booking.owner
    invitation = imip.Invitation(
        uid=meeting.uid,
        summary=_what(booking),
        start=booking.start_at,
        end=booking.end_at,
        organizer_email=writes.organizer_address(meeting),
        organizer_name=owner.name,
        attendees=(Attendee(email=booking.email, name=booking.visitor_name),),
        description=_file_description(booking, token),
        location=_location(booking),
        # A cancellation must outrank every version sent before it (RFC 5546), as in writes._email_itip.
        sequence=meeting.sequence + 1 if method == "CANCEL" else meeting.sequence,
    )
    build = {"REQUEST": imip.request, "PUBLISH": imip.publish, "CANCEL": imip.cancel}[method]
    return build(invitation)


def _app_link(endpoint: str, **values) -> str:
    """An absolute link to an app page (app host), from a request on any host or from a job."""
    config = current_app.config
    adapter = current_app.url_map.bind(config["APP_HOST"], script_name=config.get("APPLICATION_ROOT") or "/")
    return app_host_url(adapter.build(endpoint, values))


def _when(start: datetime, end: datetime, time_zone: str) -> str:
    """ "Monday, 7 January 2030, 10:00-10:30 (Warsaw time)" in the current locale (``app.timefmt``)."""
    return timefmt.meeting_time(start, end, time_zone)


def _moment(at: datetime, time_zone: str) -> str:
    return timefmt.moment(at, time_zone)
