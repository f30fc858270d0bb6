"""Budget history (changes of a category's monthly budget, per month) and income.

`category_budgets` holds standing changes (from a month on, until the next change) and
one-month overrides. A category's existing `monthly_budget` stays its opening budget, in
force in every month before its first change: with no changes yet, every month keeps the
budget it had, so upgrading changes no figure. Downgrade drops the history (each category
falls back to its opening budget). `income` records money received, beside spending.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "category_budgets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("one_month", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.CheckConstraint("amount >= 0", name=op.f("ck_category_budgets_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_category_budgets_user_id_category_id_categories",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_budgets")),
        sa.UniqueConstraint(
            "category_id",
            "one_month",
            "month",
            name=op.f("uq_category_budgets_category_id_one_month_month"),
        ),
        sqlite_autoincrement=True,  # ids never reused, as every table since 0004
    )


    op.create_table(
        "income",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=200), server_default="", nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.CheckConstraint("amount > 0", name=op.f("ck_income_amount_positive")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_income_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_income")),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name=op.f("uq_income_user_id_idempotency_key")
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_income_user_id_received_on_amount"),
        "income",
        ["user_id", "received_on", "amount"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_income_user_id_received_on_amount"), table_name="income")
    op.drop_table("income")
    op.drop_table("category_budgets")
