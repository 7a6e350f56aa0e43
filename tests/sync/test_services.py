"""Connection rules (C2, C6-C9, C11) on plain calendar lists, no provider involved."""

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.sync import crypto
from app.sync import services as sync
from app.sync.models import CalendarConnection
from app.sync.providers.base import Account, RemoteCalendar
from tests import factories

ACCOUNT = Account(id="acct-1", email="rep@work.example.com")
REMOTE = [
    RemoteCalendar("main", "Work", "owner", is_primary=True),
    RemoteCalendar("team", "Team", "writer"),
    RemoteCalendar("boss", "Boss (shared)", "reader"),
    RemoteCalendar("cfo", "CFO (free/busy)", "freebusy"),
]


@pytest.fixture
def rep(app_ctx):
    tenant = factories.make_tenant()
    factories.make_user(factories.make_tenant(), seat="sales")  # a second tenant, always
    return factories.make_user(tenant, seat="sales")


def _connect(rep, calendars=REMOTE, secret=None):
    return sync.connect(
        rep.tenant,
        rep,
        provider="caldav",
        account=ACCOUNT,
        calendars=calendars,
        secret=secret or {"password": "s3cret-app-password"},
    )


def _choices(connection, **overrides):
    values = dict(
        calendar_sync=True,
        scheduling_pages=True,
        task_sync=False,
        default_calendar_id=connection.default_calendar.id,
        availability_calendar_ids=frozenset(),
    )
    return sync.ConnectionChoices(**{**values, **overrides})


def _by_external(connection):
    return {c.external_id: c for c in connection.calendars}


def test_connecting_turns_on_sync_and_pages_and_picks_the_primary_as_default(rep):
    connection = _connect(rep)
    assert connection.calendar_sync
    assert connection.scheduling_pages
    assert not connection.task_sync
    calendars = _by_external(connection)
    assert connection.default_calendar is calendars["main"]
    assert calendars["main"].checks_availability
    assert not calendars["team"].checks_availability
    assert calendars["cfo"].access == "freebusy"


def test_secret_is_stored_encrypted(rep):
    connection = _connect(rep, secret={"password": "s3cret-app-password"})
    db.session.flush()
    raw = db.session.execute(
        sa.text("SELECT secret_encrypted FROM calendar_connections WHERE id = :id"), {"id": connection.id}
    ).scalar_one()
    assert "s3cret" not in raw
    assert crypto.decrypt(raw) == {"password": "s3cret-app-password"}


def test_additional_calendars_must_show_event_details(rep):
    connection = _connect(rep)
    calendars = _by_external(connection)
    with pytest.raises(sync.SettingsRefused) as refused:
        sync.save_choices(
            rep.tenant,
            rep,
            connection,
            _choices(connection, availability_calendar_ids=frozenset({calendars["cfo"].id})),
        )
    assert refused.value.field == "availability"
    assert refused.value.code == "calendar_free_busy_only"
    assert not calendars["cfo"].checks_availability

    sync.save_choices(
        rep.tenant,
        rep,
        connection,
        _choices(connection, availability_calendar_ids=frozenset({calendars["boss"].id})),
    )
    assert calendars["boss"].checks_availability
    assert calendars["main"].checks_availability  # the default stays checked


def test_default_calendar_must_be_writable(rep):
    connection = _connect(rep)
    reader = _by_external(connection)["boss"]
    with pytest.raises(sync.SettingsRefused) as refused:
        sync.save_choices(rep.tenant, rep, connection, _choices(connection, default_calendar_id=reader.id))
    assert refused.value.field == "default_calendar"


def test_calendars_of_another_connection_are_refused(rep):
    mine = _connect(rep)
    other = sync.connect(
        rep.tenant,
        rep,
        provider="caldav",
        account=Account("acct-2", "other@x.example.com"),
        calendars=[RemoteCalendar("o", "Other", "owner")],
        secret={"password": "p"},
    )
    with pytest.raises(sync.SettingsRefused):
        sync.save_choices(
            rep.tenant,
            rep,
            mine,
            _choices(mine, availability_calendar_ids=frozenset({other.calendars[0].id})),
        )


def test_task_sync_needs_a_seat(app_ctx):
    tenant = factories.make_tenant()
    seatless = factories.make_user(tenant, seat="none")
    connection = _connect(seatless)
    assert sync.task_sync_blocker(seatless, connection) == "seat"
    with pytest.raises(sync.SettingsRefused) as refused:
        sync.save_choices(tenant, seatless, connection, _choices(connection, task_sync=True))
    assert refused.value.field == "task_sync"
    assert not connection.task_sync


def test_task_sync_goes_off_with_calendar_sync(rep):
    connection = _connect(rep)
    assert sync.task_sync_blocker(rep, connection) is None
    sync.save_choices(rep.tenant, rep, connection, _choices(connection, task_sync=True))
    assert connection.task_sync
    sync.save_choices(rep.tenant, rep, connection, _choices(connection, calendar_sync=False, task_sync=True))
    assert not connection.calendar_sync
    assert not connection.task_sync
    assert sync.task_sync_blocker(rep, connection) == "calendar_sync"


def test_lost_calendar_goes_inactive_pauses_booking_and_comes_back_with_its_choices(rep):
    connection = _connect(rep)
    boss = _by_external(connection)["boss"]
    sync.save_choices(
        rep.tenant, rep, connection, _choices(connection, availability_calendar_ids=frozenset({boss.id}))
    )
    assert sync.booking_paused_reason(rep.tenant, rep) is None

    sync.apply_calendar_list(connection, [c for c in REMOTE if c.id != "boss"])
    assert boss.status == "inactive"
    assert boss.inactive_since is not None
    assert "no longer shared" in boss.inactive_reason
    assert boss.checks_availability  # kept, so reconnecting restores it
    assert "no longer shared" in sync.booking_paused_reason(rep.tenant, rep)
    assert _by_external(connection)["main"].is_active  # the rest of the account keeps working

    sync.apply_calendar_list(connection, REMOTE)
    assert boss.is_active
    assert boss.inactive_reason is None
    assert boss.checks_availability
    assert sync.booking_paused_reason(rep.tenant, rep) is None


def test_calendar_downgraded_to_free_busy_goes_inactive(rep):
    connection = _connect(rep)
    boss = _by_external(connection)["boss"]
    sync.save_choices(
        rep.tenant, rep, connection, _choices(connection, availability_calendar_ids=frozenset({boss.id}))
    )
    downgraded = [RemoteCalendar(c.id, c.name, "freebusy") if c.id == "boss" else c for c in REMOTE]
    sync.apply_calendar_list(connection, downgraded)
    db.session.flush()  # the CHECK constraint (no availability on a free/busy calendar) still holds
    assert boss.status == "inactive"
    assert "free/busy" in boss.inactive_reason


def test_an_unused_lost_calendar_does_not_pause_booking(rep):
    connection = _connect(rep)
    sync.apply_calendar_list(connection, [c for c in REMOTE if c.id != "team"])
    assert _by_external(connection)["team"].status == "inactive"
    assert sync.booking_paused_reason(rep.tenant, rep) is None


def test_reconnecting_the_same_account_keeps_the_row_and_choices(rep):
    connection = _connect(rep)
    sync.save_choices(rep.tenant, rep, connection, _choices(connection, scheduling_pages=False))
    sync.mark_connection_inactive(connection, "invalid_grant: Token has been expired or revoked.")
    assert "invalid_grant" in sync.booking_paused_reason(rep.tenant, rep)

    again = _connect(rep, secret={"password": "new-app-password"})
    assert again.id == connection.id
    assert again.is_active
    assert not again.scheduling_pages
    assert sync.secret_of(again) == {"password": "new-app-password"}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarConnection)) == 1


def test_removing_the_default_inactive_calendar_picks_another_default(rep):
    connection = _connect(rep)
    sync.apply_calendar_list(connection, [c for c in REMOTE if c.id != "main"])
    main = _by_external(connection)["main"]
    sync.remove_calendar(rep.tenant, rep, connection, main)
    assert "main" not in _by_external(connection)
    assert connection.default_calendar is _by_external(connection)["team"]


def test_connections_are_private_to_their_rep_and_tenant(rep):
    connection = _connect(rep)
    colleague = factories.make_user(rep.tenant, seat="sales")
    stranger = factories.make_user(factories.make_tenant(), seat="sales")
    assert sync.get_connection(rep.tenant, rep, connection.id) is connection
    assert sync.get_connection(rep.tenant, colleague, connection.id) is None
    assert sync.get_connection(stranger.tenant, stranger, connection.id) is None
    assert sync.list_connections(rep.tenant, colleague) == []


def test_the_task_sub_calendar_never_becomes_the_default(rep):
    connection = _connect(rep, calendars=[RemoteCalendar("tasks", "Termin tasks", "owner")])
    tasks = _by_external(connection)["tasks"]
    tasks.is_default = tasks.checks_availability = False
    tasks.is_task_calendar = True
    sync.apply_calendar_list(connection, [RemoteCalendar("tasks", "Termin tasks", "owner")])
    assert connection.default_calendar is None
    sync.apply_calendar_list(
        connection,
        [RemoteCalendar("tasks", "Termin tasks", "owner"), RemoteCalendar("main", "Work", "owner")],
    )
    assert connection.default_calendar is _by_external(connection)["main"]
