"""Meeting links to team pages (round robin, group) the rep is a member of: offered by *Insert meeting link*,
stored as a page reference, made into the page's current address when sent (D3), attributed when booked
through, and refused at preview once the page is gone, switched off, paused or no longer the rep's."""

import re
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from app.emails.models import SentEmail
from app.extensions import db
from app.pages import services as pages
from app.pages.models import Booking, PageMember, SchedulingPage
from app.tenants.models import Tenant, User
from tests import factories
from tests.helpers import error_fields, snapshot
from tests.pages.helpers import ACME_HOST, hidden, slot_starts


@dataclass(frozen=True)
class TeamLinks:
    team_id: int  # Acme's round robin of the rep and Carl, on ACME_HOST
    others_id: int  # Acme's group page without the rep
    globex_team_id: int  # Globex's team page


@pytest.fixture
def team_links(app, mailroom) -> TeamLinks:
    with app.app_context():
        acme = db.session.get(Tenant, mailroom.tenant_id)
        admin = db.session.scalar(sa.select(User).where(User.email == mailroom.admin_email))
        rep = db.session.get(User, mailroom.rep_id)
        carl = db.session.scalar(sa.select(User).where(User.email == mailroom.colleague_email))
        team = factories.make_page(
            admin,
            slug="sales-team",
            title="Talk to sales",
            kind="round_robin",
            domain_id=mailroom.domain_id,
            members=[{"user_id": rep.id}, {"user_id": carl.id}],
        )
        others = factories.make_page(
            admin, slug="carls-group", title="Carl and Ada", kind="group", members=[{"user_id": carl.id}]
        )
        globex = db.session.get(Tenant, mailroom.other_tenant_id)
        gus = db.session.scalar(sa.select(User).where(User.email == mailroom.other_rep_email))
        globex_admin = factories.make_user(globex, role="admin", email="gina@globex.example")
        globex_team = factories.make_page(
            globex_admin, slug="globex-team", title="Globex team", kind="round_robin",
            members=[{"user_id": gus.id}],
        )  # fmt: skip
        assert acme.id != globex.id
        db.session.commit()
        return TeamLinks(team.id, others.id, globex_team.id)


def _post(client, mailroom, action, **fields):
    return client.post_form(
        f"/crm/contacts/{mailroom.contact_id}/email", {"action": action, **fields}, htmx=True
    )


def _options(html: str) -> dict[str, str]:
    select = re.search(r'<select[^>]*name="link_page".*?</select>', html, re.S).group(0)
    return dict(re.findall(r'<option[^>]*value="([^"]*)"[^>]*>([^<]*)</option>', select))


def test_the_picker_offers_the_team_pages_the_rep_is_in_and_no_others(app, mailroom, team_links, signed_in):
    rep = signed_in(mailroom.rep_email)
    for html in (
        rep.get(f"/crm/contacts/{mailroom.contact_id}/email").get_data(as_text=True),
        rep.get("/emails/templates/new").get_data(as_text=True),
    ):
        options = _options(html)
        assert options[str(team_links.team_id)] == "Talk to sales"
        assert str(team_links.others_id) not in options  # a team page the rep is not in
        assert str(team_links.globex_team_id) not in options  # another tenant's
        assert options[""] == "My default page"  # still first and preselected (P3)
        assert '<optgroup label="Team pages I am in">' in html


def test_inserting_a_team_page_writes_its_reference_never_its_address(app, mailroom, team_links, signed_in):
    rep = signed_in(mailroom.rep_email)
    response = _post(rep, mailroom, "insert", subject="Hi", body="Book:", link_page=str(team_links.team_id))
    assert f"Book:\n\n{{{{ meeting_link:{team_links.team_id} }}}}" in response.get_data(as_text=True)
    assert "/meetings/team/" not in response.get_data(as_text=True)
    # A team page the rep is not in, or another tenant's, cannot be inserted: the default link is.
    for forged in (team_links.others_id, team_links.globex_team_id):
        body = _post(rep, mailroom, "insert", subject="Hi", body="", link_page=str(forged))
        assert f"meeting_link:{forged}" not in body.get_data(as_text=True)
    # A template keeps the reference as typed.
    saved = rep.post_form(
        "/emails/templates/new",
        {"name": "Team", "subject": "Hi", "body": f"Book: {{{{ meeting_link:{team_links.team_id} }}}}"},
    )
    assert saved.status_code == 303, saved.get_data(as_text=True)


def test_the_address_is_made_at_send_time_from_the_team_pages_current_slug_and_domain(
    app, mailroom, team_links, signed_in, sink
):
    rep = signed_in(mailroom.rep_email)
    body = f"Book: {{{{ meeting_link:{team_links.team_id} }}}}"
    assert _post(rep, mailroom, "send", subject="Hi", body=body).status_code == 200
    text = sink.messages[-1].get_body(("plain",)).get_content()
    assert re.search(rf"http://{ACME_HOST}/meetings/team/sales-team\?ref=[\w-]{{16}}", text)
    with app.app_context():
        page = db.session.get(SchedulingPage, team_links.team_id)
        page.slug, page.domain_id = "talk-to-sales", None
        db.session.commit()
    assert _post(rep, mailroom, "send", subject="Hi", body=body).status_code == 200
    text = sink.messages[-1].get_body(("plain",)).get_content()
    assert re.search(r"http://app\.termin\.test/meetings/team/talk-to-sales\?ref=[\w-]{16}", text)


def test_a_booking_through_a_team_link_records_the_email_whoever_gets_the_meeting(
    app, mailroom, team_links, signed_in, sink, make_client
):
    rep = signed_in(mailroom.rep_email)
    body = f"Book: {{{{ meeting_link:{team_links.team_id} }}}}"
    assert _post(rep, mailroom, "send", subject="Meet the team", body=body).status_code == 200
    link = re.search(r"(http://\S+\?ref=[\w-]{16})", sink.messages[-1].get_body(("plain",)).get_content())[1]
    path, ref = link.split(ACME_HOST, 1)[1].split("?ref=")
    visitor = make_client(ACME_HOST)
    start = slot_starts(visitor.get(path, query_string={"ref": ref, "day": "2030-01-07"}))[0]
    form = visitor.get(path, query_string={"ref": ref, "start": start, "tz": "Europe/Warsaw"})
    fields = {n: hidden(form, n) for n in ("csrf_token", "start", "duration", "tz", "idempotency_key", "ref")}
    assert fields["ref"] == ref
    booked = visitor.post(
        f"{path}/book",
        data={**fields, "first_name": "Vera", "last_name": "Visitor", "email": "vera@example.org"},
    )
    assert booked.status_code == 303, booked.get_data(as_text=True)
    with app.app_context():
        booking = db.session.scalar(sa.select(Booking))
        sent = db.session.scalar(sa.select(SentEmail))
        assert booking.page_id == team_links.team_id
        assert booking.sent_email_id == sent.id
    record = rep.get(f"/crm/contacts/{mailroom.contact_id}").get_data(as_text=True)
    assert "Booked from the email “Meet the team”" in record


@pytest.mark.parametrize("change", ["left", "deleted", "all_paused", "company_off", "other_tenant"])
def test_a_team_link_that_would_be_dead_is_caught_at_preview_and_never_sent(
    app, mailroom, team_links, signed_in, sink, change
):
    page_id = team_links.globex_team_id if change == "other_tenant" else team_links.team_id
    with app.app_context():
        page = db.session.get(SchedulingPage, team_links.team_id)
        if change == "left":
            db.session.execute(
                sa.delete(PageMember).where(
                    PageMember.page_id == page.id, PageMember.user_id == mailroom.rep_id
                )
            )
        elif change == "deleted":
            pages.delete_page(page.owner.tenant, page)
        elif change == "all_paused":
            for member in page.members:
                member.paused = True
        elif change == "company_off":
            page.owner.tenant.pages_disabled = True
        db.session.commit()
    words = {
        "left": "links to the team page “Talk to sales”, which you are no longer a member of",
        "deleted": "names a scheduling page you no longer have",
        "all_paused": "links to the team page “Talk to sales”, which cannot be booked now",
        "company_off": "links to the team page “Talk to sales”, which cannot be booked now",
        "other_tenant": "names a scheduling page you no longer have",
    }[change]
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    body = f"Book: {{{{ meeting_link:{page_id} }}}}"
    for action in ("preview", "send"):
        response = _post(rep, mailroom, action, subject="Hi", body=body)
        assert response.status_code == 422
        assert error_fields(response) == {"body"}
        assert words in response.get_data(as_text=True)
        assert "Globex team" not in response.get_data(as_text=True)
    assert snapshot(app) == before
    assert sink.messages == []
