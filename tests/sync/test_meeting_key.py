"""One calendar meeting per (tenant, rep, iCalendar UID, occurrence): the real UID in ``meetings.uid``, the
occurrence's original start in ``meetings.recurrence_id``, two partial unique indexes holding the key, and an
engine that inserts with ON CONFLICT DO NOTHING so racing syncs neither duplicate nor fail. Also the
migration that moved the old ``uid#<start>`` keys to the new columns (and back)."""

import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from app import create_app
from app.crm.models import Contact, Meeting, MeetingContact
from app.extensions import db
from app.sync import engine
from app.sync import services as sync
from app.sync.models import Calendar, SyncedEvent
from app.sync.providers.base import Account, RemoteCalendar, RemoteEvent
from app.tenants.models import Tenant, User
from tests import factories
from tests.conftest import (
    TEST_DATABASE_URL,
    TEST_ENCRYPTION_KEY,
    config_for_tests,
    recreate_database,
    worker_database,
)
from tests.sync.test_engine import CLIENT, NOW, T0, ListingProvider, event  # one world for both

HOUR = timedelta(hours=1)
WEEK = timedelta(days=7)
ACCOUNT = Account(id="acct", email="rep@acme.example.com")
CALENDARS = [
    RemoteCalendar("main", "Main", "owner", is_primary=True, time_zone="Europe/Warsaw"),
    RemoteCalendar("team", "Team", "owner", time_zone="Europe/Warsaw"),
]
BEFORE_THIS_KEY = "7d3c5e1a9b42"  # the revision before the migration under test


def weekly(uid: str = "weekly@test", count: int = 3, **fields) -> RemoteEvent:
    return event(uid, recurrence=(f"RRULE:FREQ=WEEKLY;COUNT={count}",), **fields)


def occurrence(uid: str, original: datetime, **fields) -> RemoteEvent:
    """One occurrence of ``uid`` given its own row by the provider (moved, edited or cancelled)."""
    return event(uid, id=f"id-{uid}-{original:%Y%m%dT%H%M%S}", recurrence_id=original.isoformat(), **fields)


@dataclass
class Rep:
    tenant: Tenant
    user: User
    contact: Contact
    calendars: dict[str, Calendar]


def make_rep(tenant_name: str, email: str) -> Rep:
    tenant = factories.make_tenant(tenant_name)
    user = factories.make_user(tenant, seat="sales", email=email)
    contact = factories.make_contact(tenant, email=CLIENT)
    connection = sync.connect(
        tenant,
        user,
        provider="caldav",
        account=Account(id=f"acct-{email}", email=email),
        calendars=CALENDARS,
        secret={"token": "t"},
    )
    calendars = {c.external_id: c for c in connection.calendars}
    assert all(engine.makes_meetings(c) for c in calendars.values())
    return Rep(tenant, user, contact, calendars)


@pytest.fixture
def rep(app_ctx) -> Rep:
    return make_rep("Acme", "rep@acme.example.com")


def sync_now(calendar: Calendar, provider, now: datetime = NOW) -> engine.SyncReport:
    report = engine.sync_calendar(calendar, provider, now=now)
    assert report.outcome == "synced", report.error
    return report


def calendar_meetings(tenant_id: int) -> list[Meeting]:
    return list(
        db.session.scalars(
            sa.select(Meeting)
            .where(Meeting.tenant_id == tenant_id, Meeting.source == "calendar")
            .order_by(Meeting.start_at, Meeting.id)
        )
    )


def keys(tenant_id: int) -> list[tuple]:
    return [(m.uid, m.recurrence_id, m.start_at, m.status) for m in calendar_meetings(tenant_id)]


def links(calendar: Calendar) -> dict[tuple[str, str], int | None]:
    rows = db.session.execute(
        sa.select(SyncedEvent.uid, SyncedEvent.recurrence_id, SyncedEvent.meeting_id).where(
            SyncedEvent.calendar_id == calendar.id
        )
    )
    return {(uid, rid): meeting_id for uid, rid, meeting_id in rows}


# --- One meeting per occurrence, under the real UID ---------------------------------------------------------


def test_a_series_is_one_meeting_per_occurrence_under_its_real_uid(rep):
    provider = ListingProvider([weekly(), event("single@test", start=T0 + HOUR)])
    report = sync_now(rep.calendars["main"], provider)
    assert report.meetings_created == 4
    assert keys(rep.tenant.id) == [
        ("weekly@test", T0, T0, "scheduled"),
        ("single@test", None, T0 + HOUR, "scheduled"),
        ("weekly@test", T0 + WEEK, T0 + WEEK, "scheduled"),
        ("weekly@test", T0 + 2 * WEEK, T0 + 2 * WEEK, "scheduled"),
    ]
    assert all(m.contacts == [rep.contact] for m in calendar_meetings(rep.tenant.id))
    assert not any("#" in m.uid for m in calendar_meetings(rep.tenant.id))


def test_running_the_sync_again_writes_no_row(rep):
    calendar = rep.calendars["main"]
    provider = ListingProvider([weekly(), event("single@test", start=T0 + HOUR)])
    sync_now(calendar, provider)
    before = [(m.id, m.uid, m.recurrence_id, m.start_at) for m in calendar_meetings(rep.tenant.id)]
    for full in (False, True):
        if full:
            calendar.sync_state = None  # a full listing looks at every series and occurrence again
        again = sync_now(calendar, provider)
        assert (again.rows_written, again.meetings_created, again.meetings_updated) == (0, 0, 0)
    after = [(m.id, m.uid, m.recurrence_id, m.start_at) for m in calendar_meetings(rep.tenant.id)]
    assert after == before


def test_moving_or_cancelling_one_occurrence_changes_only_its_meeting(rep):
    calendar = rep.calendars["main"]
    provider = ListingProvider([weekly()])
    sync_now(calendar, provider)
    first, second, third = calendar_meetings(rep.tenant.id)

    provider.events = [weekly(), occurrence("weekly@test", T0 + WEEK, start=T0 + WEEK + 2 * HOUR)]
    report = sync_now(calendar, provider)
    assert (report.meetings_created, report.meetings_updated, report.meetings_cancelled) == (0, 1, 0)
    assert keys(rep.tenant.id) == [
        ("weekly@test", T0, T0, "scheduled"),
        ("weekly@test", T0 + WEEK, T0 + WEEK + 2 * HOUR, "scheduled"),
        ("weekly@test", T0 + 2 * WEEK, T0 + 2 * WEEK, "scheduled"),
    ]
    assert [m.id for m in calendar_meetings(rep.tenant.id)] == [first.id, second.id, third.id]
    assert links(calendar)[("weekly@test", (T0 + WEEK).isoformat())] == second.id

    provider.events = [
        weekly(),
        occurrence("weekly@test", T0 + WEEK, start=T0 + WEEK + 2 * HOUR),
        occurrence("weekly@test", T0 + 2 * WEEK, status="cancelled"),
    ]
    report = sync_now(calendar, provider)
    assert (report.meetings_created, report.meetings_updated, report.meetings_cancelled) == (0, 0, 1)
    assert [(m.id, m.status) for m in calendar_meetings(rep.tenant.id)] == [
        (first.id, "scheduled"),
        (second.id, "scheduled"),
        (third.id, "cancelled"),
    ]
    assert first.start_at == T0
    assert second.start_at == T0 + WEEK + 2 * HOUR


# --- Two calendars of one rep -------------------------------------------------------------------------------


def test_the_same_event_in_two_calendars_of_one_rep_is_one_meeting(rep):
    main, team = rep.calendars["main"], rep.calendars["team"]
    provider = ListingProvider([weekly(), event("single@test", start=T0 + HOUR)])
    assert sync_now(main, provider).meetings_created == 4
    assert sync_now(team, provider).meetings_created == 0
    meetings = calendar_meetings(rep.tenant.id)
    assert len(meetings) == 4
    assert {m.calendar_id for m in meetings} == {main.id}
    # Both calendars' rows point at the same meetings.
    assert links(team) == links(main)
    assert set(links(main).values()) - {None} <= {m.id for m in meetings}
    for calendar in (team, main, team):
        calendar.sync_state = None
        assert sync_now(calendar, provider).rows_written == 0
    assert len(calendar_meetings(rep.tenant.id)) == 4


def race_on_create(monkeypatch, before_insert) -> list[int]:
    """Run ``before_insert`` once, right before the next sync inserts its meetings (after it has read which
    meetings exist): the other sync wins the race. Returns how many meetings that insert was asked for."""
    original = engine._Applier._create
    asked: list[int] = []

    def create(self, specs):
        if not asked:
            asked.append(len(specs))
            before_insert()
        return original(self, specs)

    monkeypatch.setattr(engine._Applier, "_create", create)
    return asked


def assert_one_meeting_each(rep: Rep, loser_report: engine.SyncReport) -> None:
    main, team = rep.calendars["main"], rep.calendars["team"]
    assert loser_report.meetings_created == 0
    meetings = calendar_meetings(rep.tenant.id)
    assert [(m.uid, m.recurrence_id) for m in meetings] == [
        ("weekly@test", T0),
        ("single@test", None),
        ("weekly@test", T0 + WEEK),
        ("weekly@test", T0 + 2 * WEEK),
    ]
    assert {m.calendar_id for m in meetings} == {main.id}
    assert links(team) == links(main)
    assert links(team)[("single@test", "")] is not None  # linked to the winner's meeting
    # The winner's contact links only: the loser added none.
    count = sa.select(sa.func.count()).select_from(MeetingContact).join(Meeting)
    assert db.session.scalar(count.where(Meeting.tenant_id == rep.tenant.id)) == 4


def test_a_sync_that_loses_the_race_neither_fails_nor_duplicates(rep, monkeypatch):
    """The other calendar's sync inserts the meetings (another session) after this one looked for them."""
    main, team = rep.calendars["main"], rep.calendars["team"]
    provider = ListingProvider([weekly(), event("single@test", start=T0 + HOUR)])

    def winner():
        monkeypatch.undo()  # the winner runs the real engine
        assert sync_now(main, provider).meetings_created == 4

    asked = race_on_create(monkeypatch, winner)
    loser = sync_now(team, provider)
    assert asked == [4]  # the loser did try to create all four
    assert_one_meeting_each(rep, loser)


def test_the_race_on_sqlite_too(sqlite_app, monkeypatch):
    rep = make_rep("Acme", "rep@acme.example.com")
    db.session.commit()
    main, team = rep.calendars["main"], rep.calendars["team"]
    provider = ListingProvider([weekly(), event("single@test", start=T0 + HOUR)])

    def winner():
        monkeypatch.undo()
        assert sync_now(main, provider).meetings_created == 4

    race_on_create(monkeypatch, winner)
    loser = sync_now(team, provider)
    db.session.commit()
    assert_one_meeting_each(rep, loser)
    assert sync_now(team, provider).rows_written == 0


@pytest.fixture
def sqlite_app(tmp_path):
    config = config_for_tests(f"sqlite:///{tmp_path / 'demo.db'}")
    app = create_app({**config, "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY})
    with app.app_context():
        upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


# --- The race between two connections (PostgreSQL) ----------------------------------------------------------


@pytest.fixture(scope="module")
def elsewhere(app):
    """A second app on the same database, outside the tests' rolled-back transaction: what it commits other
    connections see. The tenants it made are deleted once the module's transactions are all rolled back
    (deleting them earlier would wait on the open test transaction's references)."""
    with app.app_context():
        url = db.engine.url.render_as_string(hide_password=False)
    other = create_app(config_for_tests(url))
    made: list[int] = []
    yield other, made
    with other.app_context():
        db.session.execute(sa.delete(Tenant).where(Tenant.id.in_(made)))
        db.session.commit()
        db.engine.dispose()


@pytest.fixture
def committed(elsewhere):
    """A rep with two calendars, committed; returns the other app's engine and the rows' ids."""
    other, made = elsewhere
    with other.app_context():
        rep = make_rep("Committed", f"rep-{uuid.uuid4().hex[:12]}@committed.example.com")
        ids = {
            "tenant": rep.tenant.id,
            "user": rep.user.id,
            "main": rep.calendars["main"].id,
            "team": rep.calendars["team"].id,
        }
        db.session.commit()
        made.append(ids["tenant"])
        return db.engine, ids


def insert_winner(
    other_engine: sa.Engine, ids: dict, *, commit_after: float | None
) -> threading.Thread | None:
    """Insert the single event's meeting from another connection; commit now, or ``commit_after`` seconds
    later from a thread (the loser's INSERT then waits for that transaction, and does nothing)."""
    connection = other_engine.connect()
    connection.execute(
        sa.insert(Meeting.__table__).values(
            tenant_id=ids["tenant"],
            owner_id=ids["user"],
            calendar_id=ids["main"],
            source="calendar",
            status="scheduled",
            title="single@test",
            notes="",
            uid="single@test",
            start_at=T0 + HOUR,
            end_at=T0 + 2 * HOUR,
            created_at=NOW,
        )
    )

    def finish():
        if commit_after:
            time.sleep(commit_after)
        connection.commit()
        connection.close()

    if commit_after is None:
        finish()
        return None
    thread = threading.Thread(target=finish)
    thread.start()
    return thread


@pytest.mark.parametrize("commit_after", [None, 0.5], ids=["committed", "in-flight"])
def test_a_winner_from_another_connection_is_found_not_duplicated(
    app_ctx, committed, monkeypatch, commit_after
):
    other_engine, ids = committed
    team = db.session.get(Calendar, ids["team"])
    provider = ListingProvider([event("single@test", start=T0 + HOUR), event("alone@test", start=T0)])
    threads = []
    race_on_create(
        monkeypatch, lambda: threads.append(insert_winner(other_engine, ids, commit_after=commit_after))
    )
    started = time.monotonic()
    report = sync_now(team, provider)
    waited = time.monotonic() - started
    for thread in threads:
        if thread is not None:
            thread.join()
    assert len(threads) == 1
    if commit_after:
        assert waited >= commit_after * 0.9  # the insert waited for the other transaction to end
    assert report.meetings_created == 1  # alone@test; single@test was the other connection's
    meetings = {m.uid: m for m in calendar_meetings(ids["tenant"])}
    assert sorted(meetings) == ["alone@test", "single@test"]
    assert meetings["single@test"].calendar_id == ids["main"]
    assert meetings["single@test"].contacts == []  # the winner's links; the loser added none
    assert meetings["alone@test"].calendar_id == ids["team"]
    assert links(team) == {
        ("single@test", ""): meetings["single@test"].id,
        ("alone@test", ""): meetings["alone@test"].id,
    }


def test_the_database_refuses_a_second_calendar_meeting_for_the_same_occurrence(rep):
    sync_now(rep.calendars["main"], ListingProvider([weekly(count=1), event("single@test")]))
    for rid in (None, T0):
        copy = Meeting(
            tenant_id=rep.tenant.id,
            owner=rep.user,
            source="calendar",
            title="copy",
            uid="single@test" if rid is None else "weekly@test",
            recurrence_id=rid,
            start_at=T0,
            end_at=T0 + HOUR,
        )
        with db.session.begin_nested():
            db.session.add(copy)
            with pytest.raises(sa.exc.IntegrityError):
                db.session.flush()
    # Not a calendar meeting, another rep, another occurrence: all allowed.
    other_rep = factories.make_user(rep.tenant, email="other@acme.example.com")
    for fields in (
        {"source": "crm", "uid": "single@test", "owner": rep.user},
        {"source": "calendar", "uid": "single@test", "owner": other_rep},
        {"source": "calendar", "uid": "weekly@test", "owner": rep.user, "recurrence_id": T0 + WEEK},
    ):
        db.session.add(Meeting(tenant_id=rep.tenant.id, title="ok", start_at=T0, end_at=T0 + HOUR, **fields))
        db.session.flush()


# --- Tenants ------------------------------------------------------------------------------------------------


def test_the_same_uid_in_two_tenants_is_two_meetings(app_ctx):
    acme = make_rep("Acme", "rep@acme.example.com")
    globex = make_rep("Globex", "rep@globex.example.com")
    provider = ListingProvider([weekly(count=2), event("single@test", start=T0 + HOUR)])
    assert sync_now(acme.calendars["main"], provider).meetings_created == 3
    assert sync_now(globex.calendars["main"], provider).meetings_created == 3
    for rep in (acme, globex):
        meetings = calendar_meetings(rep.tenant.id)
        assert [(m.uid, m.recurrence_id) for m in meetings] == [
            ("weekly@test", T0),
            ("single@test", None),
            ("weekly@test", T0 + WEEK),
        ]
        assert all(m.contacts == [rep.contact] and m.owner_id == rep.user.id for m in meetings)
    # A move in one tenant's calendar leaves the other tenant's meeting alone.
    provider.events = [weekly(count=2), event("single@test", start=T0 + 3 * HOUR)]
    sync_now(acme.calendars["main"], provider)
    assert [m.start_at for m in calendar_meetings(acme.tenant.id) if m.uid == "single@test"] == [
        T0 + 3 * HOUR
    ]
    assert [m.start_at for m in calendar_meetings(globex.tenant.id) if m.uid == "single@test"] == [T0 + HOUR]


# --- The migration ------------------------------------------------------------------------------------------

OLD_MEETINGS = sa.table(
    "meetings",
    sa.column("id", sa.BigInteger),
    sa.column("tenant_id", sa.BigInteger),
    sa.column("owner_id", sa.BigInteger),
    sa.column("title", sa.String),
    sa.column("start_at", sa.DateTime(timezone=True)),
    sa.column("end_at", sa.DateTime(timezone=True)),
    sa.column("source", sa.String),
    sa.column("status", sa.String),
    sa.column("notes", sa.Text),
    sa.column("uid", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


# The tenants and users tables as they were at BEFORE_THIS_KEY: the ORM models may have columns added by later
# revisions (the brand's, for one).
OLD_TENANTS = sa.table(
    "tenants",
    sa.column("id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("pages_disabled", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
OLD_USERS = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("tenant_id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("name", sa.String),
    sa.column("password_hash", sa.String),
    sa.column("role", sa.String),
    sa.column("seat", sa.String),
    sa.column("time_zone", sa.String),
    sa.column("locale", sa.String),
    sa.column("page_slug", sa.String),
    sa.column("is_active", sa.Boolean),
    sa.column("pages_disabled", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


@pytest.fixture(params=["postgresql", "sqlite"])
def old_schema_app(request, tmp_path):
    """An app on an empty database migrated up to the revision before this key."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = worker_database(TEST_DATABASE_URL, "_meeting_key")
        recreate_database(url)
    app = create_app({**config_for_tests(url), "ENCRYPTION_KEYS": TEST_ENCRYPTION_KEY})
    with app.app_context():
        upgrade(revision=BEFORE_THIS_KEY)
        yield app
        db.session.remove()
        db.engine.dispose()


def _stored(moment: datetime) -> datetime:
    return moment.replace(tzinfo=None) if db.engine.dialect.name == "sqlite" else moment


def test_the_migration_moves_old_keys_to_recurrence_id_and_back(old_schema_app):
    tenant_id = db.session.execute(
        sa.insert(OLD_TENANTS)
        .values(name="Acme", pages_disabled=False, created_at=_stored(NOW))
        .returning(OLD_TENANTS.c.id)
    ).scalar_one()
    tenant = SimpleNamespace(id=tenant_id)  # what the contact factory reads
    user_id = db.session.execute(
        sa.insert(OLD_USERS)
        .values(
            tenant_id=tenant.id,
            email="old-schema@example.com",
            name="Old Schema",
            password_hash="-",
            role="rep",
            seat="none",
            time_zone="Europe/Warsaw",
            locale="en",
            page_slug="old-schema",
            is_active=True,
            pages_disabled=False,
            created_at=_stored(NOW),
        )
        .returning(OLD_USERS.c.id)
    ).scalar_one()
    contact, second_contact = factories.make_contact(tenant), factories.make_contact(tenant)
    db.session.commit()
    occurrence_key = f"weekly@test#{(T0 + WEEK).isoformat()}"

    def old(uid: str, source: str = "calendar", status: str = "scheduled", notes: str = "") -> int:
        return db.session.execute(
            sa.insert(OLD_MEETINGS)
            .values(
                tenant_id=tenant.id,
                owner_id=user_id,
                title=uid,
                start_at=_stored(T0),
                end_at=_stored(T0 + HOUR),
                source=source,
                status=status,
                notes=notes,
                uid=uid,
                created_at=_stored(NOW),
            )
            .returning(OLD_MEETINGS.c.id)
        ).scalar_one()

    single = old("single@test")
    hashed = old("odd#uid@test")  # a real UID with "#" in it: not an occurrence key
    crm = old(f"crm@test#{T0.isoformat()}", source="crm")
    # Two calendars raced before the unique key: the scheduled one is kept and gets the other's notes,
    # contacts and synced event links.
    cancelled_copy = old(occurrence_key, status="cancelled", notes="from the copy")
    kept = old(occurrence_key, notes="mine")
    later_copy = old(occurrence_key)
    links = [(cancelled_copy, contact.id), (later_copy, second_contact.id), (kept, contact.id)]
    db.session.execute(sa.insert(MeetingContact), [{"meeting_id": m, "contact_id": c} for m, c in links])
    db.session.commit()

    upgrade()
    db.session.expire_all()
    rows = {
        m.id: (m.uid, m.recurrence_id, m.status, m.notes, [c.id for c in m.contacts])
        for m in db.session.scalars(sa.select(Meeting).where(Meeting.tenant_id == tenant.id))
    }
    assert rows == {
        single: ("single@test", None, "scheduled", "", []),
        hashed: ("odd#uid@test", None, "scheduled", "", []),
        crm: (f"crm@test#{T0.isoformat()}", None, "scheduled", "", []),
        kept: (
            "weekly@test",
            T0 + WEEK,
            "scheduled",
            "mine\n\nfrom the copy",
            [contact.id, second_contact.id],
        ),
    }
    db.session.commit()

    downgrade(revision=BEFORE_THIS_KEY)
    uids = dict(db.session.execute(sa.select(OLD_MEETINGS.c.id, OLD_MEETINGS.c.uid)).all())
    assert uids == {
        single: "single@test",
        hashed: "odd#uid@test",
        crm: f"crm@test#{T0.isoformat()}",
        kept: occurrence_key,
    }
    db.session.commit()
    upgrade()
