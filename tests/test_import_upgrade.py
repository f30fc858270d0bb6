"""Rows imported before the fingerprint dropped the category are still recognised."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import create_pg_database, drop_pg_database, pg_env

ROOT = Path(__file__).resolve().parent.parent
FILE = (
    "date,amount,category,description\n"
    "2026-03-01,5,Food,Coffee\n"
    "2026-03-01,5,Food,Coffee\n"
    "2026-03-01,5,Transport,Coffee\n"
    "2026-03-02,12.50,Food,Lunch\n"
)


def old_fingerprint(iso: str, cents: int, category_key: str, description: str, n: int) -> str:
    """The key the previous version stored for an imported row (category included)."""
    content = f"{iso}\x1f{cents}\x1f{category_key}\x1f{description}"
    digest = hashlib.sha256(content.encode()).hexdigest()[:46]
    return f"{iso.replace('-', '')}{digest}:{n}"


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[dict[str, str], str]]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        yield {"DATABASE_URL": url}, url
        return
    request.getfixturevalue("pg_server")
    name = create_pg_database("budget_upgrade")
    env = pg_env(name)
    try:
        yield env, env["DATABASE_URL_UNPOOLED"]
    finally:
        drop_pg_database(name)


def test_rows_imported_with_old_fingerprints_are_found_after_the_upgrade(
    database: tuple[dict[str, str], str], tmp_path: Path
) -> None:
    env, direct = database
    alembic = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
    assert run(env, *alembic, "upgrade", "0006").returncode == 0
    # What the previous version stored for FILE: occurrences counted per identical
    # (date, cents, category, description).
    old_keys = [
        ("2026-03-01", 500, "food", "Coffee", 1),
        ("2026-03-01", 500, "food", "Coffee", 2),
        ("2026-03-01", 500, "transport", "Coffee", 1),
        ("2026-03-02", 1250, "food", "Lunch", 1),
    ]
    engine = create_engine(direct)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO users (id, email, name) VALUES (1, 'me@localhost', 'me')")
            )
            for at, (name, key) in enumerate([("Food", "food"), ("Transport", "transport")]):
                connection.execute(
                    text(
                        "INSERT INTO categories (id, user_id, name, name_key) "
                        "VALUES (:id, 1, :name, :key)"
                    ),
                    {"id": at + 1, "name": name, "key": key},
                )
            for at, (iso, cents, key, description, n) in enumerate(old_keys):
                connection.execute(
                    text(
                        "INSERT INTO expenses (id, user_id, category_id, amount, description, "
                        "spent_on, idempotency_key) VALUES (:id, 1, :category, :amount, "
                        ":description, :spent_on, :key)"
                    ),
                    {
                        "id": at + 1,
                        "category": 2 if key == "transport" else 1,
                        "amount": cents,
                        "description": description,
                        "spent_on": iso,
                        "key": old_fingerprint(iso, cents, key, description, n),
                    },
                )
    finally:
        engine.dispose()
    upgraded = run(env, *alembic, "upgrade", "head")
    assert upgraded.returncode == 0, upgraded.stderr
    csv_file = tmp_path / "history.csv"
    csv_file.write_text(FILE)
    again = run(
        {**env, "BUDGET_USER": "me@localhost"},
        sys.executable,
        "-m",
        "budget_tracker",
        "import",
        str(csv_file),
    )
    assert again.returncode == 0, again.stderr
    assert again.stderr.splitlines()[-1] == (
        "Imported history.csv: 0 new, 4 already present (4 rows)."
    )
    # And the downgrade writes the old keys back.
    down = run(env, *alembic, "downgrade", "0006")
    assert down.returncode == 0, down.stderr
    engine = create_engine(direct)
    try:
        with engine.connect() as connection:
            keys = connection.execute(
                text("SELECT idempotency_key FROM expenses ORDER BY id")
            ).scalars()
            assert list(keys) == [old_fingerprint(*row) for row in old_keys]
    finally:
        engine.dispose()
