"""Import profiles, and import fingerprints without the category.

`import_profiles` keeps each user's saved `budget import` options (a small TOML document)
with the rest of their data, so profiles travel when the data moves.

An imported row's key used to be YYYYMMDD + sha256("date␟cents␟category key␟description")
+ ":" + N. The category is no longer part of it (importing a file again with another
category must add nothing), so every key of that shape is rewritten from the stored row:
YYYYMMDD + sha256("date␟cents␟description") + ":" + N, N numbering identical rows in id
order (ids follow the imported file's order, as the import numbers them by line). A
re-import of a file imported before the upgrade therefore finds every row. The downgrade
writes the old form back from the rows' categories.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 20:00:00.000000
"""

import hashlib
import re
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import context, op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINGERPRINT = re.compile(r"\d{8}[0-9a-f]{46}:\d+")
DIGEST_CHARS = 46
BATCH = 5_000


def upgrade() -> None:
    op.create_table(
        "import_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("name_key", sa.String(length=50), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.CheckConstraint("name <> ''", name=op.f("ck_import_profiles_name_not_empty")),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_import_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_profiles")),
        sa.UniqueConstraint(
            "user_id", "name_key", name=op.f("uq_import_profiles_user_id_name_key")
        ),
        sqlite_autoincrement=True,  # ids never reused, as every table since 0004
    )
    _rewrite_fingerprints(with_category=False)


def downgrade() -> None:
    _rewrite_fingerprints(with_category=True)
    op.drop_table("import_profiles")


def _rewrite_fingerprints(*, with_category: bool) -> None:
    """Recompute every fingerprint-shaped key from its row (see the module docstring)."""
    if context.is_offline_mode():
        # Generated SQL cannot hash rows it does not see: migrate online to keep
        # re-imports of earlier files recognised.
        return
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT e.id, e.user_id, e.spent_on, e.amount, c.name_key, e.description, "
            "e.idempotency_key FROM expenses e JOIN categories c ON c.id = e.category_id "
            "WHERE e.idempotency_key LIKE '%:%' ORDER BY e.id"
        )
    )
    seen: dict[tuple[object, ...], int] = {}
    updates: list[dict[str, object]] = []
    for row_id, user_id, spent_on, cents, category_key, description, key in rows:
        if not FINGERPRINT.fullmatch(key):
            continue
        iso = str(spent_on)[:10]
        parts = [iso, str(cents), *([category_key] if with_category else []), description]
        group = (user_id, *parts)
        seen[group] = occurrence = seen.get(group, 0) + 1
        digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:DIGEST_CHARS]
        updates.append({"id": row_id, "key": f"{iso.replace('-', '')}{digest}:{occurrence}"})
    statement = sa.text("UPDATE expenses SET idempotency_key = :key WHERE id = :id")
    # Two passes through a key no row can have, so no new key meets an old one mid-way.
    for start in range(0, len(updates), BATCH):
        batch = updates[start : start + BATCH]
        bind.execute(statement, [{"id": u["id"], "key": f"~{u['id']}"} for u in batch])
    for start in range(0, len(updates), BATCH):
        bind.execute(statement, updates[start : start + BATCH])
