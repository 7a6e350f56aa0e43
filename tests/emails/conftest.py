"""Two tenants for the sales email tests: Acme's rep with a default page on the app host and a page on Acme's
domain, Acme's admin, a contact, a team template and the rep's own; Globex with the same, to be invisible."""

from dataclasses import dataclass

import pytest

from app.emails.models import EmailTemplate
from app.extensions import db
from app.pages import public
from tests import factories
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, NOW

TEAM_BODY = (
    "Hello {{ contact.first_name }},\n\nBook a time: {{ meeting_link }}\n\n"
    "**{{ rep.name }}**, {{ rep.title }}"
)


@dataclass(frozen=True)
class Mailroom:
    tenant_id: int
    admin_email: str
    rep_id: int
    rep_email: str
    rep_slug: str
    colleague_email: str
    intro_id: int  # the rep's default page, app host
    demo_id: int  # on ACME_HOST
    domain_id: int
    contact_id: int
    team_template_id: int
    own_template_id: int
    colleague_template_id: int
    other_tenant_id: int
    other_rep_email: str
    other_contact_id: int
    other_template_id: int
    other_page_id: int


def _template(tenant, owner, name, body=TEAM_BODY, subject="Hello {{ contact.first_name }}"):
    template = EmailTemplate(tenant_id=tenant.id, owner=owner, name=name, subject=subject, body=body)
    db.session.add(template)
    db.session.flush()
    return template


@pytest.fixture
def mailroom(app, monkeypatch) -> Mailroom:
    monkeypatch.setattr(public, "utcnow", lambda: NOW)
    with app.app_context():
        acme = factories.make_tenant("Acme")
        admin = factories.make_user(acme, role="admin", email="ada@acme.example", name="Ada Admin")
        rep = factories.make_user(acme, seat="sales", email="rita@acme.example", name="Rita Rep")
        rep.title = "Account executive"
        colleague = factories.make_user(acme, seat="sales", email="carl@acme.example", name="Carl")
        domain = factories.make_domain(acme, ACME_HOST)
        intro = factories.make_page(rep, slug="intro", title="Intro call")
        demo = factories.make_page(rep, slug="demo", title="Product demo", domain_id=domain.id)
        contact = factories.make_contact(
            acme, email="vera@example.org", first_name="Vera", last_name="Visitor", company="Initech"
        )
        team = _template(acme, None, "Team intro")
        own = _template(acme, rep, "Rita's follow-up", body="Hi {{ contact.first_name }}")
        theirs = _template(acme, colleague, "Carl's secret", body="Hi")
        globex = factories.make_tenant("Globex")
        gus = factories.make_user(globex, seat="sales", email="gus@globex.example")
        globex_domain = factories.make_domain(globex, GLOBEX_HOST)
        globex_page = factories.make_page(gus, slug="call", domain_id=globex_domain.id)
        globex_contact = factories.make_contact(globex, email="olga@example.org")
        globex_template = _template(globex, None, "Globex team")
        db.session.commit()
        return Mailroom(
            acme.id,
            admin.email,
            rep.id,
            rep.email,
            rep.page_slug,
            colleague.email,
            intro.id,
            demo.id,
            domain.id,
            contact.id,
            team.id,
            own.id,
            theirs.id,
            globex.id,
            gus.email,
            globex_contact.id,
            globex_template.id,
            globex_page.id,
        )
