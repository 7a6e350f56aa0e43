"""Front-end files built with content hashes at install time and served immutable, with no npm at run time."""

import json
import re

import pytest

from app import create_app
from app.config import ConfigError
from app.web import assets
from tests.conftest import APP_HOST, TEST_DATABASE_URL, config_for_tests, worker_database


def test_pages_link_hashed_files_that_are_served_immutable(client):
    page = client.get("/login").get_data(as_text=True)
    links = re.findall(r'(?:href|src)="(/assets/[^"]+)"', page)
    assert {re.sub(r"\.[0-9a-f]{10}\.", ".", link) for link in links} == {
        "/assets/app.css",
        "/assets/htmx.min.js",
        "/assets/app.js",
        "/assets/favicon.svg",
    }
    for link in links:
        response = client.get(link)
        assert response.status_code == 200
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        response.close()


def test_the_name_changes_with_the_content(tmp_path):
    sources = tmp_path / "src"
    for logical, relative in assets.SOURCES.items():
        (sources / relative).parent.mkdir(parents=True, exist_ok=True)
        (sources / relative).write_text(f"/* {logical} */")
    first = assets.build(sources, tmp_path / "dist")
    (sources / assets.SOURCES["app.css"]).write_text("body { color: red }")
    second = assets.build(sources, tmp_path / "dist")
    assert first["app.css"] != second["app.css"]
    assert first["htmx.min.js"] == second["htmx.min.js"]
    assert json.loads((tmp_path / "dist" / "manifest.json").read_text()) == second
    assert (tmp_path / "dist" / first["app.css"]).exists()  # a page still open may ask for the old one
    assert assets.build(sources, tmp_path / "dist", clean=True) == second
    assert not (tmp_path / "dist" / first["app.css"]).exists()


def _production(**overrides):
    return {
        **config_for_tests(worker_database(TEST_DATABASE_URL)),
        "ENV": "production",
        "TESTING": False,
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "APP_HOST": APP_HOST,
        **overrides,
    }


def test_production_serves_the_built_files_without_node_modules(tmp_path):
    built = assets.build(dist=tmp_path / "dist")  # the install step, on a machine that had npm
    app = create_app(_production(ASSETS_DIR=str(tmp_path / "dist")))
    response = app.test_client().get(f"/assets/{built['htmx.min.js']}", base_url=f"https://{APP_HOST}")
    assert response.status_code == 200
    assert b"htmx" in response.get_data()
    response.close()


def test_production_refuses_to_start_without_the_build(tmp_path):
    with pytest.raises(ConfigError, match=r"manifest\.json is missing"):
        create_app(_production(ASSETS_DIR=str(tmp_path / "nothing")))
