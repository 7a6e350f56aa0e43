"""The Brand settings screen (admins), the rep's public profile (photo, headline), and the brand's files:
images and colour stylesheets, served for ever under names that change with their content."""

import re

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from app.brand import colors, images, services
from app.brand.forms import IMAGE_ACCEPT, BrandForm, PublicProfileForm
from app.errors import BrandError
from app.tenants.views import admin_required
from app.web.assets import IMMUTABLE
from app.web.tenancy import any_host, public

bp = Blueprint("brand", __name__)
# Every template may show a brand (the public pages, the account screen, emails rendered in a job).
bp.add_app_template_global(services.brand_for, "brand_for")
bp.add_app_template_global(services.image_path, "brand_image_path")
bp.add_app_template_global(IMAGE_ACCEPT, "brand_image_accept")
bp.add_app_template_global(images.MAX_UPLOAD_BYTES // (1024 * 1024), "brand_upload_mb")

IMAGE_NAME = re.compile(r"[0-9a-f]{64}\.(?:png|jpg)")
COLOR_NAME = re.compile(r"[0-9a-f]{6}")
# Uploads are larger than the app's other requests (MAX_CONTENT_LENGTH); the image's own limit is checked
# by images.process with a message naming the field, so the request may be a little larger than it.
UPLOAD_REQUEST_BYTES = images.MAX_UPLOAD_BYTES * 2 + 64 * 1024


def _upload(form_field) -> bytes | None:
    """The uploaded file's bytes, or None when no file was chosen."""
    storage = form_field.data
    if storage is None or not getattr(storage, "filename", ""):
        return None
    return storage.read(images.MAX_UPLOAD_BYTES + 1)


# --- Admin: the company's brand -----------------------------------------------------------------------------


def _render_brand(form: BrandForm, status: int = 200):
    tenant = current_user.tenant
    brand = services.brand_for(tenant)
    return render_template(
        "brand/settings.html",
        form=form,
        brand=brand,
        accept=IMAGE_ACCEPT,
        contrast=colors.contrast_ratio,
        white=colors.WHITE,
        min_ratio=colors.AA_TEXT,
        max_mb=images.MAX_UPLOAD_BYTES // (1024 * 1024),
    ), status


@bp.route("/settings/brand", methods=["GET", "POST"])
@admin_required
def settings():
    """The company's name, colour, logo and favicon on its scheduling pages (and emails)."""
    tenant = current_user.tenant
    if request.method == "POST":
        request.max_content_length = UPLOAD_REQUEST_BYTES
    form = BrandForm(data={"name": tenant.brand_name or tenant.name, "color": tenant.brand_color or ""})
    if request.method == "GET" or not form.validate_on_submit():
        return _render_brand(form, 422 if form.errors else 200)
    try:
        services.update_brand(
            tenant,
            current_user,
            name=form.name.data,
            color=form.color.data,
            logo=_upload(form.logo),
            favicon=_upload(form.favicon),
            remove_logo=form.remove_logo.data,
            remove_favicon=form.remove_favicon.data,
        )
    except BrandError as error:
        getattr(form, error.field or "logo").errors.append(error.message)
        return _render_brand(form, 422)
    flash(_("Your brand is saved. Your scheduling pages show it now."), "success")
    return redirect(url_for("brand.settings"), 303)


# --- The rep: photo and headline ----------------------------------------------------------------------------


@bp.route("/account/public-profile", methods=["GET", "POST"])
@login_required
def public_profile():
    """The rep's photo and headline, shown with their name on their scheduling pages."""
    user = current_user
    if request.method == "POST":
        request.max_content_length = UPLOAD_REQUEST_BYTES
    form = PublicProfileForm(data={"headline": user.headline})
    if request.method == "POST" and form.validate_on_submit():
        try:
            services.update_public_profile(
                user,
                headline=form.headline.data,
                photo=_upload(form.photo),
                remove_photo=form.remove_photo.data,
            )
        except BrandError as error:
            form.photo.errors.append(error.message)
        else:
            flash(_("Your photo and headline are saved."), "success")
            return redirect(url_for("tenants.account"), 303)
    status = 422 if form.errors else 200
    return render_template(
        "brand/public_profile.html",
        form=form,
        photo=services.photo_path(user),
        accept=IMAGE_ACCEPT,
        max_mb=images.MAX_UPLOAD_BYTES // (1024 * 1024),
    ), status


# --- The files ----------------------------------------------------------------------------------------------


def _immutable(response: Response, etag: str) -> Response:
    response.headers["Cache-Control"] = IMMUTABLE
    response.set_etag(etag)
    return response


@bp.get("/brand/<filename>")
@public
def image(filename: str):
    """A stored brand image. On a custom domain only its tenant's (another tenant's: 404); on the app host
    any tenant's, as it serves every tenant's pages and emails link images there. The name is the content's
    hash: cached for ever, and a repeat visit costs no query (``services.get_image``'s memory)."""
    if not IMAGE_NAME.fullmatch(filename):
        abort(404)
    etag = filename.partition(".")[0]
    tenant = g.get("tenant")
    if tenant is None and etag in request.if_none_match:
        return _immutable(Response(status=304), etag)
    found = services.get_image(filename, tenant_id=tenant.id if tenant is not None else None)
    if found is None:
        abort(404)
    if etag in request.if_none_match:
        return _immutable(Response(status=304), etag)
    return _immutable(Response(found.data, mimetype=found.content_type), etag)


@bp.get("/brand/colors/<color>.css")
@any_host
def stylesheet(color: str):
    """The custom properties of a brand colour's readable palette; made from the name alone (no tenant,
    no query), so every host may serve it."""
    if not COLOR_NAME.fullmatch(color):
        abort(404)
    response = Response(colors.stylesheet(f"#{color}"), mimetype="text/css")
    return _immutable(response, color)
