"""Who entered each expense, income entry and transfer, as every command shows it.

On PostgreSQL a row entered by someone other than the budget's own user comes from a
member of a shared budget (tests/test_rls.py covers that with real roles); here it is
written with SQL, the same on both backends, and the commands show what was recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cli_helpers import counted_statements, execute, ok, user_id
from tests.conftest import Backend

ME, BO = "me@localhost", "bo@example.com"
TRANSFER = ["transfer", "5", "--from", "Food", "--to", "Transport", "--allow-overdraw"]


@pytest.fixture
def budget(backend: Backend) -> Backend:
    """me@localhost's budget: three expenses, two income entries, one transfer."""
    for args in (
        ["add-expense", "12.50", "Food", "Lunch", "--date", "2026-03-02"],
        ["add-expense", "45", "Food", "Groceries", "--date", "2026-03-15"],
        ["add-expense", "3.20", "Transport", "Bus", "--date", "2026-03-03"],
        ["add-income", "3000", "Salary", "--date", "2026-03-01"],
        ["add-income", "40", "Refund", "--date", "2026-03-20"],
        [*TRANSFER, "--month", "2026-03"],
        ["user", "add", BO, "--name", "Bo"],
    ):
        ok(backend.invoke(args))
    return backend


def entered_by_bo(backend: Backend, table: str, row_id: int) -> None:
    """Record that Bo entered row `row_id` of `table` (as a member of a shared budget)."""
    execute(
        backend,
        f"UPDATE {table} SET entered_by = :person WHERE id = :id",
        person=user_id(backend, BO),
        id=row_id,
    )


def listed(backend: Backend, *args: str) -> Any:
    return json.loads(ok(backend.invoke([*args, "--format", "json"])).stdout)


LISTINGS: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
    "expenses": lambda data: data["expenses"],
    "income": lambda data: data["income"],
    "transfers": lambda data: data,
}


def test_a_private_budget_shows_no_entered_by_column_but_machines_get_it(
    budget: Backend,
) -> None:
    for command, rows in LISTINGS.items():
        table = ok(budget.invoke([command])).stdout
        assert "Entered by" not in table, command
        assert [row["entered_by"] for row in rows(listed(budget, command))] == [ME] * len(
            rows(listed(budget, command))
        )
        lines = ok(budget.invoke([command, "--format", "csv"])).stdout.splitlines()
        assert lines[0].endswith(",entered_by"), command
        assert all(line.endswith(f",{ME}") for line in lines[1:]), (command, lines)
    report = ok(budget.invoke(["report", "--month", "2026-03", "--top", "2"])).stdout
    assert "Entered by" not in report
    top = listed(budget, "report", "--month", "2026-03", "--top", "2")["top_expenses"]
    assert [item["entered_by"] for item in top] == [ME, ME]


def test_the_expenses_table_shows_who_entered_each_row_when_another_person_did(
    budget: Backend,
) -> None:
    entered_by_bo(budget, "expenses", 2)
    assert ok(budget.invoke(["expenses"])).stdout == (
        "ID  Date        Category    Amount  Description  Entered by\n"
        "--  ----------  ----------  ------  -----------  --------------\n"
        " 2  2026-03-15  Food         45.00  Groceries    bo@example.com\n"
        " 3  2026-03-03  Transport     3.20  Bus          me@localhost\n"
        " 1  2026-03-02  Food         12.50  Lunch        me@localhost\n"
        "--  ----------  ----------  ------  -----------  --------------\n"
        "    Total       3 expenses   60.70\n"
    )
    # Only the rows in view count: the budget's own user's rows alone need no column.
    assert "Entered by" not in ok(budget.invoke(["expenses", "--search", "lunch"])).stdout
    assert "Entered by" not in ok(budget.invoke(["expenses", "--entered-by", ME])).stdout
    assert "bo@example.com" in ok(budget.invoke(["expenses", "--limit", "1"])).stdout
    assert "Entered by" not in ok(budget.invoke(["expenses", "--to", "2026-03-14"])).stdout
    data = listed(budget, "expenses")
    assert [(row["id"], row["entered_by"]) for row in data["expenses"]] == [
        (2, BO),
        (3, ME),
        (1, ME),
    ]
    assert ok(budget.invoke(["expenses", "--format", "csv"])).stdout.splitlines() == [
        "id,date,category,amount,description,entered_by",
        f"2,2026-03-15,Food,45.00,Groceries,{BO}",
        f"3,2026-03-03,Transport,3.20,Bus,{ME}",
        f"1,2026-03-02,Food,12.50,Lunch,{ME}",
    ]


def test_income_and_transfers_show_who_entered_them_when_another_person_did(
    budget: Backend,
) -> None:
    entered_by_bo(budget, "income", 2)
    entered_by_bo(budget, "budget_transfers", 1)
    income = ok(budget.invoke(["income"])).stdout.splitlines()
    assert income[0].split() == ["ID", "Date", "Amount", "Source", "Entered", "by"]
    assert income[2].split() == ["2", "2026-03-20", "40.00", "Refund", BO]
    assert income[3].split() == ["1", "2026-03-01", "3000.00", "Salary", ME]
    assert "Entered by" not in ok(budget.invoke(["income", "--search", "salary"])).stdout
    assert [row["entered_by"] for row in listed(budget, "income")["income"]] == [BO, ME]
    transfers = ok(budget.invoke(["transfers"])).stdout.splitlines()
    assert transfers[0].split()[-2:] == ["Entered", "by"]
    assert transfers[2].split()[-1] == BO
    assert [row["entered_by"] for row in listed(budget, "transfers")] == [BO]
    assert (
        ok(budget.invoke(["transfers", "--format", "csv"]))
        .stdout.splitlines()[1]
        .endswith(f",{BO}")
    )


def test_the_reports_largest_expenses_show_who_entered_them(budget: Backend) -> None:
    entered_by_bo(budget, "expenses", 2)
    report = ok(budget.invoke(["report", "--month", "2026-03", "--top", "2"])).stdout
    largest = report.split("Largest 2 expenses\n", 1)[1].splitlines()
    assert largest[0].split()[-2:] == ["Entered", "by"]
    assert largest[2].split()[-1] == BO and largest[3].split()[-1] == ME
    top = listed(budget, "report", "--month", "2026-03", "--top", "2")["top_expenses"]
    assert [(item["id"], item["entered_by"]) for item in top] == [(2, BO), (1, ME)]
    # Only the owner's rows among the largest: no column.
    one = ok(budget.invoke(["report", "--month", "2026-03", "--top", "1", "--entered-by", ME]))
    assert "Entered by" not in one.stdout


def test_a_changed_or_deleted_row_keeps_who_entered_it(budget: Backend) -> None:
    entered_by_bo(budget, "expenses", 2)
    entered_by_bo(budget, "income", 2)
    edited = listed(budget, "edit-expense", "2", "--amount", "46")
    assert edited["entered_by"] == BO  # who entered it, not who changed it
    assert listed(budget, "edit-income", "2", "--amount", "41")["entered_by"] == BO
    assert listed(budget, "delete-expense", "2", "--yes")["entered_by"] == BO
    assert listed(budget, "delete-income", "2", "--yes")["entered_by"] == BO
    assert listed(budget, "add-expense", "1", "Food")["entered_by"] == ME
    assert listed(budget, "add-income", "1")["entered_by"] == ME
    moved = listed(
        budget, "transfer", "1", "--from", "Food", "--to", "Transport", "--allow-overdraw"
    )
    assert moved["entered_by"] == ME
    undone = listed(budget, "transfer", "--undo", str(moved["id"]), "--allow-overdraw")
    assert undone["entered_by"] == ME


# Round trips per command (BEGIN and COMMIT included) before who entered a row was shown:
# it is read in the statements that were already sent.
STATEMENTS = {
    ("expenses",): 4,
    ("income",): 4,
    ("transfers",): 4,
    ("report", "--top", "3"): 5,
    ("add-expense", "3", "Food"): 4,
    ("add-income", "5"): 5,
    ("transfer", "1", "--from", "Food", "--to", "Transport", "--allow-overdraw"): 4,
    ("transfer", "--undo", "1", "--allow-overdraw"): 5,
    ("edit-expense", "1", "--amount", "3"): 9,
    ("delete-expense", "1", "--yes"): 6,
    ("edit-income", "1", "--amount", "4"): 6,
    ("delete-income", "1", "--yes"): 6,
}


@pytest.mark.parametrize("args", list(STATEMENTS), ids=" ".join)
def test_showing_who_entered_a_row_costs_no_statement(
    budget: Backend, args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("budget_tracker.outcomes.PRUNE_CHANCE", 0)  # no pruning by chance
    entered_by_bo(budget, "expenses", 1)
    with counted_statements(budget) as seen:
        ok(budget.invoke([*args, "--user", ME]))
    assert len(seen) <= STATEMENTS[args], seen
