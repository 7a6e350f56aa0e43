"""The sweeper process: ``flask sweep`` (``--once``: one pass) or ``python -m workers.sweeper``.

Every ``SWEEP_INTERVAL_SECONDS`` it calls ``app.sweeper.sweep``, which queues again whatever the database says
is due and Redis does not hold (app/sweeper.py says how). SIGTERM or SIGINT stops it cleanly: a sweep under
way finishes, the wait between sweeps ends at once. Run one per deployment; a second one would only offer the
same jobs twice, which their stable ids and idempotent jobs make harmless.
"""

import logging
import signal
import threading

from flask import Flask

from app import create_app
from app.db import utcnow
from app.logs import configure_logging
from app.sweeper import run_forever, sweep

log = logging.getLogger(__name__)


def main(app: Flask | None = None, *, once: bool = False) -> dict[str, int] | None:
    """Sweep every SWEEP_INTERVAL_SECONDS until stopped, or once (returning the counts) with ``once``."""
    configure_logging()
    if app is None:
        app = create_app()
    if once:
        return sweep(app, utcnow())
    stop = threading.Event()

    def request_stop(signum, frame) -> None:
        log.info("sweeper stopping on %s", signal.Signals(signum).name)
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in (signal.SIGTERM, signal.SIGINT)}
    log.info("sweeper started: every %s s", app.config["SWEEP_INTERVAL_SECONDS"])
    try:
        run_forever(app, stop)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    log.info("sweeper stopped")
    return None


if __name__ == "__main__":
    main()
