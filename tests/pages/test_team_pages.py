"""Team pages (T1): round robin and group slots against per-member slots (union, intersection), the
assignment rules over many bookings, paused and inactive members, atomic booking across members, group
companions through cancel and reschedule, and the public path /meetings/team/<slug> with its switches."""

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from app.extensions import db
from app.mail.models import OutboxMessage
from app.pages import services as pages
from app.pages.models import Booking, SchedulingPage
from app.sync import services as sync
from app.sync import writes
from app.tenants.models import User
from tests import factories
from tests.pages.helpers import NOW, at, booking_request, connect_caldav, synced_busy
from tests.pages.oracle import oracle_combine

MIDNIGHT = at(1) - timedelta(hours=1)  # MONDAY's start in Warsaw
DAY = (MIDNIGHT, MIDNIGHT + timedelta(days=1))


def team_page(admin: User, members: list[User], kind: str = "round_robin", **fields) -> SchedulingPage:
    weights = fields.pop("weights", [1] * len(members))
    return factories.make_page(
        admin,
        kind=kind,
        members=[{"user_id": m.id, "weight": w} for m, w in zip(members, weights, strict=True)],
        **fields,
    )


@pytest.fixture
def team(app_ctx):
    tenant = factories.make_tenant()
    admin = factories.make_user(tenant, role="admin", time_zone="Europe/Warsaw", name="Ada Admin")
    reps = [factories.make_user(tenant, time_zone="Europe/Warsaw", name=f"Rep {n}") for n in "ABC"]
    return admin, reps


def busy(rep: User, start, end) -> None:
    """A synced busy block of ``rep``'s (a CalDAV calendar connected on first use)."""
    connection = next(iter(sync.list_connections(rep.tenant, rep)), None) or connect_caldav(rep)
    synced_busy(connection, f"busy-{rep.id}-{start.isoformat()}", start, end)


def book(page, start, n: int):
    return pages.book(
        page, booking_request(start, idempotency_key=f"k{n}", email=f"v{n}@example.org"), now=NOW
    )


def test_round_robin_offers_the_union_and_group_the_intersection(team):
    admin, (a, b, c) = team
    busy(a, at(9), at(11))
    busy(b, at(10), at(12))
    busy(c, at(13), at(17))
    round_robin = team_page(admin, [a, b, c])
    group = team_page(admin, [a, b, c], kind="group")

    per_member = [pages.member_free_slots(round_robin, rep, *DAY, now=NOW) for rep in (a, b, c)]
    assert pages.free_slots(round_robin, *DAY, now=NOW) == oracle_combine(per_member, every=False)
    assert pages.free_slots(group, *DAY, now=NOW) == oracle_combine(per_member, every=True)
    assert pages.free_slots(group, *DAY, now=NOW) == [at(12), at(12, 30)]
    assert len(pages.free_slots(round_robin, *DAY, now=NOW)) == 16


def test_members_own_working_hours_and_time_off_narrow_the_team(team):
    admin, (a, b, _c) = team
    pages.set_rep_limits(a, pages.RepLimits([(0, "09:00", "10:00")], [], None))
    pages.set_rep_limits(b, pages.RepLimits(None, [(at(9).date(), at(9).date())], None))
    page = team_page(admin, [a, b])

    assert pages.free_slots(page, *DAY, now=NOW) == [at(9), at(9, 30)]
    assert book(page, at(9), 1).booking.owner_id == a.id
    with pytest.raises(pages.PagesError):
        book(page, at(11), 2)


def test_a_slot_with_k_free_members_takes_k_bookings_each_to_another_member(team):
    admin, (a, b, c) = team
    busy(c, at(10), at(11))
    page = team_page(admin, [a, b, c])

    owners = {book(page, at(10), n).booking.owner_id for n in range(2)}
    with pytest.raises(pages.SlotTaken):
        book(page, at(10), 3)

    assert owners == {a.id, b.id}
    assert at(10) not in pages.free_slots(page, *DAY, now=NOW)


def test_even_distribution_over_many_bookings(team):
    admin, reps = team
    page = team_page(admin, reps)
    starts = [at(9) + timedelta(days=d, minutes=30 * k) for d in range(5) for k in range(6)]

    owners = Counter(book(page, start, n).booking.owner_id for n, start in enumerate(starts))

    assert sorted(owners.values()) == [10, 10, 10]


def test_weighted_distribution_follows_the_weights(team):
    admin, reps = team
    page = team_page(admin, reps, assignment="weighted", weights=[1, 2, 3])
    starts = [at(9) + timedelta(days=d, minutes=30 * k) for d in range(5) for k in range(12)]

    owners = Counter(book(page, start, n).booking.owner_id for n, start in enumerate(starts))

    assert [owners[rep.id] for rep in reps] == [10, 20, 30]


def test_contact_owner_first_when_free_else_even(team):
    admin, (a, b, c) = team
    contact = factories.make_contact(admin.tenant, email="known@example.org")
    factories.make_meeting(admin.tenant, c, [contact])
    page = team_page(admin, [a, b, c], assignment="owner_first")

    known = [
        pages.book(
            page,
            booking_request(
                at(9) + timedelta(minutes=30 * k), idempotency_key=f"o{k}", email="known@example.org"
            ),
            now=NOW,
        )
        for k in range(3)
    ]
    assert {result.booking.owner_id for result in known} == {c.id}
    busy(c, at(14), at(15))
    fallback = pages.book(
        page, booking_request(at(14), idempotency_key="f", email="known@example.org"), now=NOW
    )
    assert fallback.booking.owner_id in {a.id, b.id}


def test_a_paused_member_stays_on_the_page_but_gets_nothing(team):
    admin, (a, b, _c) = team
    page = team_page(admin, [a, b])
    page.members[0].paused = True
    busy(b, at(9), at(17))
    db.session.flush()

    assert pages.free_slots(page, *DAY, now=NOW) == []
    assert [member.user_id for member in page.members] == [a.id, b.id]


def test_an_inactive_member_is_excluded_never_assumed_free_and_admins_told_once(team, app):
    admin, (a, b, _c) = team
    busy(b, at(9), at(12))
    sync.mark_connection_inactive(connect_caldav(a), "invalid_grant: the password was changed.")
    round_robin = team_page(admin, [a, b])
    group = team_page(admin, [a, b], kind="group")

    assert pages.free_slots(round_robin, *DAY, now=NOW) == pages.member_free_slots(
        round_robin, b, *DAY, now=NOW
    )
    assert at(9) not in pages.free_slots(round_robin, *DAY, now=NOW)
    assert pages.booking_paused_reason(round_robin) is None
    owners = {book(round_robin, at(12) + timedelta(minutes=30 * k), k).booking.owner_id for k in range(3)}
    assert owners == {b.id}
    told = db.session.scalars(sa.select(OutboxMessage).where(OutboxMessage.kind == "mail.send")).all()
    to_admin = [m for m in told if admin.email in str(m.payload) and "left out" in str(m.payload)]
    assert len(to_admin) == 1

    assert pages.free_slots(group, *DAY, now=NOW) == []
    assert "Rep A" in pages.booking_paused_reason(group)


def test_a_group_booking_holds_every_member_and_moves_and_cancels_as_one(team):
    admin, (a, b, c) = team
    page = team_page(admin, [a, b, c], kind="group")
    personal = factories.make_page(b)

    result = book(page, at(10), 1)

    booking = result.booking
    assert booking.owner_id == a.id  # the admin is no member: the first member organizes
    assert sorted(row.owner_id for row in booking.companions) == [b.id, c.id]
    assert at(10) not in pages.free_slots(personal, *DAY, now=NOW)
    pages.reschedule_booking(booking, at(15), result.token, now=NOW)
    assert {row.start_at for row in (booking, *booking.companions)} == {at(15)}
    assert at(10) in pages.free_slots(personal, *DAY, now=NOW)
    assert at(15) not in pages.free_slots(personal, *DAY, now=NOW)
    pages.cancel_booking(booking.companions[0], by_visitor=False, now=NOW)
    assert {row.status for row in (booking, *booking.companions)} == {"cancelled"}
    assert at(15) in pages.free_slots(personal, *DAY, now=NOW)


def test_the_group_event_invites_every_other_member(team):
    admin, (a, b, c) = team
    page = team_page(admin, [a, b, c], kind="group")
    booking = book(page, at(10), 1).booking

    emails = [attendee.email for attendee in writes._attendees(booking.meeting)]
    assert emails == ["v1@example.org", b.email, c.email]


def test_a_member_is_never_double_booked_across_a_team_and_a_personal_page(team):
    admin, (a, b, _c) = team
    page = team_page(admin, [a, b], kind="group")
    mine = factories.make_page(a)
    pages.book(mine, booking_request(at(10)), now=NOW)

    with pytest.raises(pages.SlotTaken):
        book(page, at(10), 2)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Booking)) == 1


def test_team_slugs_are_unique_and_only_admins_create_team_pages(team):
    admin, (a, b, _c) = team
    team_page(admin, [a], slug="sales")
    with pytest.raises(pages.PagesError) as taken:
        team_page(admin, [b], slug="sales")
    assert taken.value.field == "slug"
    with pytest.raises(pages.PagesError) as refused:
        team_page(a, [b])
    assert refused.value.field == "kind"
    other = factories.make_user(factories.make_tenant())
    with pytest.raises(pages.PagesError) as foreign:
        team_page(admin, [other])
    assert foreign.value.field == "members"
