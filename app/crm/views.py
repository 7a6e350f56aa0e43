"""The CRM on the app host: contacts, the contact record, meetings logged on it, tasks."""

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.chat import services as chat
from app.crm import services
from app.crm.forms import ContactForm, ContactSearchForm, MeetingForm, TaskForm
from app.emails import services as emails
from app.web.htmx import hx_redirect, is_fragment_request, render_page_or_fragment

bp = Blueprint("crm", __name__, url_prefix="/crm")


@bp.before_request
@login_required
def require_login():
    """Every CRM route needs a signed-in user; the tenant is always theirs."""


def _tenant():
    return current_user.tenant


@bp.get("/contacts")
def contacts():
    """The contact list; an htmx search swaps only the list."""
    search = ContactSearchForm(request.args)
    if not search.validate():
        return render_page_or_fragment(
            "crm/contacts.html", "crm/_contact_list.html", result=None, query="", search=search
        ), 422
    query = search.q.data or ""
    page = request.args.get("page", 1, type=int) or 1  # a pager link's number; the service clamps it
    result = services.list_contacts(_tenant(), query, page)
    return render_page_or_fragment(
        "crm/contacts.html", "crm/_contact_list.html", result=result, query=query, search=search
    )


@bp.route("/contacts/new", methods=["GET", "POST"])
def new_contact():
    form = ContactForm()
    if form.validate_on_submit():
        try:
            contact = services.create_contact(_tenant(), form.data_for_service())
        except services.DuplicateEmail as error:
            _explain_duplicate(form, error)
        else:
            flash(_("Contact %(name)s created.", name=contact.display_name), "success")
            return hx_redirect(url_for("crm.contact", contact_id=contact.id))
    return render_page_or_fragment(
        "crm/contact_form.html", "crm/_contact_form.html", form=form, contact=None
    ), 422 if form.errors else 200


def _explain_duplicate(form: ContactForm, error: services.DuplicateEmail) -> None:
    form.email.errors.append(_("A contact with this email already exists."))
    form.duplicate = error.existing


@bp.get("/contacts/<int:contact_id>")
def contact(contact_id: int):
    """The contact record: details, meetings and tasks, with forms to log a meeting and add a task."""
    contact = services.get_contact(_tenant(), contact_id) or abort(404)
    return _render_record(contact)


def _render_record(contact, meeting_form=None, task_form=None, status=200):
    tz = current_user.time_zone
    return render_template(
        "crm/contact.html",
        contact=contact,
        meetings=services.list_meetings_for_contact(_tenant(), contact),
        tasks=services.list_tasks_for_contact(_tenant(), contact),
        activity=emails.timeline(_tenant(), contact),
        conversations=chat.conversations_of_contact(_tenant(), contact),
        meeting_form=meeting_form or MeetingForm(formdata=None, time_zone=tz),
        task_form=task_form or TaskForm(formdata=None, time_zone=tz),
    ), status


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
def edit_contact(contact_id: int):
    contact = services.get_contact(_tenant(), contact_id) or abort(404)
    form = ContactForm(obj=contact)
    if form.validate_on_submit():
        try:
            services.update_contact(_tenant(), contact, form.data_for_service())
        except services.DuplicateEmail as error:
            _explain_duplicate(form, error)
        else:
            flash(_("Contact saved."), "success")
            return hx_redirect(url_for("crm.contact", contact_id=contact.id))
    return render_page_or_fragment(
        "crm/contact_form.html", "crm/_contact_form.html", form=form, contact=contact
    ), 422 if form.errors else 200


@bp.post("/contacts/<int:contact_id>/meetings")
def log_meeting(contact_id: int):
    """Log a meeting on the record; answers the record's meetings section."""
    contact = services.get_contact(_tenant(), contact_id) or abort(404)
    form = MeetingForm(time_zone=current_user.time_zone)
    if form.validate_on_submit():
        services.log_meeting(
            _tenant(),
            current_user,
            contact,
            title=form.title.data,
            start_at=form.start_at,
            end_at=form.end_at,
            notes=form.notes.data or "",
        )
        form = MeetingForm(formdata=None, time_zone=current_user.time_zone)
        status = 200
    else:
        status = 422
    if not is_fragment_request():
        if status == 200:
            return redirect(url_for("crm.contact", contact_id=contact.id), 303)
        return _render_record(contact, meeting_form=form, status=422)
    meetings = services.list_meetings_for_contact(_tenant(), contact)
    return render_template(
        "crm/_meetings.html", contact=contact, meetings=meetings, meeting_form=form
    ), status


@bp.post("/contacts/<int:contact_id>/tasks")
def create_task(contact_id: int):
    """Add a task on the record; answers the record's tasks section."""
    contact = services.get_contact(_tenant(), contact_id) or abort(404)
    form = TaskForm(time_zone=current_user.time_zone)
    if form.validate_on_submit():
        services.create_task(
            _tenant(), current_user, title=form.title.data, contact=contact, due_at=form.due_at
        )
        form = TaskForm(formdata=None, time_zone=current_user.time_zone)
        status = 200
    else:
        status = 422
    if not is_fragment_request():
        if status == 200:
            return redirect(url_for("crm.contact", contact_id=contact.id), 303)
        return _render_record(contact, task_form=form, status=422)
    tasks = services.list_tasks_for_contact(_tenant(), contact)
    return render_template("crm/_tasks.html", contact=contact, tasks=tasks, task_form=form), status


@bp.get("/meetings/<int:meeting_id>")
def meeting(meeting_id: int):
    meeting = services.get_meeting(_tenant(), meeting_id) or abort(404)
    return render_template("crm/meeting.html", meeting=meeting)


@bp.post("/meetings/<int:meeting_id>/cancel")
def cancel_meeting(meeting_id: int):
    meeting = services.get_meeting(_tenant(), meeting_id) or abort(404)
    services.cancel_meeting(_tenant(), meeting)
    flash(_("Meeting cancelled."), "success")
    return hx_redirect(url_for("crm.meeting", meeting_id=meeting.id))


@bp.get("/tasks")
def tasks():
    """The signed-in user's open tasks, soonest due first."""
    return render_template("crm/tasks.html", tasks=services.list_open_tasks(_tenant(), current_user))


@bp.post("/tasks/<int:task_id>/complete")
def complete_task(task_id: int):
    task = services.get_task(_tenant(), task_id) or abort(404)
    services.complete_task(_tenant(), task)
    return _task_answer(task)


@bp.post("/tasks/<int:task_id>/reopen")
def reopen_task(task_id: int):
    task = services.get_task(_tenant(), task_id) or abort(404)
    services.reopen_task(_tenant(), task)
    return _task_answer(task)


def _task_answer(task):
    if is_fragment_request():
        return render_template("crm/_task_row.html", task=task)
    back = url_for("crm.contact", contact_id=task.contact_id) if task.contact_id else url_for("crm.tasks")
    return redirect(back, 303)
