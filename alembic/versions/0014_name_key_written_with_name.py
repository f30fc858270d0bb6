"""A name is never changed without its key; income holds the limits expenses hold.

A category's (and an import profile's) identity `name_key` is the NFKC case-folded name,
derived by the application (`budget_tracker.rules.name_key`): SQLite has no case folding
beyond ASCII, and PostgreSQL's `lower(normalize(name, NFKC))` is not Python's
`str.casefold` (`ß`, `ς`, `İ` differ, and `lower()` follows the database's locale), so
neither database can compute the key itself. What the database can check is that the
key was written together with the name: each table gets `keyed_name`, the name its key
was derived from, and a trigger refuses

* any row whose `keyed_name` is set and is not its `name`, and
* an UPDATE that changes `name` without writing `keyed_name` with the new name (a Core
  `update(...).values(name=...)` that forgot the key).

Rows written by raw SQL may leave `keyed_name` out (NULL); renaming them needs it too.
Existing rows are brought in line first: a key that is not its name's (only raw SQL can
have written one) is derived again, and `keyed_name` is filled in. If re-deriving makes
two categories (or profiles) of one user the same, the upgrade stops, names them and
changes nothing.

`income` gets the CHECKs `expenses` has had since 0004: an amount of at most
99999999.99 and a source of at most 200 characters (PostgreSQL's VARCHAR refused a longer
one already, SQLite did not). A row over either limit stops the upgrade with a message
saying what to fix; nothing is changed.

A SQLite batch migration that copies `categories` or `import_profiles` drops their
triggers with the old table: such a revision must create them again (`_create_triggers`).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 23:00:00.000000
"""

import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from budget_tracker.errors import SchemaNotMigrated

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME_MAX = 50
AMOUNT_MAX_CENTS = 9_999_999_999
DESCRIPTION_MAX = 200
INCOME_CHECKS = {
    "amount_max": f"amount <= {AMOUNT_MAX_CENTS}",
    "source_length": f"length(source) <= {DESCRIPTION_MAX}",
}
TABLES = ("categories", "import_profiles")
FUNCTION = "budget_name_key_written"
MESSAGE = "name changed without its name_key being derived again (write keyed_name too)"


def name_key(name: str) -> str:
    """The identity of a name at this revision (as `rules.name_key`)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("keyed_name", sa.String(length=NAME_MAX), nullable=True))
        if not op.get_context().as_sql:
            _derive_stale_keys(table)
        op.execute(f"UPDATE {table} SET keyed_name = name")
    _create_triggers()
    _income_limits()


def _income_limits() -> None:
    if not op.get_context().as_sql:
        over = op.get_bind().scalar(
            sa.text(
                f"SELECT count(*) FROM income WHERE NOT ({' AND '.join(INCOME_CHECKS.values())})"
            )
        )
        if over:
            raise SchemaNotMigrated(
                f"cannot upgrade the schema to revision 0014: the database holds {over} income "
                f"entries over 99999999.99 or with a source over {DESCRIPTION_MAX} characters; "
                "edit or delete them (`budget income`), then upgrade again"
            )
    with op.batch_alter_table("income", copy_from=_income(limited=False)) as batch_op:
        for name, condition in INCOME_CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_income_{name}"), condition)


def _income(*, limited: bool) -> sa.Table:
    """`income` as revision 0011 left it (with this revision's CHECKs when `limited`): what
    SQLite's copy of the table starts from, given rather than reflected so that `--sql`
    works too. It keeps AUTOINCREMENT (ids are never reused)."""
    metadata = sa.MetaData()
    sa.Table("users", metadata, sa.Column("id", sa.Integer(), primary_key=True))
    limits = [
        sa.CheckConstraint(condition, name=f"ck_income_{name}")
        for name, condition in INCOME_CHECKS.items()
        if limited
    ]
    return sa.Table(
        "income",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=DESCRIPTION_MAX), server_default="", nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        ),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.Column("entered_by", sa.Integer(), nullable=True),
        sa.CheckConstraint("amount > 0", name="ck_income_amount_positive"),
        *limits,
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_income_user_id_users"),
        sa.PrimaryKeyConstraint("id", name="pk_income"),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_income_user_id_idempotency_key"),
        sa.Index("ix_income_user_id_received_on_amount", "user_id", "received_on", "amount"),
        sqlite_autoincrement=True,
    )


def _derive_stale_keys(table: str) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text(f"SELECT id, user_id, name, name_key FROM {table}")).all()
    keys: dict[tuple[int, str], int] = {}
    stale: list[tuple[int, str]] = []
    for row_id, user_id, name, key in rows:
        derived = name_key(name)
        if (user_id, derived) in keys:
            raise SchemaNotMigrated(
                f"{table} {keys[user_id, derived]} and {row_id} of one user have the same "
                "name once normalized: rename one of them, then upgrade again"
            )
        keys[user_id, derived] = row_id
        if derived != key:
            stale.append((row_id, derived))
    # Two passes, so that keys trading places never meet the unique constraint (a derived
    # key has no capital letters, so the interim ones cannot clash with any).
    for row_id, _ in stale:
        connection.execute(
            sa.text(f"UPDATE {table} SET name_key = :key WHERE id = :id"),
            {"key": f"STALE {row_id}", "id": row_id},
        )
    for row_id, derived in stale:
        connection.execute(
            sa.text(f"UPDATE {table} SET name_key = :key WHERE id = :id"),
            {"key": derived, "id": row_id},
        )


def _create_triggers() -> None:
    refused = (
        "NEW.keyed_name IS DISTINCT FROM NEW.name "
        "AND (NEW.keyed_name IS NOT NULL OR NEW.name IS DISTINCT FROM OLD.name)"
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION {FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP = 'INSERT' AND NEW.keyed_name IS DISTINCT FROM NEW.name
                        AND NEW.keyed_name IS NOT NULL
                   OR TG_OP = 'UPDATE' AND {refused} THEN
                    RAISE EXCEPTION '%.%: {MESSAGE}', TG_TABLE_NAME, NEW.id
                        USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
            END
            $$
            """
        )
        for table in TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_name_key_written BEFORE INSERT OR UPDATE OF name, "
                f"keyed_name ON {table} FOR EACH ROW EXECUTE FUNCTION {FUNCTION}()"
            )
        return
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_name_key_written_insert BEFORE INSERT ON {table} "
            "WHEN NEW.keyed_name IS NOT NULL AND NEW.keyed_name IS NOT NEW.name "
            f"BEGIN SELECT RAISE(ABORT, '{table}: {MESSAGE}'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_name_key_written_update BEFORE UPDATE OF name, keyed_name "
            f"ON {table} WHEN {refused.replace('IS DISTINCT FROM', 'IS NOT')} "
            f"BEGIN SELECT RAISE(ABORT, '{table}: {MESSAGE}'); END"
        )


def downgrade() -> None:
    postgresql = op.get_context().dialect.name == "postgresql"
    with op.batch_alter_table("income", copy_from=_income(limited=True)) as batch_op:
        for name in INCOME_CHECKS:
            batch_op.drop_constraint(op.f(f"ck_income_{name}"), type_="check")
    for table in TABLES:
        if postgresql:
            op.execute(f"DROP TRIGGER {table}_name_key_written ON {table}")
        else:
            op.execute(f"DROP TRIGGER {table}_name_key_written_insert")
            op.execute(f"DROP TRIGGER {table}_name_key_written_update")
            # In place (3.35+): a batch copy of `categories` would have to drop the table
            # other tables' foreign keys point at.
            op.execute(f"ALTER TABLE {table} DROP COLUMN keyed_name")
            continue
        op.drop_column(table, "keyed_name")
    if postgresql:
        op.execute(f"DROP FUNCTION {FUNCTION}()")
