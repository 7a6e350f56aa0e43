"""Extension objects, created unbound; create_app() binds them to an app. Plus the after-commit hook."""

from collections.abc import Callable

from flask_babel import Babel
from flask_htmx import HTMX
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.db import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
babel = Babel()


def call_after_commit(fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction commits; drop it if the transaction rolls back.

    Side effects (enqueueing a job that reads the rows we just wrote) must not race the commit.
    """
    session = db.session()  # the real Session behind the scoped proxy
    if not session.in_transaction():
        session.begin()
    session.info.setdefault("after_commit", []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    for fn in session.info.pop("after_commit", []):
        fn()


@event.listens_for(Session, "after_transaction_end")
def _drop_after_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        # The outermost transaction ended without a commit (a commit has already run and emptied the list).
        session.info.pop("after_commit", None)
