"""Drop the single-column user_id foreign keys that the composite ones already imply.

`expenses (user_id, category_id)` and both `budget_transfers (user_id, *_category_id)`
reference `categories (user_id, id)`, and `categories.user_id` references `users`, so a
row whose user does not exist is already refused. The extra `user_id -> users` key only
added a second foreign-key check (a trigger and an index probe) to every inserted row.

ON DELETE: those keys were the only ones that cascaded from users to expenses and
transfers. The composite keys stay NO ACTION, so the database still refuses to delete a
category (or, through its cascade to categories, a user) while expenses or transfers
reference it: money rows are never removed as a side effect. Nothing in the app deletes
users; removing one now means deleting their expenses and transfers first.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_FKS = {
    "expenses": "fk_expenses_user_id_users",
    "budget_transfers": "fk_budget_transfers_user_id_users",
}


def _tables(*, with_user_fks: bool) -> dict[str, sa.Table]:
    """Both tables with (0002) or without (0003) the keys: what SQLite rebuilds them as."""
    metadata = sa.MetaData()
    # Referenced tables: only the columns the foreign keys name (never created here).
    sa.Table("users", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "categories",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer),
    )

    def user_fk(table: str) -> list[sa.ForeignKeyConstraint]:
        if not with_user_fks:
            return []
        return [
            sa.ForeignKeyConstraint(
                ["user_id"], ["users.id"], name=USER_FKS[table], ondelete="CASCADE"
            )
        ]

    def created_at() -> sa.Column[object]:
        return sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        )

    expenses = sa.Table(
        "expenses",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.String(length=200), server_default="", nullable=False),
        sa.Column("spent_on", sa.Date(), nullable=False),
        created_at(),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_expenses_amount_positive"),
        sa.ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_expenses_user_id_category_id_categories",
        ),
        *user_fk("expenses"),
        sa.PrimaryKeyConstraint("id", name="pk_expenses"),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_expenses_user_id_idempotency_key"
        ),
        sa.Index("ix_expenses_category_id_spent_on", "category_id", "spent_on"),
        sa.Index(
            "ix_expenses_user_id_spent_on_category_id_amount",
            "user_id",
            "spent_on",
            "category_id",
            "amount",
        ),
    )
    transfers = sa.Table(
        "budget_transfers",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("from_category_id", sa.Integer(), nullable=False),
        sa.Column("to_category_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("note", sa.String(length=200), server_default="", nullable=False),
        created_at(),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_budget_transfers_amount_positive"),
        sa.CheckConstraint(
            "from_category_id <> to_category_id", name="ck_budget_transfers_distinct_categories"
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["budget_transfers.id"],
            name="fk_budget_transfers_reverses_id_budget_transfers",
        ),
        sa.ForeignKeyConstraint(
            ["user_id", "from_category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_budget_transfers_user_id_from_category_id_categories",
        ),
        sa.ForeignKeyConstraint(
            ["user_id", "to_category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_budget_transfers_user_id_to_category_id_categories",
        ),
        *user_fk("budget_transfers"),
        sa.PrimaryKeyConstraint("id", name="pk_budget_transfers"),
        sa.UniqueConstraint("reverses_id", name="uq_budget_transfers_reverses_id"),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_budget_transfers_user_id_idempotency_key"
        ),
        sa.Index("ix_budget_transfers_from_category_id_month", "from_category_id", "month"),
        sa.Index("ix_budget_transfers_to_category_id_month", "to_category_id", "month"),
        sa.Index("ix_budget_transfers_user_id_month", "user_id", "month"),
    )
    return {"expenses": expenses, "budget_transfers": transfers}


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in _tables(with_user_fks=False).values():
            _rebuild_on_sqlite(table)
        return
    for table, name in USER_FKS.items():
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        for table in _tables(with_user_fks=True).values():
            _rebuild_on_sqlite(table)
        return
    for table, name in USER_FKS.items():
        op.create_foreign_key(name, table, "users", ["user_id"], ["id"], ondelete="CASCADE")


def _rebuild_on_sqlite(table: sa.Table) -> None:
    """Give a table new constraints the only way SQLite allows: a copy under its name.

    Not Alembic's batch mode, which copies first and drops the original before renaming
    the copy: budget_transfers references itself (reverses_id), and dropping the original
    would orphan the copy's undo entries for a moment, which SQLite refuses (or, with
    deferred keys, still counts as a violation at COMMIT). Renaming the original first
    makes SQLite re-point its self-reference to the old name, so the copy's keys are
    checked against the copy and the old table drops cleanly. All inside the migration's
    transaction; the full definition (not reflection) also works for `upgrade --sql`.
    """
    old = f"_alembic_old_{table.name}"
    op.rename_table(table.name, old)
    for index in table.indexes:
        op.drop_index(index.name, table_name=old)  # the copy's indexes reuse the names
    op.execute(CreateTable(table))
    columns = ", ".join(column.name for column in table.columns)
    op.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {old}")
    op.drop_table(old)
    for index in sorted(table.indexes, key=lambda index: str(index.name)):
        op.execute(CreateIndex(index))
