"""Two tenants with the chat widget on: Acme (a domain, an admin, a rep who answers, the rep's default
page on the app host and a page on the domain) and Globex with the same, invisible to Acme's visitors and
reps."""

from dataclasses import dataclass

import pytest

from app.chat import services as chat
from app.extensions import db
from app.pages import public
from tests import factories
from tests.pages.helpers import ACME_HOST, GLOBEX_HOST, NOW


@dataclass(frozen=True)
class Chatroom:
    tenant_id: int
    admin_email: str
    rep_id: int
    rep_email: str
    rep_slug: str
    widget_id: str
    intro_id: int  # the rep's default page, app host
    demo_id: int  # on ACME_HOST
    domain_id: int
    other_tenant_id: int
    other_rep_email: str
    other_widget_id: str
    other_page_id: int


def _tenant(name: str, host: str, seed: str):
    tenant = factories.make_tenant(name)
    admin = factories.make_user(tenant, role="admin", email=f"admin@{seed}.example", name=f"{name} Admin")
    rep = factories.make_user(tenant, seat="sales", email=f"rep@{seed}.example", name=f"{name} Rep")
    domain = factories.make_domain(tenant, host)
    intro = factories.make_page(rep, slug="intro", title="Intro call")
    demo = factories.make_page(rep, slug="demo", title="Product demo", domain_id=domain.id)
    chat.update_settings(
        tenant,
        admin,
        chat.WidgetSettings(
            enabled=True,
            welcome_message="Hello from " + name,
            color=None,
            position="right",
            language="en",
            booking_page_id=intro.id,
            ask_email_after_seconds=60,
            member_ids=(rep.id,),
        ),
    )
    return tenant, admin, rep, domain, intro, demo


@pytest.fixture
def chatroom(app, monkeypatch) -> Chatroom:
    monkeypatch.setattr(public, "utcnow", lambda: NOW)
    with app.app_context():
        acme, admin, rep, domain, intro, demo = _tenant("Acme", ACME_HOST, "acme")
        globex, _, gus, _, globex_intro, _ = _tenant("Globex", GLOBEX_HOST, "globex")
        db.session.commit()
        return Chatroom(
            acme.id,
            admin.email,
            rep.id,
            rep.email,
            rep.page_slug,
            chat.get_settings(acme).widget_id,
            intro.id,
            demo.id,
            domain.id,
            globex.id,
            gus.email,
            chat.get_settings(globex).widget_id,
            globex_intro.id,
        )
