"""The one DNS question Termin asks: which TXT strings sit at a name, through a configurable resolver.

``DNS_NAMESERVERS`` (comma-separated ``ip`` or ``ip:port``) picks the resolvers; empty means the system's
(/etc/resolv.conf). Tests point it at a dnslib server on loopback. ``DNS_TIMEOUT`` bounds the whole
lookup, retries included, so a dead resolver costs a request at most that long.
"""

from dataclasses import dataclass

import dns.exception
import dns.resolver
from flask import current_app

DEFAULT_TIMEOUT = 5.0


@dataclass(frozen=True)
class TxtLookup:
    """``status``: "found" (``values`` holds the strings), "missing" (no such name, or no TXT there) or
    "unreachable" (no answer in time, or every resolver failed): the last says nothing about the record."""

    status: str
    values: tuple[str, ...] = ()
    detail: str = ""


def _resolver() -> dns.resolver.Resolver:
    configured = (current_app.config.get("DNS_NAMESERVERS") or "").strip()
    if not configured:
        resolver = dns.resolver.Resolver()
    else:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers, ports = [], {}
        for entry in configured.split(","):
            host, _, port = (
                entry.strip().rpartition(":") if entry.count(":") == 1 else (entry.strip(), "", "")
            )
            resolver.nameservers.append(host)
            if port:
                ports[host] = int(port)
        resolver.nameserver_ports = ports
    resolver.lifetime = float(current_app.config.get("DNS_TIMEOUT") or DEFAULT_TIMEOUT)
    resolver.timeout = resolver.lifetime
    return resolver


def lookup_txt(name: str) -> TxtLookup:
    """The TXT strings at ``name`` (each record's character-strings joined, as RFC 7208 reads them)."""
    try:
        answer = _resolver().resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return TxtLookup("missing")
    except dns.exception.Timeout:
        return TxtLookup("unreachable", detail="timeout")
    except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration) as error:
        return TxtLookup("unreachable", detail=str(error)[:200])
    values = tuple(b"".join(record.strings).decode("utf-8", "replace") for record in answer)
    return TxtLookup("found", values)
