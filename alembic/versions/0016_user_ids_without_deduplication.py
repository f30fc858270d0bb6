"""budget_user_ids: the same ids, concatenated instead of deduplicated by a UNION.

Every policy check calls `budget_user_ids` once per table reference a statement reads,
so its cost is paid a few dozen times by a transfer. The result is only ever compared
with `= ANY (...)`, where a repeated id changes nothing, so the UNION's deduplication
(a hash or sort per call) and, outside 'people', the third branch are wasted work: the
ids now come from up to three `ARRAY(SELECT ...)` concatenated. Measured on a
100,000-row database: 20,000 calls in 141–151 ms instead of 210–296 ms. The same rows
answer as before, for every `access`: 'own' the role's users; 'read' and 'write' those
plus the owners of budgets shared with them (read-only shares only for 'read'); 'people'
'read' plus the members of the role's own budgets. PostgreSQL only.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 02:40:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONCATENATED = """
    BEGIN RETURN
        ARRAY(SELECT u.id FROM users u WHERE u.role_name = role)
        || ARRAY(
            SELECT s.owner_id FROM budget_shares s
            JOIN users m ON m.id = s.member_id
            WHERE m.role_name = role
              AND (access IN ('read', 'people') OR (access = 'write' AND NOT s.read_only))
        )
        || CASE WHEN access = 'people' THEN ARRAY(
            SELECT s.member_id FROM budget_shares s
            JOIN users o ON o.id = s.owner_id
            WHERE o.role_name = role
        ) ELSE '{}'::integer[] END;
    END
"""

# Revision 0013's body, for the downgrade.
UNION = """
    BEGIN RETURN (
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
    ); END
"""


def _define(body: str) -> None:
    op.execute(
        "CREATE OR REPLACE FUNCTION budget_user_ids(role text, access text) "
        "RETURNS integer[] LANGUAGE plpgsql STABLE SECURITY DEFINER "
        f"SET search_path FROM CURRENT AS $$ {body} $$"
    )


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _define(CONCATENATED)


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        _define(UNION)
