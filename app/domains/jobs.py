"""Job: read one domain's TXT record again (the sweeper queues it when ``services.due_for_check`` says so)."""

import logging

from app.db import utcnow
from app.domains import services
from app.extensions import db
from app.tenants.models import Domain

log = logging.getLogger(__name__)


def check_domain(domain_id: int) -> None:
    domain = db.session.get(Domain, domain_id)
    if domain is None or domain.status == "removed":
        return
    before = domain.status
    services.verify_domain(domain, utcnow())
    if domain.status != before:
        log.info("domain %s (%s): %s -> %s", domain.id, domain.hostname, before, domain.status)
