"""Provider test peers, all on 127.0.0.1: each module exposes a ``*_harness`` fixture."""

from tests.fakes.google_calendar import google_harness  # noqa: F401
from tests.fakes.graph import graph_harness  # noqa: F401
from tests.fakes.radicale import caldav_harness, radicale_server  # noqa: F401
