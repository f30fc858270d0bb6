"""Streamed reads: every row exactly once in fixed batches, and few round trips."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.config import load_settings
from budget_tracker.models import Category, Expense, User
from budget_tracker.services.streaming import stream_rows
from budget_tracker.unit_of_work import Database
from tests.conftest import Backend
from tests.report_ledger import ALICE, seed
from tests.wireproxy import WireProxy


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 6, 7])
def test_every_row_once_around_batch_boundaries(backend: Backend, count: int) -> None:
    with backend.database.transaction() as session:
        user = User(email="s@example.com", name="S")
        session.add(user)
        session.flush()
        food = Category(user_id=user.id, name="Food")
        session.add(food)
        session.flush()
        session.add_all(
            Expense(
                user_id=user.id, category_id=food.id, amount=n + 1, spent_on=dt.date(2026, 1, 1)
            )
            for n in range(count)
        )
    with backend.database.transaction(write=False) as session:
        statement = select(Expense.amount).order_by(Expense.id)
        streamed = [amount for (amount,) in stream_rows(session, statement, batch=3)]
    assert streamed == list(range(1, count + 1))


def _wire(backend: Backend, proxy: WireProxy, args: list[str]) -> list[str]:
    url = backend.url.set(port=proxy.port).render_as_string(hide_password=False)
    database = Database(load_settings({"DATABASE_URL": url}))
    try:
        proxy.reset()
        result = CliRunner().invoke(main, args, obj=AppState(database=database))
        assert result.exit_code == 0, result.output
        return proxy.snapshot().sql
    finally:
        database.close()


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_verify_and_export_round_trips(backend: Backend, proxy: WireProxy) -> None:
    seed(backend)
    verify = _wire(backend, proxy, ["verify", "--user", ALICE, "--month", "2028-02"])
    report = [sql for sql in verify if "WITH" in sql or "report" in sql.lower()]
    # Categories in one query; transfers and expenses through one cursor whose only
    # batch is short: DECLARE, FETCH 1 (SQLAlchemy's first row), FETCH, CLOSE.
    assert [
        sql.split()[0] for sql in verify if sql.split()[0] in ("DECLARE", "FETCH", "CLOSE")
    ] == [
        "DECLARE",
        "FETCH",
        "FETCH",
        "CLOSE",
    ], verify
    assert report, verify
    export = _wire(backend, proxy, ["export", "--user", ALICE])
    assert [sql.split()[0] for sql in export] == [
        "BEGIN",
        "SELECT",
        "DECLARE",
        "FETCH",
        "FETCH",
        "CLOSE",
        "COMMIT",
    ], export
