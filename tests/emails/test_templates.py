"""The template list and editor: create, edit, duplicate, delete, search; who may change what; isolation."""

import sqlalchemy as sa

from app.emails.models import EmailTemplate
from app.extensions import db
from tests.helpers import error_fields, snapshot


def _templates(app) -> dict[str, EmailTemplate]:
    with app.app_context():
        rows = db.session.scalars(sa.select(EmailTemplate)).all()
        db.session.expunge_all()
        return {row.name: row for row in rows}


def test_the_list_shows_the_team_templates_and_my_own_not_a_colleagues(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    page = rep.get("/emails/templates").get_data(as_text=True)
    assert "Team intro" in page
    assert "Rita&#39;s follow-up" in page
    assert "Carl&#39;s secret" not in page
    assert "Globex team" not in page


def test_search_matches_name_subject_and_text_and_htmx_gets_only_the_list(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    response = rep.get("/emails/templates?q=follow", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert body.startswith('\n<div id="template-list">') or body.lstrip().startswith(
        '<div id="template-list">'
    )
    assert "Rita&#39;s follow-up" in body
    assert "Team intro" not in body
    assert "Team intro" in rep.get("/emails/templates?q=book+a+time").get_data(as_text=True)
    assert "No template matches" in rep.get("/emails/templates?q=100%25_").get_data(as_text=True)


def test_a_rep_writes_a_personal_template_with_a_meeting_link_inserted(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    form = rep.get("/emails/templates/new").get_data(as_text=True)
    # Insert meeting link offers the rep's pages with the default page preselected (P3).
    assert '<option selected value="">My default page</option>' in form
    assert f'<option value="{mailroom.demo_id}">Product demo</option>' in form
    inserted = rep.post_form(
        "/emails/templates/new",
        {
            "name": "Demo invite",
            "subject": "Demo",
            "body": "See the demo:",
            "link_page": str(mailroom.demo_id),
            "action": "insert",
        },
    )
    assert inserted.status_code == 200
    assert f"See the demo:\n\n{{{{ meeting_link:{mailroom.demo_id} }}}}</textarea>" in inserted.get_data(
        as_text=True
    )
    assert "Demo invite" not in _templates(app)  # inserting saves nothing
    saved = rep.post_form(
        "/emails/templates/new",
        {
            "name": "Demo invite",
            "subject": "Demo for {{ contact.company }}",
            "body": f"See the demo:\n\n{{{{ meeting_link:{mailroom.demo_id} }}}}",
        },
    )
    assert saved.status_code == 303
    template = _templates(app)["Demo invite"]
    assert template.owner_id == mailroom.rep_id
    assert template.body.endswith(f"{{{{ meeting_link:{mailroom.demo_id} }}}}")
    assert "http" not in template.body  # a page reference, never a URL (D3)


def test_unknown_tokens_are_refused_at_save_naming_the_token(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    response = rep.post_form(
        "/emails/templates/new", {"name": "Bad", "subject": "Hi", "body": "Your deal: {{ deal.amount }}"}
    )
    assert response.status_code == 422
    assert error_fields(response) == {"body"}
    assert "{{ deal.amount }} is not a token Termin knows" in response.get_data(as_text=True)
    subject = rep.post_form(
        "/emails/templates/new", {"name": "Bad", "subject": "{{ contact.nickname }}", "body": "x"}
    )
    assert subject.status_code == 422
    assert error_fields(subject) == {"subject"}
    assert snapshot(app) == before


def test_subject_line_breaks_and_oversized_bodies_are_refused(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    broken = rep.post_form("/emails/templates/new", {"name": "X", "subject": "Hi\r\nBcc: all@x", "body": "x"})
    assert broken.status_code == 422
    assert error_fields(broken) == {"subject"}
    huge = rep.post_form("/emails/templates/new", {"name": "X", "subject": "Hi", "body": "x" * 20_001})
    assert huge.status_code == 422
    assert error_fields(huge) == {"body"}
    assert "At most 20000 characters." in huge.get_data(as_text=True)
    assert snapshot(app) == before


def test_an_admin_writes_team_templates_and_a_rep_cannot_change_them(app, mailroom, signed_in):
    admin = signed_in(mailroom.admin_email)
    created = admin.post_form(
        "/emails/templates/new?team=1",
        {"name": "Team follow-up", "subject": "Hi", "body": "{{ meeting_link }}"},
    )
    assert created.status_code == 303
    assert _templates(app)["Team follow-up"].owner_id is None
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    team = mailroom.team_template_id
    assert rep.get("/emails/templates/new?team=1").status_code == 403
    assert (
        rep.post_form("/emails/templates/new?team=1", {"name": "T", "subject": "s", "body": "b"}).status_code
        == 403
    )
    assert rep.get(f"/emails/templates/{team}/edit").status_code == 403
    assert (
        rep.post_form(
            f"/emails/templates/{team}/edit", {"name": "Mine now", "subject": "s", "body": "b"}
        ).status_code
        == 403
    )
    assert rep.post_form(f"/emails/templates/{team}/delete").status_code == 403
    assert snapshot(app) == before
    assert 'class="edit-link"' not in rep.get("/emails/templates?q=team+intro").get_data(as_text=True)


def test_a_rep_duplicates_a_team_template_into_their_own_and_edits_it(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    response = rep.post_form(f"/emails/templates/{mailroom.team_template_id}/duplicate")
    assert response.status_code == 303
    copy = _templates(app)["Copy of Team intro"]
    assert copy.owner_id == mailroom.rep_id
    assert response.headers["Location"].endswith(f"/emails/templates/{copy.id}/edit")
    edited = rep.post_form(
        f"/emails/templates/{copy.id}/edit", {"name": "My intro", "subject": "s", "body": "b"}
    )
    assert edited.status_code == 303
    assert _templates(app)["My intro"].body == "b"


def test_the_owner_edits_and_deletes_a_personal_template(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    own = mailroom.own_template_id
    assert rep.get(f"/emails/templates/{own}/delete").status_code == 200
    assert rep.post_form(f"/emails/templates/{own}/delete").status_code == 303
    assert "Rita's follow-up" not in _templates(app)


def test_a_colleagues_and_another_tenants_templates_are_404(app, mailroom, signed_in):
    rep = signed_in(mailroom.rep_email)
    before = snapshot(app)
    for template_id in (mailroom.colleague_template_id, mailroom.other_template_id):
        assert rep.get(f"/emails/templates/{template_id}/edit").status_code == 404
        assert (
            rep.post_form(
                f"/emails/templates/{template_id}/edit", {"name": "x", "subject": "s", "body": "b"}
            ).status_code
            == 404
        )
        assert rep.post_form(f"/emails/templates/{template_id}/duplicate").status_code == 404
        assert rep.get(f"/emails/templates/{template_id}/delete").status_code == 404
        assert rep.post_form(f"/emails/templates/{template_id}/delete").status_code == 404
        assert rep.get(f"/crm/contacts/{mailroom.contact_id}/email?template={template_id}").status_code == 404
    assert snapshot(app) == before
    admin = signed_in(mailroom.admin_email)
    assert admin.get(f"/emails/templates/{mailroom.other_template_id}/edit").status_code == 404
    assert admin.get(f"/emails/templates/{mailroom.colleague_template_id}/edit").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(app, mailroom, client):
    assert client.get("/emails/templates").status_code in (302, 303)
    assert client.get(f"/crm/contacts/{mailroom.contact_id}/email").status_code in (302, 303)


def test_the_editor_is_in_polish_for_a_polish_rep(app, mailroom, signed_in):
    with app.app_context():
        from app.tenants.models import User

        db.session.get(User, mailroom.rep_id).locale = "pl"
        db.session.commit()
    rep = signed_in(mailroom.rep_email)
    page = rep.get("/emails/templates/new").get_data(as_text=True)
    assert "Wstaw link do spotkania" in page
