"""The embedded demo's own CalDAV server: Radicale on 127.0.0.1, its data under instance/radicale.

``make run`` starts it before serving and stops it after, so the demo rep's settings page shows a real
connection: a main calendar (where bookings go) and a "Team" calendar with a few busy events.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import requests

HOST, PORT = "127.0.0.1", 5232
USER, PASSWORD = "rita", "demo-caldav-pass"
CALENDARS = {"work": "Work", "team": "Team"}


def _paths(instance_path: str) -> dict[str, Path]:
    root = Path(instance_path) / "radicale"
    return {
        "root": root,
        "config": root / "config",
        "users": root / "users",
        "pid": root / "pid",
        "log": root / "radicale.log",
        "collections": root / "collections",
    }


def base_url() -> str:
    return f"http://{HOST}:{PORT}"


def _answers() -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((HOST, PORT)) == 0


def start(instance_path: str) -> bool:
    """Start Radicale unless something already answers on its port; True when this call started it."""
    if _answers():
        return False
    paths = _paths(instance_path)
    paths["collections"].mkdir(parents=True, exist_ok=True)
    paths["users"].write_text(f"{USER}:{PASSWORD}\n")
    paths["config"].write_text(
        f"[server]\nhosts = {HOST}:{PORT}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {paths['users']}\nhtpasswd_encryption = plain\n"
        f"[rights]\ntype = owner_only\n"
        f"[storage]\nfilesystem_folder = {paths['collections']}\n"
        f"[logging]\nlevel = warning\n"
    )
    with paths["log"].open("ab") as log:
        process = subprocess.Popen(  # noqa: S603  (our own interpreter, our own config)
            [sys.executable, "-m", "radicale", "--config", str(paths["config"])],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    paths["pid"].write_text(str(process.pid))
    for _ in range(50):
        if _answers():
            return True
        time.sleep(0.1)
    raise RuntimeError(f"Radicale did not start; see {paths['log']}")


def stop(instance_path: str) -> None:
    pid_file = _paths(instance_path)["pid"]
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):  # already gone, or a stale file
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def create_calendars() -> None:
    """MKCALENDAR the demo calendars (once) and put a few busy events in Team, as its owner would."""
    auth = (USER, PASSWORD)
    for slug, name in CALENDARS.items():
        url = f"{base_url()}/{USER}/{slug}/"
        if requests.request("PROPFIND", url, auth=auth, headers={"Depth": "0"}, timeout=5).status_code == 207:
            continue
        body = (
            '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>'
            f"<D:displayname>{name}</D:displayname></D:prop></D:set></C:mkcalendar>"
        )
        requests.request("MKCALENDAR", url, auth=auth, data=body, timeout=5).raise_for_status()
        if slug == "team":
            _put_busy_events(url, auth)


def _put_busy_events(calendar_url: str, auth: tuple[str, str]) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for day, hour, title in [
        (1, 9, "Team stand-up"),
        (1, 13, "Pipeline review"),
        (2, 10, "Customer workshop"),
        (3, 14, "Quarterly planning"),
        (4, 8, "Sales training"),
    ]:
        start = today + timedelta(days=day, hours=hour)
        uid = f"{uuid.uuid4()}@demo.termin"
        ics = (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Demo Team//Calendar//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:{start:%Y%m%dT%H%M%SZ}\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\n"
            f"DTEND:{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}\r\nSUMMARY:{title}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n"
        )
        requests.put(
            f"{calendar_url}{uid}.ics",
            data=ics.encode(),
            auth=auth,
            timeout=5,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        ).raise_for_status()
