"""The rep's side of scheduling pages: list, create, edit, preview, share, delete (P1-P4, D1, D3, D4).

App host only (no view here is ``@public``) and signed in. A rep sees and changes only their own pages and
bookings: another tenant's ids, and a colleague's, answer 404. An admin also manages the pages of every user
of their own tenant (``/pages/team``; the page keeps its owner), by ``services.can_manage_page``; bookings
stay the rep's own. Every form is a plain POST answered with a 303, or the form again with 422 and the error
beside its field.
"""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import escape

from app.db import utcnow
from app.domains.services import verified_domains
from app.pages import links, paths, services
from app.pages.forms import CancelBookingForm, PageForm, RepLimitsForm, SwitchForm, UserSlugForm
from app.pages.models import Booking, SchedulingPage
from app.tenants import services as tenants
from app.tenants.models import User
from app.tenants.views import admin_required
from app.web.links import app_host_url

bp = Blueprint("pages", __name__, url_prefix="/pages")

EMBED_HEIGHT = 720
# The "More question rows" button: the form comes back as typed, unsaved, with more empty rows.
ADD_ROWS = "add_question_rows"
EXTRA_ROWS_ON_ASK = 6


@bp.before_request
@login_required
def require_login():
    """Every route here is the signed-in rep's own."""


def _tenant():
    return current_user.tenant


def _page_or_404(page_id: int) -> SchedulingPage:
    """A page of the tenant's that the signed-in user may manage (their own; any user's for an admin)."""
    page = services.get_page(_tenant(), page_id)
    if page is None or not services.can_manage_page(current_user, page):
        abort(404)
    return page


def _owner_or_404() -> User:
    """Whose new page this is: ``?owner=<user id>`` (an admin creating one for a rep), else the user's own."""
    raw = request.args.get("owner")
    if raw is None:
        return current_user._get_current_object()
    owner = (
        tenants.get_user(_tenant(), int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 10 else None
    )
    if owner is None or not services.can_manage_pages_of(current_user, owner):
        abort(404)
    return owner


def _is_own(owner: User) -> bool:
    return owner.id == current_user.id


def _back_to_list(owner: User):
    """After a change: the user's own list, or the team list when an admin changed a colleague's page."""
    return redirect(url_for("pages.index" if _is_own(owner) else "pages.team"), 303)


def _booking_or_404(booking_id: int) -> Booking:
    booking = services.get_booking(_tenant(), booking_id)
    if booking is None or booking.owner_id != current_user.id:
        abort(404)
    return booking


def embed_code(page: SchedulingPage) -> str:
    """The <iframe> a rep pastes into a website, built from the page's current link (D3)."""
    return (
        f'<iframe src="{escape(links.page_url(page))}" title="{escape(page.title)}" '
        f'width="100%" height="{EMBED_HEIGHT}" style="border:0" loading="lazy"></iframe>'
    )


def personal_link() -> str:
    """/meetings/<user-slug> on the host of the rep's default page (the app host without one)."""
    default = services.default_page(_tenant(), current_user)
    if default is not None:
        return links.page_url(default)
    return app_host_url(f"/meetings/{current_user.page_slug}")


# --- The list ---------------------------------------------------------------------------------------------


def _index(slug_form: UserSlugForm | None = None, status: int = 200):
    pages = services.list_pages(_tenant(), current_user)
    if slug_form is None:
        slug_form = UserSlugForm(formdata=None)
        slug_form.page_slug.data = current_user.page_slug
    return render_template(
        "pages/index.html",
        pages=pages,
        page_links={page.id: links.page_url(page) for page in pages},
        personal_link=personal_link(),
        slug_form=slug_form,
        switch_form=SwitchForm(formdata=None),
        bookings=services.list_upcoming_bookings(_tenant(), current_user, utcnow()),
        destination=services.bookings_destination(_tenant(), current_user),
    ), status


@bp.get("")
def index():
    """The rep's pages, their personal link, the P4 switches and their upcoming bookings."""
    return _index()


@bp.get("/team")
@admin_required
def team():
    """For an admin: every user of the tenant with their pages (share link, preview, edit); 403 for reps."""
    try:
        members = services.team_pages(_tenant(), current_user)
    except services.PagesError:
        abort(403)
    return render_template(
        "pages/team.html",
        members=members,
        page_links={page.id: links.page_url(page) for _user, pages in members for page in pages},
    )


@bp.route("/hours", methods=["GET", "POST"])
def rep_limits():
    """T1, T4: the rep's working hours, time off and daily maximum, for every page they are booked on."""
    form = RepLimitsForm()
    if form.validate_on_submit():
        try:
            services.set_rep_limits(current_user, form.limits())
        except services.PagesError as error:
            getattr(form, error.field, form.time_off).errors.append(error.message)
        else:
            flash(_("Your hours are saved; every page uses them."), "success")
            return redirect(url_for("pages.rep_limits"), 303)
    elif request.method == "GET":
        form.fill_from(current_user)
    return render_template("pages/hours.html", form=form), 422 if form.errors else 200


@bp.post("/slug")
def change_slug():
    """P2: a new user slug for every page's link; the old one keeps redirecting."""
    form = UserSlugForm()
    if form.validate_on_submit():
        old = current_user.page_slug
        try:
            services.change_user_slug(current_user, form.page_slug.data)
        except services.PagesError as error:
            form.page_slug.errors.append(error.message)
        else:
            if current_user.page_slug != old:
                flash(
                    _(
                        "Your link is now /meetings/%(new)s. Links with /meetings/%(old)s keep working: "
                        "they lead to the new one.",
                        new=current_user.page_slug,
                        old=old,
                    ),
                    "success",
                )
            return redirect(url_for("pages.index"), 303)
    return _index(slug_form=form, status=422)


@bp.post("/switch")
def switch():
    """P4: every page of the rep's off, or back on unchanged."""
    form = SwitchForm()
    if not form.validate_on_submit():
        return _index(status=422)
    disabled = form.disabled.data == "1"
    services.set_pages_disabled(current_user, disabled)
    if disabled:
        flash(_("Your scheduling pages are off. Visitors see that they are not available."), "success")
    else:
        flash(_("Your scheduling pages are on again, exactly as they were."), "success")
    return redirect(url_for("pages.index"), 303)


@bp.post("/company-switch")
@admin_required
def company_switch():
    """P4 for the whole tenant (admins only; a rep gets 403)."""
    form = SwitchForm()
    if not form.validate_on_submit():
        return _index(status=422)
    disabled = form.disabled.data == "1"
    try:
        services.set_tenant_pages_disabled(_tenant(), current_user, disabled)
    except services.PagesError:
        abort(403)
    if disabled:
        flash(_("Every scheduling page of the company is off."), "success")
    else:
        flash(_("The company's scheduling pages are on again, exactly as they were."), "success")
    return redirect(url_for("pages.index"), 303)


# --- One page ---------------------------------------------------------------------------------------------


def _page_form(*, submitted: bool) -> PageForm:
    """The editor form: from the request's data when ``submitted``, else empty (to fill)."""
    kwargs = {} if submitted else {"formdata": None}
    return PageForm(domains=verified_domains(_tenant()), app_host=current_app.config["APP_HOST"], **kwargs)


def _render_form(form: PageForm, page: SchedulingPage | None, owner: User, status: int, extra_rows: int = 3):
    form.add_empty_questions(extra_rows)
    action = (
        url_for("pages.edit_page", page_id=page.id)
        if page is not None
        else url_for("pages.new_page", **({} if _is_own(owner) else {"owner": owner.id}))
    )
    return render_template(
        "pages/form.html",
        form=form,
        page=page,
        owner=owner,
        own=_is_own(owner),
        action=action,
        weekdays=form.day_fields,
        destination=services.bookings_destination(_tenant(), owner),
    ), status


def _explain(form: PageForm, error: services.PagesError, owner: User) -> None:
    """Put a service refusal beside the field it names, worded for the rep (or the admin editing for them)."""
    if error.field == "slug":
        pages = services.list_pages(_tenant(), owner)
        holder = next((p for p in pages if p.slug == form.slug.data), None)
        if holder is not None and _is_own(owner):
            message = _(
                "Your page “%(title)s” already uses this link (%(path)s); choose another.",
                title=holder.title,
                path=paths.page_path(holder),
            )
        elif holder is not None:
            message = _(
                "%(name)s's page “%(title)s” already uses this link (%(path)s); choose another.",
                name=owner.name,
                title=holder.title,
                path=paths.page_path(holder),
            )
        else:
            message = _("This link is not available; choose another.")
        form.slug.errors = [*form.slug.errors, message]
    elif error.field in ("domain_id", "redirect_url"):
        getattr(form, error.field).errors = [error.message]
    else:
        form.weekly_errors.append(error.message)


@bp.route("/new", methods=["GET", "POST"])
def new_page():
    """A new page of the user's own, or (``?owner=<id>``, admins) of a user of the same tenant."""
    owner = _owner_or_404()
    if request.method == "GET":
        form = _page_form(submitted=False)
        form.time_zone.data = owner.time_zone
        return _render_form(form, None, owner, 200)
    form = _page_form(submitted=True)
    if ADD_ROWS in request.form:
        return _render_form(form, None, owner, 200, extra_rows=EXTRA_ROWS_ON_ASK)
    if form.validate():
        try:
            page = services.create_page(_tenant(), owner, form.settings([]))
        except services.PagesError as error:
            _explain(form, error, owner)
        else:
            if _is_own(owner):
                flash(_("Page “%(title)s” created.", title=page.title), "success")
                return redirect(url_for("pages.share", page_id=page.id), 303)
            flash(_("Page “%(title)s” created for %(name)s.", title=page.title, name=owner.name), "success")
            return _back_to_list(owner)
    return _render_form(form, None, owner, 422)


@bp.route("/<int:page_id>/edit", methods=["GET", "POST"])
def edit_page(page_id: int):
    page = _page_or_404(page_id)
    owner = page.owner
    if request.method == "GET":
        form = _page_form(submitted=False)
        form.fill_from(page)
        return _render_form(form, page, owner, 200)
    form = _page_form(submitted=True)
    if ADD_ROWS in request.form:
        return _render_form(form, page, owner, 200, extra_rows=EXTRA_ROWS_ON_ASK)
    if form.validate():
        try:
            services.update_page(_tenant(), page, form.settings(list(page.questions)))
        except services.PagesError as error:
            _explain(form, error, owner)
        else:
            if _is_own(owner):
                flash(_("Page “%(title)s” saved.", title=page.title), "success")
                return redirect(url_for("pages.share", page_id=page.id), 303)
            flash(_("%(name)s's page “%(title)s” saved.", name=owner.name, title=page.title), "success")
            return _back_to_list(owner)
    return _render_form(form, page, owner, 422)


@bp.get("/<int:page_id>")
def share(page_id: int):
    """The page's share link, preview and embed code, on its current host."""
    page = _page_or_404(page_id)
    return render_template(
        "pages/share.html",
        page=page,
        own=_is_own(page.owner),
        link=links.page_url(page),
        embed=embed_code(page),
    )


@bp.post("/<int:page_id>/default")
def make_default(page_id: int):
    """P3: the page used when a meeting link goes into an email; served at /meetings/<user-slug>."""
    page = _page_or_404(page_id)
    owner = page.owner
    services.set_default_page(_tenant(), owner, page)
    if _is_own(owner):
        flash(_("“%(title)s” is now your default page.", title=page.title), "success")
    else:
        flash(_("“%(title)s” is now %(name)s's default page.", title=page.title, name=owner.name), "success")
    return _back_to_list(owner)


@bp.route("/<int:page_id>/delete", methods=["GET", "POST"])
def delete_page(page_id: int):
    """GET asks to confirm (no JavaScript needed); POST deletes. Bookings made on it stay."""
    page = _page_or_404(page_id)
    owner, own = page.owner, _is_own(page.owner)
    form = CancelBookingForm()  # only its CSRF token is used
    if form.is_submitted():
        if not form.validate():
            return render_template("pages/delete.html", page=page, own=own, form=form), 422
        title = page.title
        services.delete_page(_tenant(), page)
        flash(_("Page “%(title)s” deleted. Meetings booked on it stay.", title=title), "success")
        return _back_to_list(owner)
    return render_template("pages/delete.html", page=page, own=own, form=form)


# --- Bookings ---------------------------------------------------------------------------------------------


@bp.route("/bookings/<int:booking_id>/cancel", methods=["GET", "POST"])
def cancel_booking(booking_id: int):
    """GET asks to confirm; POST cancels the booking, its meeting and event, and tells the visitor."""
    booking = _booking_or_404(booking_id)
    form = CancelBookingForm()
    if form.is_submitted():
        if not form.validate():
            return render_template("pages/cancel_booking.html", booking=booking, form=form), 422
        if booking.is_confirmed:
            services.cancel_booking(booking, reason=form.reason.data or "", by_visitor=False, now=utcnow())
            flash(_("Meeting with %(name)s cancelled.", name=booking.visitor_name), "success")
        return redirect(url_for("pages.index"), 303)
    return render_template("pages/cancel_booking.html", booking=booking, form=form)
