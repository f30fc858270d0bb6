"""The input rules in the schema; NFKC category identity; SQLite never reuses ids.

* CHECKs for every limit of `budget_tracker.rules` that the database can hold: lengths of
  names, e-mails, descriptions and notes (PostgreSQL's VARCHAR already refused them,
  SQLite did not), the largest amount, and a real hex colour (was: any 7 characters).
* `categories.name_key` becomes the NFKC case-folded name (`Ｆｏｏｄ` and `Food` are one
  category) and is recomputed for every row; it may be up to 200 characters long, since
  normalization can lengthen a name.
* SQLite tables get AUTOINCREMENT, so the id of a deleted row is never handed out again.
  SQLite can only add it by copying each table; PostgreSQL's sequences never reuse ids.

Existing rows are never changed in a way a user would notice in a figure:
* a category whose recomputed key clashes with an older category of the same user (both
  were allowed under the old, finer rule) is renamed `NAME (2)`, `NAME (3)`... and logged;
  its expenses, budget and transfers are untouched, so `category merge` can join them;
* a colour that is not `#` and six hex digits (only a direct service call could store
  one) is cleared;
* a row that breaks a length or amount limit is not shortened or changed: the upgrade
  stops, names the table and says what to fix, and nothing is migrated.

Offline (`--sql`) output cannot read rows, so it leaves out the recomputation of keys.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 20:20:00.000000
"""

import logging
import unicodedata
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.schema import CreateIndex, CreateTable

from alembic import op
from budget_tracker.errors import SchemaNotMigrated

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# The limits as they are at this revision (frozen here: later changes to the rules module
# need a revision of their own).
NAME_MAX = 50
NAME_KEY_MAX = 200
OLD_NAME_KEY_MAX = 50
USER_NAME_MAX = 100
DESCRIPTION_MAX = 200
EMAIL_MAX = 254
AMOUNT_MAX_CENTS = 9_999_999_999
COLOR_CHECK = (
    "color IS NULL OR (length(color) = 7 AND substr(color, 1, 1) = '#' "
    "AND ltrim(substr(color, 2), '0123456789ABCDEFabcdef') = '')"
)
OLD_COLOR_CHECK = "color IS NULL OR length(color) = 7"

CHECKS: dict[str, list[tuple[str, str]]] = {
    "users": [
        ("ck_users_email_length", f"length(email) <= {EMAIL_MAX}"),
        ("ck_users_name_length", f"length(name) <= {USER_NAME_MAX}"),
    ],
    "categories": [
        ("ck_categories_name_length", f"length(name) <= {NAME_MAX}"),
        ("ck_categories_name_key_length", f"length(name_key) <= {NAME_KEY_MAX}"),
    ],
    "expenses": [
        ("ck_expenses_amount_max", f"amount <= {AMOUNT_MAX_CENTS}"),
        ("ck_expenses_description_length", f"length(description) <= {DESCRIPTION_MAX}"),
    ],
    "budget_transfers": [
        ("ck_budget_transfers_amount_max", f"amount <= {AMOUNT_MAX_CENTS}"),
        ("ck_budget_transfers_note_length", f"length(note) <= {DESCRIPTION_MAX}"),
    ],
}
REFUSALS = {
    "users": "users with an e-mail over 254 or a name over 100 characters",
    "categories": "categories with a name over 50 characters",
    "expenses": "expenses over 99999999.99 or with a description over 200 characters",
    "budget_transfers": "transfers over 99999999.99 or with a note over 200 characters",
}


def name_key(name: str) -> str:
    """The identity of a category name from this revision on (as `rules.name_key`)."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())
    return " ".join(folded.split())


def old_name_key(name: str) -> str:
    """The identity before this revision: case-folded, whitespace collapsed."""
    return " ".join(name.split()).casefold()


# --- the tables with surrogate ids before and after, as SQLite rebuilds them --------------


def _tables(*, after: bool) -> list[sa.Table]:
    metadata = sa.MetaData()
    extra: dict[str, object] = {"sqlite_autoincrement": True} if after else {}

    def checks(table: str) -> list[sa.CheckConstraint]:
        return [sa.CheckConstraint(sql, name=name) for name, sql in CHECKS[table]] if after else []

    def created_at() -> sa.Column[object]:
        return sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.current_timestamp(),
            nullable=False,
        )

    users = sa.Table(
        "users",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        created_at(),
        sa.CheckConstraint("email <> ''", name="ck_users_email_not_empty"),
        *checks("users"),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
        **extra,
    )
    categories = sa.Table(
        "categories",
        metadata,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column(
            "name_key", sa.String(length=NAME_KEY_MAX if after else OLD_NAME_KEY_MAX), nullable=False
        ),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("monthly_budget", sa.BigInteger(), server_default="0", nullable=False),
        created_at(),
        sa.CheckConstraint("name <> ''", name="ck_categories_name_not_empty"),
        sa.CheckConstraint(COLOR_CHECK if after else OLD_COLOR_CHECK, name="ck_categories_color_hex"),
        sa.CheckConstraint("monthly_budget >= 0", name="ck_categories_budget_not_negative"),
        *checks("categories"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_categories_user_id_users", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_categories"),
        sa.UniqueConstraint("user_id", "id", name="uq_categories_user_id_id"),
        sa.UniqueConstraint("user_id", "name_key", name="uq_categories_user_id_name_key"),
        **extra,
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
        *checks("expenses"),
        sa.ForeignKeyConstraint(
            ["user_id", "category_id"],
            ["categories.user_id", "categories.id"],
            name="fk_expenses_user_id_category_id_categories",
        ),
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
        **extra,
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
        *checks("budget_transfers"),
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
        sa.PrimaryKeyConstraint("id", name="pk_budget_transfers"),
        sa.UniqueConstraint("reverses_id", name="uq_budget_transfers_reverses_id"),
        sa.UniqueConstraint(
            "user_id", "idempotency_key", name="uq_budget_transfers_user_id_idempotency_key"
        ),
        sa.Index("ix_budget_transfers_from_category_id_month", "from_category_id", "month"),
        sa.Index("ix_budget_transfers_to_category_id_month", "to_category_id", "month"),
        sa.Index("ix_budget_transfers_user_id_month", "user_id", "month"),
        **extra,
    )
    return [users, categories, expenses, transfers]


# --- upgrade and downgrade ------------------------------------------------------------------


def upgrade() -> None:
    online = not op.get_context().as_sql
    if online:
        _refuse_rows_over_the_limits()
        op.execute(f"UPDATE categories SET color = NULL WHERE NOT ({COLOR_CHECK})")
    if op.get_context().dialect.name == "sqlite":
        if online:
            _recompute_keys(name_key)
        _rebuild_on_sqlite(_tables(after=True))
        return
    op.alter_column(
        "categories",
        "name_key",
        existing_type=sa.String(length=OLD_NAME_KEY_MAX),
        type_=sa.String(length=NAME_KEY_MAX),
        existing_nullable=False,
    )
    if online:
        _recompute_keys(name_key)
    op.drop_constraint(op.f("ck_categories_color_hex"), "categories", type_="check")
    op.create_check_constraint(op.f("ck_categories_color_hex"), "categories", COLOR_CHECK)
    for table, checks in CHECKS.items():
        for name, sql in checks:
            op.create_check_constraint(op.f(name), table, sql)


def downgrade() -> None:
    online = not op.get_context().as_sql
    if op.get_context().dialect.name == "sqlite":
        if online:
            _recompute_keys(old_name_key)
        _rebuild_on_sqlite(_tables(after=False))
        return
    for table, checks in CHECKS.items():
        for name, _sql in checks:
            op.drop_constraint(op.f(name), table, type_="check")
    op.drop_constraint(op.f("ck_categories_color_hex"), "categories", type_="check")
    op.create_check_constraint(op.f("ck_categories_color_hex"), "categories", OLD_COLOR_CHECK)
    if online:
        _recompute_keys(old_name_key)
    op.alter_column(
        "categories",
        "name_key",
        existing_type=sa.String(length=NAME_KEY_MAX),
        type_=sa.String(length=OLD_NAME_KEY_MAX),
        existing_nullable=False,
    )


def _refuse_rows_over_the_limits() -> None:
    """Stop (nothing migrated) when a row breaks a limit: it is the user's data to fix."""
    connection = op.get_bind()
    problems = []
    for table, checks in CHECKS.items():
        broken = " OR ".join(f"NOT ({sql})" for name, sql in checks if "name_key" not in sql)
        count = connection.execute(sa.text(f"SELECT count(*) FROM {table} WHERE {broken}")).scalar()
        if count:
            problems.append(f"{count} {REFUSALS[table]}")
    if problems:
        raise SchemaNotMigrated(
            "cannot upgrade the schema to revision 0004: the database holds "
            + "; ".join(problems)
            + ". Shorten or correct them with the previous version of budget, then upgrade."
        )


def _recompute_keys(key: Callable[[str], str]) -> None:
    """Every category's name_key by `key`; a later category whose key clashes with an
    earlier one of the same user is renamed `NAME (2)`, `NAME (3)`... (and logged)."""
    connection = op.get_bind()
    rows = connection.execute(
        sa.text("SELECT id, user_id, name, name_key FROM categories ORDER BY user_id, id")
    ).all()
    taken: dict[int, set[str]] = {}
    changes: list[tuple[int, str, str]] = []
    for category_id, user_id, name, stored in rows:
        keys = taken.setdefault(user_id, set())
        new_name, new_key = name, key(name)
        number = 1
        while new_key in keys:
            number += 1
            suffix = f" ({number})"
            new_name = name[: NAME_MAX - len(suffix)] + suffix
            new_key = key(new_name)
        keys.add(new_key)
        if new_name != name:
            log.warning(
                "category %d %r is the same category as another one of user %d under the "
                "new naming rule: renamed to %r (merge them with `budget category merge`)",
                category_id,
                name,
                user_id,
                new_name,
            )
        if (new_name, new_key) != (name, stored):
            changes.append((category_id, new_name, new_key))
    # Two passes so that no intermediate state collides with the unique (user_id, name_key).
    for category_id, _name, _key in changes:
        connection.execute(
            sa.text("UPDATE categories SET name_key = :key WHERE id = :id"),
            {"key": f"\x1f{category_id}", "id": category_id},  # no name holds U+001F
        )
    for category_id, new_name, new_key in changes:
        connection.execute(
            sa.text("UPDATE categories SET name = :name, name_key = :key WHERE id = :id"),
            {"name": new_name, "key": new_key, "id": category_id},
        )


def _rebuild_on_sqlite(tables: list[sa.Table]) -> None:
    """Give the tables new definitions the only way SQLite allows: copies under their names.

    As in revision 0003, each original is renamed first (SQLite re-points the keys that
    reference it at the new name), the copy is created from the full definition and
    filled, and the originals are dropped only once every copy exists, children first:
    by then nothing references them, so no key is checked against a missing table. All in
    the migration's transaction; the full definitions also work for `upgrade --sql`.
    """
    for table in tables:
        old = f"_alembic_old_{table.name}"
        op.rename_table(table.name, old)
        for index in table.indexes:
            op.drop_index(index.name, table_name=old)  # the copy's indexes reuse the names
        op.execute(CreateTable(table))
        columns = ", ".join(column.name for column in table.columns)
        op.execute(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {old}")
        for index in sorted(table.indexes, key=lambda index: str(index.name)):
            op.execute(CreateIndex(index))
    for table in reversed(tables):
        op.drop_table(f"_alembic_old_{table.name}")
