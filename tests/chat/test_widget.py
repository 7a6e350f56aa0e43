"""The widget's public side: the script, the panel, the visitor's messages, the email ask, limits and
isolation."""

import re
from datetime import timedelta

import sqlalchemy as sa

from app.chat import services as chat
from app.chat.models import ChatMessage, ChatSettings, Conversation
from app.crm.models import Contact
from app.db import utcnow
from app.extensions import db
from tests.conftest import APP_HOST
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST

HEADER = "X-Chat-Secret"


def _say(client, widget_id, body="Hello there", secret=None, **kwargs):
    headers = {HEADER: secret, "HX-Request": "true"} if secret else {"HX-Request": "true"}
    return client.post(f"/widget/{widget_id}/messages", data={"body": body}, headers=headers, **kwargs)


def _start(client, widget_id, body="Hello there") -> str:
    response = _say(client, widget_id, body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.headers[HEADER]


def _conversation(app, secret) -> Conversation:
    with app.app_context():
        found = db.session.scalar(
            sa.select(Conversation).where(Conversation.secret_hash == chat.hash_secret(secret))
        )
        db.session.expunge_all()
        return found


# --- The script ---------------------------------------------------------------------------------------------


def test_the_script_on_the_tenants_domain_carries_its_settings_and_the_panel_on_that_host(
    chatroom, make_client
):
    response = make_client(ACME_HOST).get("/widget.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/javascript")
    text = response.get_data(as_text=True)
    assert f"http://{ACME_HOST}/widget/{chatroom.widget_id}/panel" in text
    assert chatroom.other_widget_id not in text
    assert "__TERMIN_CONFIG__" not in text


def test_the_script_on_the_app_host_is_found_by_the_widget_id(chatroom, make_client):
    text = make_client().get(f"/widget.js?id={chatroom.widget_id}").get_data(as_text=True)
    assert f"http://{APP_HOST}/widget/{chatroom.widget_id}/panel" in text


def test_a_disabled_widget_or_an_unknown_id_answers_a_no_op_script(app, chatroom, make_client):
    with app.app_context():
        db.session.scalar(
            sa.select(ChatSettings).where(ChatSettings.tenant_id == chatroom.tenant_id)
        ).enabled = False
        db.session.commit()
    for client, url in (
        (make_client(ACME_HOST), "/widget.js"),
        (make_client(), f"/widget.js?id={chatroom.widget_id}"),
        (make_client(), "/widget.js?id=AAAAAAAAAAAAAAAA"),
        (make_client(), "/widget.js"),
    ):
        response = client.get(url)
        assert response.status_code == 200
        assert "panel" not in response.get_data(as_text=True)
    # and the panel of a disabled widget is gone
    assert make_client(ACME_HOST).get(f"/widget/{chatroom.widget_id}/panel").status_code == 404


def test_another_tenants_widget_is_never_served_on_this_tenants_domain(chatroom, make_client):
    acme = make_client(ACME_HOST)
    text = acme.get(f"/widget.js?id={chatroom.other_widget_id}").get_data(as_text=True)
    assert chatroom.other_widget_id not in text
    assert "panel" not in text
    assert acme.get(f"/widget/{chatroom.other_widget_id}/panel").status_code == 404
    assert _say(acme, chatroom.other_widget_id).status_code == 404
    # Globex's own domain serves Globex's
    assert chatroom.other_widget_id in make_client(GLOBEX_HOST).get("/widget.js").get_data(as_text=True)


def test_the_script_is_small_and_has_no_framework(chatroom, make_client):
    text = make_client(ACME_HOST).get("/widget.js").get_data(as_text=True)
    assert len(text.encode()) < 15 * 1024
    assert "postMessage" not in text or "event.origin !== panelOrigin" in text


# --- The panel ----------------------------------------------------------------------------------------------


def test_the_panel_may_be_framed_by_any_site_and_keeps_nothing_in_shared_caches(chatroom, make_client):
    response = make_client(ACME_HOST).get(f"/widget/{chatroom.widget_id}/panel")
    assert response.status_code == 200
    assert "frame-ancestors" not in response.headers["Content-Security-Policy"]
    assert "X-Frame-Options" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "Hello from Acme" in html
    # nobody online: the welcome offers Book a meeting with the chosen page, on its current host (D3)
    assert (
        f'href="http://{ACME_HOST}/meetings/{chatroom.rep_slug}"' not in html
    )  # intro lives on the app host
    assert f"http://{ACME_HOST}:80" not in html
    assert "Book a meeting" in html
    assert f"/meetings/{chatroom.rep_slug}" in html


def test_the_welcome_offers_no_booking_while_a_member_is_online(chatroom, signed_in, make_client):
    signed_in(chatroom.rep_email).get("/inbox")  # the rep opens the Inbox: online
    html = make_client(ACME_HOST).get(f"/widget/{chatroom.widget_id}/panel").get_data(as_text=True)
    assert "Online now" in html
    assert "data-book" not in html


def test_the_app_routes_still_refuse_to_be_framed(chatroom, signed_in):
    response = signed_in(chatroom.rep_email).get("/inbox")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


# --- Messages -----------------------------------------------------------------------------------------------


def test_a_visitor_starts_a_conversation_and_gets_its_secret_once(app, chatroom, make_client):
    visitor = make_client(ACME_HOST)
    response = _say(visitor, chatroom.widget_id, "Do you ship to Poland?")
    assert response.status_code == 200
    secret = response.headers[HEADER]
    assert re.fullmatch(r"[\w-]{43}", secret)
    assert "Do you ship to Poland?" in response.get_data(as_text=True)
    conversation = _conversation(app, secret)
    assert conversation.tenant_id == chatroom.tenant_id
    assert conversation.unread == 1
    # the next message goes to the same conversation, and hands out no secret again
    again = _say(visitor, chatroom.widget_id, "Hello?", secret=secret)
    assert again.status_code == 200
    assert HEADER not in again.headers
    assert _conversation(app, secret).unread == 2
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Conversation.id))) == 1


def test_the_poll_brings_the_reps_reply_after_the_last_seen_message(app, chatroom, make_client, signed_in):
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id)
    conversation = _conversation(app, secret)
    rep = signed_in(chatroom.rep_email)
    assert rep.post_form(f"/inbox/{conversation.id}/reply", {"body": "Yes, we do!"}).status_code == 303
    with app.app_context():
        first = db.session.scalar(sa.select(sa.func.min(ChatMessage.id)))
    poll = visitor.get(f"/widget/{chatroom.widget_id}/messages?after={first}", headers={HEADER: secret})
    assert poll.status_code == 200
    html = poll.get_data(as_text=True)
    assert "Yes, we do!" in html
    assert "Hello there" not in html
    assert 'id="poller"' in html


def test_visitor_text_is_shown_as_text_never_html(app, chatroom, make_client, signed_in):
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id, '<img src=x onerror="alert(1)"><b>bold</b>')
    html = visitor.get(f"/widget/{chatroom.widget_id}/messages?after=0", headers={HEADER: secret}).get_data(
        as_text=True
    )
    assert "<img src=x" not in html
    assert "&lt;img src=x" in html
    conversation = _conversation(app, secret)
    inbox = signed_in(chatroom.rep_email).get(f"/inbox/{conversation.id}").get_data(as_text=True)
    assert "<b>bold</b>" not in inbox
    assert "&lt;b&gt;bold&lt;/b&gt;" in inbox


def test_messages_are_bounded_and_empty_ones_refused(app, chatroom, make_client):
    visitor = make_client(ACME_HOST)
    too_long = _say(visitor, chatroom.widget_id, "x" * 2001)
    assert too_long.status_code == 422
    assert 'data-field="body"' in too_long.get_data(as_text=True)
    assert _say(visitor, chatroom.widget_id, "   ").status_code == 422
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Conversation.id))) == 0
    assert _say(visitor, chatroom.widget_id, "x" * 2000).status_code == 200


def test_another_tenants_secret_on_this_domain_is_a_404(app, chatroom, make_client):
    theirs = _start(make_client(GLOBEX_HOST), chatroom.other_widget_id)
    acme = make_client(ACME_HOST)
    assert (
        acme.get(f"/widget/{chatroom.widget_id}/messages?after=0", headers={HEADER: theirs}).status_code
        == 404
    )
    assert _say(acme, chatroom.widget_id, "hi", secret=theirs).status_code == 404
    assert (
        acme.post(
            f"/widget/{chatroom.widget_id}/email", data={"email": "a@b.example"}, headers={HEADER: theirs}
        ).status_code
        == 404
    )
    assert (
        acme.get(f"/widget/{chatroom.widget_id}/messages?after=0", headers={HEADER: "x" * 43}).status_code
        == 404
    )
    assert acme.get(f"/widget/{chatroom.widget_id}/messages?after=0").status_code == 404
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ChatMessage.id))) == 1


def test_a_visitor_may_send_a_few_messages_a_minute_per_conversation(
    app, chatroom, make_client, raise_limits
):
    raise_limits(RATELIMIT_CHAT_CONVERSATION="2 per minute", RATELIMIT_CHAT_IP="100 per minute")
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id)  # counted against the address: the secret is not known yet
    assert _say(visitor, chatroom.widget_id, "2", secret=secret).status_code == 200
    assert _say(visitor, chatroom.widget_id, "3", secret=secret).status_code == 200
    refused = _say(visitor, chatroom.widget_id, "4", secret=secret)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) >= 1
    # another conversation from the same address has its own allowance
    other = _start(visitor, chatroom.widget_id)
    assert _say(visitor, chatroom.widget_id, "b", secret=other).status_code == 200
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ChatMessage.id))) == 5


def test_a_visitor_may_send_a_few_messages_a_minute_per_address(app, chatroom, make_client, raise_limits):
    raise_limits(RATELIMIT_CHAT_CONVERSATION="100 per minute", RATELIMIT_CHAT_IP="3 per minute")
    visitor = make_client(ACME_HOST)
    secrets = [_start(visitor, chatroom.widget_id) for _ in range(3)]  # three new conversations
    assert _say(visitor, chatroom.widget_id, "again", secret=secrets[0]).status_code == 429
    assert _say(visitor, chatroom.widget_id, "new").status_code == 429
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(ChatMessage.id))) == 3


def test_the_visitor_is_asked_for_an_email_after_the_set_time_and_the_contact_is_linked(
    app, chatroom, make_client
):
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id)
    url = f"/widget/{chatroom.widget_id}/messages?after=0"
    assert 'id="email-ask"' not in visitor.get(url, headers={HEADER: secret}).get_data(as_text=True)
    with app.app_context():
        found = db.session.scalar(sa.select(Conversation))
        found.waiting_since = utcnow() - timedelta(seconds=61)
        db.session.commit()
    asked = visitor.get(url, headers={HEADER: secret}).get_data(as_text=True)
    assert 'id="email-ask"' in asked
    assert 'name="email"' in asked
    # once asked, the poller says so and the form is not sent again (it would wipe what is being typed)
    assert 'id="email-ask"' not in visitor.get(url + "&asked=1", headers={HEADER: secret}).get_data(
        as_text=True
    )
    bad = visitor.post(
        f"/widget/{chatroom.widget_id}/email", data={"email": "nope"}, headers={HEADER: secret}
    )
    assert bad.status_code == 422
    assert 'data-field="email"' in bad.get_data(as_text=True)
    given = visitor.post(
        f"/widget/{chatroom.widget_id}/email", data={"email": "Vera@Example.org"}, headers={HEADER: secret}
    )
    assert given.status_code == 200
    with app.app_context():
        contact = db.session.scalar(sa.select(Contact).where(Contact.email == "vera@example.org"))
        assert contact is not None
        assert contact.tenant_id == chatroom.tenant_id
        assert db.session.scalar(sa.select(Conversation)).contact_id == contact.id


def test_an_email_of_an_existing_contact_links_that_contact(app, chatroom, make_client):
    with app.app_context():
        existing = Contact(tenant_id=chatroom.tenant_id, email="known@example.org")
        db.session.add(existing)
        db.session.commit()
        existing_id = existing.id
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id)
    visitor.post(
        f"/widget/{chatroom.widget_id}/email", data={"email": "known@example.org"}, headers={HEADER: secret}
    )
    assert _conversation(app, secret).contact_id == existing_id
