"""Where a scheduling page lives: its path and its host. Pure functions of the page, with no queries, so the
services, the links, the notifications and the views can all use them without importing each other."""

from app.pages.models import SchedulingPage


def page_path(page: SchedulingPage) -> str:
    """The page's path; the default page's is the rep's own (P3)."""
    if page.is_default:
        return f"/meetings/{page.owner.page_slug}"
    return f"/meetings/{page.owner.page_slug}/{page.slug}"


def page_host(page: SchedulingPage, app_host: str) -> str:
    """The host the page is served on: its verified domain, else the app host (D1, D3)."""
    domain = page.domain
    return domain.hostname if domain is not None and domain.is_verified else app_host
