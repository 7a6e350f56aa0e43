"""The embedded demo's own Radicale (issue 10 item 17): a free port of its own, kept in instance/, and never a
server it did not start, so two demos (two clones, or an earlier run still up) never share one."""

import socket

import pytest
import requests

from app import demo_calendar


@pytest.fixture
def foreign_server():
    """Something else listening on 127.0.0.1 (another clone's demo, say), on a port of its own."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def test_the_demo_radicale_picks_its_own_port_and_never_talks_to_a_foreign_server(tmp_path, foreign_server):
    ours, other = tmp_path / "ours", tmp_path / "other"
    # An earlier run used the port that now answers for someone else.
    (ours / "radicale").mkdir(parents=True)
    (ours / "radicale" / "port").write_text(str(foreign_server))
    try:
        assert demo_calendar.start(str(ours))
        port = demo_calendar.port(str(ours))
        assert port != foreign_server
        assert demo_calendar.base_url(str(ours)) == f"http://127.0.0.1:{port}"
        assert (ours / "radicale" / "port").read_text() == str(port)
        assert demo_calendar.running(str(ours))

        # Started again while it runs: the same server, the same port.
        assert not demo_calendar.start(str(ours))
        assert demo_calendar.port(str(ours)) == port

        # Another checkout gets a server of its own, on another port.
        assert demo_calendar.start(str(other))
        assert demo_calendar.port(str(other)) not in (port, foreign_server)

        demo_calendar.create_calendars(str(ours))
        answer = requests.request(
            "PROPFIND",
            f"{demo_calendar.base_url(str(ours))}/{demo_calendar.USER}/work/",
            auth=(demo_calendar.USER, demo_calendar.PASSWORD),
            headers={"Depth": "0"},
            timeout=5,
        )
        assert answer.status_code == 207
    finally:
        demo_calendar.stop(str(ours))
        demo_calendar.stop(str(other))
    assert not demo_calendar.running(str(ours))


def test_a_stale_pid_file_is_not_taken_for_a_running_server(tmp_path, foreign_server):
    """The pid file names a process that is gone and the port answers for someone else: not ours."""
    root = tmp_path / "radicale"
    root.mkdir()
    (root / "port").write_text(str(foreign_server))
    (root / "pid").write_text("999999999")
    assert not demo_calendar.running(str(tmp_path))
    with pytest.raises(RuntimeError, match="not running"):
        demo_calendar.create_calendars(str(tmp_path))
