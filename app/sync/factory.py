"""Build the live provider for a stored connection. The secret is decrypted by the caller, in memory only."""

from collections.abc import Callable, Mapping

from app.sync import oauth
from app.sync.models import CalendarConnection
from app.sync.providers.base import CalendarProvider
from app.sync.providers.caldav import CalDAVProvider
from app.sync.providers.google import GoogleCalendarProvider
from app.sync.providers.microsoft import GraphCalendarProvider

OnRefresh = Callable[[dict], None]


def build_provider(
    config: Mapping, connection: CalendarConnection, secret: dict, on_refresh: OnRefresh
) -> CalendarProvider:
    """The provider for ``connection``; ``on_refresh(token)`` is called when an OAuth token was renewed."""
    timeout = config["HTTP_TIMEOUT"]
    if connection.provider == "caldav":
        return CalDAVProvider(
            connection.server_url,
            connection.username,
            secret["password"],
            allow_private=config["CALDAV_ALLOW_PRIVATE"],
            timeout=timeout,
            extra_calendar_urls=tuple(u for u in connection.shared_calendar_urls.splitlines() if u.strip()),
        )
    session = oauth.authorized_session(config, connection.provider, secret, on_refresh)
    if connection.provider == "google":
        return GoogleCalendarProvider(
            session,
            api_url=config["GOOGLE_API_URL"],
            userinfo_url=config["GOOGLE_USERINFO_URL"],
            timeout=timeout,
        )
    if connection.provider == "microsoft":
        return GraphCalendarProvider(session, graph_url=config["MICROSOFT_GRAPH_URL"], timeout=timeout)
    raise ValueError(f"unknown provider {connection.provider!r}")
