"""The embedded demo's own CalDAV server: Radicale on 127.0.0.1, its data under instance/radicale.

``make run`` starts it before serving and stops it after, so the demo rep's settings page shows a real
connection: a main calendar (where bookings go) and a "Team" calendar with a few busy events.

The server is this checkout's own: it listens on a free port picked at its first start and kept in
``instance/radicale/port`` (so the stored connection keeps working across runs), and a server is only
reused when its pid file names a live process of ours answering on that port. Whatever else answers
there (another clone's demo, an earlier run's orphan) is never talked to: a new port is picked.
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

HOST = "127.0.0.1"
# The servers this process started, by instance path: stop() reaps them (the CLI that starts one for
# `make run` exits and leaves it running, which is the point; the pid file finds it then).
_children: dict[str, subprocess.Popen] = {}
USER, PASSWORD = "rita", "demo-caldav-pass"
CALENDARS = {"work": "Work", "team": "Team"}


def _paths(instance_path: str) -> dict[str, Path]:
    root = Path(instance_path) / "radicale"
    return {
        "root": root,
        "config": root / "config",
        "users": root / "users",
        "pid": root / "pid",
        "port": root / "port",
        "log": root / "radicale.log",
        "collections": root / "collections",
    }


def port(instance_path: str) -> int | None:
    """The port this checkout's Radicale listens (or listened) on, or None before its first start."""
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(_paths(instance_path)["port"].read_text())
    return None


def base_url(instance_path: str) -> str:
    return f"http://{HOST}:{port(instance_path)}"


def _answers(on_port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.3)
        return probe.connect_ex((HOST, on_port)) == 0


def _free_port() -> int:
    with socket.socket() as holder:
        holder.bind((HOST, 0))
        return holder.getsockname()[1]


def _our_pid(instance_path: str) -> int | None:
    """The pid in our pid file when that process is alive (not a stale file)."""
    pid_file = _paths(instance_path)["pid"]
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (FileNotFoundError, ValueError, ProcessLookupError, PermissionError):
        return None
    return pid


def running(instance_path: str) -> bool:
    """True when our own Radicale is up: our live process, answering on our port."""
    kept = port(instance_path)
    return kept is not None and _our_pid(instance_path) is not None and _answers(kept)


def start(instance_path: str) -> bool:
    """Start this checkout's Radicale unless it already runs; True when this call started it.

    Keeps the port of the last start when it is free, else picks a free one (and remembers it).
    """
    if running(instance_path):
        return False
    paths = _paths(instance_path)
    paths["collections"].mkdir(parents=True, exist_ok=True)
    kept = port(instance_path)
    listen = kept if kept is not None and not _answers(kept) else _free_port()
    paths["port"].write_text(str(listen))
    paths["users"].write_text(f"{USER}:{PASSWORD}\n")
    paths["config"].write_text(
        f"[server]\nhosts = {HOST}:{listen}\n"
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
    _children[instance_path] = process
    for _ in range(100):
        if process.poll() is not None:
            break
        if _answers(listen):
            return True
        time.sleep(0.1)
    process.kill()
    process.wait()
    _children.pop(instance_path, None)
    raise RuntimeError(f"Radicale did not start on port {listen}; see {paths['log']}")


def stop(instance_path: str) -> None:
    pid_file = _paths(instance_path)["pid"]
    pid = _our_pid(instance_path)
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    child = _children.pop(instance_path, None)
    if child is not None:
        child.wait(timeout=10)
    pid_file.unlink(missing_ok=True)


def create_calendars(instance_path: str) -> None:
    """MKCALENDAR the demo calendars (once) and put a few busy events in Team, as its owner would."""
    if not running(instance_path):
        raise RuntimeError("the demo's Radicale is not running; `flask demo-calendar start`")
    auth = (USER, PASSWORD)
    for slug, name in CALENDARS.items():
        url = f"{base_url(instance_path)}/{USER}/{slug}/"
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
