"""English is the source language; Polish comes from translations/pl. The language is chosen by ?lang
(remembered in the session), then by Accept-Language."""

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations"
POLISH_PO = TRANSLATIONS / "pl" / "LC_MESSAGES" / "messages.po"
POLISH_MO = POLISH_PO.with_suffix(".mo")
POLISH_PLURAL_FORMS = "nplurals=3; plural=(n==1 ? 0 : n%10>=2 && n%10<=4 && (n%100<10 || n%100>=20) ? 1 : 2);"
POLISH_TITLE = "Zaloguj się do aplikacji Termin"
ENGLISH_TITLE = "Sign in to Termin"
PLACEHOLDER = re.compile(r"%\(\w+\)[a-z]")  # %(name)s, %(min)d, ...


@pytest.fixture
def client(client):
    """The app-host client, once the Polish catalog is compiled (the .mo is built, not committed)."""
    if not POLISH_MO.is_file():
        missing = POLISH_MO.relative_to(TRANSLATIONS.parent)
        pytest.fail(f"{missing} is missing: run make test (it compiles translations)", pytrace=False)
    return client


def login_page(client, **kwargs) -> str:
    response = client.get("/login", **kwargs)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_accept_language_pl_renders_the_login_page_in_polish(client):
    page = login_page(client, headers={"Accept-Language": "pl"})

    assert '<html lang="pl">' in page
    assert POLISH_TITLE in page  # a template string
    assert "Nie wylogowuj mnie" in page  # form label, a lazy_gettext string from app/
    assert "Hasło" in page
    assert ENGLISH_TITLE not in page
    assert "Keep me signed in" not in page


def test_accept_language_prefers_the_best_match(client):
    page = login_page(client, headers={"Accept-Language": "de-DE,pl;q=0.8,en;q=0.5"})

    assert POLISH_TITLE in page


def test_accept_language_en_renders_the_login_page_in_english(client):
    page = login_page(client, headers={"Accept-Language": "en-GB,en;q=0.9"})

    assert '<html lang="en">' in page
    assert ENGLISH_TITLE in page
    assert "Keep me signed in" in page
    assert "Zaloguj" not in page


def test_unsupported_language_falls_back_to_english(client):
    page = login_page(client, headers={"Accept-Language": "de"})

    assert ENGLISH_TITLE in page


def test_lang_parameter_switches_language_and_sticks_for_the_session(client):
    english, polish = {"Accept-Language": "en"}, {"Accept-Language": "pl"}

    assert POLISH_TITLE in login_page(client, query_string={"lang": "pl"}, headers=english)
    # The choice is kept in the session and outranks Accept-Language from then on...
    assert POLISH_TITLE in login_page(client, headers=english)
    # ...until the person switches back.
    assert ENGLISH_TITLE in login_page(client, query_string={"lang": "en"}, headers=polish)
    assert ENGLISH_TITLE in login_page(client, headers=polish)


def test_unknown_lang_parameter_is_ignored(client):
    page = login_page(client, query_string={"lang": "xx"}, headers={"Accept-Language": "pl"})

    assert POLISH_TITLE in page


def read_polish_catalog():
    with POLISH_PO.open("rb") as po:
        return read_po(po, locale="pl")


def test_polish_catalog_has_the_polish_plural_rule():
    catalog = read_polish_catalog()

    assert dict(catalog.mime_headers)["Plural-Forms"] == POLISH_PLURAL_FORMS


def test_every_polish_message_is_translated_with_the_same_placeholders():
    catalog = read_polish_catalog()
    messages = [message for message in catalog if message.id]
    assert messages, f"{POLISH_PO} has no messages"

    problems = []
    for message in messages:
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        expected = set(PLACEHOLDER.findall(" ".join(ids)))
        if message.fuzzy:
            problems.append(f"fuzzy: {ids[0]!r}")
        if not all(strings):
            problems.append(f"untranslated: {ids[0]!r}")
            continue
        for string in strings:
            if set(PLACEHOLDER.findall(string)) != expected:
                problems.append(f"placeholders differ: {ids[0]!r} -> {string!r}")

    assert not problems, "\n".join(problems)


def test_every_marked_string_in_the_code_is_in_the_polish_catalog():
    """A new `_()` string fails here until `make translations-update` brings it in and it is translated."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    root = TRANSLATIONS.parent
    with (root / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {"_": None, "gettext": None, "_l": None, "lazy_gettext": None, "ngettext": (1, 2)}
    in_code = {
        message if isinstance(message, str) else message[0]
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            root, method_map, options_map, keywords=keywords
        )
    }
    with POLISH_PO.open("rb") as po:
        translated = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(po) if m.id and m.string}
    assert in_code, "the extractor found no strings at all"
    assert sorted(in_code - translated) == []
