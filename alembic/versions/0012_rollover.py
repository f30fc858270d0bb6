"""Rollover: per-category settings over time, and what was spent per category and month.

`category_rollovers` holds changes of a category's rollover setting (on or off from a
month on, until the next change); no row means no rollover, so upgrading changes no
figure. `category_month_spent` is the sum of the expenses of each category and month,
backfilled here from the existing expenses and kept by triggers on `expenses` in the
transaction that changes an expense (inserts, edits, deletes, category moves and bulk
loads alike): a carried amount then reads one row per month of its run, not every
expense of those months.

On SQLite the triggers are per row. On PostgreSQL they are per statement, with
transition tables, so a bulk insert or COPY pays one grouped upsert; rows are touched in
(category, month) order so two writers never wait on each other in opposite orders. The
trigger function is SECURITY DEFINER: a person's role writes expenses under row-level
security, and its statement's upsert of the derived rows runs as the owner, while that
role can only read them (its grant and policies allow no direct write).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SPENT = "category_month_spent"
FUNCTION = "budget_month_spent"
TRIGGERS = ("insert", "update", "delete")


def _ids(access: str) -> str:
    # As revision 0011: evaluated once per statement, matched against the indexed user_id.
    return f"(SELECT budget_user_ids(current_user::text, '{access}'))::integer[]"


def upgrade() -> None:
    op.create_table(
        "category_rollovers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_category_rollovers_user_id_category_id_categories",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_rollovers")),
        sa.UniqueConstraint(
            "category_id", "month", name=op.f("uq_category_rollovers_category_id_month")
        ),
        sqlite_autoincrement=True,  # ids never reused, as every table since 0004
    )
    op.create_table(
        SPENT,
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_category_month_spent_user_id_category_id_categories",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("category_id", "month", name=op.f("pk_category_month_spent")),
    )
    postgresql = op.get_context().dialect.name == "postgresql"
    month = (
        "date_trunc('month', spent_on::timestamp)::date"
        if postgresql
        else "date(spent_on, 'start of month')"
    )
    op.execute(
        f"INSERT INTO {SPENT} (category_id, month, user_id, spent) "
        f"SELECT category_id, {month}, user_id, sum(amount) FROM expenses "
        f"GROUP BY category_id, {month}, user_id"
    )
    if postgresql:
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _sqlite_triggers() -> None:
    def add(row: str, sign: str) -> str:
        return (
            f"INSERT INTO {SPENT} (category_id, month, user_id, spent) VALUES "
            f"({row}.category_id, date({row}.spent_on, 'start of month'), {row}.user_id, "
            f"{sign}{row}.amount) "
            "ON CONFLICT (category_id, month) DO UPDATE SET spent = spent + excluded.spent;"
        )

    op.execute(f"CREATE TRIGGER {SPENT}_insert AFTER INSERT ON expenses BEGIN {add('NEW', '')} END")
    op.execute(
        f"CREATE TRIGGER {SPENT}_update "
        "AFTER UPDATE OF amount, spent_on, category_id, user_id ON expenses "
        f"BEGIN {add('OLD', '-')} {add('NEW', '')} END"
    )
    op.execute(f"CREATE TRIGGER {SPENT}_delete AFTER DELETE ON expenses BEGIN {add('OLD', '-')} END")


def _postgresql_triggers() -> None:
    def upsert(source: str) -> str:
        return (
            f"INSERT INTO {SPENT} (category_id, month, user_id, spent) "
            "SELECT category_id, date_trunc('month', spent_on::timestamp)::date, user_id, "
            f"sum(amount) FROM ({source}) changed "
            "GROUP BY 1, 2, 3 HAVING sum(amount) <> 0 ORDER BY 1, 2 "
            f"ON CONFLICT (category_id, month) DO UPDATE SET spent = {SPENT}.spent + excluded.spent;"
        )

    columns = "category_id, spent_on, user_id"
    added = f"SELECT {columns}, amount FROM new_rows"
    removed = f"SELECT {columns}, -amount AS amount FROM old_rows"
    op.execute(
        f"""
        CREATE FUNCTION {FUNCTION}() RETURNS trigger
        LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                {upsert(added)}
            ELSIF TG_OP = 'DELETE' THEN
                {upsert(removed)}
            ELSE
                {upsert(f"{added} UNION ALL {removed}")}
            END IF;
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        f"CREATE TRIGGER {SPENT}_insert AFTER INSERT ON expenses "
        f"REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )
    op.execute(
        f"CREATE TRIGGER {SPENT}_update AFTER UPDATE ON expenses "
        "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )
    op.execute(
        f"CREATE TRIGGER {SPENT}_delete AFTER DELETE ON expenses "
        f"REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION {FUNCTION}()"
    )
    # Row-level security as on every table of a user's data (revision 0011).
    op.execute("ALTER TABLE category_rollovers ENABLE ROW LEVEL SECURITY")
    op.execute(
        "CREATE POLICY category_rollovers_read ON category_rollovers FOR SELECT "
        f"USING (user_id = ANY ({_ids('read')}))"
    )
    op.execute(
        "CREATE POLICY category_rollovers_write ON category_rollovers FOR ALL "
        f"USING (user_id = ANY ({_ids('write')})) WITH CHECK (user_id = ANY ({_ids('write')}))"
    )
    op.execute(
        "CREATE POLICY category_rollovers_lock ON category_rollovers FOR UPDATE "
        f"USING (user_id = ANY ({_ids('read')})) WITH CHECK (user_id = ANY ({_ids('write')}))"
    )
    # The derived sums: read like the expenses they sum; written only by the trigger.
    op.execute(f"ALTER TABLE {SPENT} ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY {SPENT}_read ON {SPENT} FOR SELECT "
        f"USING (user_id = ANY ({_ids('read')}))"
    )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    for action in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {SPENT}_{action}" + (" ON expenses" if postgresql else ""))
    if postgresql:
        op.execute(f"DROP FUNCTION IF EXISTS {FUNCTION}()")
    op.drop_table(SPENT)
    op.drop_table("category_rollovers")
