"""The rep's side of scheduling pages: list, create, edit, preview, share, delete (P1-P4, D1, D3, D4).

App host only (no view here is ``@public``) and signed in. A rep sees and changes only their own pages and
bookings: another tenant's ids, and a colleague's, answer 404. Every form is a plain POST answered with a
303, or the form again with 422 and the error beside its field.
"""

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from markupsafe import escape

from app.db import utcnow
from app.domains.services import verified_domains
from app.extensions import db
from app.pages import links, services
from app.pages.forms import CancelBookingForm, PageForm, SwitchForm, UserSlugForm
from app.pages.models import Booking, SchedulingPage
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
    page = services.get_page(_tenant(), page_id)
    if page is None or page.owner_id != current_user.id:
        abort(404)
    return page


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
    ), status


@bp.get("")
def index():
    """The rep's pages, their personal link, the P4 switches and their upcoming bookings."""
    return _index()


@bp.post("/slug")
def change_slug():
    """P2: a new user slug for every page's link; the old one keeps redirecting."""
    form = UserSlugForm()
    if form.validate_on_submit():
        old = current_user.page_slug
        try:
            services.change_user_slug(current_user, form.page_slug.data)
        except services.PagesError:
            db.session.rollback()
            form.page_slug.errors.append(
                _("“%(slug)s” is already taken; choose another.", slug=form.page_slug.data)
            )
        else:
            db.session.commit()
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
    db.session.commit()
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
    db.session.commit()
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


def _render_form(form: PageForm, page: SchedulingPage | None, status: int, extra_rows: int = 3):
    form.add_empty_questions(extra_rows)
    return render_template("pages/form.html", form=form, page=page, weekdays=form.day_fields), status


def _explain(form: PageForm, error: services.PagesError) -> None:
    """Put a service refusal beside the field it names, worded for the rep."""
    if error.field == "slug":
        pages = services.list_pages(_tenant(), current_user)
        holder = next((p for p in pages if p.slug == form.slug.data), None)
        if holder is not None:
            message = _(
                "Your page “%(title)s” already uses this link (%(path)s); choose another.",
                title=holder.title,
                path=services.page_path(holder),
            )
        else:
            message = _("This link is not available; choose another.")
        form.slug.errors = [*form.slug.errors, message]
    elif error.field == "domain_id":
        form.domain_id.errors = [_("Choose the app's address or one of your company's verified domains.")]
    elif error.field == "redirect_url":
        form.redirect_url.errors = [_("Use a web address starting with http:// or https://.")]
    elif error.field == "time_zone":
        form.time_zone.errors = [_("Choose a time zone from the list, such as Europe/Warsaw.")]
    else:
        form.weekly_errors.append(_("These hours cannot be used: %(detail)s", detail=error.message))


@bp.route("/new", methods=["GET", "POST"])
def new_page():
    if request.method == "GET":
        form = _page_form(submitted=False)
        form.time_zone.data = current_user.time_zone
        return _render_form(form, None, 200)
    form = _page_form(submitted=True)
    if ADD_ROWS in request.form:
        return _render_form(form, None, 200, extra_rows=EXTRA_ROWS_ON_ASK)
    if form.validate():
        try:
            page = services.create_page(_tenant(), current_user, form.settings([]))
        except services.PagesError as error:
            db.session.rollback()
            _explain(form, error)
        else:
            db.session.commit()
            flash(_("Page “%(title)s” created.", title=page.title), "success")
            return redirect(url_for("pages.share", page_id=page.id), 303)
    return _render_form(form, None, 422)


@bp.route("/<int:page_id>/edit", methods=["GET", "POST"])
def edit_page(page_id: int):
    page = _page_or_404(page_id)
    if request.method == "GET":
        form = _page_form(submitted=False)
        form.fill_from(page)
        return _render_form(form, page, 200)
    form = _page_form(submitted=True)
    if ADD_ROWS in request.form:
        return _render_form(form, page, 200, extra_rows=EXTRA_ROWS_ON_ASK)
    if form.validate():
        try:
            services.update_page(_tenant(), page, form.settings(list(page.questions)))
        except services.PagesError as error:
            db.session.rollback()
            _explain(form, error)
        else:
            db.session.commit()
            flash(_("Page “%(title)s” saved.", title=page.title), "success")
            return redirect(url_for("pages.share", page_id=page.id), 303)
    return _render_form(form, page, 422)


@bp.get("/<int:page_id>")
def share(page_id: int):
    """The page's share link, preview and embed code, on its current host."""
    page = _page_or_404(page_id)
    return render_template("pages/share.html", page=page, link=links.page_url(page), embed=embed_code(page))


@bp.post("/<int:page_id>/default")
def make_default(page_id: int):
    """P3: the page used when a meeting link goes into an email; served at /meetings/<user-slug>."""
    page = _page_or_404(page_id)
    services.set_default_page(_tenant(), current_user, page)
    db.session.commit()
    flash(_("“%(title)s” is now your default page.", title=page.title), "success")
    return redirect(url_for("pages.index"), 303)


@bp.route("/<int:page_id>/delete", methods=["GET", "POST"])
def delete_page(page_id: int):
    """GET asks to confirm (no JavaScript needed); POST deletes. Bookings made on it stay."""
    page = _page_or_404(page_id)
    form = CancelBookingForm()  # only its CSRF token is used
    if form.is_submitted():
        if not form.validate():
            return render_template("pages/delete.html", page=page, form=form), 422
        title = page.title
        services.delete_page(_tenant(), page)
        db.session.commit()
        flash(_("Page “%(title)s” deleted. Meetings booked on it stay.", title=title), "success")
        return redirect(url_for("pages.index"), 303)
    return render_template("pages/delete.html", page=page, form=form)


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
            db.session.commit()
            flash(_("Meeting with %(name)s cancelled.", name=booking.visitor_name), "success")
        return redirect(url_for("pages.index"), 303)
    return render_template("pages/cancel_booking.html", booking=booking, form=form)
