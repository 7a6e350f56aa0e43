"""The chat on the app host: the widget's settings (admins) and the Inbox (reps and admins).

* ``GET|POST /settings/chat``: enable the widget, who answers, welcome message, colour, position, language,
  the page *Book a meeting* offers, when the visitor is asked for an email; the snippet to paste.
* ``GET /inbox`` (``?status=closed``, ``?mine=1``): the conversations with unread counts; htmx polls
  ``#inbox-list``.
* ``GET /inbox/<id>``: one conversation (opening it reads it), the reply box, *Insert meeting link*,
  assignment and close/reopen. ``GET /inbox/<id>/messages?after=<message id>`` is what its poller asks
  every ``CHAT_POLL_SECONDS``: the newer messages, appended out of band, and the next poller.
* ``POST /inbox/<id>/reply``, ``/meeting-link``, ``/assign``, ``/status``.

Every conversation is looked up with the user's tenant: another tenant's id is a 404. Every Inbox request
of a member who answers marks them online (``services.mark_seen``).
"""

from flask import Blueprint, abort, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from wtforms import SelectChoice

from app.chat import services
from app.chat.forms import AssignForm, MeetingLinkForm, ReplyForm, StatusForm, WidgetSettingsForm
from app.chat.links import message_view, snippet
from app.db import utcnow
from app.pages import services as pages
from app.tenants import services as tenants
from app.web.htmx import hx_redirect, is_fragment_request

bp = Blueprint("chat", __name__)


@bp.before_request
@login_required
def require_login():
    """Every route here needs a signed-in user; the tenant is always theirs."""
    services.mark_seen(current_user.tenant, current_user, utcnow())


def _tenant():
    return current_user.tenant


# --- Settings -----------------------------------------------------------------------------------------------


@bp.route("/settings/chat", methods=["GET", "POST"])
def settings():
    if not current_user.is_admin:
        abort(403)
    tenant = _tenant()
    current = services.get_settings(tenant)
    members = [m.user_id for m in services.list_members(tenant)]
    form = WidgetSettingsForm(
        obj=current,
        data=None
        if request.method == "POST"
        else {
            "members": members,
            "booking_page": str(current.booking_page_id or ""),
        },
    )
    form.set_choices(tenants.list_users(tenant), services.offered_pages(tenant), _("No booking button"))
    saved = False
    if form.validate_on_submit():
        data = services.WidgetSettings(
            enabled=form.enabled.data,
            welcome_message=form.welcome_message.data or "",
            color=form.color.data or None,
            position=form.position.data,
            language=form.language.data,
            booking_page_id=form.booking_page_id(),
            ask_email_after_seconds=form.ask_email_after_seconds.data,
            member_ids=tuple(form.members.data or ()),
        )
        try:
            services.update_settings(tenant, current_user, data)
        except services.ChatError as error:
            form[error.field].errors.append(error.message)
        else:
            saved = True
    status = 422 if form.errors else 200
    return render_template(
        "chat/settings.html",
        form=form,
        settings=current,
        saved=saved,
        snippets=snippet(current, tenant),
        color=services.widget_color(current),
    ), status


# --- The Inbox ----------------------------------------------------------------------------------------------


def _conversation_or_404(conversation_id: int):
    return services.get_conversation(_tenant(), conversation_id) or abort(404)


@bp.get("/inbox")
def inbox():
    status = "closed" if request.args.get("status") == "closed" else "open"
    mine = request.args.get("mine") == "1"
    tenant = _tenant()
    conversations = services.list_conversations(
        tenant, status=status, assignee=current_user if mine else None
    )
    context = dict(
        conversations=conversations,
        status=status,
        mine=mine,
        member=services.get_member(tenant, current_user),
        chat=services.find_settings(tenant),
        poll_seconds=current_app.config["CHAT_POLL_SECONDS"],
    )
    template = "chat/_inbox_list.html" if is_fragment_request() else "chat/inbox.html"
    return render_template(template, **context)


def _conversation_context(conversation, *, reply=None, link=None) -> dict:
    tenant = _tenant()
    rep_pages = services.pages_for_rep(tenant, current_user)
    default = pages.default_page(tenant, current_user)
    link = link or MeetingLinkForm(formdata=None)
    link.set_choices(rep_pages, default.id if default is not None else None)
    assign = AssignForm(formdata=None, data={"assignee": str(conversation.assignee_id or "")})
    assign.assignee.choices = [SelectChoice("", _("Nobody"))] + [
        SelectChoice(str(u.id), u.name) for u in tenants.list_users(tenant)
    ]
    messages = services.messages_after(conversation, 0)
    return dict(
        conversation=conversation,
        messages=[message_view(m, conversation) for m in messages],
        last_id=messages[-1].id if messages else 0,
        reply=reply or ReplyForm(formdata=None),
        link=link,
        assign=assign,
        status_form=StatusForm(formdata=None),
        poll_seconds=current_app.config["CHAT_POLL_SECONDS"],
        bookings=services.bookings_of(conversation),
    )


@bp.get("/inbox/<int:conversation_id>")
def conversation(conversation_id: int):
    found = _conversation_or_404(conversation_id)
    services.mark_read(found)
    return render_template("chat/conversation.html", **_conversation_context(found))


@bp.get("/inbox/<int:conversation_id>/messages")
def poll(conversation_id: int):
    found = _conversation_or_404(conversation_id)
    after = request.args.get("after", 0, type=int) or 0
    messages = services.messages_after(found, max(0, min(after, 2**31 - 1)))
    if messages:
        services.mark_read(found)
    return render_template(
        "chat/_inbox_poll.html",
        conversation=found,
        messages=[message_view(m, found) for m in messages],
        last_id=messages[-1].id if messages else after,
        poll_seconds=current_app.config["CHAT_POLL_SECONDS"],
    )


def _back(found):
    return hx_redirect(url_for("chat.conversation", conversation_id=found.id))


@bp.post("/inbox/<int:conversation_id>/reply")
def reply(conversation_id: int):
    found = _conversation_or_404(conversation_id)
    form = ReplyForm()
    if form.validate():
        try:
            services.rep_says(_tenant(), found, current_user, form.body.data, utcnow())
        except services.ChatError as error:
            form.body.errors.append(error.message)
        else:
            if is_fragment_request():
                # The message list is the poller's: it fetches the new line at once (``chat-sent``).
                return (
                    render_template("chat/_reply.html", reply=ReplyForm(formdata=None), conversation=found),
                    200,
                    {"HX-Trigger": "chat-sent"},
                )
            return _back(found)
    if is_fragment_request():
        return render_template("chat/_reply.html", reply=form, conversation=found), 422
    return render_template("chat/conversation.html", **_conversation_context(found, reply=form)), 422


@bp.post("/inbox/<int:conversation_id>/meeting-link")
def meeting_link(conversation_id: int):
    found = _conversation_or_404(conversation_id)
    form = MeetingLinkForm()
    if form.validate():
        try:
            services.insert_meeting_link(_tenant(), found, current_user, form.page_id() or 0, utcnow())
        except services.ChatError as error:
            form.page.errors.append(error.message)
        else:
            return _back(found)
    return render_template("chat/conversation.html", **_conversation_context(found, link=form)), 422


@bp.post("/inbox/<int:conversation_id>/assign")
def assign(conversation_id: int):
    found = _conversation_or_404(conversation_id)
    form = AssignForm()
    form.assignee.choices = [SelectChoice("", "")]
    if form.validate():
        try:
            services.assign(_tenant(), found, form.assignee_id())
        except services.ChatError:
            abort(422, description=_("Choose someone who answers the chat."))
    return _back(found)


@bp.post("/inbox/<int:conversation_id>/status")
def status(conversation_id: int):
    found = _conversation_or_404(conversation_id)
    form = StatusForm()
    if not form.validate():
        abort(422, description=_("Choose open or closed."))
    services.set_status(found, form.status.data)
    return _back(found)
