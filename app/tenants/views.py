"""Sign-up, sign-in, the team page (users, seats, invitations) and the user's own profile."""

from functools import wraps
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app.extensions import login_manager
from app.tenants import services
from app.tenants.forms import AcceptInvitationForm, InviteForm, LoginForm, ProfileForm, SeatForm, SignupForm
from app.web.htmx import hx_redirect, is_fragment_request, render_page_or_fragment

bp = Blueprint("tenants", __name__)


@login_manager.user_loader
def load_user(user_id: str):
    return services.get_user_for_session(user_id)


def admin_required(view):
    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not current_user.is_admin:
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _safe_next(target: str | None) -> str:
    """Only same-host relative paths survive as a post-login destination (no open redirect)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("crm.contacts")


@bp.route("/signup", methods=["GET", "POST"])
def signup():
    """Create a tenant and its first admin, then sign the admin in."""
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = services.create_tenant(
                company=form.company.data,
                name=form.name.data,
                email=form.email.data,
                password=form.password.data,
                time_zone=form.time_zone.data,
                locale=_request_locale(),
            )
        except services.EmailTaken:
            form.email.errors.append(_("An account with this email already exists. Sign in instead."))
        else:
            login_user(user)
            flash(_("Welcome to Termin. Add your first contact."), "success")
            return redirect(url_for("crm.contacts"), 303)
    return render_template("tenants/signup.html", form=form), 422 if form.errors else 200


def _request_locale() -> str:
    return request.accept_languages.best_match(current_app.config["LANGUAGES"]) or "en"


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("crm.contacts"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user, remember=form.remember.data)
            return redirect(_safe_next(request.args.get("next")), 303)
        form.password.errors.append(_("That email and password do not match an account."))
    return render_template("tenants/login.html", form=form), 422 if form.errors else 200


@bp.post("/logout")
@login_required
def logout():
    logout_user()
    return redirect(url_for("tenants.login"), 303)


@bp.get("/team")
@admin_required
def team():
    """Users of the tenant with their seats, pending invitations, and the invite form."""
    return _render_team(InviteForm())


def _render_team(
    invite_form: InviteForm,
    issued: services.IssuedInvitation | None = None,
    status: int = 200,
    seat_forms: dict[int, SeatForm] | None = None,
):
    tenant = current_user.tenant
    context = dict(
        users=services.list_users(tenant),
        invitations=services.list_pending_invitations(tenant),
        invite_form=invite_form,
        issued=issued,
        issued_link=_invitation_link(issued.token) if issued else None,
        seat_form=SeatForm,
        seat_forms=seat_forms or {},  # a user's row shows this form (with its errors) instead of a fresh one
    )
    return render_page_or_fragment("tenants/team.html", "tenants/_invitations.html", **context), status


def _invitation_link(token: str) -> str:
    return url_for("tenants.accept_invitation", token=token, _external=True)


@bp.post("/team/invitations")
@admin_required
def invite():
    form = InviteForm()
    if not form.validate_on_submit():
        return _render_team(form, status=422)
    try:
        issued = services.invite(
            current_user.tenant,
            current_user,
            email=form.email.data,
            role=form.role.data,
            seat=form.seat.data,
            days=current_app.config["INVITATION_DAYS"],
        )
    except services.EmailTaken:
        form.email.errors.append(_("This email already has a Termin account."))
        return _render_team(form, status=422)
    return _render_team(InviteForm(formdata=None), issued=issued)


@bp.post("/team/invitations/<int:invitation_id>/renew")
@admin_required
def renew_invitation(invitation_id: int):
    invitation = services.get_invitation(current_user.tenant, invitation_id) or abort(404)
    issued = services.renew_invitation(
        current_user.tenant, current_user, invitation, days=current_app.config["INVITATION_DAYS"]
    )
    return _render_team(InviteForm(formdata=None), issued=issued)


@bp.post("/team/invitations/<int:invitation_id>/revoke")
@admin_required
def revoke_invitation(invitation_id: int):
    invitation = services.get_invitation(current_user.tenant, invitation_id) or abort(404)
    services.revoke_invitation(current_user.tenant, current_user, invitation)
    return _render_team(InviteForm(formdata=None))


@bp.post("/team/users/<int:user_id>/seat")
@admin_required
def set_seat(user_id: int):
    """Change one user's seat; answers that user's table row."""
    user = services.get_user(current_user.tenant, user_id) or abort(404)
    form = SeatForm(prefix=f"user-{user.id}")
    if form.validate_on_submit():
        services.set_seat(current_user.tenant, current_user, user, form.seat.data)
        saved = True
    else:
        saved = False
    status = 422 if form.errors else 200
    if not is_fragment_request():
        if saved:
            flash(_("Seat of %(name)s saved.", name=user.name), "success")
            return redirect(url_for("tenants.team"), 303)
        return _render_team(InviteForm(formdata=None), status=status, seat_forms={user.id: form})
    return render_template(
        "tenants/_user_row.html", user=user, seat_form=SeatForm, form=form, saved=saved
    ), status


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    """Join a tenant through an invitation link: choose a name and password, then sign in."""
    invitation = services.invitation_for_token(token)
    if invitation is None:
        return render_template("tenants/invitation_invalid.html"), 404
    form = AcceptInvitationForm()
    if form.validate_on_submit():
        try:
            user = services.accept_invitation(
                invitation,
                name=form.name.data,
                password=form.password.data,
                time_zone=form.time_zone.data,
                locale=_request_locale(),
            )
        except services.EmailTaken:
            form.name.errors.append(_("This email already has an account. Sign in instead."))
        else:
            logout_user()
            login_user(user)
            flash(_("Welcome to %(tenant)s on Termin.", tenant=invitation.tenant.name), "success")
            return redirect(url_for("crm.contacts"), 303)
    return render_template("tenants/accept_invitation.html", form=form, invitation=invitation), (
        422 if form.errors else 200
    )


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    """The signed-in user's name, time zone and interface language."""
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        services.update_profile(
            current_user, name=form.name.data, time_zone=form.time_zone.data, locale=form.locale.data
        )
        flash(_("Your profile is saved."), "success")
        return hx_redirect(url_for("tenants.account"))
    return render_template("tenants/account.html", form=form), 422 if form.errors else 200
