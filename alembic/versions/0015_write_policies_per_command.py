"""Row-level security: the write policies name the commands they govern, not FOR ALL.

A `FOR ALL` policy applies to SELECT too, so every table a statement read carried two
policy checks: the read policy's and the write policy's, each an InitPlan calling
`budget_user_ids` — planned for every reference to the table and run for every one that
is scanned. A transfer's guarded INSERT reads about thirty table references, and the
second check was most of what row-level security added to its time. The rows a role may
write are a subset of those it may read (its own users' and the budgets shared with it
not read-only, against its own users' and every budget shared with it), so `read OR
write` is `read`: leaving the write policy out of SELECT changes no result.

Each `<table>_write FOR ALL` becomes the same condition for INSERT (WITH CHECK), UPDATE
(USING and WITH CHECK) and DELETE (USING), so what a role may insert, change and delete
is exactly what it was. `<table>_read` and `<table>_lock` stay as they are. PostgreSQL
only; SQLite has no row-level security (the file is the boundary).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 02:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ids(access: str) -> str:
    # As in revision 0011: one call per statement (an InitPlan), compared as an array.
    return f"(SELECT budget_user_ids(current_user::text, '{access}'))::integer[]"


def _owned(column: str, access: str) -> str:
    return f"{column} = ANY ({_ids(access)})"


# table -> (USING of the write policy, its WITH CHECK), as revisions 0011 and 0012 wrote them
WRITE_POLICIES = {
    **{
        table: (_owned("user_id", "write"), _owned("user_id", "write"))
        for table in (
            "categories",
            "expenses",
            "budget_transfers",
            "category_budgets",
            "import_profiles",
            "income",
            "category_rollovers",
        )
    },
    "users": (_owned("id", "own"), "role_name = current_user"),
    "budget_shares": (_owned("owner_id", "own"), _owned("owner_id", "own")),
}


def upgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, (using, check) in WRITE_POLICIES.items():
        op.execute(f"DROP POLICY {table}_write ON {table}")
        op.execute(f"CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK ({check})")
        op.execute(
            f"CREATE POLICY {table}_update ON {table} FOR UPDATE "
            f"USING ({using}) WITH CHECK ({check})"
        )
        op.execute(f"CREATE POLICY {table}_delete ON {table} FOR DELETE USING ({using})")


def downgrade() -> None:
    if op.get_context().dialect.name != "postgresql":
        return
    for table, (using, check) in WRITE_POLICIES.items():
        for command in ("insert", "update", "delete"):
            op.execute(f"DROP POLICY {table}_{command} ON {table}")
        op.execute(
            f"CREATE POLICY {table}_write ON {table} FOR ALL USING ({using}) WITH CHECK ({check})"
        )
