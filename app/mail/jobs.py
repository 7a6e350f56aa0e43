"""Job entry points for the outbox: thin wrappers that call the service (the job boundary commits once)."""

from app.db import utcnow
from app.mail import outbox


def deliver(outbox_id: int) -> None:
    """Deliver one outbox row if it is still pending and due; safe to run twice, or beside another worker."""
    outbox.deliver(outbox_id, now=utcnow())
