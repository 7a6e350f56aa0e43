"""Public routes every host serves: the app host and each verified tenant domain."""

from flask import Blueprint, g

from app.web.tenancy import public

bp = Blueprint("public", __name__)

# The app host is the application: sign-in screens, the CRM. Nothing there is for search engines
# except scheduling pages, each of which says noindex itself when its rep hides it from search engines.
APP_HOST_ROBOTS = "User-agent: *\nAllow: /meetings/\nDisallow: /\n"
# A tenant domain that has not written its own robots.txt allows crawling, as a plain web server would.
DEFAULT_DOMAIN_ROBOTS = "User-agent: *\nDisallow:\n"


@bp.get("/robots.txt")
@public
def robots_txt():
    """The host's robots.txt: the tenant domain's own text, or a default for the app host."""
    body = APP_HOST_ROBOTS if g.on_app_host else (g.domain.robots_txt or DEFAULT_DOMAIN_ROBOTS)
    # An admin writes this text; nosniff keeps a browser from ever reading it as anything but text.
    return body, 200, {"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}
