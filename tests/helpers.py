"""Assertions shared by the view tests."""

import re

import sqlalchemy as sa

from app.extensions import db

FIELD_ERROR = re.compile(r'<p class="error"[^>]*data-field="([^"]+)"')


def error_fields(response) -> set[str]:
    """The form fields a response shows an error on (templates mark them with data-field)."""
    return set(FIELD_ERROR.findall(response.get_data(as_text=True)))


# Signing in writes a session row; a test that signs in after its first snapshot has not written anything.
NOT_SNAPSHOT = frozenset({"user_sessions"})


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table (but the sign-ins' sessions): equal snapshots before and after prove a
    request wrote nothing."""
    with app.app_context():
        return {
            table.name: sorted((tuple(row) for row in db.session.execute(sa.select(table))), key=repr)
            for table in db.metadata.sorted_tables
            if table.name not in NOT_SNAPSHOT
        }


def is_fragment(response) -> bool:
    return "<html" not in response.get_data(as_text=True)
