"""The worker process the runtime tests start: the production entry point plus the tests' slow outbox kind."""

import sys

from app.mail import outbox
from tests.workers.jobs import HANDLER, KIND
from workers.worker import main

if __name__ == "__main__":
    outbox.HANDLERS[KIND] = HANDLER
    main(burst="--burst" in sys.argv[1:])
