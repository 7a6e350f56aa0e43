import pytest

from tests import factories
from tests.fakes import smtp as fake_smtp

smtp_server = fake_smtp.smtp_server


@pytest.fixture
def sink(app, smtp_server, monkeypatch):
    """The session's SMTP sink, emptied, with the app sending to it."""
    return smtp_server.use_in(app, monkeypatch)


@pytest.fixture
def tenants(app_ctx):
    """Ours and another tenant: every module proves the other one's rows stay apart."""
    return factories.make_tenant("Acme"), factories.make_tenant("Globex")
