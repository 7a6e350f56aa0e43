"""A real Radicale (CalDAV) server on 127.0.0.1 for the CalDAV provider, behind a tiny fault proxy.

Radicale runs as a subprocess of this interpreter with htpasswd logins, a rights file and filesystem
storage in a temporary directory. Providers talk to ``FaultProxy``, which forwards to Radicale, counts
requests and can answer injected 429/503s or play a server without RFC 6578 sync-collection or the
free-busy-query REPORT. The test helpers (``RadicaleServer.put_event`` and friends) talk to Radicale
directly as the owning user, so they neither count as provider requests nor eat injected faults.

Radicale reads its rights file only at start-up, so withdrawing a share restarts it (on a new port;
the proxy's address, which the provider knows, stays). htpasswd is re-read on every login, so a
changed password takes effect at once.

Two fixtures: ``radicale_server`` (session; import it into a test module to use it) and
``caldav_harness`` (per test, the ProviderHarness the contract suite runs against). Both share one
server per pytest run, stopped at the end of the run.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from xml.sax.saxutils import escape

import icalendar
import pytest
from lxml import etree
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from app.sync.providers.caldav import CalDAVProvider
from tests.sync.harness import SeedAttendee

REP = "rep@example.com"
OWNER2 = "owner2@example.com"
PASSWORDS = {REP: "rep-caldav-pass", OWNER2: "owner2-caldav-pass"}
# rep's own calendars, and owner2's calendars rep is given read and free/busy-only access to
PRIMARY, SECOND = "calendar", "second"
SHARED, BUSY = "shared", "busy"
PERSON_PRODID = "-//Apple Inc.//macOS 14.4//EN"
INTEGRATION_PRODID = "-//zoom.us//iCalendar Event//EN"
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}
UNSUPPORTED_REPORT = (
    b'<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:supported-report/></D:error>'
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class FaultProxy:
    """Forwards to Radicale; counts requests; answers injected faults and plays missing REPORTs."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.lock = threading.Lock()
        self.count = 0
        self.faults: list[tuple[int, int | None]] = []
        self.sync_collection = True
        self.freebusy_report = True
        # resource path -> iCalendar text served in its place (a server that stores anything it is sent)
        self.served_instead: dict[str, str] = {}
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=_QuietHandler)
        self.url = f"http://127.0.0.1:{self.server.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="radicale-proxy", daemon=True)
        self.thread.start()

    def reset(self) -> None:
        """No pending faults, every REPORT supported, objects served as stored."""
        with self.lock:
            self.faults.clear()
        self.sync_collection = True
        self.freebusy_report = True
        self.served_instead = {}

    def fail_next(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and Retry-After when given)."""
        with self.lock:
            self.faults.extend([(status, retry_after)] * count)

    def close(self) -> None:
        """Stop serving and close the listening socket."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def app(self, environ, start_response):
        request = Request(environ)
        body = request.get_data()
        with self.lock:
            self.count += 1
            fault = self.faults.pop(0) if self.faults else None
        if fault is not None:
            status, retry_after = fault
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return Response("injected fault\n", status=status, headers=headers)(environ, start_response)
        if request.method == "REPORT" and (
            (not self.sync_collection and b"sync-collection" in body)
            or (not self.freebusy_report and b"free-busy-query" in body)
        ):
            # What RFC 3253 prescribes for a REPORT the resource does not support.
            answer = Response(UNSUPPORTED_REPORT, status=403, content_type="application/xml; charset=utf-8")
            return answer(environ, start_response)
        status, headers, content = self._forward(request, body)
        if self.served_instead and status in (200, 207):
            content = self._substitute(request, status, content)
        return Response(content, status=status, headers=headers)(environ, start_response)

    def _substitute(self, request: Request, status: int, content: bytes) -> bytes:
        wanted = {unquote(path): text for path, text in self.served_instead.items()}
        if request.method == "GET":
            return wanted.get(unquote(request.path), "").encode() or content
        if request.method != "REPORT":
            return content
        tree = etree.fromstring(content)
        for response in tree.iter("{DAV:}response"):
            text = wanted.get(unquote(response.findtext("{DAV:}href") or ""))
            data = response.find(".//{urn:ietf:params:xml:ns:caldav}calendar-data")
            if text is not None and data is not None:
                data.text = text
        return etree.tostring(tree, xml_declaration=True, encoding="utf-8")

    def _forward(self, request: Request, body: bytes):
        # The path exactly as the client spelled it: Radicale, not werkzeug, decides what it means.
        path = request.environ.get("RAW_URI") or quote(request.path)
        # Identity encoding, so that served_instead can read and rewrite the answers.
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "accept-encoding"
        }
        connection = http.client.HTTPConnection("127.0.0.1", self.target_port, timeout=30)
        try:
            connection.request(request.method, path, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
            return answer.status, kept, content
        finally:
            connection.close()


@dataclass
class RadicaleServer:
    """One Radicale process, its files, and helpers that act as the calendars' owners would."""

    root: Path
    passwords: dict[str, str] = field(default_factory=lambda: dict(PASSWORDS))
    # collection path -> Radicale permissions granted to REP ("r" read, "f" free/busy only)
    shares: dict[str, str] = field(default_factory=dict)
    port: int = 0
    process: subprocess.Popen | None = None
    proxy: FaultProxy | None = None
    _log: object | None = None

    @property
    def url(self) -> str:
        """What providers connect to: the fault proxy, without a trailing slash."""
        assert self.proxy is not None
        return self.proxy.url

    @property
    def direct_url(self) -> str:
        """Radicale itself, bypassing the proxy's counting and faults."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def users(self) -> tuple[str, ...]:
        """The logins, REP first."""
        return tuple(self.passwords)

    # -- process --

    def start(self) -> None:
        """Write the config files, start Radicale and the proxy in front of it."""
        (self.root / "collections").mkdir(parents=True, exist_ok=True)
        self.write_users()
        self.write_rights()
        self._launch()
        self.proxy = FaultProxy(self.port)

    def _launch(self) -> None:
        self.port = free_port()
        config = self.root / "config"
        config.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {self.root / 'users'}\n"
            "htpasswd_encryption = plain\ndelay = 0\n"
            f"[rights]\ntype = from_file\nfile = {self.root / 'rights'}\n"
            f"[storage]\nfilesystem_folder = {self.root / 'collections'}\n"
            "[web]\ntype = none\n"
            "[logging]\nlevel = warning\n"
        )
        self._log = (self.root / "radicale.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError):
                status, _, _ = self._http("", "OPTIONS", "/")
                if status < 500:
                    if self.proxy is not None:
                        self.proxy.target_port = self.port
                    return
            time.sleep(0.05)
        log = (self.root / "radicale.log").read_text(errors="replace")[-2000:]
        self._terminate()
        raise RuntimeError(f"Radicale did not start:\n{log}")

    def _terminate(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        """Stop Radicale and start it again on a new port (the proxy follows)."""
        self._terminate()
        self._launch()

    def close(self) -> None:
        """Stop the proxy and Radicale and delete the files."""
        if self.proxy is not None:
            self.proxy.close()
            self.proxy = None
        self._terminate()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- logins and rights --

    def write_users(self) -> None:
        """Write the htpasswd file (plain passwords: Radicale 3.9 needs no extra package for those)."""
        lines = "".join(f"{login}:{password}\n" for login, password in self.passwords.items())
        (self.root / "users").write_text(lines)

    def set_password(self, login: str, password: str) -> None:
        """Change ``login``'s password; Radicale re-reads htpasswd on the next login."""
        self.passwords[login] = password
        self.write_users()

    def write_rights(self) -> None:
        """Owners rule their own home; REP gets ``shares`` on other users' collections."""
        # First match wins: the shares come before the owner rules.
        sections = ["[root]\nuser: .+\ncollection:\npermissions: R\n"]
        for n, (path, permissions) in enumerate(sorted(self.shares.items())):
            sections.append(
                f"[share{n}]\nuser: {_regex(REP)}\ncollection: {_regex(path)}\npermissions: {permissions}\n"
            )
        sections.append("[principal]\nuser: .+\ncollection: {user}\npermissions: RW\n")
        sections.append("[calendars]\nuser: .+\ncollection: {user}/[^/]+\npermissions: rw\n")
        (self.root / "rights").write_text("\n".join(sections))

    def set_shares(self, shares: dict[str, str]) -> None:
        """Replace REP's grants on other users' collections; restarts Radicale when they change."""
        if shares != self.shares:
            self.shares = dict(shares)
            self.write_rights()
            self.restart()

    # -- HTTP as a user, straight to Radicale --

    def _http(self, login: str, method: str, target: str, body: bytes | str = b"", headers=None):
        path = urlsplit(target).path if "://" in target else target
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        sent = {"Content-Type": "application/xml; charset=utf-8", **(headers or {})}
        if login:
            token = base64.b64encode(f"{login}:{self.passwords[login]}".encode()).decode()
            sent["Authorization"] = f"Basic {token}"
        try:
            connection.request(
                method, path, body=body.encode() if isinstance(body, str) else body, headers=sent
            )
            answer = connection.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read()
        finally:
            connection.close()

    def request(self, login: str, method: str, target: str, body: bytes | str = b"", headers=None):
        """Send one request as ``login``; returns (status, headers, body) and fails on 5xx."""
        status, answer_headers, content = self._http(login, method, target, body, headers)
        assert status < 500, f"{method} {target} -> {status}: {content[:500]!r}"
        return status, answer_headers, content

    # -- collections and events --

    def calendar_url(self, login: str, slug: str) -> str:
        """The calendar's URL as providers see it (through the proxy), with a trailing slash."""
        return f"{self.url}/{quote(login)}/{quote(slug)}/"

    def make_calendar(self, login: str, slug: str, name: str | None = None) -> str:
        """MKCALENDAR as ``login``; returns the proxy URL."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>'
            f"{escape(name or slug.title())}</D:displayname></D:prop></D:set></C:mkcalendar>"
        )
        status, _, content = self.request(login, "MKCALENDAR", f"/{quote(login)}/{quote(slug)}/", body)
        assert status == 201, content
        return self.calendar_url(login, slug)

    def children(self, login: str, collection: str) -> list[str]:
        """Paths of the members of ``collection`` (a URL or path) that ``login`` can see."""
        body = (
            '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:resourcetype/></D:prop></D:propfind>'
        )
        path = urlsplit(collection).path
        status, _, content = self.request(login, "PROPFIND", path, body, {"Depth": "1"})
        if status != 207:
            return []
        hrefs = etree.fromstring(content).iter("{DAV:}href")
        return [h.text for h in hrefs if h.text and unquote(h.text).rstrip("/") != unquote(path).rstrip("/")]

    def delete(self, login: str, target: str) -> int:
        """DELETE ``target`` as ``login``; returns the status."""
        status, _, _ = self.request(login, "DELETE", target)
        return status

    def reset_home(self, login: str, calendars: dict[str, str]) -> None:
        """Delete every collection in ``login``'s home and create ``calendars`` (slug -> name) anew."""
        for child in self.children(login, f"/{quote(login)}/"):
            self.delete(login, child)
        for slug, name in calendars.items():
            self.make_calendar(login, slug, name)

    def put_event(self, calendar: str, ics: str, name: str | None = None) -> str:
        """PUT ``ics`` into ``calendar`` as its owner; returns the resource path."""
        path = urlsplit(calendar).path
        target = f"{path}{quote(name or f'{uuid.uuid4()}.ics')}"
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        status, _, content = self.request(owner_of(calendar), "PUT", target, ics, headers)
        assert status in (201, 204), content
        return target

    def objects(self, calendar: str) -> list[tuple[str, str]]:
        """(path, iCalendar text) of every object in ``calendar``, read as its owner."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop>'
            '<C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>'
        )
        path = urlsplit(calendar).path
        status, _, content = self.request(owner_of(calendar), "REPORT", path, body, {"Depth": "1"})
        assert status == 207, content
        found = []
        for response in etree.fromstring(content).iter("{DAV:}response"):
            data = response.find(".//{urn:ietf:params:xml:ns:caldav}calendar-data")
            if data is not None and data.text:
                found.append((response.findtext("{DAV:}href"), data.text))
        return found

    def find(self, calendar: str, uid: str) -> tuple[str, icalendar.Calendar]:
        for href, text in self.objects(calendar):
            parsed = icalendar.Calendar.from_ical(text)
            if any(str(e.get("UID")) == uid for e in parsed.walk("VEVENT")):
                return href, parsed
        raise LookupError(f"no event {uid} in {calendar}")

    def collection_dir(self, calendar: str) -> Path:
        """Where Radicale keeps ``calendar`` on disk."""
        parts = [unquote(p) for p in urlsplit(calendar).path.strip("/").split("/")]
        return self.root.joinpath("collections", "collection-root", *parts)

    def expire_sync_tokens(self, calendar: str) -> None:
        """Forget the collection's sync tokens, and change it so the old token cannot match anew.

        Radicale answers a token equal to the current state without looking it up, so forgetting alone
        is not enough: this is what a client sees after max_sync_token_age with changes in between.
        """
        shutil.rmtree(self.collection_dir(calendar) / ".Radicale.cache" / "sync-token", ignore_errors=True)
        scratch = self.put_event(calendar, person_ics(f"scratch-{uuid.uuid4()}", "scratch", _T, _T))
        self.delete(owner_of(calendar), scratch)


_T = datetime(2000, 1, 1, tzinfo=UTC)


def _regex(text: str) -> str:
    # Radicale formats rights patterns with str.format() before compiling them: double the braces.
    return re.escape(text).replace("{", "{{").replace("}", "}}")


def owner_of(calendar: str) -> str:
    return unquote(urlsplit(calendar).path.strip("/").split("/")[0])


def person_ics(
    uid: str,
    summary: str,
    start: datetime | date,
    end: datetime | date,
    *,
    organizer: str = "",
    attendees: tuple[SeedAttendee, ...] = (),
    transparent: bool = False,
    rrule: str | None = None,
    prodid: str = PERSON_PRODID,
    sequence: int = 0,
) -> str:
    """A VEVENT as a calendar app would write it."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    event = icalendar.Event()
    event.add("uid", uid)
    event.add("dtstamp", datetime.now(UTC).replace(microsecond=0))
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", summary)
    event.add("sequence", sequence)
    event.add("transp", "TRANSPARENT" if transparent else "OPAQUE")
    if rrule:
        event.add("rrule", icalendar.vRecur.from_ical(rrule.removeprefix("RRULE:")))
    if organizer:
        event.add("organizer", f"mailto:{organizer}")
    partstats = {"accepted": "ACCEPTED", "declined": "DECLINED", "tentative": "TENTATIVE"}
    for person in attendees:
        attendee = icalendar.vCalAddress(f"mailto:{person.email}")
        attendee.params["PARTSTAT"] = partstats.get(person.response, "NEEDS-ACTION")
        event.add("attendee", attendee)
    calendar.add_component(event)
    return calendar.to_ical().decode()


def _utc(value) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


class CalDAVHarness:
    """The ProviderHarness over Radicale: REP's account, seen through the fault proxy."""

    def __init__(self, server: RadicaleServer):
        self.server = server
        self.account_email = REP
        self.primary_id = server.calendar_url(REP, PRIMARY)
        self.second_id = server.calendar_url(REP, SECOND)
        self.shared_readonly_id = server.calendar_url(OWNER2, SHARED)
        # Radicale 3.7+ has the "f" permission: free/busy only (C:read-free-busy, free-busy-query).
        self.freebusy_id = server.calendar_url(OWNER2, BUSY)
        self.provider = CalDAVProvider(
            server.url + "/",
            REP,
            server.passwords[REP],
            allow_private=True,
            timeout=10,
            extra_calendar_urls=(self.shared_readonly_id, self.freebusy_id),
        )
        assert server.proxy is not None
        self._baseline = server.proxy.count

    def close(self) -> None:
        """Close the provider's connections."""
        self.provider.close()

    def seed_event(
        self,
        calendar_id: str,
        *,
        uid: str,
        summary: str,
        start: datetime,
        end: datetime,
        attendees: tuple[SeedAttendee, ...] = (),
        transparent: bool = False,
        all_day: bool = False,
        rrule: str | None = None,
        by_integration: bool = False,
    ) -> None:
        """PUT a new event as the calendar's owner, under a random name as calendar apps do."""
        ics = person_ics(
            uid,
            summary,
            start.date() if all_day else start,
            end.date() if all_day else end,
            organizer=owner_of(calendar_id) if attendees else "",
            attendees=attendees,
            transparent=transparent,
            rrule=rrule,
            prodid=INTEGRATION_PRODID if by_integration else PERSON_PRODID,
        )
        self.server.put_event(calendar_id, ics)

    def move_event(self, calendar_id: str, uid: str, start: datetime, end: datetime) -> None:
        href, parsed = self.server.find(calendar_id, uid)
        for event in parsed.walk("VEVENT"):
            for name, value in (("DTSTART", start), ("DTEND", end)):
                event.pop(name, None)
                event.add(name.lower(), value)
            event["SEQUENCE"] = int(event.get("SEQUENCE") or 0) + 1
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        status, _, content = self.server.request(
            owner_of(calendar_id), "PUT", href, parsed.to_ical(), headers
        )
        assert status in (201, 204), content

    def delete_event(self, calendar_id: str, uid: str) -> None:
        href, _ = self.server.find(calendar_id, uid)
        assert self.server.delete(owner_of(calendar_id), href) in (200, 204)

    def server_events(self, calendar_id: str) -> list[dict]:
        found = []
        for href, text in self.server.objects(calendar_id):
            parsed = icalendar.Calendar.from_ical(text)
            for event in parsed.walk("VEVENT"):
                attendees = event.get("ATTENDEE") or []
                attendees = attendees if isinstance(attendees, list) else [attendees]
                start = _utc(event.get("DTSTART").dt)
                end = _utc(event.get("DTEND").dt) if event.get("DTEND") is not None else start
                found.append(
                    {
                        "href": href,
                        "uid": str(event.get("UID")),
                        "summary": str(event.get("SUMMARY") or ""),
                        "start": start,
                        "end": end,
                        "attendees": [
                            str(a).removeprefix("mailto:").removeprefix("MAILTO:") for a in attendees
                        ],
                        "prodid": str(parsed.get("PRODID") or ""),
                    }
                )
        return found

    def withdraw_access(self, calendar_id: str) -> None:
        path = unquote(urlsplit(calendar_id).path).strip("/")
        self.server.set_shares({p: r for p, r in self.server.shares.items() if p != path})

    def expire_sync_state(self, calendar_id: str) -> None:
        self.server.expire_sync_tokens(calendar_id)

    def fail_next_requests(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        assert self.server.proxy is not None
        self.server.proxy.fail_next(status, count, retry_after)

    def revoke_grant(self) -> None:
        self.server.set_password(REP, f"changed-{uuid.uuid4().hex}")

    @property
    def request_count(self) -> int:
        assert self.server.proxy is not None
        return self.server.proxy.count - self._baseline


_STASH = pytest.StashKey[RadicaleServer]()
DEFAULT_SHARES = {f"{OWNER2}/{SHARED}": "r", f"{OWNER2}/{BUSY}": "f"}


def shared_server(request: pytest.FixtureRequest) -> RadicaleServer:
    """The run's one Radicale, started on first use and stopped when pytest finishes."""
    config = request.config
    server = config.stash.get(_STASH, None)
    if server is None:
        root = request.getfixturevalue("tmp_path_factory").mktemp("radicale")
        server = RadicaleServer(root=root, shares=dict(DEFAULT_SHARES))
        server.start()
        config.stash[_STASH] = server
        config.add_cleanup(server.close)
    return server


def reset(server: RadicaleServer) -> None:
    """Back to the starting world: passwords, shares, calendars and proxy behaviour."""
    assert server.proxy is not None
    server.proxy.reset()
    if server.passwords != PASSWORDS:
        server.passwords = dict(PASSWORDS)
        server.write_users()
    server.set_shares(dict(DEFAULT_SHARES))
    server.reset_home(REP, {PRIMARY: "Calendar", SECOND: "Second"})
    server.reset_home(OWNER2, {SHARED: "Team (shared)", BUSY: "Owner2 busy"})


@pytest.fixture(scope="session")
def radicale_server(request) -> RadicaleServer:
    """The running Radicale: ``url`` (through the proxy), ``passwords``, helpers acting as owners."""
    return shared_server(request)


@pytest.fixture
def caldav_harness(request):
    """A ProviderHarness for REP's account on a freshly reset Radicale."""
    server = shared_server(request)
    reset(server)
    harness = CalDAVHarness(server)
    yield harness
    harness.close()
