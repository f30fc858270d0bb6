"""Covering index for reports on expenses (user_id, spent_on, category_id, amount).

A one-month report groups a user's expenses of that month by category and sums their
amounts; with every column it reads in the index, PostgreSQL answers it with an
index-only range scan whose cost does not grow with the years of history. The index
replaces (user_id, spent_on), which is its prefix, so writes pay for one index, not two.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("expenses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_expenses_user_id_spent_on_category_id_amount"),
            ["user_id", "spent_on", "category_id", "amount"],
            unique=False,
        )
        batch_op.drop_index(batch_op.f("ix_expenses_user_id_spent_on"))


def downgrade() -> None:
    with op.batch_alter_table("expenses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_expenses_user_id_spent_on"), ["user_id", "spent_on"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_expenses_user_id_spent_on_category_id_amount"))
