"""Upgrading to budget history changes no figure.

A database is seeded at the previous revision (0005) with categories, budgets, expenses
and transfers over many months. Every month's figures are recorded as that schema defined
them — computed straight from its raw rows: each category's single monthly budget in every
month, plus transfers in, minus transfers out, and its spending. Then the database is
upgraded, and every one-month report, every `category list`, the trend and `verify` over
the whole range must show exactly those figures.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import click.testing
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.migrate import upgrade
from budget_tracker.services.budgets import add_months
from budget_tracker.unit_of_work import Database
from tests.conftest import PG_DIRECT, create_pg_database, drop_pg_database, pg_env, pg_url

PREVIOUS = "0005"
FIRST = dt.date(2025, 11, 1)
MONTHS = [add_months(FIRST, offset) for offset in range(8)]
EMAIL = "old@example.com"

SEED = [
    "INSERT INTO users (email, name) VALUES ('old@example.com', 'Old')",
    "INSERT INTO categories (user_id, name, name_key, monthly_budget) VALUES "
    "(1, 'Food', 'food', 30000), (1, 'Rent', 'rent', 90000), (1, 'Fun', 'fun', 0), "
    "(1, 'Gifts', 'gifts', 2550)",
    "INSERT INTO expenses (user_id, category_id, amount, spent_on) VALUES "
    "(1, 1, 12345, '2025-11-03'), (1, 1, 40000, '2025-12-31'), (1, 2, 90000, '2026-01-01'), "
    "(1, 3, 999, '2026-02-28'), (1, 4, 2550, '2026-03-15'), (1, 1, 1, '2026-06-30')",
    "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month,"
    " note) VALUES (1, 2, 1, 5000, '2025-12-01', ''), (1, 1, 3, 1234, '2026-02-01', ''),"
    " (1, 4, 3, 2550, '2026-03-01', ''), (1, 3, 2, 100, '2026-03-01', '')",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, str]]:
    """An empty database migrated to the previous revision, and its environment."""
    if request.param == "sqlite":
        env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'old.db'}"}
        upgrade(URL.create("sqlite+pysqlite", database=str(tmp_path / "old.db")), PREVIOUS)
        yield env
        return
    request.getfixturevalue("pg_server")
    name = create_pg_database("budget_history")
    try:
        upgrade(pg_url(PG_DIRECT, name), PREVIOUS)
        yield pg_env(name)
    finally:
        drop_pg_database(name)


def _old_figures(url: str) -> dict[tuple[str, str], tuple[str | None, str]]:
    """(category, month) -> (budget or None, spent), by the previous schema's definition."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in SEED:
                connection.execute(text(statement))
            categories = connection.execute(
                text("SELECT id, name, monthly_budget FROM categories")
            ).all()
            transfers = connection.execute(
                text("SELECT from_category_id, to_category_id, amount, month FROM budget_transfers")
            ).all()
            expenses = connection.execute(
                text("SELECT category_id, amount, spent_on FROM expenses")
            ).all()
    finally:
        engine.dispose()
    figures: dict[tuple[str, str], tuple[str | None, str]] = {}
    for category_id, name, monthly in categories:
        for month in MONTHS:
            label = f"{month:%Y-%m}"
            moved = [
                (amount if target == category_id else -amount)
                for source, target, amount, when in transfers
                if category_id in (source, target) and str(when)[:7] == label
            ]
            spent = sum(
                amount
                for owner, amount, day in expenses
                if owner == category_id and str(day)[:7] == label
            )
            has_budget = monthly != 0 or bool(moved)
            budget = f"{Decimal(monthly + sum(moved)) / 100:.2f}" if has_budget else None
            figures[(name, label)] = (budget, f"{Decimal(spent) / 100:.2f}")
    return figures


def test_upgrading_changes_no_figure(old_database: dict[str, str]) -> None:
    settings = load_settings(old_database)
    before = _old_figures(settings.migration_url.render_as_string(hide_password=False))
    upgrade(settings.migration_url)
    database = Database(settings)
    runner = click.testing.CliRunner()

    def invoke(*args: str) -> Any:
        result = runner.invoke(
            main,
            [*args, "--user", EMAIL, "--format", "json"],
            obj=AppState(database=database),
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    try:
        after: dict[tuple[str, str], tuple[str | None, str]] = {}
        listed: dict[tuple[str, str], tuple[str | None, str]] = {}
        for month in MONTHS:
            label = f"{month:%Y-%m}"
            for row in invoke("report", "--month", label)["categories"]:
                after[(row["category"], label)] = (row["budget"], row["spent"])
            for row in invoke("category", "list", "--month", label)["categories"]:
                listed[(row["name"], label)] = (row["budget"], row["spent"])
        assert after == before
        assert listed == before
        trend = invoke("report", "--by", "month", "--from", "2025-11", "--to", "2026-06")
        for line in trend["months"]:
            parts = [before[(name, line["month"])] for name in ("Food", "Rent", "Fun", "Gifts")]
            budgets = [Decimal(budget) for budget, _ in parts if budget is not None]
            assert line["budget"] == (f"{sum(budgets, Decimal('0.00'))}" if budgets else None)
        grid = invoke("report", "--matrix", "--from", "2025-11", "--to", "2026-06")
        assert {
            (row["category"], cell["month"]): (cell["budget"], cell["spent"])
            for row in grid["categories"]
            for cell in row["months"]
        } == before
        verified = runner.invoke(
            main,
            ["verify", "--from", "2025-11", "--to", "2026-06", "--user", EMAIL],
            obj=AppState(database=database),
        )
        assert verified.exit_code == 0, verified.stdout
    finally:
        database.close()
