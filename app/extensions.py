"""Extension objects, created unbound; create_app() binds them to an app."""

import sqlite3

from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
babel = Babel()
# Limits are declared on the views (app/web/limits.py); none applies to a route that does not ask for one.
limiter = Limiter(key_func=get_remote_address)

# SQLite (the embedded demo) has one writer at a time; a writer that finds the write lock taken waits up to
# this long for it instead of failing with "database is locked" (a 500). A booking holds the lock for
# milliseconds, a demo calendar sync for a second or two.
SQLITE_BUSY_TIMEOUT_MS = 30_000


@event.listens_for(Engine, "connect")
def _sqlite_busy_timeout(dbapi_connection, connection_record) -> None:
    """Give every SQLite connection the busy timeout (pysqlite's own default is 5 s).

    The transaction mode is left as pysqlite has it on purpose: reads run outside any transaction and
    the first write issues BEGIN, so a transaction's first write (the booking lock,
    ``pages.services._lock_owner``) waits for the write lock with this timeout. An explicit deferred
    BEGIN at the start of every transaction would break that: a transaction that has read holds a shared
    lock, and SQLite refuses its upgrade to a writer at once (SQLITE_BUSY, no waiting) while another
    writer holds the lock, so a concurrent booking would answer "database is locked".
    tests/pages/test_sqlite_booking.py races bookings to prove it.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
