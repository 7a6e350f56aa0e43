"""What a provider's test peer must offer so one contract suite runs against Google, Graph and CalDAV.

Each peer (tests/fakes/google_calendar.py, tests/fakes/graph.py, tests/fakes/radicale.py) builds a
harness over a real server on 127.0.0.1 and a provider instance pointed at it. The ``seed_*`` and
``withdraw_*`` methods change the server directly, as the account's owner would in the provider's UI,
never through the provider under test.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.sync.providers.base import CalendarProvider


@dataclass(frozen=True)
class SeedAttendee:
    email: str
    response: str = "needsAction"


class ProviderHarness(Protocol):
    provider: CalendarProvider
    account_email: str
    primary_id: str  # the account's main calendar, owned and writable
    second_id: str  # another calendar the account owns
    shared_readonly_id: str  # shared with the account, full event details, no write
    freebusy_id: str | None  # shared with free/busy only; None where the server cannot express it

    def seed_event(
        self,
        calendar_id: str,
        *,
        uid: str,
        summary: str,
        start: datetime,
        end: datetime,
        attendees: tuple[SeedAttendee, ...] = (),
        transparent: bool = False,
        all_day: bool = False,
        rrule: str | None = None,
        by_integration: bool = False,
    ) -> None:
        """Create an event as a person would (or, with by_integration, as another app would)."""

    def move_event(self, calendar_id: str, uid: str, start: datetime, end: datetime) -> None: ...

    def delete_event(self, calendar_id: str, uid: str) -> None: ...

    def server_events(self, calendar_id: str) -> list[dict]:
        """What the server holds: dicts with at least uid, summary, start, end, attendees (emails)."""

    def withdraw_access(self, calendar_id: str) -> None:
        """The calendar's owner stops sharing it: the account now gets 403/404 for it."""

    def expire_sync_state(self, calendar_id: str) -> None:
        """The server forgets its sync tokens: the next incremental call must fail as expired."""

    def fail_next_requests(self, status: int, count: int = 1, retry_after: int | None = None) -> None:
        """The next ``count`` API requests answer ``status`` (429, 503) with Retry-After when given."""

    def revoke_grant(self) -> None:
        """The account's credentials stop working (token revoked or password changed)."""

    @property
    def request_count(self) -> int:
        """API requests the provider made so far."""
