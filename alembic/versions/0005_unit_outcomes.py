"""Unit outcomes: what each committed unit of work returned, under its retry key.

A COMMIT whose acknowledgement is lost leaves the client unsure whether it committed. The
runner retries the unit of work; with the outcome written in the unit's own transaction,
the retry finds it and reports what the committed attempt did (the expense it deleted,
the category it created, the rows it imported) instead of running the work again against
its own changes. Rows matter only for the seconds a retry can take and are pruned by age
(hence the index on created_at).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "unit_outcomes",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_unit_outcomes")),
    )
    with op.batch_alter_table("unit_outcomes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_unit_outcomes_created_at"), ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("unit_outcomes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unit_outcomes_created_at"))
    op.drop_table("unit_outcomes")
