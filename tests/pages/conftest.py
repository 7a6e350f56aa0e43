import pytest

from tests.pages.helpers import Site, build_site


@pytest.fixture
def site(app, monkeypatch) -> Site:
    """Acme and Globex with their reps, pages and domains (``tests.pages.helpers.Site``), committed."""
    return build_site(app, monkeypatch)
