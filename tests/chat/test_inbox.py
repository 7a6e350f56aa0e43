"""The rep's side: the widget settings, the Inbox, replies, assignment, close/reopen, meeting links (P5), the
booking made through one, and that none of it reaches another tenant."""

import re

import sqlalchemy as sa

from app.chat import services as chat
from app.chat.models import ChatMember, ChatMessage, ChatSettings, Conversation
from app.extensions import db
from app.pages.models import Booking, SchedulingPage
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, hidden

HEADER = "X-Chat-Secret"
MONDAY_10 = "2030-01-07T10:00:00+01:00"


def _start(client, widget_id, body="Hello there") -> str:
    response = client.post(f"/widget/{widget_id}/messages", data={"body": body})
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.headers[HEADER]


def _conversation_id(app, secret) -> int:
    with app.app_context():
        return db.session.scalar(
            sa.select(Conversation.id).where(Conversation.secret_hash == chat.hash_secret(secret))
        )


def _settings_form(**changes) -> dict:
    return {
        "enabled": "y",
        "welcome_message": "Hi! Ask us anything.",
        "color": "#0f766e",
        "position": "left",
        "language": "pl",
        "booking_page": "",
        "ask_email_after_seconds": "90",
        **changes,
    }


# --- Settings -----------------------------------------------------------------------------------------------


def test_an_admin_sets_up_the_widget_and_gets_the_snippet(app, chatroom, signed_in, make_client):
    admin = signed_in(chatroom.admin_email)
    page = admin.get("/settings/chat").get_data(as_text=True)
    assert f"/widget.js?id={chatroom.widget_id}" in page
    assert f"http://{ACME_HOST}/widget.js" in page
    saved = admin.post_form(
        "/settings/chat",
        {**_settings_form(booking_page=str(chatroom.demo_id)), "members": [str(chatroom.rep_id)]},
    )
    assert saved.status_code == 422  # the demo page is not the rep's default page nor a team page
    assert 'data-field="booking_page"' in saved.get_data(as_text=True)
    saved = admin.post_form(
        "/settings/chat",
        {**_settings_form(booking_page=str(chatroom.intro_id)), "members": [str(chatroom.rep_id)]},
    )
    assert saved.status_code == 200, saved.get_data(as_text=True)
    with app.app_context():
        settings = db.session.scalar(
            sa.select(ChatSettings).where(ChatSettings.tenant_id == chatroom.tenant_id)
        )
        assert (settings.color, settings.position, settings.language) == ("#0f766e", "left", "pl")
        assert settings.ask_email_after_seconds == 90
    script = make_client(ACME_HOST).get("/widget.js").get_data(as_text=True)
    assert '"#0f766e"' in script
    assert '"position": "left"' in script
    assert "Czat z nami" in script
    panel = make_client(ACME_HOST).get(f"/widget/{chatroom.widget_id}/panel").get_data(as_text=True)
    assert 'lang="pl"' in panel
    assert "Umów spotkanie" in panel or "Book a meeting" not in panel


def test_bad_settings_are_refused_naming_the_field(chatroom, signed_in):
    admin = signed_in(chatroom.admin_email)
    for field, value in (("color", "red"), ("ask_email_after_seconds", "5"), ("welcome_message", "x" * 501)):
        response = admin.post_form("/settings/chat", _settings_form(**{field: value}))
        assert response.status_code == 422
        assert f'data-field="{field}"' in response.get_data(as_text=True)
    other_tenants_user = admin.post_form("/settings/chat", {**_settings_form(), "members": ["999999"]})
    assert other_tenants_user.status_code == 422


def test_only_admins_change_the_widget(chatroom, signed_in):
    rep = signed_in(chatroom.rep_email)
    assert rep.get("/settings/chat").status_code == 403
    assert rep.post_form("/settings/chat", _settings_form()).status_code == 403


def test_members_of_another_tenant_cannot_be_made_to_answer(app, chatroom, signed_in):
    with app.app_context():
        gus = db.session.scalar(
            sa.text("SELECT id FROM users WHERE email = :e"), {"e": chatroom.other_rep_email}
        )
    admin = signed_in(chatroom.admin_email)
    assert admin.post_form("/settings/chat", {**_settings_form(), "members": [str(gus)]}).status_code == 422
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count(ChatMember.id)).where(ChatMember.user_id == gus)) == 1
        )


# --- The Inbox ----------------------------------------------------------------------------------------------


def test_a_visitors_message_appears_in_the_inbox_with_its_unread_count(app, chatroom, signed_in, make_client):
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id, "Do you ship to Poland?")
    visitor.post(
        f"/widget/{chatroom.widget_id}/messages", data={"body": "And to Czechia?"}, headers={HEADER: secret}
    )
    conversation_id = _conversation_id(app, secret)
    rep = signed_in(chatroom.rep_email)
    inbox = rep.get("/inbox", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert f'id="conversation-{conversation_id}"' in inbox
    assert re.search(r'class="count"[^>]*>2<', inbox)
    opened = rep.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "Do you ship to Poland?" in opened
    assert "And to Czechia?" in opened
    assert 'class="count"' not in rep.get("/inbox").get_data(as_text=True)  # opening it read it


def test_a_rep_answers_assigns_closes_and_reopens(app, chatroom, signed_in, make_client):
    secret = _start(make_client(ACME_HOST), chatroom.widget_id)
    conversation_id = _conversation_id(app, secret)
    rep = signed_in(chatroom.rep_email)
    answered = rep.post_form(f"/inbox/{conversation_id}/reply", {"body": "Hi, Rita here."}, htmx=True)
    assert answered.status_code == 200
    assert answered.headers["HX-Trigger"] == "chat-sent"
    poll = rep.get(f"/inbox/{conversation_id}/messages?after=0").get_data(as_text=True)
    assert "Hi, Rita here." in poll
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        assert conversation.assignee_id == chatroom.rep_id  # the first to answer takes it
        assert conversation.waiting_since is None
    assert rep.post_form(f"/inbox/{conversation_id}/assign", {"assignee": ""}).status_code == 303
    assert rep.post_form(f"/inbox/{conversation_id}/status", {"status": "closed"}).status_code == 303
    assert f"conversation-{conversation_id}" not in rep.get("/inbox").get_data(as_text=True)
    assert f"conversation-{conversation_id}" in rep.get("/inbox?status=closed").get_data(as_text=True)
    closed = rep.post_form(f"/inbox/{conversation_id}/reply", {"body": "Still there?"})
    assert closed.status_code == 422
    assert rep.post_form(f"/inbox/{conversation_id}/status", {"status": "open"}).status_code == 303
    with app.app_context():
        conversation = db.session.get(Conversation, conversation_id)
        assert (conversation.status, conversation.assignee_id) == ("open", None)


def test_another_tenants_conversation_is_a_404_on_every_inbox_route(app, chatroom, signed_in, make_client):
    theirs = _conversation_id(app, _start(make_client(GLOBEX_HOST), chatroom.other_widget_id))
    rep = signed_in(chatroom.rep_email)
    assert f"conversation-{theirs}" not in rep.get("/inbox").get_data(as_text=True)
    assert rep.get(f"/inbox/{theirs}").status_code == 404
    assert rep.get(f"/inbox/{theirs}/messages?after=0").status_code == 404
    for action, data in (
        ("reply", {"body": "hi"}),
        ("meeting-link", {"page": str(chatroom.intro_id)}),
        ("assign", {"assignee": str(chatroom.rep_id)}),
        ("status", {"status": "closed"}),
    ):
        assert rep.post_form(f"/inbox/{theirs}/{action}", data).status_code == 404, action
    with app.app_context():
        conversation = db.session.get(Conversation, theirs)
        assert (conversation.status, conversation.assignee_id) == ("open", None)
        assert db.session.scalar(sa.select(sa.func.count(ChatMessage.id))) == 1


def test_the_inbox_needs_a_signed_in_user(chatroom, make_client):
    assert make_client().get("/inbox").status_code == 302
    assert make_client(ACME_HOST).get("/inbox").status_code == 404  # app routes are not on tenant domains


# --- Meeting links (P5) -------------------------------------------------------------------------------------


def test_insert_meeting_link_offers_the_reps_pages_with_the_default_preselected(
    app, chatroom, signed_in, make_client
):
    secret = _start(make_client(ACME_HOST), chatroom.widget_id)
    conversation_id = _conversation_id(app, secret)
    page = signed_in(chatroom.rep_email).get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert re.search(
        rf'<option selected value="{chatroom.intro_id}">|<option value="{chatroom.intro_id}" selected', page
    )
    assert f'value="{chatroom.demo_id}"' in page
    assert f'value="{chatroom.other_page_id}"' not in page


def test_a_meeting_link_shows_as_a_card_built_from_the_pages_current_domain(
    app, chatroom, signed_in, make_client
):
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id)
    conversation_id = _conversation_id(app, secret)
    rep = signed_in(chatroom.rep_email)
    assert (
        rep.post_form(
            f"/inbox/{conversation_id}/meeting-link", {"page": str(chatroom.other_page_id)}
        ).status_code
        == 422
    )
    assert (
        rep.post_form(f"/inbox/{conversation_id}/meeting-link", {"page": str(chatroom.demo_id)}).status_code
        == 303
    )
    with app.app_context():
        ref = db.session.get(Conversation, conversation_id).ref
    card = visitor.get(f"/widget/{chatroom.widget_id}/messages?after=0", headers={HEADER: secret}).get_data(
        as_text=True
    )
    assert "Product demo" in card
    assert "30 min" in card
    assert f'href="http://{ACME_HOST}/meetings/{chatroom.rep_slug}/demo?ref={ref}"' in card
    # the page moves to the app host: the same message now links there (D3)
    with app.app_context():
        db.session.get(SchedulingPage, chatroom.demo_id).domain_id = None
        db.session.commit()
    moved = visitor.get(f"/widget/{chatroom.widget_id}/messages?after=0", headers={HEADER: secret}).get_data(
        as_text=True
    )
    assert f'href="http://app.termin.test/meetings/{chatroom.rep_slug}/demo?ref={ref}"' in moved
    assert f"{ACME_HOST}/meetings/{chatroom.rep_slug}/demo" not in moved


def test_a_booking_through_the_chats_link_shows_in_the_conversation_and_on_the_contact(
    app, chatroom, signed_in, make_client
):
    visitor = make_client(ACME_HOST)
    secret = _start(visitor, chatroom.widget_id)
    conversation_id = _conversation_id(app, secret)
    rep = signed_in(chatroom.rep_email)
    rep.post_form(f"/inbox/{conversation_id}/meeting-link", {"page": str(chatroom.demo_id)})
    with app.app_context():
        ref = db.session.get(Conversation, conversation_id).ref
    path = f"/meetings/{chatroom.rep_slug}/demo"
    form = visitor.get(path, query_string={"ref": ref, "start": MONDAY_10, "tz": "Europe/Warsaw"})
    assert hidden(form, "ref") == ref
    fields = {n: hidden(form, n) for n in ("csrf_token", "start", "duration", "tz", "idempotency_key", "ref")}
    booked = visitor.post(
        f"{path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )
    assert booked.status_code == 303, booked.get_data(as_text=True)
    with app.app_context():
        booking = db.session.scalar(sa.select(Booking))
        conversation = db.session.get(Conversation, conversation_id)
        assert conversation.contact_id == booking.contact_id
        assert [m.booking_id for m in conversation.messages if m.kind == "booking"] == [booking.id]
    chat_view = visitor.get(f"/widget/{chatroom.widget_id}/messages?after=0", headers={HEADER: secret})
    assert "Meeting booked:" in chat_view.get_data(as_text=True)
    inbox = rep.get(f"/inbox/{conversation_id}").get_data(as_text=True)
    assert "Meeting booked:" in inbox
    assert f"/crm/contacts/{booking.contact_id}" in inbox
    record = rep.get(f"/crm/contacts/{booking.contact_id}").get_data(as_text=True)
    assert f'data-conversation-id="{conversation_id}"' in record
    assert "Meeting booked:" in record
    assert "Product demo" in record  # the meeting the booking logged on the contact


def test_a_ref_of_another_tenants_conversation_links_nothing(app, chatroom, make_client):
    theirs = _start(make_client(GLOBEX_HOST), chatroom.other_widget_id)
    with app.app_context():
        ref = db.session.scalar(
            sa.select(Conversation.ref).where(Conversation.secret_hash == chat.hash_secret(theirs))
        )
    visitor = make_client(ACME_HOST)
    path = f"/meetings/{chatroom.rep_slug}/demo"
    form = visitor.get(path, query_string={"ref": ref, "start": MONDAY_10, "tz": "Europe/Warsaw"})
    fields = {n: hidden(form, n) for n in ("csrf_token", "start", "duration", "tz", "idempotency_key", "ref")}
    booked = visitor.post(
        f"{path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )
    assert booked.status_code == 303
    with app.app_context():
        assert (
            db.session.scalar(sa.select(sa.func.count(ChatMessage.id)).where(ChatMessage.kind == "booking"))
            == 0
        )
