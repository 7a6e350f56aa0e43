"""GET /healthz (alive, no I/O) and GET /readyz (PostgreSQL and Redis answer, 503 otherwise), on every host;
request ids and the context fields every log line carries."""

import io
import json
import logging

import pytest
import sqlalchemy as sa

from app import create_app, logs
from app.extensions import db
from tests.conftest import APP_HOST, TEST_DATABASE_URL, config_for_tests, worker_database
from tests.servers import free_port


@pytest.fixture
def statements(db_connection):
    seen: list[str] = []

    def listener(_connection, _cursor, statement, *_rest):
        seen.append(statement)

    sa.event.listen(db_connection, "before_cursor_execute", listener)
    yield seen
    sa.event.remove(db_connection, "before_cursor_execute", listener)


@pytest.mark.parametrize("host", [APP_HOST, "127.0.0.1:8000", "unknown.example.org"])
def test_healthz_answers_on_every_host_without_touching_the_database(make_client, statements, host):
    response = make_client(host).get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers["Cache-Control"] == "no-store"
    assert statements == []


def _app(**overrides):
    # An app of its own: the shared test app's engine is the rolled-back test connection.
    return create_app({**config_for_tests(worker_database(TEST_DATABASE_URL)), **overrides})


def test_readyz_says_ready_when_postgresql_answers(app):
    ready = _app()
    response = ready.test_client().get("/readyz", base_url="http://10.1.2.3")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {"database": "ok"}}
    with ready.app_context():
        db.engine.dispose()


def test_readyz_checks_redis_too_when_jobs_run_on_rq(app, own_redis):
    app = _app(JOBS_MODE="rq", REDIS_URL=own_redis.url(3))
    response = app.test_client().get("/readyz", base_url=f"http://{APP_HOST}")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}
    with app.app_context():
        db.engine.dispose()


def test_readyz_is_503_when_redis_or_postgresql_is_away(app):
    nobody = free_port()  # nothing listens there
    app = _app(
        JOBS_MODE="rq",
        REDIS_URL=f"redis://127.0.0.1:{nobody}/0",
        SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{nobody}/termin",
        READY_TIMEOUT_SECONDS=1,
    )
    response = app.test_client().get("/readyz", base_url=f"http://{APP_HOST}")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"].startswith("unavailable (")
    assert body["checks"]["redis"].startswith("unavailable (")
    with app.app_context():
        db.engine.dispose()


# --- Request ids and log context ------------------------------------------------------------------------


def test_a_request_gets_an_id_or_keeps_the_proxys(client):
    given = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["X-Request-ID"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"})
    assert len(made.headers["X-Request-ID"]) == 32
    assert made.headers["X-Request-ID"] != client.get("/healthz").headers["X-Request-ID"]


@pytest.fixture
def json_lines():
    """The root logger writing JSON through the context filter into a buffer, as production does."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.addFilter(logs.ContextFilter())
    handler.setFormatter(logs.json_formatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(previous)


def test_every_line_of_a_signed_in_request_names_request_tenant_and_user(world, signed_in, json_lines):
    ours, _ = world
    client = signed_in(ours.rep_email)
    response = client.get("/crm/contacts", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 200
    lines = [line for line in json_lines() if line.get("request_id") == "req-42"]
    [access] = [line for line in lines if line["logger"] == "termin.request"]
    assert access["message"].startswith("GET /crm/contacts 200")
    assert access["user_id"] == ours.rep_id
    assert access["tenant_id"] == ours.tenant_id
    assert access["status"] == 200
    assert {"time", "level", "process"} <= access.keys()


def test_a_job_line_names_the_job_and_tenant(json_lines):
    with logs.job_log_context("outbox-7"):
        logs.log_tenant(5)
        logging.getLogger("app.mail.outbox").info("delivered")
    [line] = [line for line in json_lines() if line["message"] == "delivered"]
    assert (line["job_id"], line["tenant_id"], line["request_id"], line["user_id"]) == (
        "outbox-7",
        5,
        "-",
        "-",
    )


def test_production_logs_json_and_the_demo_text():
    assert logs.log_format({"TERMIN_ENV": "production"}) == "json"
    assert logs.log_format({}) == "text"
    assert logs.log_format({"TERMIN_ENV": "production", "TERMIN_LOG_FORMAT": "text"}) == "text"
    config = logs.dict_config("json")
    assert config["loggers"]["gunicorn.error"] == {"level": "INFO", "handlers": [], "propagate": True}
