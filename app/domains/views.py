"""The domain manager (admins): add a domain, see the DNS records to create, verify, remove; robots.txt."""

from flask import Blueprint, abort, render_template
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from app.db import utcnow
from app.domains import services
from app.domains.forms import AddDomainForm, RobotsForm
from app.tenants.models import Domain
from app.tenants.views import admin_required
from app.web.htmx import is_fragment_request
from app.web.public import DEFAULT_DOMAIN_ROBOTS

bp = Blueprint("domains", __name__, url_prefix="/settings/domains")

REASONS = {
    "missing": _l("No TXT record was found at %(name)s. DNS changes can take a few minutes (rarely hours)."),
    "wrong_value": _l("The TXT record at %(name)s holds “%(found)s”, not the value shown here."),
    "unreachable": _l("DNS did not answer in time; nothing changed. Termin tries again on its own."),
    "taken": _l("Another Termin account verified this domain first."),
}


def reason_text(domain: Domain) -> str | None:
    if not domain.failure_reason:
        return None
    code, _sep, found = domain.failure_reason.partition("|")
    template = REASONS.get(code)
    if template is None:
        return domain.failure_reason
    return str(template) % {"name": domain.challenge_name, "found": found}


def _domain_or_404(domain_id: int) -> Domain:
    domain = services.get_domain(current_user.tenant, domain_id)
    if domain is None:
        abort(404)
    return domain


def _render(form: AddDomainForm | None = None, status: int = 200, added: Domain | None = None):
    target, addresses = services.pointing_target()
    context = dict(
        domains=services.list_domains(current_user.tenant),
        form=form or AddDomainForm(formdata=None),
        target=target,
        addresses=addresses,
        added=added,
        reason_text=reason_text,
        display_name=services.display_name,
    )
    template = "domains/_manager.html" if is_fragment_request() else "domains/index.html"
    return render_template(template, **context), status


@bp.get("/")
@admin_required
def index():
    return _render()


@bp.post("/")
@admin_required
def add():
    form = AddDomainForm()
    if not form.validate_on_submit():
        return _render(form, 422)
    try:
        domain = services.add_domain(current_user.tenant, current_user, form.hostname.data)
    except services.DomainError as error:
        form.hostname.errors.append(error.message)
        return _render(form, 422)
    return _render(added=domain)


@bp.post("/<int:domain_id>/verify")
@admin_required
def verify(domain_id: int):
    domain = _domain_or_404(domain_id)
    services.verify_domain(domain, utcnow())
    return _render()


@bp.post("/<int:domain_id>/remove")
@admin_required
def remove(domain_id: int):
    domain = _domain_or_404(domain_id)
    services.remove_domain(current_user.tenant, current_user, domain, utcnow())
    return _render()


@bp.route("/<int:domain_id>/robots", methods=["GET", "POST"])
@admin_required
def robots(domain_id: int):
    domain = _domain_or_404(domain_id)
    form = RobotsForm(data={"robots_txt": domain.robots_txt or ""})
    saved = False
    if form.validate_on_submit():
        try:
            services.set_robots(current_user.tenant, current_user, domain, form.robots_txt.data)
        except services.DomainError as error:
            form.robots_txt.errors.append(error.message)
        else:
            saved = True
    return _render_robots(domain, form, saved)


@bp.post("/<int:domain_id>/robots/keep-pages-out")
@admin_required
def keep_pages_out(domain_id: int):
    """D4's one click: ``Disallow: /meetings*`` in the domain's robots.txt."""
    domain = _domain_or_404(domain_id)
    form = RobotsForm()
    if not form.validate_on_submit():
        return _render_robots(domain, form, False)
    services.keep_pages_out_of_search(current_user.tenant, current_user, domain)
    return _render_robots(domain, RobotsForm(formdata=None, data={"robots_txt": domain.robots_txt}), True)


def _render_robots(domain: Domain, form: RobotsForm, saved: bool):
    status = 422 if form.errors else 200
    context = dict(
        domain=domain,
        form=form,
        saved=saved,
        default_robots=DEFAULT_DOMAIN_ROBOTS,
        pages_kept_out=services.PAGES_DISALLOW in (domain.robots_txt or ""),
        display_name=services.display_name,
        message=_("Saved. %(host)s/robots.txt now serves this text.", host=domain.hostname)
        if saved
        else None,
    )
    template = "domains/_robots_form.html" if is_fragment_request() else "domains/robots.html"
    return render_template(template, **context), status
