import pytest

from tests import factories


@pytest.fixture
def tenants(app_ctx):
    """Ours and another tenant: every module proves the other one's rows stay apart."""
    return factories.make_tenant("Acme"), factories.make_tenant("Globex")
