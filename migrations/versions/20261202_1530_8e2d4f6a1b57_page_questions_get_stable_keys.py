"""page questions get stable keys

Revision ID: 8e2d4f6a1b57
Revises: 5a1c0e7b9d23
Create Date: 2026-12-02 15:30:00.000000

D2's prefill matched a visitor's earlier answers by question id ("q1", "q2", ...), which are positions in
disguise: the same id on another page is another question, and an id freed by a deletion is given to the
next new question. Each question of a page's stored ``questions`` JSON now carries a random ``key`` that
it keeps for life; the prefill cookie names the page and these keys. This gives every existing question
its key (ids stay as they are: bookings' answers refer to them).

The downgrade drops the keys.
"""

import secrets

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision = "8e2d4f6a1b57"
down_revision = "5a1c0e7b9d23"
branch_labels = None
depends_on = None

PAGES = sa.table(
    "scheduling_pages",
    sa.column("id", sa.Integer),
    sa.column("questions", sa.JSON().with_variant(postgresql.JSONB(), "postgresql")),
)


def _rewrite(change) -> None:
    bind = op.get_bind()
    for page_id, questions in bind.execute(sa.select(PAGES.c.id, PAGES.c.questions)).all():
        if not questions:
            continue
        new = [change(dict(question)) for question in questions]
        if new != questions:
            bind.execute(sa.update(PAGES).where(PAGES.c.id == page_id).values(questions=new))


def _with_key(question: dict) -> dict:
    question.setdefault("key", f"k{secrets.token_hex(6)}")
    return question


def _without_key(question: dict) -> dict:
    question.pop("key", None)
    return question


def upgrade():
    _rewrite(_with_key)


def downgrade():
    _rewrite(_without_key)
