"""People's PostgreSQL roles, shared budgets, who entered a row, and row-level security.

`users.role_name` links a budget user to the PostgreSQL role that person connects as;
`budget_shares` lets an owner share a budget with another user (read-only or not);
`entered_by` records who entered an expense, a transfer or income: on PostgreSQL its default
is the user linked to the connected role (NULL for the owner's role and on SQLite: the
budget's own user).

On PostgreSQL every table holding a user's data gets row-level security. The policies
compare with `current_user` (no session state: they work through PgBouncer in transaction
mode) and read the user ids a role may see through one STABLE SECURITY DEFINER function,
called once per statement (an InitPlan), whose result is matched against the indexed
`user_id` columns. Table owners bypass row-level security (no FORCE), so a database used
with one role for everything works exactly as before. SQLite gets the columns and the
table only: the file itself is the boundary.

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FUNCTION = "budget_user_ids"
"""budget_user_ids(role, access): the ids of the users whose data `role` may read ('read'),
write ('write': its own and those shared with it not read-only), owns ('own'), or may see
as people ('people': 'read' and the members of its own budgets)."""
USER_BY_EMAIL = "budget_user_id"
"""budget_user_id(email): any user's id by e-mail (to share a budget with them)."""

# table -> the column holding the user id its rows belong to
USER_TABLES = {
    "categories": "user_id",
    "expenses": "user_id",
    "budget_transfers": "user_id",
    "category_budgets": "user_id",
    "import_profiles": "user_id",
    "income": "user_id",
}


def _ids(access: str) -> str:
    # The scalar subquery makes the planner evaluate the function once per statement (an
    # InitPlan); the cast keeps `= ANY (...)` an array comparison, not `ANY (subquery)`.
    return f"(SELECT {FUNCTION}(current_user::text, '{access}'))::integer[]"


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("role_name", sa.String(length=63), nullable=True))
        batch_op.create_index(batch_op.f("ix_users_role_name"), ["role_name"], unique=False)
    op.add_column("expenses", sa.Column("entered_by", sa.Integer(), nullable=True))
    op.add_column("budget_transfers", sa.Column("entered_by", sa.Integer(), nullable=True))
    op.add_column("income", sa.Column("entered_by", sa.Integer(), nullable=True))
    op.create_table(
        "budget_shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("read_only", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.CheckConstraint("owner_id <> member_id", name=op.f("ck_budget_shares_not_self")),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["users.id"],
            name=op.f("fk_budget_shares_member_id_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["users.id"],
            name=op.f("fk_budget_shares_owner_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_budget_shares")),
        sa.UniqueConstraint(
            "owner_id", "member_id", name=op.f("uq_budget_shares_owner_id_member_id")
        ),
        sqlite_autoincrement=True,  # ids never reused, as every table since 0004
    )
    with op.batch_alter_table("budget_shares") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_budget_shares_member_id"), ["member_id"], unique=False
        )
    if op.get_context().dialect.name == "postgresql":
        _enable_row_level_security()


ENTERED_BY = "budget_entered_by"
"""budget_entered_by(): the (first) user linked to the connected role, or NULL. The
PostgreSQL default of every `entered_by` column: who entered a row costs no statement."""
ENTERED_TABLES = ("expenses", "budget_transfers", "income")


def _enable_row_level_security() -> None:
    # Not SECURITY DEFINER: it reads as the caller, whose policy shows its own users.
    op.execute(
        f"""
        CREATE FUNCTION {ENTERED_BY}() RETURNS integer
        LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
            SELECT min(id) FROM users WHERE role_name = current_user
        $$
        """
    )
    for table in ENTERED_TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN entered_by SET DEFAULT {ENTERED_BY}()")
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION}(role text, access text) RETURNS integer[]
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
            SELECT coalesce(array_agg(ids.id), '{{}}') FROM (
                SELECT u.id FROM users u WHERE u.role_name = $1
                UNION
                SELECT s.owner_id FROM budget_shares s
                JOIN users m ON m.id = s.member_id
                WHERE m.role_name = $1
                  AND ($2 IN ('read', 'people') OR ($2 = 'write' AND NOT s.read_only))
                UNION
                SELECT s.member_id FROM budget_shares s
                JOIN users o ON o.id = s.owner_id
                WHERE o.role_name = $1 AND $2 = 'people'
            ) ids
        $$
        """
    )
    # Sharing names the member by e-mail, whom the owner's role cannot see yet.
    op.execute(
        f"""
        CREATE FUNCTION {USER_BY_EMAIL}(email text) RETURNS integer
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
            SELECT id FROM users WHERE email = $1
        $$
        """
    )
    for table, column in USER_TABLES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(
            f"CREATE POLICY {table}_read ON {table} FOR SELECT "
            f"USING ({column} = ANY ({_ids('read')}))"
        )
        op.execute(
            f"CREATE POLICY {table}_write ON {table} FOR ALL "
            f"USING ({column} = ANY ({_ids('write')})) "
            f"WITH CHECK ({column} = ANY ({_ids('write')}))"
        )
        # A read-only member may lock what it reads (SELECT ... FOR UPDATE needs an UPDATE
        # policy), so its transfer reaches the INSERT and is refused there, with a clear
        # error, instead of finding no category; any change it makes still fails the
        # write policy's check.
        op.execute(
            f"CREATE POLICY {table}_lock ON {table} FOR UPDATE "
            f"USING ({column} = ANY ({_ids('read')})) "
            f"WITH CHECK ({column} = ANY ({_ids('write')}))"
        )
    # A role sees the users it is linked to and those who share a budget with it; it may
    # add and change only users linked to itself (RETURNING must see a new row too).
    op.execute("ALTER TABLE users ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY users_read ON users FOR SELECT "
        f"USING (id = ANY ({_ids('people')}) OR role_name = current_user)"
    )
    op.execute(
        f"CREATE POLICY users_write ON users FOR ALL "
        f"USING (id = ANY ({_ids('own')})) WITH CHECK (role_name = current_user)"
    )
    # Shares: both sides see them; only the owner creates, changes or removes one.
    op.execute("ALTER TABLE budget_shares ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY budget_shares_read ON budget_shares FOR SELECT "
        f"USING (owner_id = ANY ({_ids('own')}) OR member_id = ANY ({_ids('own')}))"
    )
    op.execute(
        f"CREATE POLICY budget_shares_write ON budget_shares FOR ALL "
        f"USING (owner_id = ANY ({_ids('own')})) WITH CHECK (owner_id = ANY ({_ids('own')}))"
    )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in (*USER_TABLES, "users", "budget_shares"):
            op.execute(f"DROP POLICY IF EXISTS {table}_read ON {table}")
            op.execute(f"DROP POLICY IF EXISTS {table}_write ON {table}")
            op.execute(f"DROP POLICY IF EXISTS {table}_lock ON {table}")
            op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}(text, text)")
        op.execute(f"DROP FUNCTION IF EXISTS {USER_BY_EMAIL}(text)")
        for table in ENTERED_TABLES:
            op.execute(f"ALTER TABLE {table} ALTER COLUMN entered_by DROP DEFAULT")
        op.execute(f"DROP FUNCTION IF EXISTS {ENTERED_BY}()")
    with op.batch_alter_table("budget_shares") as batch_op:
        batch_op.drop_index(batch_op.f("ix_budget_shares_member_id"))
    op.drop_table("budget_shares")
    op.drop_index(op.f("ix_users_role_name"), table_name="users")
    # ALTER TABLE ... DROP COLUMN on both backends (SQLite 3.35+): a batch copy of `users`
    # would drop the table that categories reference.
    for table, column in (
        ("income", "entered_by"),
        ("budget_transfers", "entered_by"),
        ("expenses", "entered_by"),
        ("users", "role_name"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
