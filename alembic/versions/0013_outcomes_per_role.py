"""unit_outcomes.role_name: each role sees only the outcomes its own commands recorded.

A recorded outcome is what a writing command returned (expense descriptions, category
names, e-mails): a person's role must not read another person's. On PostgreSQL the new
column defaults to `current_user` and row-level security shows, lets delete and lets
insert only a role's own rows; a retry after a lost acknowledgement runs as the same role
(the role is the login, also through PgBouncer), so it still finds its record. The tables'
owner bypasses the policy, as for every other table. Rows from before this revision have
no role: only the owner sees them, and they are pruned by age as before. On SQLite the
column stays empty (the file is the boundary).

The two functions the policies and the `entered_by` defaults call become PL/pgSQL. A SQL
function that cannot be inlined (these cannot: SECURITY DEFINER, or reading a table) is
planned again on every call, and a transfer's guarded INSERT calls `budget_user_ids` once
per table it reads (an InitPlan each); PL/pgSQL keeps its query's plan for the life of the
server connection, which PgBouncer reuses across transactions. Same results, same
privileges; measured by the benchmarks' row-level security scenario.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The queries of revision 0011's functions, unchanged; only the language differs.
USER_IDS_QUERY = """
    SELECT coalesce(array_agg(ids.id), '{}') FROM (
        SELECT u.id FROM users u WHERE u.role_name = role
        UNION
        SELECT s.owner_id FROM budget_shares s
        JOIN users m ON m.id = s.member_id
        WHERE m.role_name = role
          AND (access IN ('read', 'people') OR (access = 'write' AND NOT s.read_only))
        UNION
        SELECT s.member_id FROM budget_shares s
        JOIN users o ON o.id = s.owner_id
        WHERE o.role_name = role AND access = 'people'
    ) ids
"""
ENTERED_BY_QUERY = "SELECT min(id) FROM users WHERE role_name = current_user"


def _functions(language: str) -> None:
    def body(query: str) -> str:
        if language == "plpgsql":
            return f"BEGIN RETURN ({query}); END"
        return query.replace("= role", "= $1").replace("access", "$2")

    op.execute(
        "CREATE OR REPLACE FUNCTION budget_user_ids(role text, access text) "
        f"RETURNS integer[] LANGUAGE {language} STABLE SECURITY DEFINER "
        f"SET search_path FROM CURRENT AS $$ {body(USER_IDS_QUERY)} $$"
    )
    op.execute(
        "CREATE OR REPLACE FUNCTION budget_entered_by() RETURNS integer "
        f"LANGUAGE {language} STABLE SET search_path FROM CURRENT AS "
        f"$$ {body(ENTERED_BY_QUERY)} $$"
    )


def upgrade() -> None:
    op.add_column("unit_outcomes", sa.Column("role_name", sa.String(length=63), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        _functions("plpgsql")
        op.execute("ALTER TABLE unit_outcomes ALTER COLUMN role_name SET DEFAULT current_user")
        op.execute("ALTER TABLE unit_outcomes ENABLE ROW LEVEL SECURITY")
        op.execute(
            "CREATE POLICY unit_outcomes_own ON unit_outcomes FOR ALL "
            "USING (role_name = current_user) WITH CHECK (role_name = current_user)"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _functions("sql")
        op.execute("DROP POLICY IF EXISTS unit_outcomes_own ON unit_outcomes")
        op.execute("ALTER TABLE unit_outcomes DISABLE ROW LEVEL SECURITY")
    # ALTER TABLE ... DROP COLUMN on both backends (SQLite 3.35+), as 0011 does.
    op.execute("ALTER TABLE unit_outcomes DROP COLUMN role_name")
