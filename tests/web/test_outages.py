"""PostgreSQL or Redis unavailable: 503 with Retry-After, as HTML or JSON by Accept, never a 500; pooled
connections are checked before use, so the first request after a PostgreSQL restart succeeds."""

from contextlib import contextmanager

import psycopg
import pytest
import redis
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import db
from tests.conftest import TEST_DATABASE_URL, config_for_tests, worker_database


class DatabaseGone(Exception):
    """What the driver says when the server has gone away."""


def _refuse(conn, cursor, statement, parameters, context, executemany):
    raise sa.exc.OperationalError(statement, parameters, DatabaseGone("connection refused"))


@contextmanager
def database_down(connection):
    event.listen(connection, "before_cursor_execute", _refuse)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", _refuse)


def test_a_signed_in_page_with_the_database_down_is_an_html_503(world, signed_in, db_connection):
    ours, _theirs = world
    rep = signed_in(ours.rep_email)
    with database_down(db_connection):
        response = rep.get("/crm/contacts")

    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.mimetype == "text/html"
    assert "Termin is briefly unavailable" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"


def test_json_clients_get_a_json_503(world, signed_in, db_connection):
    rep = signed_in(world[0].rep_email)
    with database_down(db_connection):
        response = rep.get("/crm/contacts", headers={"Accept": "application/json"})

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["error"] == "unavailable"


def test_the_503_page_speaks_the_visitors_language(world, signed_in, db_connection):
    rep = signed_in(world[0].rep_email)
    with database_down(db_connection):
        response = rep.get("/crm/contacts", headers={"Accept-Language": "pl"})

    assert response.status_code == 503
    assert "Termin jest chwilowo niedostępny" in response.get_data(as_text=True)


def test_a_form_post_with_the_database_down_is_a_503_not_a_500(world, signed_in, db_connection):
    ours, _theirs = world
    rep = signed_in(ours.rep_email)
    token = rep.csrf_token()
    with database_down(db_connection):
        response = rep.post("/crm/contacts/new", data={"csrf_token": token, "email": "new@example.org"})

    assert response.status_code == 503


def test_an_error_page_met_by_an_outage_is_a_503(world, signed_in, db_connection):
    rep = signed_in(world[0].rep_email)
    with database_down(db_connection):
        response = rep.get("/crm/no-such-page")  # the 404 page shows the user: it needs the database

    assert response.status_code == 503


@pytest.mark.parametrize(
    "outage", [redis.exceptions.ConnectionError("Connection refused"), redis.exceptions.TimeoutError()]
)
def test_redis_unavailable_is_a_503(app, outage):
    with app.test_request_context("/", headers={"Accept": "application/json"}):
        response = app.make_response(app.handle_user_exception(outage))

    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["error"] == "unavailable"


def test_a_dead_pooled_connection_is_replaced_before_use(app):
    """PostgreSQL restarted (here: our pooled connection killed by the server): the next checkout works."""
    fresh = create_app(config_for_tests(worker_database(TEST_DATABASE_URL)))
    with fresh.app_context():
        engine = db.engine
        try:
            with engine.connect() as connection:
                pid = connection.execute(sa.select(sa.func.pg_backend_pid())).scalar_one()
            # The connection is back in the pool; the server ends it, as a restart would.
            admin = make_url(TEST_DATABASE_URL).set(drivername="postgresql", database="postgres")
            with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as other:
                other.execute("SELECT pg_terminate_backend(%s)", [pid])
            with engine.connect() as connection:
                assert connection.execute(sa.select(1)).scalar_one() == 1
                assert connection.execute(sa.select(sa.func.pg_backend_pid())).scalar_one() != pid
        finally:
            engine.dispose()
