"""Initial schema: users, categories, expenses and the budget transfer ledger.

Money columns are BIGINT cents (the app's Money type). Expenses and transfers reference
their categories through (user_id, id), so the database refuses a row that points at
another user's category.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 21:35:53.528384
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("email <> ''", name=op.f('ck_users_email_not_empty')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    op.create_table('categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('name_key', sa.String(length=50), nullable=False),
    sa.Column('color', sa.String(length=7), nullable=True),
    sa.Column('monthly_budget', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.CheckConstraint("name <> ''", name=op.f('ck_categories_name_not_empty')),
    sa.CheckConstraint('color IS NULL OR length(color) = 7', name=op.f('ck_categories_color_hex')),
    sa.CheckConstraint('monthly_budget >= 0', name=op.f('ck_categories_budget_not_negative')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_categories_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_categories')),
    sa.UniqueConstraint('user_id', 'id', name=op.f('uq_categories_user_id_id')),
    sa.UniqueConstraint('user_id', 'name_key', name=op.f('uq_categories_user_id_name_key'))
    )
    op.create_table('budget_transfers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('from_category_id', sa.Integer(), nullable=False),
    sa.Column('to_category_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('month', sa.Date(), nullable=False),
    sa.Column('note', sa.String(length=200), server_default='', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('reverses_id', sa.Integer(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_budget_transfers_amount_positive')),
    sa.CheckConstraint('from_category_id <> to_category_id', name=op.f('ck_budget_transfers_distinct_categories')),
    sa.ForeignKeyConstraint(['reverses_id'], ['budget_transfers.id'], name=op.f('fk_budget_transfers_reverses_id_budget_transfers')),
    sa.ForeignKeyConstraint(['user_id', 'from_category_id'], ['categories.user_id', 'categories.id'], name='fk_budget_transfers_user_id_from_category_id_categories'),
    sa.ForeignKeyConstraint(['user_id', 'to_category_id'], ['categories.user_id', 'categories.id'], name='fk_budget_transfers_user_id_to_category_id_categories'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_budget_transfers_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_budget_transfers')),
    sa.UniqueConstraint('reverses_id', name=op.f('uq_budget_transfers_reverses_id')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name=op.f('uq_budget_transfers_user_id_idempotency_key'))
    )
    with op.batch_alter_table('budget_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_budget_transfers_from_category_id_month'), ['from_category_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_budget_transfers_to_category_id_month'), ['to_category_id', 'month'], unique=False)
        batch_op.create_index(batch_op.f('ix_budget_transfers_user_id_month'), ['user_id', 'month'], unique=False)

    op.create_table('expenses',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('description', sa.String(length=200), server_default='', nullable=False),
    sa.Column('spent_on', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.func.current_timestamp(), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=True),
    sa.CheckConstraint('amount > 0', name=op.f('ck_expenses_amount_positive')),
    sa.ForeignKeyConstraint(['user_id', 'category_id'], ['categories.user_id', 'categories.id'], name='fk_expenses_user_id_category_id_categories'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_expenses_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_expenses')),
    sa.UniqueConstraint('user_id', 'idempotency_key', name=op.f('uq_expenses_user_id_idempotency_key'))
    )
    with op.batch_alter_table('expenses', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_expenses_category_id_spent_on'), ['category_id', 'spent_on'], unique=False)
        batch_op.create_index(batch_op.f('ix_expenses_user_id_spent_on'), ['user_id', 'spent_on'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('expenses', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_expenses_user_id_spent_on'))
        batch_op.drop_index(batch_op.f('ix_expenses_category_id_spent_on'))

    op.drop_table('expenses')
    with op.batch_alter_table('budget_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_budget_transfers_user_id_month'))
        batch_op.drop_index(batch_op.f('ix_budget_transfers_to_category_id_month'))
        batch_op.drop_index(batch_op.f('ix_budget_transfers_from_category_id_month'))

    op.drop_table('budget_transfers')
    op.drop_table('categories')
    op.drop_table('users')
