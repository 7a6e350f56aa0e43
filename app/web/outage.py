"""PostgreSQL or Redis unavailable: a 503 with Retry-After (HTML or JSON by Accept), never a 500.

The answer reads neither: no signed-in user (base.html would load them), the language from the request
alone. The transaction boundary has rolled back by the time this runs (app/transaction.py).
"""

import functools
import logging
from collections.abc import Callable

import redis.exceptions
import sqlalchemy.exc
from flask import Flask, Response, current_app, jsonify, request, session
from flask_babel import force_locale
from flask_babel import gettext as _
from werkzeug.exceptions import InternalServerError

log = logging.getLogger(__name__)

# What an outage looks like from here: the database refused, dropped or timed out a connection (or the
# pool had none to give), or Redis did.
OUTAGES: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


def register(app: Flask) -> None:
    for outage in OUTAGES:
        app.register_error_handler(outage, unavailable)
    # An outage met after the view (an after-request hook) reaches Flask as a 500 wrapping it.
    app.register_error_handler(InternalServerError, _internal_error)


def is_outage(error: BaseException | None) -> bool:
    return isinstance(error, OUTAGES) or (
        isinstance(error, sqlalchemy.exc.DBAPIError) and error.connection_invalidated
    )


def unavailable(error: Exception) -> Response:
    log.error("503: %s unavailable: %s", _service(error), str(error).splitlines()[0] if str(error) else error)
    retry_after = str(current_app.config.get("OUTAGE_RETRY_AFTER_SECONDS", 10))
    with force_locale(_request_locale()):
        title = _("Termin is briefly unavailable")
        message = _("Nothing was lost. Please try again in a few seconds.")
        if _wants_json():
            response = jsonify({"error": "unavailable", "message": message})
        else:
            # Straight from the Jinja environment: render_template's context processors would load the
            # signed-in user (Flask-Login's), from the database that is down.
            page = current_app.jinja_env.get_template("errors/unavailable.html")
            response = Response(page.render(title=title, message=message), mimetype="text/html")
    response.status_code = 503
    response.headers["Retry-After"] = retry_after
    response.headers["Cache-Control"] = "no-store"
    return response


def answers_outages(handler: Callable) -> Callable:
    """For an error handler: its page reads the signed-in user and their language (the database), so an
    outage met while answering another error is answered as the outage."""

    @functools.wraps(handler)
    def answer(error):
        try:
            return handler(error)
        except OUTAGES as outage:
            return unavailable(outage)

    return answer


def _internal_error(error: InternalServerError):
    if is_outage(error.original_exception):
        return unavailable(error.original_exception)
    return error


def _service(error: Exception) -> str:
    return "Redis" if isinstance(error, redis.exceptions.RedisError) else "the database"


def _wants_json() -> bool:
    if request.is_json or request.path.endswith(".json"):
        return True
    return request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json"


def _request_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    chosen = session.get("locale")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(languages) or languages[0]
