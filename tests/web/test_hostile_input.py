"""No route answers 5xx to hostile input. The routes come from the app's URL map, so a route added later is
walked without being listed here: control characters in every path argument (404), ids beyond PostgreSQL's
integer on every ``<int:...>`` argument (404), hostile query strings, and every field of every form each page
shows (the CRM, account, sign-up, team, calendar, domain and page-editor forms, the booking pages)."""

import dataclasses
import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import lxml.html
import pytest

from app import create_app
from app.chat import services as chat
from app.db import utcnow
from app.emails import services as emails
from app.extensions import db
from app.tenants import services as tenants
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import APP_HOST, TEST_DATABASE_URL, Client, config_for_tests
from tests.pages.helpers import ACME_HOST, build_site, connect_caldav

# The chat widget on, so its panel and forms are walked (on the app host by id, on Acme's domain by host).
CHAT_ON = chat.WidgetSettings(
    enabled=True,
    welcome_message="Hi",
    color=None,
    position="right",
    language="en",
    booking_page_id=None,
    ask_email_after_seconds=60,
    member_ids=(),
)
ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")
CHECKED_METHODS = ("GET", "POST")

# Only to read the URL map at collection time; no request is served by it.
URL_MAP = create_app(config_for_tests(TEST_DATABASE_URL)).url_map


@dataclass(frozen=True)
class Route:
    rule: str
    endpoint: str
    methods: tuple[str, ...]
    arguments: dict[str, str]  # name -> converter

    @property
    def string_arguments(self) -> list[str]:
        return [name for name, converter in self.arguments.items() if converter != "int"]

    @property
    def int_arguments(self) -> list[str]:
        return [name for name, converter in self.arguments.items() if converter == "int"]

    def url(self, values: dict[str, str]) -> str:
        return ARGUMENT.sub(lambda m: str(values[m.group("name")]), self.rule)


def _routes() -> list[Route]:
    routes = []
    for rule in URL_MAP.iter_rules():
        arguments = {m.group("name"): m.group("converter") or "default" for m in ARGUMENT.finditer(rule.rule)}
        methods = tuple(m for m in CHECKED_METHODS if m in rule.methods)
        routes.append(Route(rule.rule, rule.endpoint, methods, arguments))
    return sorted(routes, key=lambda r: (r.rule, r.methods))


ROUTES = _routes()
GET_ROUTES = [r for r in ROUTES if "GET" in r.methods]


def _ids(route: Route) -> str:
    return f"{'+'.join(route.methods)} {route.rule}"


@dataclass
class World:
    """Acme's admin (signed in) owning one of everything each route names; Acme's public site."""

    values: dict[str, str]
    invitation_token: str
    booking_token: str
    public_endpoints: frozenset[str]
    on_domain: dict[str, str]  # what differs on Acme's domain: the page served there

    def path(self, route: Route, host: str = APP_HOST, **replaced) -> str:
        values = {**self.values, **(self.on_domain if host == ACME_HOST else {})}
        values["token"] = (
            self.invitation_token if route.endpoint.startswith("tenants.") else self.booking_token
        )
        return route.url({**values, **replaced})


@pytest.fixture
def walk(app, monkeypatch, signed_in, queued) -> tuple[World, Client]:
    # queued: jobs a request starts are handed over, not run; the walk is about the requests
    site = build_site(app, monkeypatch)
    with app.app_context():
        acme = db.session.get(Tenant, site.acme_id)
        admin = factories.make_user(acme, role="admin", seat="sales", email="ada@acme.example.com")
        contact = factories.make_contact(acme, email="carl@example.org")
        meeting = factories.make_meeting(acme, admin, [contact])
        task = factories.make_task(acme, admin, contact)
        issued = tenants.invite(acme, admin, email="new@acme.example.com", role="rep", seat="none", days=7)
        page = factories.make_page(admin, slug="walk", title="Walk call")
        template = emails.create_template(
            acme, admin, emails.TemplateData("Walk", "Hi", "Book: {{ meeting_link }}"), team=True
        )
        values = {
            "contact_id": contact.id,
            "meeting_id": meeting.id,
            "task_id": task.id,
            "invitation_id": issued.invitation.id,
            "user_id": site.acme_rep_id,
            "page_id": page.id,
            "template_id": template.id,
            "domain_id": site.acme_domain_id,
            "user_slug": admin.page_slug,
            "page_slug": page.slug,
            "provider": "google",
            "name": "htmx.min.js",
            "filename": "css/app.css",
            "color": "0b57d0",
        }
        chat.update_settings(
            acme, admin, dataclasses.replace(CHAT_ON, booking_page_id=page.id, member_ids=(admin.id,))
        )
        values["widget_id"] = chat.get_settings(acme).widget_id
        values["conversation_id"] = chat.visitor_says(acme, None, "Hello", utcnow()).conversation.id
        admin_id = admin.id
        db.session.commit()
    client = signed_in("ada@acme.example.com")
    booked = client.post(
        f"/meetings/{values['user_slug']}/walk/book",
        json={
            "start": "2030-01-07T10:00:00+01:00",
            "first_name": "Vera",
            "last_name": "Visitor",
            "email": "vera@example.org",
            "tz": "Europe/Warsaw",
        },
    )
    assert booked.status_code == 201, booked.get_json()
    booking = booked.get_json()["booking"]
    values["booking_id"] = booking["id"]
    with app.app_context():  # connected after the booking, which then need not be written to a calendar
        connection = connect_caldav(db.session.get(User, admin_id))
        values["connection_id"], values["calendar_id"] = connection.id, connection.calendars[0].id
        db.session.commit()
    public = frozenset(
        endpoint
        for endpoint, view in app.view_functions.items()
        if getattr(view, "termin_public", False) or endpoint == "static"
    )
    on_domain = {"user_slug": site.demo_path.split("/")[2], "page_slug": "demo"}
    world = World(values, issued.token, booking["manage_url"].rsplit("/", 1)[1], public, on_domain)
    return world, client


def _status(response) -> int:
    response.close()  # a file's response (static, assets) holds the file open until closed
    return response.status_code


def _request(client: Client, method: str, url: str, **kwargs):
    if method == "POST":
        return client.post(url, data={"csrf_token": client.csrf_token(), **kwargs.pop("data", {})}, **kwargs)
    return client.get(url, **kwargs)


# Who asks: the signed-in admin and an anonymous visitor on the app host, and a visitor on Acme's domain
# (which only reaches the public routes; everything else is a 404 there before any view runs).
ASKERS = ["admin", "visitor", "domain visitor"]


def _asker(walk, make_client, who: str) -> tuple[World, Client]:
    world, admin = walk
    if who == "admin":
        return world, admin
    return world, make_client(APP_HOST if who == "visitor" else ACME_HOST)


def _serves(world: World, client: Client, route: Route) -> bool:
    return client.host != ACME_HOST or route.endpoint in world.public_endpoints


# --- Paths ------------------------------------------------------------------------------------------------

PATH_CONTROLS = ["%00", "a%00b", "a%01b", "%0D%0ASet-Cookie:%20x=1", "a%7F", "%1B[31m"]


@pytest.mark.parametrize("who", ASKERS)
def test_control_characters_in_any_path_argument_are_404(walk, make_client, who):
    world, client = _asker(walk, make_client, who)
    wrong = []
    for route in ROUTES:
        for name in route.string_arguments:
            for value in PATH_CONTROLS:
                url = world.path(route, client.host, **{name: value})
                for method in route.methods:
                    status = _status(_request(client, method, url))
                    if status != 404:
                        wrong.append((method, url, status))
    assert wrong == []


HUGE_IDS = [2**31, 2**63, 10**30]


def test_ids_beyond_the_integer_range_are_404_on_every_int_route(walk):
    world, admin = walk
    wrong = []
    for route in ROUTES:
        for name in route.int_arguments:
            for value in HUGE_IDS:
                url = world.path(route, **{name: value})
                for method in route.methods:
                    status = _status(_request(admin, method, url))
                    if status != 404:
                        wrong.append((method, url, status))
    assert [r.rule for r in ROUTES if r.int_arguments], "the walk found no id routes"
    assert wrong == []


# --- JSON bodies -------------------------------------------------------------------------------------------

JSON_BODIES = ["[" * 200_000, "[1, 2]", '"text"', '{"a": {"b": [null]}}', "{", "1e400"]


@pytest.mark.parametrize("who", ASKERS)
def test_json_bodies_to_every_post_route_answer_no_5xx(walk, make_client, who):
    world, client = _asker(walk, make_client, who)
    # Signing out ends the walk's session, so it goes last.
    posts = sorted((r for r in ROUTES if "POST" in r.methods), key=lambda r: r.endpoint == "tenants.logout")
    failed = []
    for route in posts:
        url = world.path(route, client.host)
        headers = {"Content-Type": "application/json", "X-CSRFToken": client.csrf_token()}
        for body in JSON_BODIES:
            status = _status(client.post(url, data=body, headers=headers))
            if status >= 500:
                failed.append((url, body[:20], status))
    assert failed == []


# --- Query strings ----------------------------------------------------------------------------------------

# Names the views read; each page's own GET forms (search boxes) are sent one field at a time as well.
QUERY_NAMES = [
    "q",
    "page",
    "next",
    "tz",
    "month",
    "day",
    "start",
    "duration",
    "days",
    "lang",
    "owner",
    "state",
]
QUERY_VALUES = ["a\x00b", "a\r\nb", "9999-12-31", "99999999999999999999"]


def _get_form_names(response) -> set[str]:
    html = response.get_data(as_text=True)
    if response.mimetype != "text/html" or "<form" not in html:
        return set()
    return {
        name
        for form in lxml.html.fromstring(html).forms
        if (form.method or "GET").upper() == "GET"
        for name in form.fields.keys()  # noqa: SIM118  (lxml's FieldsDict iterates values)
        if name
    }


@pytest.mark.parametrize("who", ASKERS)
def test_hostile_query_strings_answer_no_5xx_on_any_page(walk, make_client, who):
    world, client = _asker(walk, make_client, who)
    failed = []
    for route in GET_ROUTES:
        if not _serves(world, client, route):
            continue
        url = world.path(route, client.host)
        page = client.get(url)
        form_names = _get_form_names(page)
        if _status(page) != 200:  # a redirect to sign in, a 404 for this asker: no view reads the query
            continue
        for value in QUERY_VALUES:
            queries = [dict.fromkeys(QUERY_NAMES, value)] + [{name: value} for name in sorted(form_names)]
            for query in queries:
                status = _status(client.get(url, query_string=query))
                if status >= 500:
                    failed.append((url, sorted(query), value, status))
    assert failed == []


# --- Every field of every form ------------------------------------------------------------------------------

TEXT_VALUES = ["a\x00b", "Sample\r\nBcc: victim@example.org"]
EXTREMES = {
    "date": ["9999-12-31", "0001-01-01", "10000-01-01"],
    "time": ["24:00", "99:99"],
    "number": ["99999999999999999999", "-99999999999999999999", "1e400"],
}


def _plausible(element, n: int) -> str:
    """A value the form would accept for an empty field, so the hostile one is the only thing wrong."""
    kind = (element.get("type") or "text").lower()
    name = element.get("name") or ""
    if kind == "email" or "email" in name:
        return f"walker{n}@example.org"
    if kind == "date" or name.startswith("date"):
        return "2030-01-07"
    if kind == "time" or name.endswith("time"):
        return "10:00"
    if kind == "number":
        return "30"
    if kind == "password":
        return "correct horse battery staple"
    if kind == "url" or "url" in name:
        return "http://127.0.0.1:9/"  # refused at once, never a lookup
    if "zone" in name or name == "tz":
        return "Europe/Warsaw"
    if "slug" in name:
        return f"walker-{n}"
    return "Sample"


def _baseline(form) -> tuple[dict[str, str], dict[str, str]]:
    """The fields as the browser would send them (empty text filled plausibly), and each field's kind."""
    values, kinds = {}, {}
    for n, element in enumerate(form.inputs):
        name = element.get("name")
        if not name or name in kinds:
            continue
        tag = element.tag
        kind = (element.get("type") or "text").lower() if tag == "input" else tag
        if kind in ("submit", "button", "reset", "image", "file"):
            continue
        kinds[name] = kind
        if kind in ("checkbox", "radio"):
            chosen = [e for e in form.inputs if e.get("name") == name and e.get("checked") is not None]
            if kind == "radio" or chosen:
                values[name] = (chosen[0] if chosen else element).get("value", "on")
        elif tag == "select":
            options = list(element.value_options)
            value = element.value
            values[name] = (list(value)[:1] or options[:1] or [""])[0] if element.multiple else value or ""
        else:
            values[name] = element.value or ("" if name == "csrf_token" else _plausible(element, n))
    return values, kinds


def _forms(response, url: str):
    """(method, action path, baseline values, kinds) of each form on the page."""
    html = response.get_data(as_text=True)
    if response.mimetype != "text/html" or "<form" not in html:
        return []
    found = []
    for form in lxml.html.fromstring(html).forms:
        action = urlsplit(urljoin(url, form.get("action") or url))
        values, kinds = _baseline(form)
        path = action.path + (f"?{action.query}" if action.query else "")
        found.append(((form.method or "GET").upper(), path, values, kinds))
    return found


@pytest.mark.parametrize("who", ASKERS)
def test_hostile_values_in_every_field_of_every_form_answer_no_5xx(walk, make_client, who):
    world, client = _asker(walk, make_client, who)
    failed, forms = [], 0
    for route in GET_ROUTES:
        if not _serves(world, client, route):
            continue
        url = world.path(route, client.host)
        page = client.get(url)
        assert page.status_code < 500, url
        forms_on_page = _forms(page, url)
        page.close()
        for method, action, values, kinds in forms_on_page:
            forms += 1
            for name, kind in kinds.items():
                if name == "csrf_token":
                    continue
                for value in [*TEXT_VALUES, *EXTREMES.get(kind, ())]:
                    sent = {**values, name: value}
                    if method == "GET":
                        response = client.get(action, query_string=sent)
                    else:
                        response = client.post(action, data=sent)
                    if _status(response) >= 500:
                        failed.append((url, method, action, name, value[:40], response.status_code))
    assert forms > 0
    assert failed == []
