"""Sales email text: its tokens and its light formatting, turned into the HTML and text parts (pure code).

The body is Markdown cut down to what an email needs: paragraphs and line breaks, **bold**, *italic*,
links (``[text](https://...)`` and ``<https://...>``). Raw HTML is never passed through (it shows as typed)
and links go only to http, https and mailto addresses, so whatever a rep writes or a contact's name holds,
the HTML part cannot carry markup of their making (markdown-it-py, ``html`` off).

Tokens are ``{{ name }}``: the contact's and the rep's fields (``FIELD_TOKENS``) and meeting links,
``{{ meeting_link }}`` (the sender's default page) or ``{{ meeting_link:<page id> }}``. A field's value is
escaped for Markdown before it goes in, so ``**`` in a company name stays two asterisks. A meeting link on
its own becomes a link showing its address; as the target of ``[text](...)`` it is the target.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from markdown_it import MarkdownIt

FIELD_TOKENS = (
    "contact.first_name",
    "contact.last_name",
    "contact.company",
    "contact.email",
    "rep.name",
    "rep.title",
    "rep.email",
)
DEFAULT_LINK = "meeting_link"
TOKEN = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_MEETING_LINK = re.compile(r"meeting_link(?:\s*:\s*(\d{1,9}))?")
_MARKDOWN_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x85]+")
_LINK_SCHEMES = ("http://", "https://", "mailto:")


def link_token(page_id: int | None) -> str:
    """How a meeting link is written: the default page, or one page by its id."""
    return "{{ meeting_link }}" if page_id is None else f"{{{{ meeting_link:{page_id} }}}}"


@dataclass(frozen=True)
class Tokens:
    """What a text's tokens name: fields, meeting links (page ids; None for the default page), unknowns as
    written."""

    fields: frozenset[str]
    links: frozenset[int | None]
    unknown: tuple[str, ...]


def _link_of(name: str) -> tuple[bool, int | None]:
    match = _MEETING_LINK.fullmatch(name)
    if match is None:
        return False, None
    return True, int(match.group(1)) if match.group(1) else None


def scan(*texts: str) -> Tokens:
    fields, links, unknown = set(), set(), []
    for text in texts:
        for match in TOKEN.finditer(text):
            name = match.group(1)
            is_link, page_id = _link_of(name)
            if is_link:
                links.add(page_id)
            elif name in FIELD_TOKENS:
                fields.add(name)
            elif match.group(0) not in unknown:
                unknown.append(match.group(0))
    return Tokens(frozenset(fields), frozenset(links), tuple(unknown))


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str  # the body's HTML fragment (the caller wraps it in the email's document)
    text: str


def _markdown() -> MarkdownIt:
    md = MarkdownIt("zero", {"breaks": True, "html": False}).enable(
        ["emphasis", "link", "autolink", "escape", "newline"]
    )
    md.validateLink = lambda url: url.strip().lower().startswith(_LINK_SCHEMES)
    return md


_MD = _markdown()


def _escape(value: str) -> str:
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", _LINE_BREAKS.sub(" ", value))


def _substitute(text: str, values: Mapping[str, str], links: Mapping[int | None, str], *, markdown: bool):
    def replace(match: re.Match) -> str:
        name = match.group(1)
        is_link, page_id = _link_of(name)
        if is_link:
            url = links[page_id]
            if not markdown or text[max(match.start() - 2, 0) : match.start()] == "](":
                return url
            return f"<{url}>"
        value = values[name]
        return _escape(value) if markdown else _LINE_BREAKS.sub(" ", value)

    return TOKEN.sub(replace, text)


def render(subject: str, body: str, values: Mapping[str, str], links: Mapping[int | None, str]) -> Rendered:
    """The email as it goes out. ``values`` holds every field token, ``links`` the URL of every meeting
    link the texts name (``scan`` says which); a missing one is a KeyError, a bug of the caller's."""
    source = _substitute(body, values, links, markdown=True)
    return Rendered(
        subject=_LINE_BREAKS.sub(" ", _substitute(subject, values, links, markdown=False)).strip(),
        html=_MD.render(source),
        text=_text(_MD.parse(source)),
    )


def _text(tokens: Iterable) -> str:
    """The plain-text part: paragraphs apart by a blank line, a link as ``text (address)``."""
    paragraphs = []
    for token in tokens:
        if token.type != "inline":
            continue
        out: list[str] = []
        href, label_start = None, 0
        for child in token.children or ():
            if child.type == "text":
                out.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                out.append("\n")
            elif child.type == "link_open":
                href, label_start = child.attrGet("href"), len(out)
            elif child.type == "link_close" and href is not None:
                label = "".join(out[label_start:])
                if label not in (href, href.removeprefix("mailto:")):
                    out.append(f" ({href})")
                href = None
        paragraphs.append("".join(out))
    return "\n\n".join(paragraphs) + "\n"
