"""One transaction per request and per job: the work runs, then the boundary commits once or rolls back.

Views, jobs and services never call ``db.session.commit()`` or ``rollback()`` (Indico's ``RH.process``
is the model). The boundary is

* for a request, ``TerminFlask.dispatch_request`` (app/web/boundary.py): the before-request hooks and the
  view run, the view's answer is turned into a response, then ``boundary`` commits. A view that returns
  (any status: a 422 form, a 503 "paused" that recorded the attempt) commits; one that raises (``abort``,
  a bug, a database error) rolls back. So the answer is built from values known before the commit, and a
  commit that fails becomes a 503 (app/web/outage.py), never a half-answered request.
* for a job, ``job`` around the job function (``app.queue.run`` for the demo and tests, the worker's job
  class for RQ).

After the commit, the work queued with ``call_after_commit`` runs (job dispatch, page-cache drops). It can
never turn the committed request into an error: a failure is logged, and the sweeper finds what was not
dispatched, since PostgreSQL holds what is due.

A job whose work must be durable in steps (claim, then work) calls ``checkpoint()`` between them.

A service that may refuse after it has started writing puts those writes in ``atomic()`` (a SAVEPOINT), so
its error leaves nothing behind while the boundary still commits whatever the caller did before.
"""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.extensions import db

log = logging.getLogger(__name__)
_AFTER_COMMIT = "termin.after_commit"


@contextmanager
def boundary() -> Iterator[None]:
    """Commit what the block did when it returns; roll it back when it raises (and re-raise)."""
    try:
        yield
        db.session.commit()
    except BaseException:
        rollback()
        raise


job = boundary  # a job's boundary is the same: ``with transaction.job(): run_the_job(...)``


def checkpoint() -> None:
    """Commit now, inside a job or command whose work must be durable before it goes on: a sync's claim on a
    calendar before the provider is called, one calendar's sync before the next one's. Views never do."""
    db.session.commit()


def rollback() -> None:
    """Roll back; a connection that is already gone has rolled back on the server, so that is only logged."""
    try:
        db.session.rollback()
    except Exception:
        log.warning("rollback failed (the database connection is gone)", exc_info=True)


def atomic() -> SessionTransaction:
    """``with atomic():`` around a service's writes: if it raises, they are undone (a SAVEPOINT)."""
    return db.session.begin_nested()


def call_after_commit(fn: Callable[[], None]) -> None:
    """Run ``fn`` once the current transaction commits; drop it if the transaction rolls back.

    For side effects that must not race the commit (a job reading the rows just written) or that must not
    happen if it rolls back. ``fn`` raising is logged, never raised: the transaction is already committed.
    """
    session = db.session()  # the real Session behind the scoped proxy
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released (``atomic``): SQLAlchemy says "commit", but nothing is committed yet
    for fn in session.info.pop(_AFTER_COMMIT, []):
        try:
            fn()
        except Exception:
            log.exception("after-commit work %r failed; the committed data stands (the sweeper retries)", fn)


@event.listens_for(Session, "after_transaction_end")
def _drop_after_rollback(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        # The outermost transaction ended without a commit (a commit has already run and emptied the list).
        session.info.pop(_AFTER_COMMIT, None)
