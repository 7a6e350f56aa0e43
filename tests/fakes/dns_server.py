"""A real DNS server on loopback (dnslib, UDP) whose TXT records a test sets.

``records`` maps a name (lower case, no trailing dot) to its TXT strings; a name missing from it is
NXDOMAIN; a name in ``silent`` gets no answer at all, so the client times out as it would on a dead
resolver. Everything else (the wire format, the client's retries and timeouts) is the real thing.
"""

import socket
import threading

from dnslib import QTYPE, RCODE, RR, TXT, DNSLabel
from dnslib.dns import DNSError
from dnslib.server import BaseResolver, DNSLogger, DNSServer


class _Resolver(BaseResolver):
    def __init__(self) -> None:
        self.records: dict[str, list[str]] = {}
        self.silent: set[str] = set()
        self.queries: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, request, handler):
        name = str(request.q.qname).rstrip(".").lower()
        with self.lock:
            self.queries.append(name)
            if name in self.silent:
                raise DNSError(f"dropping the query for {name}")  # dnslib then sends nothing
            values = self.records.get(name)
        reply = request.reply()
        if values is None:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.TXT:
            for value in values:
                reply.add_answer(RR(DNSLabel(name), QTYPE.TXT, rdata=TXT(value), ttl=60))
        return reply


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class FakeDns:
    def __init__(self) -> None:
        self.resolver = _Resolver()
        self.port = _free_udp_port()
        quiet = DNSLogger(prefix=False, logf=lambda _message: None)
        self.server = DNSServer(self.resolver, port=self.port, address="127.0.0.1", logger=quiet)

    @property
    def address(self) -> str:
        """What TERMIN_DNS_NAMESERVERS takes."""
        return f"127.0.0.1:{self.port}"

    def set_txt(self, name: str, *values: str) -> None:
        with self.resolver.lock:
            self.resolver.records[name.lower()] = list(values)

    def remove(self, name: str) -> None:
        with self.resolver.lock:
            self.resolver.records.pop(name.lower(), None)

    def go_silent(self, name: str) -> None:
        with self.resolver.lock:
            self.resolver.silent.add(name.lower())

    def reset(self) -> None:
        with self.resolver.lock:
            self.resolver.records.clear()
            self.resolver.silent.clear()
            self.resolver.queries.clear()

    def start(self) -> "FakeDns":
        self.server.start_thread()
        return self

    def stop(self) -> None:
        self.server.stop()
        self.server.server.server_close()
