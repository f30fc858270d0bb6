"""unit_outcomes.role_name: each role sees only the outcomes its own commands recorded.

A recorded outcome is what a writing command returned (expense descriptions, category
names, e-mails): a person's role must not read another person's. On PostgreSQL the new
column defaults to `current_user` and row-level security shows, lets delete and lets
insert only a role's own rows; a retry after a lost acknowledgement runs as the same role
(the role is the login, also through PgBouncer), so it still finds its record. The tables'
owner bypasses the policy, as for every other table. Rows from before this revision have
no role: only the owner sees them, and they are pruned by age as before. On SQLite the
column stays empty (the file is the boundary).

Revision ID: 0013
Revises: 0011
Create Date: 2026-11-30 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("unit_outcomes", sa.Column("role_name", sa.String(length=63), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE unit_outcomes ALTER COLUMN role_name SET DEFAULT current_user")
        op.execute("ALTER TABLE unit_outcomes ENABLE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY unit_outcomes_own ON unit_outcomes FOR ALL "
            "USING (role_name = current_user) WITH CHECK (role_name = current_user)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP POLICY IF EXISTS unit_outcomes_own ON unit_outcomes")
        op.execute("ALTER TABLE unit_outcomes DISABLE ROW LEVEL SECURITY")
    # ALTER TABLE ... DROP COLUMN on both backends (SQLite 3.35+), as 0011 does.
    op.execute("ALTER TABLE unit_outcomes DROP COLUMN role_name")
