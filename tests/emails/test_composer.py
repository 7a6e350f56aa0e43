"""Sending from the contact's record: the composer, the preview, the real MIME the SMTP sink receives, the
timeline, refusals (dead links, pages off, no address, the hourly limit) and isolation."""

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import time_machine

from app.crm.models import Contact
from app.emails.models import SentEmail
from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages import services as pages
from app.pages.models import SchedulingPage
from app.tenants.models import User
from tests.helpers import error_fields, snapshot
from tests.pages.helpers import ACME_HOST, hidden

CLOCK = datetime(2030, 1, 1, 12, tzinfo=UTC)
TEAM_TEXTS = {
    "subject": "Hello {{ contact.first_name }}",
    "body": (
        "Hello {{ contact.first_name }},\n\nBook a time: {{ meeting_link }}\n\n"
        "**{{ rep.name }}**, {{ rep.title }}"
    ),
}


def _compose(rep, mailroom, **query):
    response = rep.get(f"/crm/contacts/{mailroom.contact_id}/email", query_string=query)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def _post(rep, mailroom, action, **fields):
    return rep.post_form(
        f"/crm/contacts/{mailroom.contact_id}/email", {"action": action, **fields}, htmx=True
    )


def _sent(app) -> list[SentEmail]:
    with app.app_context():
        rows = db.session.scalars(sa.select(SentEmail).order_by(SentEmail.id)).all()
        db.session.expunge_all()
        return rows


def test_a_rep_previews_then_sends_a_team_template_and_the_sink_gets_real_multipart_alternative(
    app, mailroom, signed_in, sink
):
    rep = signed_in(mailroom.rep_email)
    composer = _compose(rep, mailroom, template=mailroom.team_template_id)
    ref = hidden(composer, "ref")
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", ref)
    fields = {**TEAM_TEXTS, "ref": ref, "template": str(mailroom.team_template_id)}
    preview = _post(rep, mailroom, "preview", **fields)
    assert preview.status_code == 200
    shown = preview.get_data(as_text=True)
    link = f"http://app.termin.test/meetings/{mailroom.rep_slug}?ref={ref}"
    assert '<span id="preview-subject">Hello Vera</span>' in shown
    assert f"Book a time: {link}" in shown  # the text part
    assert "&lt;strong&gt;Rita Rep&lt;/strong&gt;, Account executive" in shown  # the HTML, in srcdoc
    assert sink.messages == []  # a preview sends nothing

    sent = _post(rep, mailroom, "send", **fields)
    assert sent.status_code == 200
    assert sent.headers["HX-Redirect"].endswith(f"/crm/contacts/{mailroom.contact_id}")
    [message] = sink.messages
    assert message["To"] == "vera@example.org"
    assert message["Subject"] == "Hello Vera"
    assert message["From"].addresses[0].display_name == "Rita Rep"
    assert message["From"].addresses[0].addr_spec == "no-reply@termin.localhost"
    assert message["Reply-To"] == "rita@acme.example"
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")  # SMTP lines end in CRLF
    html = message.get_body(("html",)).get_content()
    assert text == f"Hello Vera,\n\nBook a time: {link}\n\nRita Rep, Account executive\n"
    assert f'<a href="{link}">{link}</a>' in html
    assert "<strong>Rita Rep</strong>, Account executive" in html
    assert sink.envelopes[0].rcpt_tos == ("vera@example.org",)
    [row] = _sent(app)
    assert (row.contact_id, row.sender_id, row.template_id, row.ref) == (
        mailroom.contact_id,
        mailroom.rep_id,
        mailroom.team_template_id,
        ref,
    )
    # The record's timeline: subject, by whom, delivery status from the outbox.
    record = rep.get(f"/crm/contacts/{mailroom.contact_id}").get_data(as_text=True)
    assert f'data-sent-email-id="{row.id}" data-status="delivered"' in record
    assert "Email “Hello Vera”" in record
    assert "sent by Rita Rep" in record


def test_each_rep_gets_their_own_default_page_from_one_team_template(app, mailroom, signed_in, sink):
    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.email == mailroom.admin_email))
        page = pages.create_page(
            admin.tenant,
            admin,
            pages.PageSettings(
                title="Ada's call",
                slug="ada",
                time_zone="UTC",
                weekly=[[0, "09:00", "17:00"]],
                durations=[30],
            ),
        )
        assert page.is_default
        slug = admin.page_slug
        db.session.commit()
    admin_client = signed_in(mailroom.admin_email)
    composer = _compose(admin_client, mailroom, template=mailroom.team_template_id)
    assert _post(admin_client, mailroom, "send", **TEAM_TEXTS, ref=hidden(composer, "ref")).status_code == 200
    assert f"/meetings/{slug}?ref=" in sink.messages[0].get_body(("plain",)).get_content()


def test_the_link_is_built_at_send_time_from_the_pages_current_domain(app, mailroom, signed_in, sink):
    with app.app_context():
        intro = db.session.get(SchedulingPage, mailroom.intro_id)
        intro.domain_id = mailroom.domain_id
        db.session.commit()
    rep = signed_in(mailroom.rep_email)
    assert _post(rep, mailroom, "send", **TEAM_TEXTS).status_code == 200
    text = sink.messages[0].get_body(("plain",)).get_content()
    assert f"http://{ACME_HOST}/meetings/{mailroom.rep_slug}?ref=" in text


def test_free_text_with_a_particular_page_and_the_send_meeting_link_shortcut(app, mailroom, signed_in, sink):
    rep = signed_in(mailroom.rep_email)
    inserted = _post(
        rep, mailroom, "insert", subject="Our demo", body="Here:", link_page=str(mailroom.demo_id)
    )
    assert inserted.status_code == 200
    assert f"Here:\n\n{{{{ meeting_link:{mailroom.demo_id} }}}}</textarea>" in inserted.get_data(as_text=True)
    shortcut = _compose(rep, mailroom, shortcut="meeting_link").get_data(as_text=True)
    assert "Let&#39;s find a time to talk" in shortcut
    assert "{{ meeting_link }}" in shortcut
    body = f"Here: [book the demo]({{{{ meeting_link:{mailroom.demo_id} }}}})"
    assert _post(rep, mailroom, "send", subject="Our demo", body=body).status_code == 200
    text = sink.messages[0].get_body(("plain",)).get_content()
    assert re.search(
        rf"book the demo \(http://{ACME_HOST}/meetings/{mailroom.rep_slug}/demo\?ref=[\w-]{{16}}\)", text
    )


def test_dead_links_and_pages_off_are_caught_at_preview_and_cannot_be_sent(app, mailroom, signed_in, sink):
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    for body, words in (
        (f"{{{{ meeting_link:{mailroom.other_page_id} }}}}", "names a scheduling page you no longer have"),
        ("{{ meeting_link:999999 }}", "{{ meeting_link:999999 }} names a scheduling page"),
    ):
        for action in ("preview", "send"):
            response = _post(rep, mailroom, action, subject="Hi", body=body)
            assert response.status_code == 422
            assert error_fields(response) == {"body"}
            assert words in response.get_data(as_text=True)
    with app.app_context():
        db.session.get(User, mailroom.rep_id).pages_disabled = True
        db.session.commit()
    before = snapshot(app)
    for action in ("preview", "send"):
        response = _post(rep, mailroom, action, **TEAM_TEXTS)
        assert response.status_code == 422
        assert "Scheduling pages are switched off" in response.get_data(as_text=True)
    assert snapshot(app) == before
    assert sink.messages == []


def test_no_default_page_is_explained(app, mailroom, signed_in, sink):
    with app.app_context():
        for page in db.session.scalars(
            sa.select(SchedulingPage).where(SchedulingPage.owner_id == mailroom.rep_id)
        ):
            db.session.delete(page)
        db.session.commit()
    rep = signed_in(mailroom.rep_email)
    response = _post(rep, mailroom, "preview", **TEAM_TEXTS)
    assert response.status_code == 422
    assert "You have no default scheduling page" in response.get_data(as_text=True)


def test_bad_input_is_refused_with_the_field_named_and_nothing_sent(app, mailroom, signed_in, sink):
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    cases = [
        ({"subject": "Hi\r\nBcc: everyone@example.org", "body": "x"}, {"subject"}),
        ({"subject": "Hi", "body": "x" * 20_001}, {"body"}),
        ({"subject": "", "body": "x"}, {"subject"}),
        ({"subject": "Hi", "body": "{{ contact.shoe_size }}"}, {"body"}),
    ]
    for fields, wrong in cases:
        response = _post(rep, mailroom, "send", **fields)
        assert response.status_code == 422, fields
        assert error_fields(response) == wrong, fields
    assert snapshot(app) == before
    assert sink.messages == []


def test_a_forged_or_reused_ref_is_replaced_by_a_fresh_one(app, mailroom, signed_in, sink):
    rep = signed_in(mailroom.rep_email)
    assert (
        _post(rep, mailroom, "send", subject="Hi", body="{{ meeting_link }}", ref="../../etc").status_code
        == 200
    )
    first = _sent(app)[0].ref
    assert re.fullmatch(r"[A-Za-z0-9_-]{16}", first)
    assert _post(rep, mailroom, "send", subject="Hi", body="{{ meeting_link }}", ref=first).status_code == 200
    second = _sent(app)[1].ref
    assert second != first
    assert f"ref={second}" in sink.messages[1].get_body(("plain",)).get_content()


def test_a_contact_without_an_email_cannot_be_mailed(app, mailroom, signed_in, sink):
    with app.app_context():
        db.session.get(Contact, mailroom.contact_id).email = ""
        db.session.commit()
    rep = signed_in(mailroom.rep_email)
    page = rep.get(f"/crm/contacts/{mailroom.contact_id}").get_data(as_text=True)
    assert 'id="send-email-link"' not in page
    response = _post(rep, mailroom, "send", subject="Hi", body="Hello")
    assert response.status_code == 422
    assert error_fields(response) == {"to"}
    assert sink.messages == []


def test_sending_is_limited_per_rep_by_the_limiter_and_the_text_is_kept(
    app, mailroom, signed_in, sink, raise_limits
):
    raise_limits(RATELIMIT_SALES_EMAIL="2 per hour")
    with time_machine.travel(CLOCK, tick=False) as clock:
        rep = signed_in(mailroom.rep_email)
        for _ in range(2):
            assert _post(rep, mailroom, "send", subject="Hi", body="Hello").status_code == 200
        # A refused email (bad content) is not counted; a preview is always allowed.
        assert _post(rep, mailroom, "send", subject="Hi", body="{{ nope }}").status_code == 422
        assert _post(rep, mailroom, "preview", subject="Hi", body="Hello").status_code == 200
        before = snapshot(app)
        refused = _post(rep, mailroom, "send", subject="Third", body="Kept as typed")
        assert refused.status_code == 429
        shown = refused.get_data(as_text=True)
        assert "You have sent 2 emails recently, the most Termin sends for one person." in shown
        assert "You can send again from" in shown
        assert 'id="composer"' in shown
        assert "Kept as typed" in shown
        assert snapshot(app) == before
        assert len(sink.messages) == 2
        # Without htmx the same answer is the whole page.
        plain = rep.post_form(
            f"/crm/contacts/{mailroom.contact_id}/email", {"action": "send", "subject": "Hi", "body": "x"}
        )
        assert plain.status_code == 429
        assert "<html" in plain.get_data(as_text=True)
        # A colleague has their own allowance.
        colleague = signed_in(mailroom.colleague_email)
        assert _post(colleague, mailroom, "send", subject="Hi", body="Hello").status_code == 200
        # Once the oldest send leaves the window the rep may send again.
        clock.shift(timedelta(hours=1, seconds=1))
        assert _post(rep, mailroom, "send", subject="Hi", body="Hello").status_code == 200


def test_a_refused_delivery_shows_on_the_timeline(app, mailroom, signed_in, sink):
    sink.refuse("vera@example.org", 550)
    rep = signed_in(mailroom.rep_email)
    assert _post(rep, mailroom, "send", subject="Hi", body="Hello").status_code == 200
    record = rep.get(f"/crm/contacts/{mailroom.contact_id}").get_data(as_text=True)
    assert 'data-status="failed"' in record
    assert "Not delivered" in record
    with app.app_context():
        assert db.session.scalar(sa.select(OutboxMessage.status)) == "failed"


def test_another_tenants_contact_is_404_and_nothing_is_sent(app, mailroom, signed_in, sink):
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    url = f"/crm/contacts/{mailroom.other_contact_id}/email"
    assert rep.get(url).status_code == 404
    for action in ("preview", "send", "insert", "load"):
        assert rep.post_form(url, {"action": action, "subject": "Hi", "body": "x"}).status_code == 404
    # Another tenant's template cannot be loaded into the composer either.
    loaded = _post(rep, mailroom, "load", template=str(mailroom.other_template_id), subject="", body="")
    assert "Globex" not in loaded.get_data(as_text=True)
    assert snapshot(app) == before
    assert sink.messages == []
    # Their sent emails are not on our record, ours not on theirs.
    assert _post(rep, mailroom, "send", subject="Ours", body="x").status_code == 200
    gus = signed_in(mailroom.other_rep_email)
    assert gus.get(f"/crm/contacts/{mailroom.contact_id}").status_code == 404
    assert "Ours" not in gus.get(f"/crm/contacts/{mailroom.other_contact_id}").get_data(as_text=True)


def test_junk_template_ids_are_ignored_not_a_server_error(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    for junk in ("99999999999999999999", "abc", "١٢", "-1"):
        assert _compose(rep, mailroom, template=junk).status_code == 200
        loaded = _post(rep, mailroom, "load", template=junk, subject="Kept", body="Kept too")
        assert loaded.status_code == 200
        assert "Kept too</textarea>" in loaded.get_data(as_text=True)
