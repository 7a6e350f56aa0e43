"""Scheduling pages: their settings, their paths, the slots they offer, and booking (P1-P4, P6, C7-C11).

Services flush; the view that called them commits. Every query of a tenant's rows takes the tenant.

Booking is one transaction (``book``): take the rep's booking lock, re-check the slot against what the
database says now, insert the booking, create or update the contact, log the meeting (source "page") and
queue in the outbox the calendar write (the default calendar only, C10) and the emails. The lock makes
concurrent bookings of one rep run one after another, so the loser sees the winner's row and gets a clean
``SlotTaken``; in PostgreSQL the exclusion constraint on ``bookings`` is the backstop that makes an overlap
impossible even for code that skips the lock. SQLite (the embedded demo) has one writer at a time: the
lock there is a write that takes the database's write lock for the rest of the transaction.
"""

import hashlib
import logging
import re
import secrets
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from app import transaction
from app.crm import services as crm
from app.crm.models import Contact, Meeting, MeetingContact
from app.db import utcnow
from app.errors import BookingPaused, PagesError, PageUnavailable, SlotTaken
from app.extensions import db
from app.pages import availability, paths, signals
from app.pages.models import (
    ASSIGNMENT_RULES,
    PAGE_KINDS,
    Booking,
    BookingAttempt,
    BookingHold,
    PageMember,
    SchedulingPage,
    SlugAlias,
)
from app.sync import services as sync
from app.sync import writes
from app.sync.models import BusyBlock, SyncedEvent
from app.tenants.models import Domain, Tenant, User
from app.tenants.services import RESERVED_SLUGS

log = logging.getLogger(__name__)

SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# The rep is emailed about attempts to book while booking is paused at most this often (C11).
PAUSED_NOTICE_EVERY = timedelta(hours=1)
# How far a slots request may reach in one go.
MAX_SLOT_DAYS = 62
# The dates a visitor may name (a month, a day, a start): far enough either way for any real use, and
# clear of ``date.min``/``date.max``, where a window's arithmetic would overflow (a 500 instead of a 422).
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2999, 12, 31)
_BOOKING_LOCK_NAMESPACE = 0x7E57  # pg_advisory_xact_lock(namespace, owner id): one key space of ours


# --- Reading pages ------------------------------------------------------------------------------------------


def get_page(tenant: Tenant, page_id: int) -> SchedulingPage | None:
    return db.session.scalar(
        sa.select(SchedulingPage).where(SchedulingPage.tenant_id == tenant.id, SchedulingPage.id == page_id)
    )


def list_pages(tenant: Tenant, owner: User) -> list[SchedulingPage]:
    return list(
        db.session.scalars(
            sa.select(SchedulingPage)
            .where(
                SchedulingPage.tenant_id == tenant.id,
                SchedulingPage.owner_id == owner.id,
                SchedulingPage.kind == "one_on_one",
            )
            .order_by(SchedulingPage.is_default.desc(), SchedulingPage.title, SchedulingPage.id)
        )
    )


def list_team_pages(tenant: Tenant) -> list[SchedulingPage]:
    """The tenant's round-robin and group pages (T1), by title."""
    return list(
        db.session.scalars(
            sa.select(SchedulingPage)
            .where(SchedulingPage.tenant_id == tenant.id, SchedulingPage.kind != "one_on_one")
            .order_by(SchedulingPage.title, SchedulingPage.id)
        )
    )


def default_page(tenant: Tenant, owner: User) -> SchedulingPage | None:
    return db.session.scalar(
        sa.select(SchedulingPage).where(
            SchedulingPage.tenant_id == tenant.id,
            SchedulingPage.owner_id == owner.id,
            SchedulingPage.is_default,
        )
    )


def can_manage_pages_of(actor: User, owner: User) -> bool:
    """Who may see and change ``owner``'s pages: the rep themself, or an admin of the same tenant.
    The one rule of the editor; the page keeps its owner whoever edits it."""
    if actor.tenant_id != owner.tenant_id:
        return False
    return actor.id == owner.id or actor.is_admin


def can_manage_page(actor: User, page: SchedulingPage) -> bool:
    return page.tenant_id == actor.tenant_id and can_manage_pages_of(actor, page.owner)


def team_pages(tenant: Tenant, actor: User) -> list[tuple[User, list[SchedulingPage]]]:
    """Every user of the tenant (by name) with their pages, for an admin; ``PagesError`` for anyone else."""
    if not actor.is_admin or actor.tenant_id != tenant.id:
        raise PagesError("team_admins_only")
    users = db.session.scalars(
        sa.select(User).where(User.tenant_id == tenant.id).order_by(User.name, User.id)
    )
    pages = db.session.scalars(
        sa.select(SchedulingPage)
        .where(SchedulingPage.tenant_id == tenant.id, SchedulingPage.kind == "one_on_one")
        .order_by(SchedulingPage.is_default.desc(), SchedulingPage.title, SchedulingPage.id)
    )
    by_owner: dict[int, list[SchedulingPage]] = {}
    for page in pages:
        by_owner.setdefault(page.owner_id, []).append(page)
    return [(user, by_owner.get(user.id, [])) for user in users]


def page_rules(page: SchedulingPage) -> availability.PageRules:
    """The page's stored settings as the slot engine's rules."""
    weekly = tuple(
        availability.WeeklyRule(weekday, _wall(start), _wall(end))
        for weekday, start, end in page.availability.get("weekly", ())
    )
    overrides = tuple(
        availability.DateOverride(
            date.fromisoformat(item["day"]), tuple((_wall(s), _wall(e)) for s, e in item.get("ranges", ()))
        )
        for item in page.availability.get("overrides", ())
    )
    return availability.PageRules(
        time_zone=page.time_zone,
        rules=weekly,
        overrides=overrides,
        durations=tuple(timedelta(minutes=m) for m in page.durations),
        increment=timedelta(minutes=page.increment) if page.increment else None,
        buffer_before=timedelta(minutes=page.buffer_before),
        buffer_after=timedelta(minutes=page.buffer_after),
        min_notice=timedelta(minutes=page.min_notice),
        horizon_days=page.horizon_days,
        date_range=(page.date_from, page.date_to) if page.date_from and page.date_to else None,
    )


def rep_hours(user: User) -> availability.RepHours:
    """The rep's own working hours and time off (T1), as the slot engine's limits."""
    weekly = None
    if user.working_hours is not None:
        weekly = tuple(
            availability.WeeklyRule(weekday, _wall(start), _wall(end))
            for weekday, start, end in user.working_hours
        )
    time_off = tuple(
        (date.fromisoformat(first), date.fromisoformat(last)) for first, last in user.time_off or ()
    )
    return availability.RepHours(time_zone=user.time_zone, weekly=weekly, time_off=time_off)


@dataclass(frozen=True)
class RepLimits:
    """What a rep sets once for every page: working hours (None: no limit beyond each page's), time off
    (inclusive local date ranges) and the most meetings booked on one local day (None: no maximum)."""

    working_hours: list[tuple[int, str, str]] | None
    time_off: list[tuple[date, date]]
    daily_meeting_limit: int | None


def set_rep_limits(user: User, limits: RepLimits) -> User:
    """Save the rep's own limits (T1, T4); ``PagesError`` naming the field when the engine refuses them."""
    if limits.daily_meeting_limit is not None and limits.daily_meeting_limit < 1:
        raise PagesError("daily_limit_min", "daily_meeting_limit")
    working = None if limits.working_hours is None else [[int(d), s, e] for d, s, e in limits.working_hours]
    time_off = [[first.isoformat(), last.isoformat()] for first, last in sorted(limits.time_off)]
    with transaction.atomic():  # hours the engine refuses leave the rep's as they were
        user.working_hours, user.time_off = working, time_off
        try:
            rep_hours(user)
        except (ValueError, KeyError) as error:
            raise PagesError("working_hours_invalid", "working_hours", detail=str(error)) from error
        user.daily_meeting_limit = limits.daily_meeting_limit
        db.session.flush()
    return user


def _wall(text: str) -> time:
    """ "HH:MM" as stored; "24:00" is the end of the day, which the engine spells time(0)."""
    return time(0) if text == "24:00" else time.fromisoformat(text)


# --- Paths (P2, D5) -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resolved:
    """What ``/meetings/<user_slug>[/<page_slug>]`` names: a page, a redirect to its current path, or a rep
    with no default page (``page`` None, ``redirect`` None)."""

    owner: User
    page: SchedulingPage | None = None
    redirect: str | None = None


def resolve_path(user_slug: str, page_slug: str | None) -> Resolved | None:
    """Find what a public path names, following old slugs (P2). None: nothing has that path."""
    user_slug, page_slug = user_slug.lower(), page_slug.lower() if page_slug else None
    if user_slug == paths.TEAM_SEGMENT:
        return _resolve_team_path(page_slug) if page_slug else None
    owner = db.session.scalar(sa.select(User).where(User.page_slug == user_slug))
    if owner is None:
        alias = db.session.scalar(
            sa.select(SlugAlias).where(SlugAlias.slug == user_slug, SlugAlias.page_id.is_(None))
        )
        if alias is None:
            return None
        owner = db.session.get(User, alias.user_id)
        redirect = f"/meetings/{owner.page_slug}" + (f"/{page_slug}" if page_slug else "")
        return Resolved(owner=owner, redirect=redirect)
    if page_slug is None:
        page = db.session.scalar(
            sa.select(SchedulingPage).where(SchedulingPage.owner_id == owner.id, SchedulingPage.is_default)
        )
        return Resolved(owner=owner, page=page)
    page = db.session.scalar(
        sa.select(SchedulingPage).where(SchedulingPage.owner_id == owner.id, SchedulingPage.slug == page_slug)
    )
    if page is not None:
        # The default page answers on the rep's own path too; its long path stays valid (links in emails).
        return Resolved(owner=owner, page=page)
    alias = db.session.scalar(
        sa.select(SlugAlias).where(
            SlugAlias.user_id == owner.id, SlugAlias.slug == page_slug, SlugAlias.page_id.is_not(None)
        )
    )
    if alias is None:
        return None
    page = db.session.get(SchedulingPage, alias.page_id)
    return Resolved(owner=owner, redirect=f"/meetings/{owner.page_slug}/{page.slug}")


def _resolve_team_path(slug: str) -> Resolved | None:
    page = db.session.scalar(
        sa.select(SchedulingPage).where(SchedulingPage.kind != "one_on_one", SchedulingPage.slug == slug)
    )
    if page is not None:
        return Resolved(owner=page.owner, page=page)
    alias = db.session.scalar(sa.select(SlugAlias).where(SlugAlias.team, SlugAlias.slug == slug))
    if alias is None:
        return None
    page = db.session.get(SchedulingPage, alias.page_id)
    return Resolved(owner=page.owner, redirect=paths.page_path(page))


def check_slug(slug: str, field_name: str) -> str:
    """A slug's one spelling (lower case), or ``PagesError`` naming ``field_name``."""
    slug = slug.strip().lower()
    if not SLUG_PATTERN.match(slug):
        raise PagesError("slug_pattern", field_name)
    if slug in RESERVED_SLUGS:
        raise PagesError("slug_reserved", field_name, slug=slug)
    return slug


def change_user_slug(user: User, new_slug: str) -> User:
    """Give the rep a new slug for every page's path; the old one keeps redirecting (P2)."""
    new_slug = check_slug(new_slug, "page_slug")
    if new_slug == user.page_slug:
        return user
    holder = db.session.scalar(sa.select(User).where(User.page_slug == new_slug))
    alias = db.session.scalar(
        sa.select(SlugAlias).where(SlugAlias.slug == new_slug, SlugAlias.page_id.is_(None))
    )
    if holder is not None or (alias is not None and alias.user_id != user.id):
        raise PagesError("slug_taken", "page_slug", slug=new_slug)
    if alias is not None:
        db.session.delete(alias)  # the rep takes back a slug they had before
    db.session.add(SlugAlias(tenant_id=user.tenant_id, user_id=user.id, page_id=None, slug=user.page_slug))
    user.page_slug = new_slug
    db.session.flush()
    return user


# --- Editing pages (P1, P3) ---------------------------------------------------------------------------------


@dataclass
class PageSettings:
    """What the rep edits. Times are "HH:MM" strings ("24:00" ends a day), durations and buffers minutes."""

    title: str
    slug: str
    time_zone: str
    weekly: list[tuple[int, str, str]]
    durations: list[int]
    description: str = ""
    location: str = ""
    overrides: list[dict] = field(default_factory=list)
    increment: int | None = None
    buffer_before: int = 0
    buffer_after: int = 0
    min_notice: int = 0
    horizon_days: int | None = 60
    date_from: date | None = None
    date_to: date | None = None
    questions: list[dict] = field(default_factory=list)
    consent_text: str = ""
    confirmation_message: str = ""
    redirect_url: str = ""
    domain_id: int | None = None
    hide_from_search: bool = False
    # Team pages (T1): "round_robin" or "group", the round-robin rule, and the members as
    # [{"user_id", "weight", "paused"}] in order.
    kind: str = "one_on_one"
    assignment: str = "even"
    members: list[dict] = field(default_factory=list)
    # T2: minutes before the start, at most three; and whether the rep gets them too.
    reminders: list[int] = field(default_factory=list)
    remind_rep: bool = False
    max_bookings_per_day: int | None = None
    confirm_email: bool = False


# Where a page may send visitors after booking: an http(s) address with a host, and nothing a Location
# header cannot carry (white space, control characters) nor a backslash browsers would read as "/".
REDIRECT_URL = re.compile(r"https?://[^\x00-\x20\x7f/?#\\@]+(?:[/?#][^\x00-\x20\x7f\\]*)?", re.IGNORECASE)


def new_question_key() -> str:
    return f"k{secrets.token_hex(6)}"


def with_question_keys(questions: Sequence[dict], existing: Sequence[dict]) -> list[dict]:
    """The questions, each with its stable ``key`` (D2: prefill matches answers by page and key).

    A question keeps the key it had (found by its id among the page's ``existing`` questions, or carried
    in); a new one gets a new key, even when it reuses the id or the label of a question deleted before,
    so an answer is never put into another question that merely sits at its place or has its name.
    """
    keys = {q["id"]: q["key"] for q in existing if q.get("key")}
    result, used = [], set()
    for question in questions:
        key = question.get("key") or keys.get(question.get("id")) or new_question_key()
        if key in used:
            key = new_question_key()
        used.add(key)
        result.append({**question, "key": key})
    return result


def _apply(tenant: Tenant, page: SchedulingPage, settings: PageSettings) -> None:
    slug = check_slug(settings.slug, "slug")
    if page.id is not None and settings.kind != page.kind:
        raise PagesError("page_kind_fixed", "kind")
    if settings.kind == "one_on_one":
        taken = db.session.scalar(
            sa.select(SchedulingPage.id).where(
                # A new page has its owner but no owner_id until it is flushed.
                SchedulingPage.owner_id == (page.owner.id if page.owner is not None else page.owner_id),
                SchedulingPage.slug == slug,
                SchedulingPage.id != (page.id or 0),
            )
        )
        if taken is not None:
            raise PagesError("page_slug_taken", "slug", slug=slug)
    else:
        _check_team(tenant, page, settings, slug)
    if settings.redirect_url and not REDIRECT_URL.fullmatch(settings.redirect_url.strip()):
        raise PagesError("redirect_url", "redirect_url")
    domain = None
    if settings.domain_id is not None:
        domain = db.session.scalar(
            sa.select(Domain).where(Domain.tenant_id == tenant.id, Domain.id == settings.domain_id)
        )
        if domain is None or not domain.is_verified:
            raise PagesError("domain_not_verified", "domain_id")
    availability_json = {
        "weekly": [[int(d), s, e] for d, s, e in settings.weekly],
        "overrides": [
            {"day": str(item["day"]), "ranges": [[s, e] for s, e in item.get("ranges", ())]}
            for item in settings.overrides
        ],
    }
    page.title = settings.title.strip()
    page.description = settings.description.strip()
    page.location = settings.location.strip()
    page.time_zone = settings.time_zone
    page.availability = availability_json
    page.durations = list(settings.durations)
    page.increment = settings.increment
    page.buffer_before = settings.buffer_before
    page.buffer_after = settings.buffer_after
    page.min_notice = settings.min_notice
    page.horizon_days = settings.horizon_days
    page.date_from, page.date_to = settings.date_from, settings.date_to
    page.questions = with_question_keys(settings.questions, page.questions or [])
    page.consent_text = settings.consent_text.strip()
    page.confirmation_message = settings.confirmation_message.strip()
    page.redirect_url = settings.redirect_url.strip()
    page.domain = domain
    page.hide_from_search = settings.hide_from_search
    reminders = sorted({int(minutes) for minutes in settings.reminders}, reverse=True)
    if len(reminders) > MAX_REMINDERS or any(not 1 <= m <= MAX_REMINDER_MINUTES for m in reminders):
        raise PagesError("reminders_invalid", "reminders", max=MAX_REMINDERS)
    page.reminders, page.remind_rep = reminders, settings.remind_rep
    if settings.max_bookings_per_day is not None and settings.max_bookings_per_day < 1:
        raise PagesError("page_daily_cap_min", "max_bookings_per_day")
    page.max_bookings_per_day = settings.max_bookings_per_day
    page.confirm_email = settings.confirm_email
    if page.is_team and page.confirm_email:
        # A hold is the visitor's alone until confirmed; a team page picks its member when it books.
        raise PagesError("team_confirm_email", "confirm_email")
    try:
        page_rules(page)  # the engine's own checks: ranges, minutes, zone, date range
    except (ValueError, KeyError) as error:
        raise PagesError("availability_invalid", "availability", detail=str(error)) from error
    if page.slug and page.slug != slug and page.id is not None:
        _keep_old_page_slug(page, page.slug, slug)
    page.slug = slug
    if page.is_team:
        _set_members(tenant, page, settings.members)


def _check_team(tenant: Tenant, page: SchedulingPage, settings: PageSettings, slug: str) -> None:
    """A team page's own checks: its kind, rule, members (the tenant's active users) and unique slug."""
    if settings.kind not in PAGE_KINDS:
        raise PagesError("page_kind", "kind")
    if settings.assignment not in ASSIGNMENT_RULES:
        raise PagesError("assignment", "assignment")
    taken = db.session.scalar(
        sa.select(SchedulingPage.id).where(
            SchedulingPage.kind != "one_on_one",
            SchedulingPage.slug == slug,
            SchedulingPage.id != (page.id or 0),
        )
    )
    alias = db.session.scalar(
        sa.select(SlugAlias).where(
            SlugAlias.team, SlugAlias.slug == slug, SlugAlias.page_id != (page.id or 0)
        )
    )
    if taken is not None or alias is not None:
        raise PagesError("team_slug_taken", "slug")
    ids = [int(item["user_id"]) for item in settings.members]
    if not ids:
        raise PagesError("members_required", "members")
    if len(set(ids)) != len(ids):
        raise PagesError("members_twice", "members")
    found = db.session.scalars(
        sa.select(User.id).where(User.tenant_id == tenant.id, User.id.in_(ids), User.is_active)
    ).all()
    if len(found) != len(ids):
        raise PagesError("members_foreign", "members")
    for item in settings.members:
        if not 1 <= int(item.get("weight", 1)) <= MAX_WEIGHT:
            raise PagesError("member_weight", "members", max=MAX_WEIGHT)
    page.kind, page.assignment = settings.kind, settings.assignment


MAX_WEIGHT = 100
MAX_REMINDERS = 3
MAX_REMINDER_MINUTES = 30 * 24 * 60


def _set_members(tenant: Tenant, page: SchedulingPage, members: list[dict]) -> None:
    current = {member.user_id: member for member in page.members}
    wanted = []
    for position, item in enumerate(members):
        user_id = int(item["user_id"])
        member = current.pop(user_id, None) or PageMember(tenant_id=tenant.id, user_id=user_id)
        member.weight = int(item.get("weight", 1))
        member.paused = bool(item.get("paused", False))
        member.position = position
        wanted.append(member)
    page.members = wanted


def _keep_old_page_slug(page: SchedulingPage, old: str, new: str) -> None:
    if page.is_team:
        db.session.execute(sa.delete(SlugAlias).where(SlugAlias.team, SlugAlias.slug.in_([old, new])))
        db.session.add(
            SlugAlias(tenant_id=page.tenant_id, user_id=page.owner_id, page_id=page.id, slug=old, team=True)
        )
        return
    db.session.execute(
        sa.delete(SlugAlias).where(
            SlugAlias.user_id == page.owner_id,
            SlugAlias.slug.in_([old, new]),
            SlugAlias.page_id.is_not(None),
            sa.not_(SlugAlias.team),
        )
    )
    db.session.add(SlugAlias(tenant_id=page.tenant_id, user_id=page.owner_id, page_id=page.id, slug=old))


def create_page(tenant: Tenant, owner: User, settings: PageSettings) -> SchedulingPage:
    """A new page of ``owner``'s; their first one becomes their default page (P3)."""
    page = SchedulingPage(tenant_id=tenant.id, owner=owner, slug="", kind=settings.kind)
    if page.is_team and not owner.is_admin:
        raise PagesError("team_pages_admins_only", "kind")
    _apply(tenant, page, settings)
    # A team page is never anyone's default page: its path is its own (/meetings/team/<slug>).
    page.is_default = not page.is_team and default_page(tenant, owner) is None
    # A page slug that was once an old slug of another of the rep's pages now names this page.
    db.session.execute(
        sa.delete(SlugAlias).where(
            SlugAlias.user_id == owner.id,
            SlugAlias.slug == page.slug,
            SlugAlias.page_id.is_not(None),
            sa.not_(SlugAlias.team),
        )
    )
    db.session.add(page)
    db.session.flush()
    return page


def update_page(tenant: Tenant, page: SchedulingPage, settings: PageSettings) -> SchedulingPage:
    with transaction.atomic():  # settings refused half-way leave the page as it was
        _apply(tenant, page, settings)
        db.session.flush()
    return page


def set_default_page(tenant: Tenant, owner: User, page: SchedulingPage) -> None:
    """Make ``page`` the rep's default page, served at /meetings/<user-slug> (P3)."""
    if page.is_team:
        raise PagesError("team_page_not_default")
    current = default_page(tenant, owner)
    if current is not None and current.id != page.id:
        current.is_default = False
        db.session.flush()  # the partial unique index allows one default at a time
    page.is_default = True
    db.session.flush()


def delete_page(tenant: Tenant, page: SchedulingPage) -> None:
    """Delete the page; its bookings and meetings stay. Another page becomes the default if it was."""
    owner, was_default = page.owner, page.is_default
    db.session.delete(page)
    db.session.flush()
    if was_default:
        remaining = list_pages(tenant, owner)
        if remaining:
            remaining[0].is_default = True
            db.session.flush()


def set_pages_disabled(user: User, disabled: bool) -> None:
    """P4 for one rep: every page off (or back on, unchanged)."""
    user.pages_disabled = disabled
    db.session.flush()


def set_tenant_pages_disabled(tenant: Tenant, actor: User, disabled: bool) -> None:
    """P4 for the whole tenant, by an admin."""
    if not actor.is_admin or actor.tenant_id != tenant.id:
        raise PagesError("company_switch_admins_only")
    tenant.pages_disabled = disabled
    db.session.flush()


def unavailable_reason(page: SchedulingPage) -> str | None:
    """Why the page is switched off (P4; C7: *Meeting scheduling pages* off on every account of the rep),
    or None when it is on."""
    if page.owner.tenant.pages_disabled:
        return "tenant"
    if page.owner.pages_disabled or not page.owner.is_active:
        return "owner"
    if sync.bookings_destination(page.owner.tenant, page.owner) == "switched_off":
        return "calendar"
    return None


def bookings_destination(tenant: Tenant, owner: User) -> str:
    """What the editor tells the rep about where bookings go: see ``sync.services.bookings_destination``."""
    return sync.bookings_destination(tenant, owner)


# --- Slots (P1, C8) -----------------------------------------------------------------------------------------


def busy_intervals(
    owner: User,
    start: datetime,
    end: datetime,
    *,
    except_booking: Booking | None = None,
    now: datetime | None = None,
) -> list[tuple[datetime, datetime]]:
    """The rep's busy time overlapping ``[start, end)``: the busy blocks the sync keeps of every calendar
    checked for availability (C8) and the rep's confirmed bookings. Never asks a provider.

    A booking being rescheduled is left out, with its calendar event's block, so its own time is free.
    """
    blocks = sa.select(BusyBlock.start_at, BusyBlock.end_at).where(
        BusyBlock.tenant_id == owner.tenant_id,
        BusyBlock.user_id == owner.id,
        BusyBlock.start_at < end,
        BusyBlock.end_at > start,
    )
    bookings = sa.select(Booking.start_at, Booking.end_at).where(
        Booking.tenant_id == owner.tenant_id,
        Booking.owner_id == owner.id,
        Booking.status == "confirmed",
        Booking.start_at < end,
        Booking.end_at > start,
    )
    if except_booking is not None:
        bookings = bookings.where(Booking.id.not_in(_held_by(except_booking)))
        meeting = except_booking.meeting
        if meeting is not None and meeting.uid:
            # Its own event, synced back from the calendar Termin wrote it to, is known by its UID, or by
            # its id there (a Graph event is synced under the UID Termin chose, and the meeting took
            # Exchange's); another event that merely has the same times still blocks.
            same_event = SyncedEvent.uid == meeting.uid
            if meeting.calendar_id is not None and meeting.provider_event_id:
                same_event = sa.or_(
                    same_event,
                    sa.and_(
                        SyncedEvent.calendar_id == meeting.calendar_id,
                        SyncedEvent.provider_event_id == meeting.provider_event_id,
                    ),
                )
            own_event = sa.select(SyncedEvent.id).where(SyncedEvent.tenant_id == owner.tenant_id, same_event)
            blocks = blocks.where(BusyBlock.synced_event_id.not_in(own_event))
    # Times held for visitors confirming their email (``hold``) are busy until the hold runs out.
    holds = sa.select(BookingHold.start_at, BookingHold.end_at).where(
        BookingHold.tenant_id == owner.tenant_id,
        BookingHold.owner_id == owner.id,
        BookingHold.expires_at > (now or utcnow()),
        BookingHold.start_at < end,
        BookingHold.end_at > start,
    )
    # The (user_id, start_at) index hands the blocks over in start order, which the engine merges fastest.
    rows = db.session.execute(blocks.order_by(BusyBlock.start_at)).all()
    rows.extend(db.session.execute(bookings).all())
    rows.extend(db.session.execute(holds).all())
    return [(row[0], row[1]) for row in rows]


def full_days(
    owner: User, start: datetime, end: datetime, *, except_booking: Booking | None = None
) -> set[date]:
    """The rep's local dates around ``[start, end)`` already holding their daily maximum of meetings (T4):
    confirmed bookings on any of their pages, counted by the local date they start on."""
    limit = owner.daily_meeting_limit
    if limit is None:
        return set()
    # A local date reaches at most 14 hours either side of its UTC date: a day's margin holds them all.
    query = sa.select(Booking.start_at).where(
        Booking.tenant_id == owner.tenant_id,
        Booking.owner_id == owner.id,
        Booking.status == "confirmed",
        Booking.start_at >= start - timedelta(days=1),
        Booking.start_at < end + timedelta(days=1),
    )
    if except_booking is not None:
        query = query.where(Booking.id.not_in(_held_by(except_booking)))
    zone = ZoneInfo(owner.time_zone)
    counts = Counter(instant.astimezone(zone).date() for instant in db.session.scalars(query))
    return {day for day, count in counts.items() if count >= limit}


def _held_by(booking: Booking) -> list[int]:
    """The booking rows that hold time for ``booking``: itself and, for a group booking, its companions."""
    return [booking.id, *(companion.id for companion in booking.companions)]


def free_slots(
    page: SchedulingPage,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    duration: timedelta | None = None,
    except_booking: Booking | None = None,
) -> list[datetime]:
    """The page's free starts in ``[start, end)`` (aware UTC), from the database alone: the page's hours
    and the rep's busy time, within the rep's working hours, off their time off and full days.

    A team page (T1) combines its bookable members' free starts: the union for round robin, the
    intersection for a group. Moving a round-robin booking keeps its member, so only theirs count then.
    """
    kwargs = dict(now=now, duration=duration, except_booking=except_booking)
    if not page.is_team:
        return member_free_slots(page, page.owner, start, end, **kwargs)
    if page.kind == "round_robin" and except_booking is not None:
        return member_free_slots(page, except_booking.owner, start, end, **kwargs)
    members, excluded = team_hosts(page)
    if not members or (page.kind == "group" and excluded):
        return []
    if page.kind == "group":
        # Member by member, narrowing the window to the common starts so far: a group with no common time
        # stops reading busy time early.
        common: list[datetime] | None = None
        for member in members:
            own = member_free_slots(page, member, start, end, **kwargs)
            common = own if common is None else availability.combine([common, own], every=True)
            if not common:
                return []
        return common or []
    per_member = [member_free_slots(page, member, start, end, **kwargs) for member in members]
    return availability.combine(per_member, every=False)


def team_hosts(page: SchedulingPage) -> tuple[list[User], list[tuple[User, str]]]:
    """A team page's members who can be booked now, and those left out for an inactive calendar (with the
    reason). Paused members and deactivated users are in neither: they are simply not offered (T1)."""
    bookable, excluded = [], []
    for member in page.members:
        user = member.user
        if member.paused or not user.is_active:
            continue
        reason = sync.booking_paused_reason(user.tenant, user)
        if reason is None:
            bookable.append(user)
        else:
            excluded.append((user, reason))
    return bookable, excluded


def member_free_slots(
    page: SchedulingPage,
    member: User,
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    duration: timedelta | None = None,
    except_booking: Booking | None = None,
) -> list[datetime]:
    """``free_slots`` for one rep the page books with (its owner, or a member of a team page)."""
    rules = page_rules(page)
    length = duration or rules.durations[0]
    # A slot's buffers reach beyond the window: read the busy time they could touch.
    reach_back = rules.buffer_before + length
    reach_ahead = length + rules.buffer_after
    busy = busy_intervals(
        member, start - reach_back, end + reach_ahead, except_booking=except_booking, now=now
    )
    slots = availability.free_slots(rules, busy, window_start=start, window_end=end, now=now, duration=length)
    days = full_days(member, start, end, except_booking=except_booking)
    slots = availability.within_rep_hours(slots, length, rep_hours(member), full_days=days)
    if page.max_bookings_per_day is None or not slots:
        return slots
    full = page_full_days(page, slots[0], slots[-1], except_booking=except_booking)
    zone = ZoneInfo(page.time_zone)
    return [slot for slot in slots if slot.astimezone(zone).date() not in full]


def page_full_days(
    page: SchedulingPage, first: datetime, last: datetime, *, except_booking: Booking | None = None
) -> set[date]:
    """The page's local dates in ``[first, last]`` that already hold ``max_bookings_per_day`` bookings of
    this page (the rep-wide maximum is ``full_days``)."""
    cap = page.max_bookings_per_day
    if cap is None:
        return set()
    zone = ZoneInfo(page.time_zone)
    query = sa.select(Booking.start_at).where(
        Booking.tenant_id == page.tenant_id,
        Booking.page_id == page.id,
        Booking.status == "confirmed",
        # A local day is at most 26 hours of UTC: reach a day either side, then count by local date.
        Booking.start_at >= first - timedelta(days=1),
        Booking.start_at <= last + timedelta(days=1),
    )
    if except_booking is not None:
        query = query.where(Booking.id != except_booking.id)
    counts = Counter(instant.astimezone(zone).date() for instant in db.session.scalars(query))
    return {day for day, count in counts.items() if count >= cap}


def visitor_slots(
    page: SchedulingPage, first_day: date, days: int, time_zone: str, *, now: datetime, duration: timedelta
) -> list[datetime]:
    """The free starts over ``days`` local dates of the visitor's zone from ``first_day``."""
    if not 1 <= days <= MAX_SLOT_DAYS:
        raise PagesError("days_range", "days", max=MAX_SLOT_DAYS)
    start, end = availability.visitor_window(first_day, days, time_zone)
    return free_slots(page, start, end, now=now, duration=duration)


def tell_admins_of_exclusions(page: SchedulingPage, excluded: list[tuple[User, str]], now: datetime) -> None:
    """T1: the tenant's admins hear once that a member is left out for an inactive calendar (like C11);
    a member whose calendars are fine again is told about afresh the next time."""
    left_out = {user.id: reason for user, reason in excluded}
    for member in page.members:
        if member.user_id not in left_out:
            member.excluded_notified_at = None
            continue
        # One conditional UPDATE decides who tells the admins, so a crowd of visitors sends one email.
        claimed = db.session.execute(
            sa.update(PageMember)
            .where(PageMember.id == member.id, PageMember.excluded_notified_at.is_(None))
            .values(excluded_notified_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed:
            admins = db.session.scalars(
                sa.select(User).where(User.tenant_id == page.tenant_id, User.role == "admin", User.is_active)
            ).all()
            signals.team_member_excluded.send(
                page, member=member.user, reason=left_out[member.user_id], admins=list(admins)
            )
    db.session.flush()


def booking_paused_reason(page: SchedulingPage) -> str | None:
    """C11: why nobody can book with the page's rep right now, or None.

    A round-robin page is paused only when no member is left to book (a member with an inactive calendar
    is left out, never assumed free); a group page while any member's calendar is inactive (T1).
    """
    if not page.is_team:
        return sync.booking_paused_reason(page.owner.tenant, page.owner)
    members, excluded = team_hosts(page)
    if page.kind == "group" and excluded:
        user, reason = excluded[0]
        return f"{user.name}: {reason}"
    if not members:
        if excluded:
            user, reason = excluded[0]
            return f"{user.name}: {reason}"
        return "No member of this team page can be booked right now."
    return None


# --- Booking (P6, C7, C10, C11) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BookingRequest:
    """A visitor's validated booking: ``start`` aware, ``answers`` [{"id", "label", "answer"}]."""

    start: datetime
    duration: timedelta
    first_name: str
    last_name: str
    email: str
    time_zone: str
    idempotency_key: str
    locale: str = "en"
    answers: tuple[dict, ...] = ()
    consented: bool = False
    # The cancel/reschedule token to give the booking; None: a random one. The public view derives it from
    # the idempotency key (HMAC with the app's secret), so a double submit can still lead to the booking.
    manage_token: str | None = None
    # The tenant's sales email whose meeting link led here (app.emails.services.attribution_for), if any.
    sent_email_id: int | None = None


@dataclass(frozen=True)
class BookingResult:
    booking: Booking
    created: bool  # False: the same request again (idempotency key), answered with the first booking
    token: str | None  # the cancel/reschedule token, known only when the booking was made just now


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_booking_by_token(token: str) -> Booking | None:
    """The booking a cancel/reschedule link names; the caller checks it belongs to the host's tenant."""
    if not token or len(token) > 100:
        return None
    return db.session.scalar(sa.select(Booking).where(Booking.manage_token_hash == hash_token(token)))


def get_booking(tenant: Tenant, booking_id: int) -> Booking | None:
    return db.session.scalar(
        sa.select(Booking).where(Booking.tenant_id == tenant.id, Booking.id == booking_id)
    )


def list_upcoming_bookings(tenant: Tenant, owner: User, now: datetime, limit: int = 100) -> list[Booking]:
    """The rep's confirmed bookings that have not ended yet, soonest first (the rep's pages list)."""
    return list(
        db.session.scalars(
            sa.select(Booking)
            .where(
                Booking.tenant_id == tenant.id,
                Booking.owner_id == owner.id,
                Booking.status == "confirmed",
                Booking.end_at > now,
            )
            .order_by(Booking.start_at, Booking.id)
            .limit(limit)
        )
    )


def _lock_owner(owner: User) -> None:
    """Serialise the rep's bookings until this transaction ends."""
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(sa.select(sa.func.pg_advisory_xact_lock(_BOOKING_LOCK_NAMESPACE, owner.id)))
    else:
        # SQLite: the first write of a transaction takes the database's write lock until it ends, and
        # every other writer waits for it (the busy timeout), so the re-check below sees the winner's row.
        db.session.execute(
            sa.update(User).where(User.id == owner.id).values(pages_disabled=User.pages_disabled)
        )


def _check_offered(page: SchedulingPage, start: datetime, length: timedelta, now: datetime, **kwargs) -> None:
    """422 for a start that is not one of the page's times at all; 409 for one that is, but is taken."""
    rules = page_rules(page)
    window = dict(window_start=start, window_end=start + timedelta(microseconds=1), now=now, duration=length)
    offered = availability.free_slots(rules, (), **window)
    if start not in availability.within_rep_hours(offered, length, rep_hours(page.owner)):
        if start < now:
            raise PagesError("start_past", "start")
        raise PagesError("start_not_offered", "start")
    if start.astimezone(ZoneInfo(page.time_zone)).date() in page_full_days(page, start, start, **kwargs):
        raise SlotTaken("page_day_full")
    if start not in free_slots(
        page, window["window_start"], window["window_end"], now=now, duration=length, **kwargs
    ):
        if _local_day(page.owner, start) in full_days(page.owner, start, start, **kwargs):
            raise SlotTaken("day_full")
        raise SlotTaken("slot_taken")


def _local_day(user: User, instant: datetime) -> date:
    return instant.astimezone(ZoneInfo(user.time_zone)).date()


def record_paused_attempt(page: SchedulingPage, email: str, now: datetime) -> str | None:
    """C11: when booking with the page's rep is paused, count an attempt and tell the rep (hourly at most).

    A visit to the paused page counts (``email`` empty), as does a refused booking or reschedule. The
    attempts of one rep and hour are one row, bumped by an upsert. Returns the reason booking is paused,
    or None (nothing recorded) when it is not. On a team page the admins also hear, once, of each member
    left out for an inactive calendar (T1), paused or not.
    """
    if page.is_team:
        tell_admins_of_exclusions(page, team_hosts(page)[1], now)
    reason = booking_paused_reason(page)
    if reason is None:
        return None
    owner = page.owner
    hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    dialect = db.session.get_bind().dialect.name
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(BookingAttempt).values(
        tenant_id=page.tenant_id,
        owner_id=owner.id,
        hour_start=hour,
        attempts=1,
        page_id=page.id,
        email=email[:254],
        reason=reason[:500],
        last_attempt_at=now,
    )
    statement = statement.on_conflict_do_update(
        index_elements=[BookingAttempt.owner_id, BookingAttempt.hour_start],
        set_={
            "attempts": BookingAttempt.attempts + 1,
            "page_id": statement.excluded.page_id,
            "reason": statement.excluded.reason,
            "last_attempt_at": statement.excluded.last_attempt_at,
            # A visit gives no address: keep the hour's latest one a booking gave.
            "email": sa.func.coalesce(sa.func.nullif(statement.excluded.email, ""), BookingAttempt.email),
        },
    ).returning(BookingAttempt)
    attempt = db.session.scalar(statement, execution_options={"populate_existing": True})
    # One conditional UPDATE decides who tells the rep, so a crowd of visitors sends one email an hour.
    claimed = db.session.execute(
        sa.update(User)
        .where(
            User.id == owner.id,
            sa.or_(
                User.paused_booking_notified_at.is_(None),
                User.paused_booking_notified_at <= now - PAUSED_NOTICE_EVERY,
            ),
        )
        .values(paused_booking_notified_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.flush()
    if claimed:
        signals.booking_attempted_while_paused.send(page, attempt=attempt)
    return reason


def refuse_while_paused(page: SchedulingPage, email: str, now: datetime) -> None:
    """C11: while booking is paused, record the attempt (``record_paused_attempt``) and refuse it."""
    reason = record_paused_attempt(page, email, now)
    if reason is not None:
        raise BookingPaused(reason)


def book(page: SchedulingPage, request: BookingRequest, *, now: datetime) -> BookingResult:
    """Book ``request`` on ``page`` in the current transaction (see the module docstring).

    Raises ``PageUnavailable`` (P4), ``BookingPaused`` (C11: the attempt is recorded, keep the transaction),
    ``PagesError`` naming the field, ``SlotTaken``.
    """
    if unavailable_reason(page):
        raise PageUnavailable()
    refuse_while_paused(page, request.email, now)
    if page.consent_text and not request.consented:
        raise PagesError("consent_required", "consent")
    tenant, owner = page.owner.tenant, page.owner
    hosts = team_hosts(page)[0] if page.is_team else [owner]
    _lock_hosts(hosts)
    earlier = db.session.scalar(
        sa.select(Booking).where(
            Booking.page_id == page.id, Booking.idempotency_key == request.idempotency_key
        )
    )
    if earlier is not None:
        same = (earlier.start_at, earlier.end_at, earlier.email)
        if same != (request.start, request.start + request.duration, request.email):
            raise PagesError("idempotency_key_reused", "idempotency_key")
        return BookingResult(earlier, created=False, token=None)
    if page.is_team:
        free = _free_hosts(page, hosts, request.start, request.duration, now)
        if page.kind == "group":
            if len(free) < len(hosts) or not hosts:
                raise SlotTaken("slot_taken")
            owner = owner if owner in hosts else hosts[0]  # the organizer: the page's owner or first member
        else:
            if not free:
                raise SlotTaken("slot_taken")
            owner = _assign(page, free, request.email, now)
    else:
        _check_offered(page, request.start, request.duration, now)
    with _booking_writes():
        booking, token = _write_booking(page, request, now, owner=owner, hosts=hosts)
    # C7, C10: into the default calendar of the account with scheduling pages on, the visitor invited (and,
    # for a group, the other members: ``writes`` lists the companions' owners as attendees).
    writes.schedule_meeting_write(tenant, booking.meeting, purpose="pages")
    signals.booking_confirmed.send(booking, token=token)
    signals.reminders_due.send(booking, token=token, now=now)
    return BookingResult(booking, created=True, token=token)


def _write_booking(
    page: SchedulingPage,
    request: BookingRequest,
    now: datetime,
    *,
    owner: User | None = None,
    hosts: Sequence[User] = (),
) -> tuple[Booking, str]:
    """The booking's rows: the visitor as a contact (P6), the rep's meeting, the booking; ``owner`` the
    member a team page books (default: the page's owner), and on a group page one companion row for each
    other of the ``hosts``."""
    tenant, owner = page.owner.tenant, owner or page.owner
    contact = _upsert_contact(tenant, request)
    end = request.start + request.duration
    meeting = Meeting(
        tenant_id=tenant.id,
        owner=owner,
        title=f"{page.title}: {request.first_name} {request.last_name}".strip()[:200],
        start_at=request.start,
        end_at=end,
        source="page",
        notes=_answers_text(request.answers),
        contacts=[contact],
    )
    db.session.add(meeting)
    token = request.manage_token or secrets.token_urlsafe(32)
    booking = Booking(
        tenant_id=tenant.id,
        page=page,
        owner=owner,
        contact=contact,
        meeting=meeting,
        start_at=request.start,
        end_at=end,
        status="confirmed",
        idempotency_key=request.idempotency_key,
        first_name=request.first_name,
        last_name=request.last_name,
        email=request.email,
        time_zone=request.time_zone,
        locale=request.locale,
        answers=list(request.answers),
        consented_at=now if request.consented else None,
        manage_token_hash=hash_token(token),
        sent_email_id=request.sent_email_id,
    )
    db.session.add(booking)
    if page.kind == "group":
        # Every other member's time is held by a companion row under the same exclusion constraint.
        for host in hosts:
            if host.id != owner.id:
                db.session.add(_companion(booking, host))
    return booking, token


def _lock_hosts(hosts: Sequence[User]) -> None:
    """Every host's booking lock, in one order (by id), so two team bookings never wait on each other."""
    for host in sorted(hosts, key=lambda user: user.id):
        _lock_owner(host)


def _free_hosts(
    page: SchedulingPage,
    hosts: Sequence[User],
    start: datetime,
    length: timedelta,
    now: datetime,
    except_booking: Booking | None = None,
) -> list[User]:
    """The ``hosts`` free for a ``length`` meeting at ``start`` on ``page``, read under their locks; a
    ``PagesError`` (422) when the page does not offer ``start`` at all."""
    rules = page_rules(page)
    window = dict(window_start=start, window_end=start + timedelta(microseconds=1), now=now, duration=length)
    if start not in availability.free_slots(rules, (), **window):
        if start < now:
            raise PagesError("start_past", "start")
        raise PagesError("start_not_offered", "start")
    end = window["window_end"]
    return [
        host
        for host in hosts
        if start
        in member_free_slots(page, host, start, end, now=now, duration=length, except_booking=except_booking)
    ]


# Round robin's "even" rule counts each member's bookings of the page from this long ago on (upcoming too).
ASSIGNMENT_WINDOW = timedelta(days=30)


def _assign(page: SchedulingPage, free: Sequence[User], email: str, now: datetime) -> User:
    """The member a round-robin booking goes to, among those ``free`` at its time (T1).

    *even*: the fewest bookings of this page starting from ``ASSIGNMENT_WINDOW`` ago on, ties to the least
    recently booked, then the member listed first. *weighted*: the same with each count divided by the
    member's weight, so over many bookings each gets a share proportional to it. *owner_first*: the
    visitor's contact owner (the member who owns the contact's latest meeting) when free, else *even*.
    """
    if page.assignment == "owner_first":
        owner = _contact_owner(page.tenant_id, email, free)
        if owner is not None:
            return owner
    ids = [user.id for user in free]
    rows = db.session.execute(
        sa.select(Booking.owner_id, sa.func.count(), sa.func.max(Booking.created_at))
        .where(
            Booking.tenant_id == page.tenant_id,
            Booking.page_id == page.id,
            Booking.parent_id.is_(None),
            Booking.status == "confirmed",
            Booking.start_at >= now - ASSIGNMENT_WINDOW,
            Booking.owner_id.in_(ids),
        )
        .group_by(Booking.owner_id)
    ).all()
    counts = {owner_id: (count, last) for owner_id, count, last in rows}
    members = {member.user_id: member for member in page.members}

    def turn(user: User):
        count, last = counts.get(user.id, (0, None))
        member = members[user.id]
        share = count / member.weight if page.assignment == "weighted" else count
        return share, last or datetime.min.replace(tzinfo=UTC), member.position

    return min(free, key=turn)


def _contact_owner(tenant_id: int, email: str, free: Sequence[User]) -> User | None:
    by_id = {user.id: user for user in free}
    owner_id = db.session.scalar(
        sa.select(Meeting.owner_id)
        .join(MeetingContact, MeetingContact.meeting_id == Meeting.id)
        .join(Contact, Contact.id == MeetingContact.contact_id)
        .where(
            Meeting.tenant_id == tenant_id,
            Contact.tenant_id == tenant_id,
            Contact.email == email.strip().lower(),
            Meeting.owner_id.in_(list(by_id)),
        )
        .order_by(Meeting.start_at.desc(), Meeting.id.desc())
        .limit(1)
    )
    return by_id.get(owner_id)


def _companion(booking: Booking, host: User) -> Booking:
    """A group booking's row holding ``host``'s time: the visitor's details, no token of its own."""
    key = hashlib.sha256(booking.idempotency_key.encode()).hexdigest()[:40]
    return Booking(
        tenant_id=booking.tenant_id,
        page=booking.page,
        owner=host,
        contact=booking.contact,
        meeting=booking.meeting,
        start_at=booking.start_at,
        end_at=booking.end_at,
        status="confirmed",
        idempotency_key=f"member-{host.id}-{key}",
        first_name=booking.first_name,
        last_name=booking.last_name,
        email=booking.email,
        time_zone=booking.time_zone,
        locale=booking.locale,
        answers=list(booking.answers),
        consented_at=booking.consented_at,
        manage_token_hash=hash_token(secrets.token_urlsafe(32)),
        parent=booking,
    )


# --- Holding a time until the visitor confirms their email (issue 15) ---------------------------------------


def hold(
    page: SchedulingPage, request: BookingRequest, *, now: datetime, minutes: int
) -> tuple[BookingHold, str]:
    """A page that asks visitors to confirm their email: hold the time ``minutes`` and mail the link that
    makes it a booking (``confirm_hold``). Same checks and refusals as ``book``; nothing else is made yet.
    The same request again (idempotency key) gets a new link for the same hold."""
    if unavailable_reason(page):
        raise PageUnavailable()
    refuse_while_paused(page, request.email, now)
    if page.consent_text and not request.consented:
        raise PagesError("consent_required", "consent")
    owner = page.owner
    _lock_owner(owner)
    db.session.execute(
        sa.delete(BookingHold).where(BookingHold.owner_id == owner.id, BookingHold.expires_at <= now)
    )
    token = secrets.token_urlsafe(32)
    earlier = db.session.scalar(
        sa.select(BookingHold).where(
            BookingHold.page_id == page.id,
            BookingHold.request["idempotency_key"].as_string() == request.idempotency_key,
        )
    )
    if earlier is not None and (earlier.start_at, earlier.email) == (request.start, request.email):
        earlier.token_hash = hash_token(token)
        db.session.flush()
        left = max(1, int((earlier.expires_at - now).total_seconds() // 60))
        signals.booking_held.send(earlier, token=token, minutes=left)
        return earlier, token
    _check_offered(page, request.start, request.duration, now)
    held = BookingHold(
        tenant_id=page.tenant_id,
        page=page,
        owner=owner,
        start_at=request.start,
        end_at=request.start + request.duration,
        email=request.email,
        request={
            "first_name": request.first_name,
            "last_name": request.last_name,
            "time_zone": request.time_zone,
            "locale": request.locale,
            "answers": list(request.answers),
            "consented": request.consented,
            "idempotency_key": request.idempotency_key,
        },
        token_hash=hash_token(token),
        expires_at=now + timedelta(minutes=minutes),
    )
    db.session.add(held)
    db.session.flush()
    signals.booking_held.send(held, token=token, minutes=minutes)
    return held, token


def get_hold_by_token(token: str, now: datetime) -> BookingHold | None:
    """The unexpired hold a confirmation link names (global by the token; the view checks the host)."""
    if not token or len(token) > 100:
        return None
    held = db.session.scalar(sa.select(BookingHold).where(BookingHold.token_hash == hash_token(token)))
    return held if held is not None and held.expires_at > now else None


def confirm_hold(held: BookingHold, *, now: datetime, manage_token: str) -> BookingResult:
    """The visitor followed the link: the hold becomes a booking through ``book`` (every check again)."""
    page, data = held.page, held.request
    request = BookingRequest(
        start=held.start_at,
        duration=held.end_at - held.start_at,
        first_name=data["first_name"],
        last_name=data["last_name"],
        email=held.email,
        time_zone=data["time_zone"],
        idempotency_key=data["idempotency_key"],
        locale=data.get("locale") or "en",
        answers=tuple(data.get("answers") or ()),
        consented=bool(data.get("consented")),
        manage_token=manage_token,
    )
    # Its time must not block its own booking; a refusal undoes the deletion (the link still works).
    with transaction.atomic():
        db.session.delete(held)
        db.session.flush()
        return book(page, request, now=now)


@contextmanager
def _booking_writes() -> Iterator[None]:
    """A booking's writes, flushed in a SAVEPOINT: refused, they are undone together and the transaction
    stays usable for the answer."""
    try:
        with transaction.atomic():
            yield
            db.session.flush()
    except IntegrityError as error:
        # The exclusion constraint: an overlap that got past the lock (only code that skips it can).
        if "ex_bookings_owner_id_overlap" in str(error.orig):
            raise SlotTaken("slot_taken") from error
        raise


def _upsert_contact(tenant: Tenant, request: BookingRequest) -> Contact:
    """P6: the visitor becomes a CRM contact, or the one with that email gets the name they gave."""
    data = crm.ContactData(request.email, request.first_name, request.last_name)
    contact = crm.get_contact_by_email(tenant, request.email)
    if contact is None:
        try:
            return crm.create_contact(tenant, data)
        except crm.DuplicateEmail as taken:  # created by another rep's booking a moment ago
            contact = taken.existing
    contact.first_name = request.first_name or contact.first_name
    contact.last_name = request.last_name or contact.last_name
    return contact


def _answers_text(answers: Sequence[dict]) -> str:
    return "\n".join(f"{item['label']}: {item['answer']}" for item in answers if item.get("answer"))


def cancel_booking(booking: Booking, *, reason: str = "", by_visitor: bool, now: datetime) -> Booking:
    """Cancel the booking, its meeting and its calendar event, and tell the other side."""
    if booking.parent is not None:
        booking = booking.parent  # a member cancelling their part of a group meeting cancels the meeting
    if not booking.is_confirmed:
        return booking
    for row in (booking, *booking.companions):
        row.status = "cancelled"
        row.cancelled_at = now
    booking.cancel_reason = reason.strip()[:2000]
    tenant = booking.owner.tenant
    if booking.meeting is not None and booking.meeting.status != "cancelled":
        crm.cancel_meeting(tenant, booking.meeting)
    db.session.flush()
    signals.booking_cancelled.send(booking, by_visitor=by_visitor)
    return booking


def offers_length(page: SchedulingPage, length: timedelta) -> bool:
    """Whether the page still offers meetings this long (a booking keeps its length when moved)."""
    return length in page_rules(page).durations


def reschedule_booking(
    booking: Booking, start: datetime, token: str, *, now: datetime, reason: str = ""
) -> Booking:
    """Move the booking to ``start`` on its page (same length): booking, meeting and calendar event.
    ``reason`` (optional, the visitor's) is kept on the booking for the rep's email."""
    page = booking.page
    if page is None:
        raise PagesError("booking_page_gone")
    if not booking.is_confirmed:
        raise PagesError("booking_cancelled")
    if unavailable_reason(page):
        raise PageUnavailable()
    refuse_while_paused(page, booking.email, now)
    hosts = [booking.owner, *(companion.owner for companion in booking.companions)]
    _lock_hosts(hosts)
    length = booking.end_at - booking.start_at
    if not offers_length(page, length):
        raise PagesError("length_gone", "start")
    if start == booking.start_at:
        return booking
    if page.is_team:
        # The booking keeps its members: every one of them must be free at the new time.
        if len(_free_hosts(page, hosts, start, length, now, except_booking=booking)) < len(hosts):
            raise SlotTaken("slot_taken")
    else:
        _check_offered(page, start, length, now, except_booking=booking)
    previous = (booking.start_at, booking.end_at)
    meeting = booking.meeting
    with _booking_writes():
        for row in (booking, *booking.companions):
            row.start_at, row.end_at = start, start + length
        booking.rescheduled_at = now
        booking.reschedule_reason = reason.strip()
        if meeting is not None:
            meeting.start_at, meeting.end_at = booking.start_at, booking.end_at
            meeting.sequence += 1
    if meeting is not None:
        writes.schedule_meeting_update(meeting.owner.tenant, meeting)
    signals.booking_rescheduled.send(
        booking, token=token, previous_start=previous[0], previous_end=previous[1]
    )
    # The reminders of the old time see the start moved and send nothing; these are the new time's.
    signals.reminders_due.send(booking, token=token, now=now)
    return booking


def parse_start(text: str) -> datetime:
    """An ISO 8601 instant with its offset (``Z`` allowed), as UTC; ``PagesError`` on "start" otherwise."""
    try:
        value = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise PagesError("start_format", "start") from None
    if value.tzinfo is None:
        raise PagesError("start_offset", "start")
    if not FIRST_DAY < value.date() < LAST_DAY:  # a day's margin: the offset cannot carry it out of range
        raise PagesError("start_range", "start")
    return value.astimezone(UTC)
