"""Error pages a person can act on, as a whole page or as an htmx fragment."""

from flask import Flask, g, render_template
from flask_babel import gettext as _
from flask_limiter import RateLimitExceeded
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.web import outage
from app.web.htmx import is_fragment_request
from app.web.limits import rate_limited


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(RateLimitExceeded, rate_limited)
    app.register_error_handler(HTTPException, _http_error)


def _render(status: int, title: str, message: str):
    template = "errors/_message.html" if is_fragment_request() else "errors/page.html"
    on_app_host = g.get("on_app_host", False)
    return render_template(
        template, status=status, title=title, message=message, on_app_host=on_app_host
    ), status


@outage.answers_outages
def _csrf_error(error: CSRFError):
    return _render(
        400,
        _("This form has expired"),
        _(
            "The form's security token (csrf_token) was missing or did not match this session, so nothing "
            "was saved. Reload the page and submit the form again."
        ),
    )


@outage.answers_outages
def _http_error(error: HTTPException):
    messages = {
        403: (_("Not allowed"), _("Your role does not allow this. Ask an admin of your account.")),
        404: (_("Page not found"), _("There is nothing at this address. Check the link you followed.")),
        405: (_("Not allowed"), _("This address does not accept that kind of request.")),
        413: (_("Too large"), _("What you sent is larger than we accept. Send less and try again.")),
    }
    title, message = messages.get(error.code, (error.name, error.description))
    return _render(error.code or 500, title, message)
