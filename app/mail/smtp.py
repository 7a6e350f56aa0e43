"""Outgoing email: ``send_mail`` adds a "mail.send" outbox row; ``send_payload``, its handler, sends it.

Nothing is sent from a request: the row commits with the change that needs the mail, and a job sends it
(app/mail/outbox.py). The Message-ID and Date are fixed when the row is added, so a message sent again
after a lost commit is the same message, which mail clients show once.

Messages are ``email.message.EmailMessage``: text/plain, optionally text/html, as multipart/alternative.
An invitation (RFC 6047 iMIP) adds a text/calendar part with its ``method`` as a third alternative, which
calendar-aware clients act on, and the same object as an .ics attachment, for everyone else.

Delivery is SMTP (smtplib) with STARTTLS and login when configured. A 4xx answer, a dropped connection or
a refused login is tried again later (the login is our configuration, which someone will fix); a 5xx
answer is final. When the server takes the message for some recipients and defers others, only the
deferred ones are tried again. The moment the server accepts the DATA, the outcome is committed
(``outbox.accepted``) before QUIT; a crash in between (the only window left) sends the message again with the
same Message-ID. The embedded demo has no SMTP_HOST: its mail is written as .eml files to
MAIL_DIR (instance/mail/ by default) and the log says where.
"""

import logging
import re
import smtplib
import ssl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path

from flask import current_app

from app.mail import outbox
from app.mail.models import OutboxMessage

log = logging.getLogger(__name__)

# RFC 5546 section 1.4: the methods an iCalendar object sent by email may carry.
ICS_METHODS = ("PUBLISH", "REQUEST", "REPLY", "ADD", "CANCEL", "REFRESH", "COUNTER", "DECLINECOUNTER")
ICS_FILENAMES = {"CANCEL": "cancel.ics"}
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._@-]")


def send_mail(
    tenant_id: int | None,
    *,
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    ics: str | None = None,
    ics_method: str | None = None,
    reply_to: str | None = None,
    sender_name: str | None = None,
    from_name: str | None = None,
    secrets: Sequence[str] = (),
) -> OutboxMessage:
    """Queue one email (sent after the current transaction commits, never inline).

    ``ics`` with ``ics_method`` (REQUEST, CANCEL, ...) makes it an iMIP message. ``sender_name`` shows as
    "<name> via <MAIL_FROM's name>" on MAIL_FROM's address, ``from_name`` as exactly that name (a rep's
    own sales email); ``reply_to`` gets the answers. ``secrets``
    (a booking's manage token, a reset token) are cut out of the stored copy once the mail is delivered
    (``redact``), so a copy of the database holds no live link.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    recipients = [address.strip() for address in recipients if address.strip()]
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    if (ics is None) != (ics_method is None):
        raise ValueError("ics and ics_method go together")
    if ics_method is not None and ics_method.upper() not in ICS_METHODS:
        raise ValueError(f"unknown iTIP method {ics_method!r}")
    payload = {
        "to": recipients,
        "subject": subject,
        "text": text,
        "html": html,
        "ics": ics,
        "ics_method": ics_method.upper() if ics_method else None,
        "reply_to": reply_to,
        "sender_name": sender_name,
        "from_name": from_name,
        "message_id": make_msgid(domain=_domain(current_app.config["MAIL_FROM"])),
        "date": formatdate(usegmt=True),
        "secrets": [secret for secret in secrets if secret],
    }
    return outbox.add(tenant_id, "mail.send", payload)


REDACTED = "[redacted]"


def redact(payload: dict) -> dict:
    """The stored copy of a mail once it left (or never will): its secrets cut out of every part, the rest
    (recipients, subject, Message-ID) kept for the delivery status."""
    secrets = payload.get("secrets") or []
    kept = {key: value for key, value in payload.items() if key not in ("secrets", "rcpt")}
    for part in ("text", "html", "ics"):
        value = kept.get(part)
        if value:
            for secret in secrets:
                value = value.replace(secret, REDACTED)
            kept[part] = value
    kept["redacted"] = True
    return kept


def build_message(payload: dict, mail_from: str) -> EmailMessage:
    """The message a "mail.send" payload describes, as it goes out."""
    from_name, from_address = parseaddr(mail_from)
    if payload.get("from_name"):
        from_name = payload["from_name"]
    elif payload.get("sender_name"):
        from_name = f"{payload['sender_name']} via {from_name or 'Termin'}"
    message = EmailMessage()
    message["From"] = Address(display_name=from_name, addr_spec=from_address)
    message["To"] = ", ".join(payload["to"])
    if payload.get("reply_to"):
        message["Reply-To"] = payload["reply_to"]
    message["Subject"] = payload["subject"]
    message["Date"] = payload["date"]
    message["Message-ID"] = payload["message_id"]
    message.set_content(payload["text"])
    if payload.get("html"):
        message.add_alternative(payload["html"], subtype="html")
    if payload.get("ics"):
        method = payload["ics_method"]
        message.add_alternative(payload["ics"], subtype="calendar", params={"method": method})
        # The attachment makes the whole a multipart/mixed around the alternatives, as RFC 6047's examples.
        message.add_attachment(
            payload["ics"].encode(),
            maintype="application",
            subtype="ics",
            filename=ICS_FILENAMES.get(method, "invite.ics"),
        )
    return message


def send_payload(tenant_id: int | None, payload: dict) -> None:
    """Outbox handler for "mail.send": hand the message to the SMTP server (or write it, in the demo)."""
    config = current_app.config
    message = build_message(payload, config["MAIL_FROM"])
    recipients = payload.get("rcpt") or payload["to"]
    if not config["SMTP_HOST"]:
        if config["ENV"] == "production":
            # Dropping mail into files on a server nobody reads would lose it quietly.
            raise outbox.RetryLater("SMTP_HOST is not set, so no mail can be sent until it is.")
        path = _write_eml(message, config)
        # A warning, so the demo's console shows it without any logging set up: the mail was not sent.
        log.warning(
            "No SMTP_HOST set: mail %r to %s not sent, written to %s", payload["subject"], recipients, path
        )
        return
    with _smtp_errors(config), _connected(config) as smtp:
        try:
            refused = smtp.send_message(
                message, from_addr=parseaddr(config["MAIL_FROM"])[1], to_addrs=recipients
            )
        except smtplib.SMTPRecipientsRefused as error:
            refused = error.recipients  # nobody took it: nothing was sent
        deferred = [address for address, (code, _) in refused.items() if 400 <= code < 500]
        rejected = {address: answer for address, answer in refused.items() if address not in deferred}
        if len(rejected) == len(recipients):
            raise outbox.Undeliverable(f"The mail server rejected {_describe(rejected)}.")
        # The server has taken the DATA: on record now, before QUIT, so a crash from here on cannot send it
        # again (to the recipients who have it).
        outbox.accepted({**payload, "rcpt": deferred} if deferred else None)
    if rejected:
        # The others have it or will; these addresses never will, and retrying cannot change that.
        log.warning("mail %s: recipients rejected: %s", payload["message_id"], _describe(rejected))
    if deferred:
        # Only the deferred recipients are tried again: the rest already have the message.
        raise outbox.RetryLater(
            f"The mail server deferred {_describe({a: refused[a] for a in deferred})}.",
            payload={**payload, "rcpt": deferred},
        )


@contextmanager
def _connected(config) -> Iterator[smtplib.SMTP]:
    """An SMTP session, STARTTLS and login done; QUIT when the block ends (a failed QUIT changes nothing)."""
    smtp = smtplib.SMTP(config["SMTP_HOST"], int(config["SMTP_PORT"]), timeout=config["SMTP_TIMEOUT"])
    try:
        if config["SMTP_STARTTLS"]:
            smtp.starttls(context=ssl.create_default_context())
        if config["SMTP_USERNAME"]:
            smtp.login(config["SMTP_USERNAME"], config["SMTP_PASSWORD"] or "")
        yield smtp
    finally:
        with suppress(smtplib.SMTPException, OSError):
            smtp.quit()
        smtp.close()


@contextmanager
def _smtp_errors(config) -> Iterator[None]:
    """The SMTP server's answers as the outbox's verdicts: 4xx and lost connections later, 5xx never."""
    try:
        yield
    except smtplib.SMTPAuthenticationError as error:
        raise outbox.RetryLater(
            "The mail server refused SMTP_USERNAME/SMTP_PASSWORD: "
            + _answer(error.smtp_code, error.smtp_error)
        ) from error
    except smtplib.SMTPResponseException as error:
        answer = _answer(error.smtp_code, error.smtp_error)
        if 400 <= error.smtp_code < 500:
            raise outbox.RetryLater(f"The mail server deferred the message: {answer}") from error
        raise outbox.Undeliverable(f"The mail server rejected the message: {answer}") from error
    except (smtplib.SMTPException, OSError) as error:
        # Connection refused or dropped, a timeout, no STARTTLS offered: the server, not the message.
        raise outbox.RetryLater(
            f"Could not deliver through {config['SMTP_HOST']}:{config['SMTP_PORT']}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _answer(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return f"{code} {text}".strip()


def _describe(refused: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{address} ({_answer(code, text)})" for address, (code, text) in refused.items())


def _domain(mail_from: str) -> str:
    return parseaddr(mail_from)[1].rpartition("@")[2] or "termin.localhost"


def _write_eml(message: EmailMessage, config) -> Path:
    """Write the message where the demo keeps mail, named by its Message-ID: a retry overwrites its own file,
    and names sort by time (make_msgid starts with a timestamp)."""
    folder = Path(config["MAIL_DIR"] or Path(current_app.instance_path) / "mail")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_UNSAFE_FILENAME.sub('', message['Message-ID'].strip('<>'))}.eml"
    path.write_bytes(message.as_bytes())
    return path
