"""Income: add-income, income, edit-income, delete-income, and income in the reports."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import first_run, ok
from tests.conftest import Backend


def refused(backend: Backend, args: list[str], code: int, text: str) -> None:
    before = backend.snapshot()
    result = backend.invoke(args)
    assert result.exit_code == code
    assert text in result.stderr
    assert backend.snapshot() == before


def test_record_list_edit_and_delete_income(backend: Backend) -> None:
    first_run(backend)
    added = ok(backend.invoke(["add-income", "3200", "Salary", "--date", "2026-03-01"]))
    assert added.stdout == "Added income 1: 3200.00 on 2026-03-01: Salary\n"
    ok(backend.invoke(["add-income", "150.50", "side job", "--date", "2026-03-20"]))
    ok(backend.invoke(["add-income", "99", "--date", "2026-04-02"]))
    data = json.loads(
        ok(backend.invoke(["income", "--month", "2026-03", "--format", "json"])).stdout
    )
    assert data == {
        "income": [
            {"id": 2, "date": "2026-03-20", "amount": "150.50", "source": "side job",
             "entered_by": "me@localhost"},
            {"id": 1, "date": "2026-03-01", "amount": "3200.00", "source": "Salary",
             "entered_by": "me@localhost"},
        ],
        "count": 2,
        "total": "3350.50",
    }  # fmt: skip
    table = ok(backend.invoke(["income", "--search", "SALARY"])).stdout
    assert table.splitlines()[2] == " 1  2026-03-01  3200.00  Salary"
    edited = ok(backend.invoke(["edit-income", "1", "--amount", "3250"]))
    assert edited.stdout == "Updated income 1: 3250.00 on 2026-03-01: Salary\n"
    assert edited.stderr == "was: 3200.00 on 2026-03-01: Salary\n"
    deleted = ok(backend.invoke(["delete-income", "3", "--yes"]))
    assert deleted.stdout == "Deleted income 3: 99.00 on 2026-04-02\n"
    csv_text = ok(backend.invoke(["income", "--format", "csv"])).stdout
    assert csv_text.splitlines() == [
        "id,date,amount,source,entered_by",
        "2,2026-03-20,150.50,side job,me@localhost",
        "1,2026-03-01,3250.00,Salary,me@localhost",
    ]


def test_income_refusals(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["user", "add", "two@example.com", "--name", "Two"]))
    ok(backend.invoke(["add-income", "10", "--user", "two@example.com"]))
    me = ["--user", "me@localhost"]
    refused(backend, ["add-income", "0", *me], 2, "'0' is zero; amounts must be positive")
    refused(backend, ["add-income", "1.234", *me], 2, "more than two decimal places")
    refused(backend, ["edit-income", "1", "--amount", "5", *me], 1, "no income with id 1")
    refused(backend, ["delete-income", "1", "--yes", *me], 1, "no income with id 1")
    refused(backend, ["edit-income", "1", *me], 2, "nothing to change")


def test_report_sets_income_beside_budgets_and_spending(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "400", "--from", "2026-01"]))
    ok(backend.invoke(["add-expense", "100", "Food", "--date", "2026-03-05"]))
    ok(backend.invoke(["add-income", "1000", "Salary", "--date", "2026-03-01"]))
    ok(backend.invoke(["add-income", "500", "Salary", "--date", "2026-04-01"]))
    data = json.loads(
        ok(backend.invoke(["report", "--month", "2026-03", "--format", "json"])).stdout
    )
    assert data["summary"] == {
        "income": "1000.00",
        "budgeted": "400.00",
        "spent": "100.00",
        "saved": "900.00",
        "unbudgeted": "600.00",
        "savings_rate": "90.0",
    }
    table = ok(backend.invoke(["report", "--month", "2026-03"])).stdout
    assert table.splitlines()[1] == (
        "Income 1000.00  Budgeted 400.00  Spent 100.00  Saved 900.00  Unbudgeted 600.00"
    )
    trend = json.loads(
        ok(
            backend.invoke(
                [
                    "report",
                    "--by",
                    "month",
                    "--from",
                    "2026-02",
                    "--to",
                    "2026-04",
                    "--format",
                    "json",
                ]
            )
        ).stdout
    )
    assert [(m["month"], m["income"], m["savings_rate"]) for m in trend["months"]] == [
        ("2026-02", "0.00", None),
        ("2026-03", "1000.00", "90.0"),
        ("2026-04", "500.00", "100.0"),
    ]
    assert trend["totals"]["income"] == "1500.00"
    assert trend["average"]["income"] == "500.00"
    lines = ok(backend.invoke(["report", "--by", "month", "--from", "2026-03", "--to", "2026-03"]))
    assert "Available   Income  Saved" in lines.stdout
    assert "2026-03  400.00  100.00     300.00  1000.00  90.0%" in lines.stdout


BAD_INPUT = [
    (["-3"], []),
    (["0"], []),
    (["1e3"], []),
    (["nan"], []),
    (["12.345"], []),
    (["١٢"], []),
    (["100000000"], []),
    (["1"], ["--date", "2026-02-30"]),
    (["1"], ["--date", "9999-12-31"]),
    (["1"], ["--date", "２０２６-01-01"]),
    (["1", "a\nb"], []),
    (["1", "a\u200bb"], []),
    (["1", "x" * 201], []),
]


@pytest.mark.parametrize(("arguments", "options"), BAD_INPUT)
def test_income_refuses_what_expenses_refuse(
    backend: Backend, arguments: list[str], options: list[str]
) -> None:
    """The same input rules and messages: income's SOURCE is an expense's DESCRIPTION."""
    first_run(backend)
    before = backend.snapshot()
    amount, *text = arguments
    expense = backend.invoke(["add-expense", *options, "--", amount, "Food", *text])
    income = backend.invoke(["add-income", *options, "--", amount, *text])
    assert expense.exit_code == income.exit_code == 2
    assert income.stderr == expense.stderr.replace("[DESCRIPTION]", "[SOURCE]")
    assert income.stderr.startswith("Error: Invalid value for ")
    if not text and not options:
        edit_expense = backend.invoke(["edit-expense", "1", "--amount", amount])
        edit_income = backend.invoke(["edit-income", "1", "--amount", amount])
        assert (edit_income.exit_code, edit_income.stderr) == (
            edit_expense.exit_code,
            edit_expense.stderr,
        )
    assert backend.snapshot() == before
