"""app.mail.smtp against a real SMTP server on 127.0.0.1 (tests/fakes/smtp.py), through the outbox."""

import logging
from datetime import timedelta

import icalendar
import pytest

from app.db import utcnow
from app.extensions import db
from app.mail import outbox, smtp
from app.mail.models import OutboxMessage
from app.queue import QUEUES
from tests.fakes.smtp import free_port

ICS = (
    "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Termin//Termin//EN\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    "UID:m-1@app.termin.test\r\nDTSTAMP:20300101T000000Z\r\nDTSTART:20300304T090000Z\r\n"
    "DTEND:20300304T093000Z\r\nSUMMARY:Intro call\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
)


def fresh(message_id: int) -> OutboxMessage:
    """The row as the job left it (the job ran in its own session)."""
    db.session.expire_all()
    return db.session.get(OutboxMessage, message_id)


def retry(message_id: int) -> OutboxMessage:
    """What the sweeper does once the row is due: run the delivery again, then commit."""
    row = fresh(message_id)
    outbox.deliver(message_id, now=row.next_attempt_at)
    db.session.commit()
    return fresh(message_id)


def test_mail_is_queued_in_the_transaction_and_sent_after_the_commit(tenants, sink):
    ours, _ = tenants
    message = smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi Ola.")
    assert (message.kind, message.status, message.tenant_id) == ("mail.send", "pending", ours.id)
    assert sink.messages == []  # never inline

    db.session.commit()

    assert fresh(message.id).status == "delivered"
    [sent] = sink.messages
    assert sent["To"] == "ola@example.org"
    assert sent["Subject"] == "Hello"
    assert sent.get_content().strip() == "Hi Ola."
    assert sink.envelopes[0].mail_from == "no-reply@termin.localhost"


def test_a_rolled_back_transaction_sends_nothing(tenants, sink):
    ours, _ = tenants
    db.session.commit()
    smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi.")
    db.session.rollback()
    assert sink.messages == []


def test_message_has_identity_headers_and_alternatives(tenants, sink):
    ours, _ = tenants
    message = smtp.send_mail(
        ours.id,
        to=["ola@example.org", "jan@example.org"],
        subject="Zażółć gęślą jaźń",
        text="Plain words.",
        html="<p>Rich words.</p>",
        reply_to="ada@work.example.com",
        sender_name="Ada Rep",
    )
    db.session.commit()

    [sent] = sink.messages
    assert sent["Message-ID"] == fresh(message.id).payload["message_id"]
    assert sent["Message-ID"].endswith("@termin.localhost>")
    assert sent["Date"]
    assert sent["From"].addresses[0].display_name == "Ada Rep via Termin"
    assert sent["From"].addresses[0].addr_spec == "no-reply@termin.localhost"
    assert sent["Reply-To"] == "ada@work.example.com"
    assert sent["Subject"] == "Zażółć gęślą jaźń"
    assert sent.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in sent.iter_parts()] == ["text/plain", "text/html"]
    assert set(sink.envelopes[0].rcpt_tos) == {"ola@example.org", "jan@example.org"}


def test_an_invitation_carries_a_calendar_part_with_its_method_and_an_ics_attachment(tenants, sink):
    ours, _ = tenants
    smtp.send_mail(
        ours.id, to="ola@example.org", subject="Invitation", text="Join us.", ics=ICS, ics_method="request"
    )
    db.session.commit()

    [sent] = sink.messages
    assert sent.get_content_type() == "multipart/mixed"
    alternative, attachment = sent.iter_parts()
    assert alternative.get_content_type() == "multipart/alternative"
    plain, calendar = alternative.iter_parts()
    assert plain.get_content_type() == "text/plain"
    assert calendar.get_content_type() == "text/calendar"
    assert calendar.get_param("method") == "REQUEST"
    assert calendar.get_content_charset() == "utf-8"
    parsed = icalendar.Calendar.from_ical(calendar.get_content())
    assert str(parsed["METHOD"]) == "REQUEST"
    assert [str(e["UID"]) for e in parsed.walk("VEVENT")] == ["m-1@app.termin.test"]
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    assert attachment.get_content().decode() == ICS


def test_a_cancellation_attachment_is_named_so(tenants, sink):
    ours, _ = tenants
    cancel = ICS.replace("METHOD:REQUEST", "METHOD:CANCEL")
    smtp.send_mail(
        ours.id, to="ola@example.org", subject="Cancelled", text="Off.", ics=cancel, ics_method="CANCEL"
    )
    db.session.commit()
    [sent] = sink.messages
    _, attachment = sent.iter_parts()
    assert attachment.get_filename() == "cancel.ics"
    assert next(_calendar_parts(sent)).get_param("method") == "CANCEL"


def _calendar_parts(message):
    return (part for part in message.walk() if part.get_content_type() == "text/calendar")


def test_a_deferral_451_is_tried_again_and_delivered_once(tenants, sink):
    ours, _ = tenants
    sink.fail_next(451)
    before = utcnow()
    message = smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi.")
    db.session.commit()

    row = fresh(message.id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "451" in row.last_error
    assert before < row.next_attempt_at <= utcnow() + timedelta(seconds=outbox.BASE_BACKOFF_SECONDS)
    assert sink.messages == []

    row = retry(message.id)
    assert (row.status, row.attempts, row.last_error) == ("delivered", 2, None)
    assert len(sink.messages) == 1

    outbox.deliver(message.id, now=utcnow() + timedelta(days=1))  # a late duplicate job
    db.session.commit()
    assert len(sink.messages) == 1


def test_a_rejection_550_fails_with_the_servers_reason(tenants, sink):
    ours, _ = tenants
    sink.fail_next(550)
    message = smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi.")
    db.session.commit()

    row = fresh(message.id)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error
    assert "mailbox unavailable" in row.last_error
    assert sink.messages == []


def test_a_recipient_refused_for_good_fails_the_message(tenants, sink):
    ours, _ = tenants
    sink.refuse("gone@example.org", 550)
    message = smtp.send_mail(ours.id, to="gone@example.org", subject="Hello", text="Hi.")
    db.session.commit()
    row = fresh(message.id)
    assert row.status == "failed"
    assert "gone@example.org" in row.last_error
    assert "550" in row.last_error


def test_only_the_deferred_recipient_is_tried_again_with_the_same_message(tenants, sink):
    ours, _ = tenants
    sink.refuse("busy@example.org", 450)
    message = smtp.send_mail(ours.id, to=["ola@example.org", "busy@example.org"], subject="Hello", text="Hi.")
    db.session.commit()

    row = fresh(message.id)
    assert row.status == "pending"
    assert row.payload["rcpt"] == ["busy@example.org"]
    assert [e.rcpt_tos for e in sink.envelopes] == [("ola@example.org",)]

    sink.reset()
    row = retry(message.id)
    assert row.status == "delivered"
    assert [e.rcpt_tos for e in sink.envelopes] == [("busy@example.org",)]
    [sent] = sink.messages
    assert sent["Message-ID"] == row.payload["message_id"]
    assert sent["To"] == "ola@example.org, busy@example.org"  # the headers say who else got it


def test_a_recipient_rejected_beside_an_accepted_one_does_not_hold_the_message(tenants, sink, caplog):
    ours, _ = tenants
    sink.refuse("gone@example.org", 550)
    message = smtp.send_mail(ours.id, to=["ola@example.org", "gone@example.org"], subject="Hello", text="Hi.")
    with caplog.at_level(logging.WARNING, logger="app.mail.smtp"):
        db.session.commit()
    assert fresh(message.id).status == "delivered"
    assert "gone@example.org" in caplog.text


def test_an_unreachable_server_is_tried_again(app, tenants, sink, monkeypatch):
    ours, _ = tenants
    monkeypatch.setitem(app.config, "SMTP_PORT", free_port())  # nothing listens there
    message = smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi.")
    db.session.commit()
    row = fresh(message.id)
    assert (row.status, row.attempts) == ("pending", 1)
    assert "Could not deliver" in row.last_error


def test_without_smtp_host_the_demo_writes_eml_files_and_says_where(
    app, tenants, monkeypatch, tmp_path, caplog
):
    ours, _ = tenants
    monkeypatch.setitem(app.config, "SMTP_HOST", None)
    monkeypatch.setitem(app.config, "MAIL_DIR", str(tmp_path))
    message = smtp.send_mail(
        ours.id, to="ola@example.org", subject="Hello", text="Hi.", ics=ICS, ics_method="REQUEST"
    )
    with caplog.at_level(logging.INFO, logger="app.mail.smtp"):
        db.session.commit()

    [written] = list(tmp_path.glob("*.eml"))
    assert str(written) in caplog.text
    assert fresh(message.id).status == "delivered"
    assert b"Subject: Hello" in written.read_bytes()
    assert b'method="REQUEST"' in written.read_bytes()


def test_without_smtp_host_production_keeps_the_mail_waiting(app, tenants, monkeypatch):
    ours, _ = tenants
    monkeypatch.setitem(app.config, "SMTP_HOST", None)
    monkeypatch.setitem(app.config, "ENV", "production")
    message = smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi.")
    db.session.commit()
    row = fresh(message.id)
    assert row.status == "pending"
    assert "SMTP_HOST" in row.last_error


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"to": []}, "recipient"),
        ({"to": "  "}, "recipient"),
        ({"ics": ICS}, "together"),
        ({"ics_method": "REQUEST"}, "together"),
        ({"ics": ICS, "ics_method": "INVITE"}, "method"),
    ],
)
def test_malformed_mail_is_refused_before_it_is_queued(tenants, kwargs, problem):
    ours, _ = tenants
    arguments = {"to": "ola@example.org", "subject": "Hello", "text": "Hi.", **kwargs}
    with pytest.raises(ValueError, match=problem):
        smtp.send_mail(ours.id, **arguments)
    assert db.session.query(OutboxMessage).count() == 0


def test_mail_goes_on_the_mail_queue_and_belongs_to_its_tenant(tenants):
    ours, theirs = tenants
    message = smtp.send_mail(ours.id, to="ola@example.org", subject="Hello", text="Hi.")
    assert outbox.queue_for(message.kind) == "mail"
    assert "mail" in QUEUES
    assert outbox.get_message(ours.id, message.id) is message
    assert outbox.get_message(theirs.id, message.id) is None


# --- Crashes around the SMTP conversation -----------------------------------------------------------------


class Killed(BaseException):
    pass


def _kill(*_args, **_kwargs):
    raise Killed


def test_sent_is_committed_when_the_server_accepts_the_data_before_quit(
    app, tenants, sink, queued, monkeypatch
):
    ours, _ = tenants
    message_id = smtp.send_mail(ours.id, to="ola@example.org", subject="Once", text="Hi.").id
    db.session.commit()

    def die_before_quit(connection):
        connection.close()  # a dead process's socket is closed by the kernel
        raise Killed

    monkeypatch.setattr(smtp.smtplib.SMTP, "quit", die_before_quit)  # the worker dies between DATA and QUIT
    with pytest.raises(Killed):
        outbox.deliver(message_id, now=utcnow())
    db.session.rollback()
    row = fresh(message_id)
    assert (row.status, row.attempts) == ("delivered", 1)
    assert len(sink.messages) == 1


def test_a_message_sent_again_after_a_crash_keeps_its_message_id(app, tenants, sink, queued, monkeypatch):
    ours, _ = tenants
    message_id = smtp.send_mail(ours.id, to="ola@example.org", subject="Twice?", text="Hi.").id
    db.session.commit()
    with monkeypatch.context() as patch:
        patch.setattr(
            outbox, "accepted", _kill
        )  # the server took the DATA; the worker died before the commit
        with pytest.raises(Killed):
            outbox.deliver(message_id, now=utcnow())
    db.session.rollback()
    row = fresh(message_id)
    assert (row.status, row.attempts) == ("pending", 1)

    assert retry(message_id).status == "delivered"
    first, second = sink.messages
    assert first["Message-ID"] == second["Message-ID"] == row.payload["message_id"]
    assert first["Date"] == second["Date"]
