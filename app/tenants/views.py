"""Sign-up, sign-in, the team page (users, seats, invitations) and the user's own profile."""

from functools import wraps
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from app import transaction
from app.extensions import login_manager
from app.mail import smtp
from app.tenants import services
from app.tenants.forms import (
    AcceptInvitationForm,
    ChangePasswordForm,
    ConfirmForm,
    ForgotPasswordForm,
    InviteForm,
    LoginForm,
    ProfileForm,
    ResetPasswordForm,
    SeatForm,
    SignupForm,
)
from app.web import limits
from app.web.htmx import hx_redirect, is_fragment_request, render_page_or_fragment

bp = Blueprint("tenants", __name__)


# The session cookie carries the id of the session's row (``services.start_session``); the remember-me
# cookie (REMEMBER_ME_COOKIE) a random token of its own. Flask-Login's own remember cookie is never set.
SESSION_TOKEN = "termin_session"  # noqa: S105 (a key name, not a secret)


@login_manager.user_loader
def load_user(user_id: str):
    """Every request: the user only while their session's row stands (ended sessions are ended here)."""
    return services.get_user_for_session(user_id, session.get(SESSION_TOKEN))


@login_manager.request_loader
def load_user_from_remember_cookie(req):
    """No live session but a remember-me cookie: spend it, sign in afresh, and hand the browser a new one."""
    token = req.cookies.get(current_app.config["REMEMBER_ME_COOKIE"])
    if not token or not g.get("on_app_host"):
        return None
    found = services.use_remember_token(token, days=current_app.config["REMEMBER_DAYS"])
    if found is None:
        # The loader may run outside the request's boundary (the first read of current_user), so the spent
        # token is committed here: a rotation left uncommitted would sign the user out on the next request.
        transaction.checkpoint()
        g.remember_cookie = ""
        return None
    user, new_token = found
    _start_session(user, fresh=False)
    transaction.checkpoint()
    g.remember_cookie = new_token
    return user


def _start_session(user, *, fresh: bool = True) -> None:
    session.clear()  # nothing of a previous identity carries over (session fixation)
    login_user(user, remember=False, fresh=fresh)
    session[SESSION_TOKEN] = services.start_session(user, days=current_app.config["SESSION_DAYS"])


def set_remember_cookie(response: Response) -> Response:
    """after_request: write the remember-me cookie a view or the loader chose ("" deletes it)."""
    value = g.get("remember_cookie")
    if value is None:
        return response
    config = current_app.config
    if value:
        response.set_cookie(
            config["REMEMBER_ME_COOKIE"],
            value,
            max_age=config["REMEMBER_DAYS"] * 24 * 3600,
            secure=config["REMEMBER_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    else:
        response.delete_cookie(
            config["REMEMBER_ME_COOKIE"],
            secure=config["REMEMBER_COOKIE_SECURE"],
            httponly=True,
            samesite="Lax",
        )
    return response


def _end_session() -> None:
    services.end_session(session.get(SESSION_TOKEN))
    services.forget_remember_token(request.cookies.get(current_app.config["REMEMBER_ME_COOKIE"]))
    logout_user()
    session.clear()
    g.remember_cookie = ""


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


def _not_signed_in(response) -> bool:
    """A sign-in POST that did not sign anyone in (only those count against the sign-in limits)."""
    return response.status_code != 303


@bp.route("/signup", methods=["GET", "POST"])
@limits.limit("RATELIMIT_SIGNUP_IP", key=limits.client_ip, scope="ip")
def signup():
    """Sign-up, step one: email a confirmation link. Nothing exists, and the address is not taken, until it
    is followed. The answer is the same whether or not the address already has an account (that one gets an
    email saying so instead)."""
    form = SignupForm()
    if form.validate_on_submit():
        email = services.normalise_email(form.email.data)
        issued = services.request_signup(
            company=form.company.data,
            name=form.name.data,
            email=email,
            password=form.password.data,
            time_zone=form.time_zone.data,
            locale=_request_locale(),
            hours=current_app.config["SIGNUP_CONFIRM_HOURS"],
        )
        if limits.try_spend("RATELIMIT_ACCOUNT_MAIL", "account-mail", email):
            _mail_signup(email, issued)
        return render_template("tenants/signup_sent.html", email=email)
    return render_template("tenants/signup.html", form=form), 422 if form.errors else 200


def _mail_signup(email: str, issued) -> None:
    """The confirmation link, or (the address has an account) a note saying so, with the ways back in."""
    if issued is not None:
        signup_request, token = issued
        with force_locale(signup_request.locale):
            subject = _("Confirm your email to create your Termin account")
            text = render_template(
                "tenants/email/signup_confirm.txt",
                signup=signup_request,
                link=url_for("tenants.confirm_signup", token=token, _external=True),
                hours=current_app.config["SIGNUP_CONFIRM_HOURS"],
            )
        smtp.send_mail(None, to=email, subject=subject, text=text, secrets=[token])
        return
    user = services.get_user_for_email(email)
    with force_locale(user.locale or "en"):
        subject = _("You already have a Termin account")
        text = render_template(
            "tenants/email/signup_exists.txt",
            user=user,
            login=url_for("tenants.login", _external=True),
            forgot=url_for("tenants.forgot_password", _external=True),
        )
    smtp.send_mail(user.tenant_id, to=email, subject=subject, text=text)


@bp.route("/signup/confirm/<token>", methods=["GET", "POST"])
@limits.limit("RATELIMIT_SIGNUP_IP", key=limits.client_ip, scope="ip")
def confirm_signup(token: str):
    """Sign-up, step two: the emailed link. A GET only shows a button (mail scanners follow links); the POST
    creates the company and its admin and signs them in."""
    signup_request = services.signup_for_token(token)
    if signup_request is None:
        return render_template("tenants/signup_invalid.html"), 404
    if request.method == "GET":
        return render_template("tenants/signup_confirm.html", signup=signup_request, form=ConfirmForm())
    form = ConfirmForm()
    if not form.validate_on_submit():
        return render_template("tenants/signup_confirm.html", signup=signup_request, form=form), 422
    try:
        user = services.confirm_signup(signup_request)
    except services.EmailTaken:
        return render_template("tenants/signup_taken.html"), 409
    _start_session(user)
    flash(_("Welcome to Termin. Add your first contact."), "success")
    return redirect(url_for("crm.contacts"), 303)


def _request_locale() -> str:
    return request.accept_languages.best_match(current_app.config["LANGUAGES"]) or "en"


@bp.route("/login", methods=["GET", "POST"])
@limits.limit("RATELIMIT_SIGNIN_IP", key=limits.client_ip, scope="ip", deduct_when=_not_signed_in)
@limits.limit("RATELIMIT_SIGNIN_ACCOUNT", key=limits.form_email, scope="account", deduct_when=_not_signed_in)
def login():
    """Sign in. Failures are counted per account and per client address; past either limit every try,
    the right password included, is a 429 until the oldest failure leaves the window."""
    if current_user.is_authenticated:
        return redirect(url_for("crm.contacts"))
    form = LoginForm()
    if form.validate_on_submit():
        user = services.authenticate(form.email.data, form.password.data)
        if user is not None:
            _start_session(user)
            if form.remember.data:
                g.remember_cookie = services.issue_remember_token(
                    user, days=current_app.config["REMEMBER_DAYS"]
                )
            return redirect(_safe_next(request.args.get("next")), 303)
        form.password.errors.append(_("That email and password do not match an account."))
    return render_template("tenants/login.html", form=form), 422 if form.errors else 200


@bp.post("/logout")
@login_required
def logout():
    """Sign out: this session's row and remember-me token go, so no copy of either signs in again."""
    _end_session()
    return redirect(url_for("tenants.login"), 303)


@bp.post("/account/sign-out-everywhere")
@login_required
def sign_out_everywhere():
    """End every session and remember-me cookie of the user, on every device, this one included."""
    services.end_all_sessions(current_user)
    _end_session()
    flash(_("You are signed out on every device. Sign in again here."), "success")
    return redirect(url_for("tenants.login"), 303)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Change the password (the current one required); every session ends, this browser gets a new one."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            services.change_password(user, current=form.current_password.data, new=form.password.data)
        except services.WrongPassword:
            form.current_password.errors.append(_("That is not your current password."))
        else:
            _start_session(user)
            g.remember_cookie = ""
            flash(_("Your password is changed. Every other session of yours was signed out."), "success")
            return redirect(url_for("tenants.account"), 303)
    return render_template("tenants/change_password.html", form=form), 422 if form.errors else 200


@bp.route("/password/forgot", methods=["GET", "POST"])
@limits.limit("RATELIMIT_PASSWORD_RESET_IP", key=limits.client_ip, scope="ip")
def forgot_password():
    """Ask for a reset link. The answer is the same whether or not the address has an account."""
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        email = services.normalise_email(form.email.data)
        issued = services.request_password_reset(email, minutes=current_app.config["PASSWORD_RESET_MINUTES"])
        if issued is not None and limits.try_spend("RATELIMIT_ACCOUNT_MAIL", "account-mail", email):
            user, token = issued
            _mail_reset_link(user, token)
        return render_template("tenants/reset_sent.html", email=email)
    return render_template("tenants/forgot_password.html", form=form), 422 if form.errors else 200


def _mail_reset_link(user, token: str) -> None:
    link = url_for("tenants.reset_password", token=token, _external=True)
    with force_locale(user.locale or "en"):
        subject = _("Reset your Termin password")
        text = render_template(
            "tenants/email/password_reset.txt",
            user=user,
            link=link,
            minutes=current_app.config["PASSWORD_RESET_MINUTES"],
        )
    smtp.send_mail(user.tenant_id, to=user.email, subject=subject, text=text, secrets=[token])


@bp.route("/password/reset/<token>", methods=["GET", "POST"])
@limits.limit("RATELIMIT_PASSWORD_RESET_IP", key=limits.client_ip, scope="ip")
def reset_password(token: str):
    """Choose a new password from an emailed link (one use, an hour); every session of the user ends."""
    reset = services.password_reset_for_token(token)
    if reset is None:
        return render_template("tenants/reset_invalid.html"), 404
    form = ResetPasswordForm()
    if form.validate_on_submit():
        user = services.reset_password(reset, form.password.data)
        _start_session(user)
        g.remember_cookie = ""
        flash(
            _("Your password is changed and you are signed in. Every other session was signed out."),
            "success",
        )
        return redirect(url_for("crm.contacts"), 303)
    return render_template("tenants/reset_password.html", form=form), 422 if form.errors else 200


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
@limits.limit("RATELIMIT_INVITATION_IP", key=limits.client_ip, scope="ip")
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
            _end_session()
            _start_session(user)
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
            current_user,
            name=form.name.data,
            time_zone=form.time_zone.data,
            locale=form.locale.data,
            title=form.title.data or "",
        )
        flash(_("Your profile is saved."), "success")
        return hx_redirect(url_for("tenants.account"))
    return render_template("tenants/account.html", form=form), 422 if form.errors else 200
