"""users.is_default: the user a command acts for when none is named.

`budget user default EMAIL` sets it; at most one user has it (a partial unique index).
Stored in the database, so the choice travels with the data (a copy of the SQLite file,
every machine using the same PostgreSQL database). A database with exactly one user makes
that user the default, so adding a second user later does not leave the first one's
commands without a user.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 20:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEX = "ix_users_one_default"


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_index(
        INDEX,
        "users",
        ["is_default"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )
    op.execute(
        "UPDATE users SET is_default = true WHERE (SELECT count(*) FROM users) = 1"
        if op.get_bind().dialect.name == "postgresql"
        else "UPDATE users SET is_default = 1 WHERE (SELECT count(*) FROM users) = 1"
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("is_default")
