import pytest

from tests.fakes.dns_server import FakeDns


@pytest.fixture(scope="session")
def dns_server():
    server = FakeDns().start()
    yield server
    server.stop()


@pytest.fixture
def fake_dns(app, dns_server, monkeypatch):
    """The app asks the loopback DNS server, with a short timeout so the no-answer case is quick."""
    dns_server.reset()
    monkeypatch.setitem(app.config, "DNS_NAMESERVERS", dns_server.address)
    monkeypatch.setitem(app.config, "DNS_TIMEOUT", 0.5)
    return dns_server
