"""An SMTP sink on 127.0.0.1 (aiosmtpd) that keeps every message it accepts, and can refuse on cue.

``smtp_server`` (session; import it into a test module to use it) is one ``SmtpSink`` per pytest run,
kept in the config's stash so every module that imports the fixture shares it. A test points the app at
it with ``smtp_server.use_in(app, monkeypatch)``, which also empties it and clears pending faults.

Faults, as a real server answers them: ``fail_next(451)`` answers the next message's DATA with a 451
(deferred: try later) or ``fail_next(550)`` (rejected for good), for ``count`` messages; ``refuse(address,
code)`` answers RCPT TO for one address with ``code`` until ``reset``; ``rcpt_delay`` makes every RCPT TO
answer that many seconds late (a slow server, so a test can kill the client mid-conversation).
"""

import asyncio
import email
import email.policy
import socket
import threading
from dataclasses import dataclass
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller

TEXTS = {
    421: "4.3.2 Service not available, closing channel",
    450: "4.2.1 Mailbox busy, try again later",
    451: "4.3.0 Requested action aborted: try again later",
    452: "4.3.1 Insufficient system storage",
    550: "5.1.1 Requested action not taken: mailbox unavailable",
    552: "5.3.4 Message size exceeds fixed maximum message size",
    554: "5.7.1 Message rejected as spam",
}


@dataclass(frozen=True)
class Envelope:
    mail_from: str
    rcpt_tos: tuple[str, ...]


class SmtpSink:
    """The server, what it accepted, and the switches tests pull."""

    def __init__(self):
        self._lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self._data_faults: list[int] = []
        self._refused: dict[str, int] = {}
        # Seconds the server takes to answer each RCPT TO (tests/faults kill a worker while it waits).
        self.rcpt_delay = 0.0
        self.port = free_port()
        self.host = "127.0.0.1"
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, ready_timeout=10)

    def start(self) -> "SmtpSink":
        """Serve on ``host``:``port`` in a background thread."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._controller.stop()

    def reset(self) -> None:
        """Forget the messages and every pending fault."""
        with self._lock:
            self.messages.clear()
            self.envelopes.clear()
            self._data_faults.clear()
            self._refused.clear()
            self.rcpt_delay = 0.0

    def fail_next(self, code: int, count: int = 1) -> None:
        """Answer DATA of the next ``count`` messages with ``code`` (451: try later; 550: never)."""
        with self._lock:
            self._data_faults.extend([code] * count)

    def refuse(self, address: str, code: int = 550) -> None:
        """Answer RCPT TO:<address> with ``code`` until the next reset."""
        with self._lock:
            self._refused[address.lower()] = code

    def settings(self) -> dict:
        """The app settings that send mail here (plain SMTP, no login)."""
        return {"SMTP_HOST": self.host, "SMTP_PORT": self.port, "SMTP_STARTTLS": False, "SMTP_TIMEOUT": 5}

    def use_in(self, app, monkeypatch: pytest.MonkeyPatch) -> "SmtpSink":
        """Point ``app`` at this sink for one test (undone by monkeypatch), starting empty."""
        self.reset()
        for key, value in self.settings().items():
            monkeypatch.setitem(app.config, key, value)
        return self

    def _take_data_fault(self) -> int | None:
        with self._lock:
            return self._data_faults.pop(0) if self._data_faults else None

    def _refusal(self, address: str) -> int | None:
        with self._lock:
            return self._refused.get(address.lower())

    def _keep(self, mail_from: str, rcpt_tos: list[str], content: bytes) -> None:
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        with self._lock:
            self.messages.append(parsed)
            self.envelopes.append(Envelope(mail_from, tuple(rcpt_tos)))


class _Handler:
    """aiosmtpd's hooks: refuse what the sink was told to, keep the rest."""

    def __init__(self, sink: SmtpSink):
        self.sink = sink

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.sink.rcpt_delay:
            await asyncio.sleep(self.sink.rcpt_delay)
        code = self.sink._refusal(address)
        if code is not None:
            return f"{code} {TEXTS.get(code, 'refused')}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        code = self.sink._take_data_fault()
        if code is not None:
            return f"{code} {TEXTS.get(code, 'refused')}"
        self.sink._keep(envelope.mail_from, list(envelope.rcpt_tos), envelope.content)
        return "250 2.0.0 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_STASH = pytest.StashKey[SmtpSink]()


@pytest.fixture(scope="session")
def smtp_server(request: pytest.FixtureRequest) -> SmtpSink:
    """The run's one SMTP sink: ``.messages`` (parsed), ``.envelopes``, ``.reset()``, ``.fail_next()``."""
    sink = request.config.stash.get(_STASH, None)
    if sink is None:
        sink = SmtpSink().start()
        request.config.stash[_STASH] = sink
        request.config.add_cleanup(sink.stop)
    return sink
