from tests.fakes.oauth_server import oauth_server, oauth_server_session  # noqa: F401
from tests.fakes.radicale import radicale_server  # noqa: F401
