"""Tokens and light formatting: what reaches the HTML and the text part (no database)."""

from app.emails import render

VALUES = {
    "contact.first_name": "Vera",
    "contact.last_name": "Visitor",
    "contact.company": "**Initech** <b>",
    "contact.email": "vera@example.org",
    "rep.name": "Rita Rep",
    "rep.title": "AE",
    "rep.email": "rita@acme.example",
}
LINKS = {
    None: "https://book.acme.example/meetings/rita?ref=abc",
    7: "http://app.test/meetings/rita/demo?ref=abc",
}


def test_scan_sorts_fields_links_and_unknown_tokens():
    found = render.scan("{{ contact.first_name }} {{meeting_link}} {{ meeting_link:7 }}", "{{ deal.value }}")
    assert found.fields == {"contact.first_name"}
    assert found.links == {None, 7}
    assert found.unknown == ("{{ deal.value }}",)


def test_link_tokens_are_written_as_page_references():
    assert render.link_token(None) == "{{ meeting_link }}"
    assert render.link_token(42) == "{{ meeting_link:42 }}"


def test_body_becomes_paragraphs_bold_and_links_in_html_and_text():
    body = (
        "Hi {{ contact.first_name }},\n\nBook: {{ meeting_link }}\n"
        "or [the demo]({{ meeting_link:7 }}).\n\n**{{ rep.name }}**"
    )
    out = render.render("For {{ contact.company }}", body, VALUES, LINKS)
    assert out.subject == "For **Initech** <b>"
    assert out.html == (
        "<p>Hi Vera,</p>\n"
        '<p>Book: <a href="https://book.acme.example/meetings/rita?ref=abc">'
        "https://book.acme.example/meetings/rita?ref=abc</a><br>\n"
        'or <a href="http://app.test/meetings/rita/demo?ref=abc">the demo</a>.</p>\n'
        "<p><strong>Rita Rep</strong></p>\n"
    )
    assert out.text == (
        "Hi Vera,\n\nBook: https://book.acme.example/meetings/rita?ref=abc\n"
        "or the demo (http://app.test/meetings/rita/demo?ref=abc).\n\nRita Rep\n"
    )


def test_markup_from_the_writer_or_a_contact_is_shown_not_run():
    body = (
        "<script>alert(1)</script> {{ contact.company }} [x](javascript:alert(1)) "
        "<img src=x onerror=alert(1)>"
    )
    out = render.render("s", body, VALUES, LINKS)
    assert "<script" not in out.html
    assert "<img" not in out.html
    assert "<b>" not in out.html
    assert 'href="javascript' not in out.html
    assert "&lt;script&gt;" in out.html
    assert "**Initech** &lt;b&gt;" in out.html  # a contact's asterisks are not bold
    assert "<script>alert(1)</script>" in out.text


def test_a_value_with_a_line_break_cannot_split_the_subject():
    out = render.render(
        "Hi {{ contact.first_name }}", "x", {**VALUES, "contact.first_name": "A\r\nBcc: x"}, {}
    )
    assert "\n" not in out.subject
    assert "\r" not in out.subject
