"""Migrations are the schema's source of truth: up, down, offline and drift checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine.interfaces import ReflectedForeignKeyConstraint

from budget_tracker.cli import main
from budget_tracker.migrate import head_revision
from budget_tracker.models import TABLE_NAMES
from budget_tracker.schema_version import SCHEMA_HEAD
from tests.conftest import create_pg_database, drop_pg_database, pg_env

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]


def alembic(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ALEMBIC, *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    """An empty, unmigrated database and the environment that points at it."""
    if request.param == "sqlite":
        path = tmp_path / "fresh.db"
        yield {"DATABASE_URL": f"sqlite:///{path}"}, f"sqlite:///{path}"
        return
    request.getfixturevalue("pg_server")
    name = create_pg_database("budget_migrate")
    env = pg_env(name)
    try:
        yield env, env["DATABASE_URL_UNPOOLED"]
    finally:
        drop_pg_database(name)


def test_schema_head_constant_matches_the_scripts() -> None:
    assert head_revision() == SCHEMA_HEAD


def test_upgrade_check_downgrade_round_trip(fresh: tuple[dict[str, str], str]) -> None:
    env, direct = fresh
    up = alembic(env, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert set(TABLE_NAMES) <= tables(direct)
    check = alembic(env, "check")
    assert check.returncode == 0, check.stderr
    assert "No new upgrade operations detected" in check.stdout + check.stderr
    current = alembic(env, "current")
    assert SCHEMA_HEAD in current.stdout
    down = alembic(env, "downgrade", "base")
    assert down.returncode == 0, down.stderr
    assert tables(direct) <= {"alembic_version"}
    again = alembic(env, "upgrade", "head")
    assert again.returncode == 0, again.stderr


def test_offline_sql_generation(fresh: tuple[dict[str, str], str]) -> None:
    env, _ = fresh
    result = alembic(env, "upgrade", "head", "--sql")
    assert result.returncode == 0, result.stderr
    for table in TABLE_NAMES:
        assert f"CREATE TABLE {table}" in result.stdout


def test_migrations_use_the_direct_url_not_the_pooler(pg_server: None) -> None:
    name = create_pg_database("budget_migrate")
    try:
        result = alembic(pg_env(name), "upgrade", "head")
    finally:
        drop_pg_database(name)
    assert result.returncode == 0, result.stderr
    assert ":5432/" in result.stderr and ":6432/" not in result.stderr
    assert "budget-test" not in result.stderr + result.stdout


def test_concurrent_upgrades_migrate_once(fresh: tuple[dict[str, str], str]) -> None:
    env, direct = fresh
    procs = [
        subprocess.Popen(
            [*ALEMBIC, "upgrade", "head"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    ran = sum("Running upgrade  -> 0001" in err for _, err in outputs)
    assert ran == 1, outputs
    assert set(TABLE_NAMES) <= tables(direct)


SEED_0002 = [
    "INSERT INTO users (email, name) VALUES ('a@example.com', 'A')",
    "INSERT INTO categories (user_id, name, name_key) VALUES (1, 'A', 'a'), (1, 'B', 'b')",
    "INSERT INTO expenses (user_id, category_id, amount, spent_on)"
    " VALUES (1, 1, 100, '2026-01-02')",
    "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month)"
    " VALUES (1, 1, 2, 5, '2026-01-01')",
    # An undo entry: budget_transfers references itself, which SQLite's table copy must keep.
    "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month,"
    " reverses_id) VALUES (1, 2, 1, 5, '2026-01-01', 1)",
]


def _rows(url: str) -> list[list[tuple[object, ...]]]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return [
                [
                    tuple(row)
                    for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id")
                ]
                for table in ("users", "categories", "expenses", "budget_transfers")
            ]
    finally:
        engine.dispose()


def test_0003_keeps_every_row_up_and_down(fresh: tuple[dict[str, str], str]) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0002").returncode == 0
    engine = create_engine(direct)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
            for statement in SEED_0002:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    before = _rows(direct)
    up = alembic(env, "upgrade", "0003")
    assert up.returncode == 0, up.stderr
    # Later revisions add columns at the end (e.g. 0011's role_name, entered_by).
    after = _rows(direct)
    assert [
        [row[: len(old)] for row, old in zip(new, table, strict=True)]
        for new, table in zip(after, before, strict=True)
    ] == before
    foreign_keys = {
        table: {tuple(fk["constrained_columns"]) for fk in inspect_fks(direct, table)}
        for table in ("expenses", "budget_transfers")
    }
    assert foreign_keys == {
        "expenses": {("user_id", "category_id")},
        "budget_transfers": {
            ("user_id", "from_category_id"),
            ("user_id", "to_category_id"),
            ("reverses_id",),
        },
    }
    down = alembic(env, "downgrade", "0002")
    assert down.returncode == 0, down.stderr
    assert _rows(direct) == before
    assert ("user_id",) in {
        tuple(fk["constrained_columns"]) for fk in inspect_fks(direct, "expenses")
    }


def inspect_fks(url: str, table: str) -> list[ReflectedForeignKeyConstraint]:
    engine = create_engine(url)
    try:
        return list(inspect(engine).get_foreign_keys(table))
    finally:
        engine.dispose()


@pytest.mark.parametrize("users", [1, 2])
def test_0008_makes_the_only_user_the_default(
    fresh: tuple[dict[str, str], str], users: int
) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0003").returncode == 0
    engine = create_engine(direct)
    try:
        with engine.begin() as connection:
            for number in range(users):
                connection.exec_driver_sql(
                    f"INSERT INTO users (email, name) VALUES ('u{number}@example.com', 'U')"
                )
        up = alembic(env, "upgrade", "0008")
        assert up.returncode == 0, up.stderr
        with engine.connect() as connection:
            defaults = connection.exec_driver_sql(
                "SELECT email FROM users WHERE is_default ORDER BY id"
            ).all()
        # One user: it is the default. Several: no choice is made for the user.
        assert [row[0] for row in defaults] == (["u0@example.com"] if users == 1 else [])
        down = alembic(env, "downgrade", "0003")
        assert down.returncode == 0, down.stderr
    finally:
        engine.dispose()


SEED_0003 = [
    "INSERT INTO users (email, name) VALUES ('a@example.com', 'A')",
    # Distinct under 0003's rule (case folding only), one category under NFKC.
    "INSERT INTO categories (user_id, name, name_key, monthly_budget, color) VALUES "
    "(1, 'Food', 'food', 1000, '#zzzzzz'), (1, 'Ｆｏｏｄ', 'ｆｏｏｄ', 2000, '#00ff00'), "
    "(1, 'FOOD', 'food ', 3000, NULL)",
    "INSERT INTO expenses (user_id, category_id, amount, spent_on) VALUES "
    "(1, 1, 100, '2026-01-02'), (1, 2, 250, '2026-01-03')",
]


def _seed(direct: str, statements: list[str]) -> None:
    engine = create_engine(direct)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        engine.dispose()


def test_0004_merges_nothing_and_renames_clashing_categories(
    fresh: tuple[dict[str, str], str],
) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0004-1").returncode == 0
    _seed(direct, SEED_0003)
    up = alembic(env, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    assert "renamed to 'Ｆｏｏｄ (2)'" in up.stderr
    engine = create_engine(direct)
    try:
        with engine.connect() as connection:
            categories = connection.exec_driver_sql(
                "SELECT id, name, name_key, monthly_budget, color FROM categories ORDER BY id"
            ).all()
            expenses = connection.exec_driver_sql(
                "SELECT id, category_id, amount FROM expenses ORDER BY id"
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in categories] == [
        (1, "Food", "food", 1000, None),  # an invalid colour is cleared
        (2, "Ｆｏｏｄ (2)", "food (2)", 2000, "#00ff00"),
        (3, "FOOD (3)", "food (3)", 3000, None),
    ]
    assert [tuple(row) for row in expenses] == [(1, 1, 100), (2, 2, 250)]
    down = alembic(env, "downgrade", "0004-1")
    assert down.returncode == 0, down.stderr


def test_0004_refuses_rows_over_the_limits(fresh: tuple[dict[str, str], str]) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0004-1").returncode == 0
    statements = [
        *SEED_0003[:2],
        "INSERT INTO expenses (user_id, category_id, amount, spent_on)"
        " VALUES (1, 1, 10000000000, '2026-01-02')",
    ]
    _seed(direct, statements)
    up = alembic(env, "upgrade", "head")
    assert up.returncode != 0
    assert (
        "cannot upgrade the schema to revision 0004: the database holds 1 expenses over "
        "99999999.99 or with a description over 200 characters" in up.stderr
    )
    assert "0004" not in alembic(env, "current").stdout


SEED_0011 = [
    "INSERT INTO users (email, name, is_default) VALUES ('a@example.com', 'A', true)",
    "INSERT INTO categories (user_id, name, name_key, monthly_budget) VALUES "
    "(1, 'Food', 'food', 30000), (1, 'Rent', 'rent', 90000), (1, 'Gifts', 'gifts', 0)",
    "INSERT INTO expenses (user_id, category_id, amount, spent_on) VALUES "
    "(1, 1, 1250, '2026-01-02'), (1, 1, 40000, '2026-01-31'), (1, 2, 90000, '2026-02-01'), "
    "(1, 1, 1, '2026-02-28'), (1, 3, 4510, '2026-03-15'), (1, 1, 999, '2026-03-01')",
    "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month) "
    "VALUES (1, 2, 1, 5000, '2026-02-01')",
    "INSERT INTO category_budgets (user_id, category_id, month, amount, one_month) VALUES "
    "(1, 1, '2026-03-01', 20000, false)",
]


def test_0012_changes_no_figure_and_sums_the_existing_expenses(
    fresh: tuple[dict[str, str], str],
) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0011").returncode == 0
    _seed(direct, SEED_0011)
    up = alembic(env, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    engine = create_engine(direct)
    try:
        with engine.connect() as connection:
            kept = connection.exec_driver_sql(
                "SELECT category_id, month, spent FROM category_month_spent "
                "ORDER BY category_id, month"
            ).all()
            rollovers = connection.exec_driver_sql("SELECT count(*) FROM category_rollovers")
            assert rollovers.scalar() == 0
    finally:
        engine.dispose()
    assert [(row[0], str(row[1]), row[2]) for row in kept] == [
        (1, "2026-01-01", 41250),
        (1, "2026-02-01", 1),
        (1, "2026-03-01", 999),
        (2, "2026-02-01", 90000),
        (3, "2026-03-01", 4510),
    ]
    # Nothing rolls over after the upgrade: every month's figures are what they were.
    expected: dict[str, dict[str, tuple[str | None, str, str]]] = {
        "2026-01": {"Food": ("300.00", "412.50", "-112.50"), "Rent": ("900.00", "0.00", "900.00")},
        "2026-02": {"Food": ("350.00", "0.01", "349.99"), "Rent": ("850.00", "900.00", "-50.00")},
        "2026-03": {"Food": ("200.00", "9.99", "190.01"), "Gifts": (None, "45.10", "-45.10")},
    }
    runner = CliRunner()
    for month, figures in expected.items():
        result = runner.invoke(main, ["report", "--month", month, "--format", "json"], env=env)
        assert result.exit_code == 0, result.output
        lines = {row["category"]: row for row in json.loads(result.stdout)["categories"]}
        for name, (budget, spent, available) in figures.items():
            row = lines[name]
            assert (row["budget"], row["spent"], row["available"]) == (budget, spent, available)
        assert {row["carried"] for row in lines.values()} == {"0.00"}
        table = runner.invoke(main, ["report", "--month", month], env=env)
        assert "Carried" not in table.stdout
        verified = runner.invoke(main, ["verify", "--month", month], env=env)
        assert verified.exit_code == 0, verified.output
    down = alembic(env, "downgrade", "0011")
    assert down.returncode == 0, down.stderr
    assert "category_month_spent" not in tables(direct)


def test_0014_derives_stale_keys_again_and_refuses_a_clash(
    fresh: tuple[dict[str, str], str],
) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0014-1").returncode == 0
    _seed(
        direct,
        [
            "INSERT INTO users (email, name) VALUES ('a@example.com', 'A')",
            # Renamed by raw SQL that kept the old keys (Food -> Groceries, Rent -> Food).
            "INSERT INTO categories (user_id, name, name_key) VALUES (1, 'Groceries', 'food'),"
            " (1, 'Food', 'rent')",
        ],
    )
    up = alembic(env, "upgrade", "head")
    assert up.returncode == 0, up.stderr
    engine = create_engine(direct)
    try:
        with engine.connect() as connection:
            rows = connection.exec_driver_sql(
                "SELECT name, name_key, keyed_name FROM categories ORDER BY id"
            ).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("Groceries", "groceries", "Groceries"),
        ("Food", "food", "Food"),
    ]
    assert alembic(env, "downgrade", "0014-1").returncode == 0
    _seed(direct, ["INSERT INTO categories (user_id, name, name_key) VALUES (1, 'FOOD', 'x')"])
    up = alembic(env, "upgrade", "head")
    assert up.returncode != 0
    assert "categories 2 and 3 of one user have the same name once normalized" in up.stderr
    assert "0014" not in alembic(env, "current").stdout


def test_0014_refuses_income_over_the_limits(fresh: tuple[dict[str, str], str]) -> None:
    env, direct = fresh
    assert alembic(env, "upgrade", "0014-1").returncode == 0
    _seed(
        direct,
        [
            "INSERT INTO users (email, name) VALUES ('a@example.com', 'A')",
            "INSERT INTO income (user_id, amount, received_on, source) "
            "VALUES (1, 10000000000, '2026-01-02', '')",
        ],
    )
    up = alembic(env, "upgrade", "head")
    assert up.returncode != 0
    assert (
        "cannot upgrade the schema to revision 0014: the database holds 1 income entries over "
        "99999999.99 or with a source over 200 characters" in up.stderr
    )
    assert "0014" not in alembic(env, "current").stdout
