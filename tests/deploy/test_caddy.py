"""deploy/termin.caddy for real: Debian's Caddy with its internal CA (``local_certs``) on loopback, asking
Termin's /tls/ask before each on-demand certificate. A verified domain gets a certificate and its page over
HTTPS; a pending or unknown one gets no certificate at all (the TLS handshake fails).

Caddy is Debian's package (``apt-get install caddy``; scripts/services.sh installs it). Termin runs in a
thread on a database of its own, with committed data, as the browser journeys' live server does.
"""

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask_migrate import upgrade
from werkzeug.serving import make_server

from app import create_app
from app.extensions import db
from app.pages.paths import page_path
from tests import factories
from tests.conftest import APP_HOST, TEST_DATABASE_URL, config_for_tests, recreate_database, worker_database
from tests.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
VERIFIED, PENDING, UNKNOWN = "book.acme.test", "pending.acme.test", "nobody.example.test"


@dataclass(frozen=True)
class Served:
    https_port: int
    root_ca: Path
    page_path: str
    termin_port: int


@pytest.fixture(scope="module")
def termin() -> Iterator[tuple[int, str]]:
    url = worker_database(TEST_DATABASE_URL, "_caddy")
    recreate_database(url)
    app = create_app({**config_for_tests(url), "PROXY_COUNT": 1})
    with app.app_context():
        upgrade()
        tenant = factories.make_tenant("Acme")
        domain = factories.make_domain(tenant, VERIFIED)
        factories.make_domain(tenant, PENDING, status="pending")
        rep = factories.make_user(tenant, seat="sales", email="rep@acme.example.com", name="Rita Rep")
        page = factories.make_page(rep, title="Intro call")
        page.domain = domain
        path = page_path(page)
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_port, path
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(scope="module")
def caddy(termin, tmp_path_factory) -> Iterator[Served]:
    binary = shutil.which("caddy")
    if binary is None:
        pytest.fail("caddy is missing: apt-get install caddy (make services does)")
    termin_port, path = termin
    tmp = tmp_path_factory.mktemp("caddy")
    https_port, http_port = free_port(), free_port()
    # The test's own global options (loopback ports, the internal CA, storage in tmp); the sites are deploy's.
    (tmp / "Caddyfile").write_text(
        "{\n\tadmin off\n\tlocal_certs\n\tskip_install_trust\n"
        f"\thttp_port {http_port}\n\thttps_port {https_port}\n\tstorage file_system {tmp / 'storage'}\n"
        f"\ton_demand_tls {{\n\t\task http://127.0.0.1:{termin_port}/tls/ask\n\t}}\n}}\n\n"
        f"import {ROOT / 'deploy' / 'termin.caddy'}\n"
    )
    env = {
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "XDG_CONFIG_HOME": str(tmp / "config"),
        "PATH": "/usr/bin:/bin",
        "TERMIN_APP_HOST": APP_HOST,
        "TERMIN_UPSTREAM": f"127.0.0.1:{termin_port}",
    }
    log = (tmp / "caddy.log").open("wb")
    process = subprocess.Popen(
        [binary, "run", "--adapter", "caddyfile", "--config", str(tmp / "Caddyfile")],
        env=env,
        cwd=tmp,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    root_ca = tmp / "storage" / "pki" / "authorities" / "local" / "root.crt"
    try:
        deadline = time.monotonic() + 30
        while not (root_ca.exists() and _listening(https_port)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("Caddy did not start:\n" + (tmp / "caddy.log").read_text()[-3000:])
            time.sleep(0.1)
        yield Served(https_port, root_ca, path, termin_port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def https_get(served: Served, host: str, path: str) -> tuple[str, dict, str]:
    """GET over TLS to Caddy on loopback, naming ``host`` in SNI and Host, trusting only Caddy's local CA."""
    context = ssl.create_default_context(cafile=str(served.root_ca))
    with (
        socket.create_connection(("127.0.0.1", served.https_port), timeout=20) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
    head, _, body = data.decode("utf-8", "replace").partition("\r\n\r\n")
    status, *lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return status, headers, body


def test_the_ask_endpoint_says_yes_only_for_a_verified_domain(caddy):
    ask = f"http://127.0.0.1:{caddy.termin_port}/tls/ask"
    assert requests.get(ask, params={"domain": VERIFIED}, timeout=10).status_code == 200
    assert requests.get(ask, params={"domain": VERIFIED.upper() + "."}, timeout=10).status_code == 200
    for name in (PENDING, UNKNOWN, APP_HOST, ""):
        assert requests.get(ask, params={"domain": name}, timeout=10).status_code == 404


def test_a_verified_domain_gets_a_certificate_and_its_page_over_https(caddy):
    status, headers, body = https_get(caddy, VERIFIED, caddy.page_path)
    assert status.startswith("HTTP/1.1 200"), body[:500]
    assert "Intro call" in body
    assert len(headers["x-request-id"]) == 36  # Caddy's uuid, carried through Termin's logs
    assert list(_certificates(caddy).glob(f"*/{VERIFIED}"))


@pytest.mark.parametrize("host", [PENDING, UNKNOWN])
def test_a_pending_or_unknown_domain_gets_no_certificate(caddy, host):
    with pytest.raises(ssl.SSLError):
        https_get(caddy, host, "/robots.txt")
    assert not list(_certificates(caddy).glob(f"*/{host}"))


def _certificates(served: Served) -> Path:
    return served.root_ca.parents[3] / "certificates"  # <storage>/certificates/<issuer>/<name>/
