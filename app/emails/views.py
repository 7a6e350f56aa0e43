"""Sales email templates (``/emails/templates``) and the composer on a contact's record (app host only).

Routes, all signed in, all of the user's own tenant:

* ``GET /emails/templates``: the team's templates and the user's own; ``?q=`` searches (htmx swaps only
  ``#template-list``).
* ``GET|POST /emails/templates/new`` (``?team=1``: a team template, admins only), ``GET|POST
  /emails/templates/<id>/edit``, ``POST .../duplicate``, ``GET|POST .../delete`` (GET confirms). A rep
  may use and duplicate a team template but not change it (403); a colleague's personal template, or another
  tenant's, is a 404.
* ``GET|POST /crm/contacts/<id>/email``: the composer (htmx swaps ``#composer``). GET ``?template=<id>``
  starts from a template, ``?shortcut=meeting_link`` from the short *Send meeting link* text. POST
  ``action``: ``insert`` (append the chosen meeting link), ``load`` (take the chosen template's subject and
  text), ``preview`` (the exact HTML and text that will go), ``send``.

Every editor button posts the form (no script needed); nothing is saved until *Save* or *Send*. The
request boundary commits (app/transaction.py); a refusal is raised before anything is written.
"""

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.crm import services as crm
from app.db import utcnow
from app.emails import services
from app.emails.forms import ComposeForm, TemplateForm
from app.web.htmx import hx_redirect, render_page_or_fragment

bp = Blueprint("emails", __name__)


@bp.before_request
@login_required
def require_login():
    """Every route here needs a signed-in user; the tenant is always theirs."""


def _tenant():
    return current_user.tenant


def _template_or_404(template_id: int):
    return services.get_template(_tenant(), current_user, template_id) or abort(404)


def _editable_or_403(template_id: int):
    template = _template_or_404(template_id)
    if not services.can_edit(current_user, template):
        abort(403)
    return template


def _with_links(form) -> None:
    choices = services.link_choices(_tenant(), current_user)
    labels = {"default": _("My default page"), "own": _("My pages"), "team": _("Team pages I am in")}
    form.set_link_choices(choices.own, choices.team, labels)


def _put_error(form, error: services.EmailsError) -> None:
    if error.code == "email_no_address":
        return  # the composer says so above the form, in place of the address
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, error.message]
    else:
        form.form_errors.append(error.message)


# --- Templates ----------------------------------------------------------------------------------------------


@bp.get("/emails/templates")
def templates():
    """The templates the user can use; an htmx search swaps only the list."""
    # NUL cannot be in PostgreSQL text, nor in anything a template holds; the other controls match nothing.
    query = request.args.get("q", "").replace("\x00", "").strip()[:200]
    found = services.list_templates(_tenant(), current_user, query)
    return render_page_or_fragment(
        "emails/templates.html",
        "emails/_template_list.html",
        templates=found,
        query=query,
        can_edit=services.can_edit,
    )


def _editor(form, template=None, team=False, status=200):
    return render_template("emails/template_form.html", form=form, template=template, team=team), status


def _data(form) -> services.TemplateData:
    return services.TemplateData(form.name.data or "", form.subject.data or "", form.body.data or "")


@bp.route("/emails/templates/new", methods=["GET", "POST"])
def new_template():
    team = request.values.get("team") == "1"
    if team and not current_user.is_admin:
        abort(403)
    form = TemplateForm()
    _with_links(form)
    if request.method == "POST" and request.form.get("action") == "insert":
        form.body.data = services.with_link(form.body.data or "", form.link_page_id())
        return _editor(form, team=team)
    if form.validate_on_submit():
        try:
            template = services.create_template(_tenant(), current_user, _data(form), team=team)
        except services.TemplateLocked:
            abort(403)
        except services.EmailsError as error:
            _put_error(form, error)
        else:
            flash(_("Template “%(name)s” saved.", name=template.name), "success")
            return hx_redirect(url_for("emails.templates"))
    return _editor(form, team=team, status=422 if form.errors or form.form_errors else 200)


@bp.route("/emails/templates/<int:template_id>/edit", methods=["GET", "POST"])
def edit_template(template_id: int):
    template = _editable_or_403(template_id)
    form = TemplateForm(obj=template)
    _with_links(form)
    if request.method == "POST" and request.form.get("action") == "insert":
        form.body.data = services.with_link(form.body.data or "", form.link_page_id())
        return _editor(form, template, template.is_team)
    if form.validate_on_submit():
        try:
            services.update_template(_tenant(), current_user, template, _data(form))
        except services.TemplateLocked:
            abort(403)
        except services.EmailsError as error:
            _put_error(form, error)
        else:
            flash(_("Template “%(name)s” saved.", name=template.name), "success")
            return hx_redirect(url_for("emails.templates"))
    return _editor(form, template, template.is_team, 422 if form.errors or form.form_errors else 200)


@bp.post("/emails/templates/<int:template_id>/duplicate")
def duplicate_template(template_id: int):
    """Copy a template the user can see: a rep's copy of a team template is their own, to change freely."""
    template = _template_or_404(template_id)
    copy = services.duplicate_template(
        _tenant(), current_user, template, name=_("Copy of %(name)s", name=template.name)
    )
    flash(_("Template copied. This copy is yours to change."), "success")
    return hx_redirect(url_for("emails.edit_template", template_id=copy.id))


@bp.route("/emails/templates/<int:template_id>/delete", methods=["GET", "POST"])
def delete_template(template_id: int):
    template = _editable_or_403(template_id)
    if request.method == "GET":
        return render_template("emails/delete.html", template=template)
    name = template.name
    services.delete_template(_tenant(), current_user, template)
    flash(_("Template “%(name)s” deleted.", name=name), "success")
    return hx_redirect(url_for("emails.templates"))


# --- The composer -------------------------------------------------------------------------------------------


def _composer(contact, form, status=200, preview=None):
    context = dict(contact=contact, form=form, preview=preview)
    return render_page_or_fragment("emails/compose.html", "emails/_composer.html", **context), status


def _compose_form(**data) -> ComposeForm:
    form = ComposeForm(**data)
    _with_links(form)
    form.template.choices = [("", _("No template: write freely"))] + [
        (str(t.id), t.name) for t in services.list_templates(_tenant(), current_user)
    ]
    if not services.REF_PATTERN.match(form.ref.data or ""):
        form.ref.data = services.new_ref()
    return form


def _chosen_template(form):
    value = form.template.data or ""
    return services.get_template(_tenant(), current_user, int(value)) if _is_id(value) else None


def _is_id(value: str) -> bool:
    """Digits that fit an integer column: a longer number names no row (and would overflow the query)."""
    return value.isascii() and value.isdigit() and len(value) <= 9


def _shortcut_texts() -> tuple[str, str]:
    """The *Send meeting link* email: copy in templates, in the rep's language, tokens filled later."""
    subject = render_template("emails/shortcut_subject.txt").strip()
    return subject, render_template("emails/shortcut_body.txt").strip()


@bp.route("/crm/contacts/<int:contact_id>/email", methods=["GET", "POST"])
def compose(contact_id: int):
    """Write, preview and send an email to the contact (see the module docstring for the actions)."""
    contact = crm.get_contact(_tenant(), contact_id) or abort(404)
    if request.method == "GET":
        data = {}
        if request.args.get("shortcut") == "meeting_link":
            data["subject"], data["body"] = _shortcut_texts()
        elif _is_id(request.args.get("template", "")):
            template = _template_or_404(int(request.args["template"]))
            data = {"template": str(template.id), "subject": template.subject, "body": template.body}
        return _composer(contact, _compose_form(formdata=None, **data))
    form = _compose_form()
    action = request.form.get("action", "preview")
    if action == "insert":
        form.body.data = services.with_link(form.body.data or "", form.link_page_id())
        return _composer(contact, form)
    if action == "load":
        template = _chosen_template(form)
        if template is not None:
            form.subject.data, form.body.data = template.subject, template.body
        return _composer(contact, form)
    if not form.validate_on_submit():
        return _composer(contact, form, 422)
    texts = dict(subject=form.subject.data, body=form.body.data)
    if action != "send":
        try:
            preview = services.compose(_tenant(), current_user, contact, ref=form.ref.data, **texts)
        except services.EmailsError as error:
            _put_error(form, error)
            return _composer(contact, form, 422)
        return _composer(contact, form, preview=preview)
    try:
        sent = services.send(
            _tenant(),
            current_user,
            contact,
            ref=form.ref.data,
            template=_chosen_template(form),
            now=utcnow(),
            **texts,
        )
    except services.EmailsError as error:
        _put_error(form, error)
        # Past the limit the composer comes back with the text as typed and the time they may send again.
        return _composer(contact, form, 429 if isinstance(error, services.SendLimitReached) else 422)
    flash(
        _("Email “%(subject)s” is on its way to %(email)s.", subject=sent.subject, email=sent.to_email),
        "success",
    )
    # No "#activity": from the record itself, a link differing only in its fragment would not reload it.
    return hx_redirect(url_for("crm.contact", contact_id=contact.id))
