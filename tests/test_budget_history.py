"""Budget history: set-budget --from/--month, category add --from, `category budgets`,
merges month by month, and every figure (report, trend, list, add-expense warning,
transfer check, verify) reading the budget in force that month. Both backends."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import pytest

from tests.cli_helpers import TODAY, first_run, ok
from tests.conftest import Backend

THIS_MONTH = TODAY.replace(day=1)


def report(backend: Backend, *args: str) -> dict[str, Any]:
    data = json.loads(ok(backend.invoke(["report", "--format", "json", *args])).stdout)
    assert isinstance(data, dict)
    return data


def budgets(backend: Backend, month: str) -> dict[str, str | None]:
    data = report(backend, "--month", month)
    return {row["category"]: row["budget"] for row in data["categories"]}


def history(backend: Backend, name: str) -> list[dict[str, Any]]:
    result = ok(backend.invoke(["category", "budgets", name, "--format", "json"]))
    data = json.loads(result.stdout)
    assert data["category"] == name
    rows: list[dict[str, Any]] = data["budgets"]
    return rows


def test_set_budget_from_a_month_keeps_earlier_months(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "400", "--from", "2026-01"]))
    ok(backend.invoke(["category", "set-budget", "Food", "150", "--from", "2026-11"]))
    # A change for an earlier month does not override the later one.
    result = ok(backend.invoke(["category", "set-budget", "Food", "300", "--from", "2026-06"]))
    assert result.stdout == (
        "Set the monthly budget of Food to 300.00 from 2026-06 on (was 400.00)\n"
    )
    expected = {
        "2025-12": None,
        "2026-01": "400.00",
        "2026-05": "400.00",
        "2026-06": "300.00",
        "2026-10": "300.00",
        "2026-11": "150.00",
        "2027-08": "150.00",
    }
    assert {month: budgets(backend, month)["Food"] for month in expected} == expected
    assert history(backend, "Food") == [
        {"from": "2026-01", "to": "2026-05", "amount": "400.00", "one_month": False},
        {"from": "2026-06", "to": "2026-10", "amount": "300.00", "one_month": False},
        {"from": "2026-11", "to": None, "amount": "150.00", "one_month": False},
    ]


def test_one_month_override(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "200", "--from", "2026-01"]))
    result = ok(backend.invoke(["category", "set-budget", "Food", "500", "--month", "2026-12"]))
    assert result.stdout == (
        "Set the monthly budget of Food to 500.00 for 2026-12 only (was 200.00)\n"
    )
    assert [budgets(backend, m)["Food"] for m in ("2026-11", "2026-12", "2027-01")] == [
        "200.00",
        "500.00",
        "200.00",
    ]
    table = ok(backend.invoke(["category", "budgets", "Food"])).stdout
    assert table == (
        "From     To       Budget  Kind\n"
        "-------  -------  ------  ---------\n"
        "2026-01           200.00  standing\n"
        "2026-12  2026-12  500.00  one month\n"
    )
    csv_text = ok(backend.invoke(["category", "budgets", "Food", "--format", "csv"])).stdout
    assert csv_text.splitlines() == [
        "from,to,amount,kind",
        "2026-01,,200.00,standing",
        "2026-12,2026-12,500.00,one month",
    ]
    refused = backend.invoke(
        ["category", "set-budget", "Food", "1", "--from", "2026-01", "--month", "2026-02"]
    )
    assert refused.exit_code == 2
    assert "use either --from or --month, not both" in refused.stderr


def test_a_new_category_has_no_budget_before_its_first_month(backend: Backend) -> None:
    first_run(backend)
    result = ok(backend.invoke(["category", "add", "Gym", "--budget", "40", "--from", "2026-09"]))
    assert result.stdout == "Added category 5: Gym (monthly budget 40.00 from 2026-09)\n"
    assert budgets(backend, "2026-08")["Gym"] is None
    assert budgets(backend, "2026-09")["Gym"] == "40.00"
    assert history(backend, "Gym") == [
        {"from": "2026-09", "to": None, "amount": "40.00", "one_month": False}
    ]


def test_a_category_added_without_from_has_its_budget_from_this_month(
    backend: Backend,
) -> None:
    first_run(backend)
    result = ok(backend.invoke(["category", "add", "Rent", "--budget", "900"]))
    assert result.stdout == (
        f"Added category 5: Rent (monthly budget 900.00 from {THIS_MONTH:%Y-%m})\n"
    )
    ok(backend.invoke(["add-expense", "850", "Rent", "--date", "2026-03-01"]))
    assert history(backend, "Rent") == [
        {"from": f"{THIS_MONTH:%Y-%m}", "to": None, "amount": "900.00", "one_month": False}
    ]
    # Not in an earlier month's report, nor in `category list` of that month ...
    assert budgets(backend, "2026-03")["Rent"] is None
    assert budgets(backend, "2026-04")["Rent"] is None
    assert budgets(backend, "2026-05")["Rent"] == "900.00"
    listed = ok(backend.invoke(["category", "list", "--month", "2026-03", "--format", "json"]))
    rent = [row for row in json.loads(listed.stdout)["categories"] if row["name"] == "Rent"]
    assert [(row["budget"], row["spent"], row["available"]) for row in rent] == [
        (None, "850.00", "-850.00")
    ]
    # ... nor in the matrix's earlier columns or its Total ...
    matrix = report(backend, "--matrix", "--from", "2026-03", "--to", "2026-05")
    (row,) = [row for row in matrix["categories"] if row["category"] == "Rent"]
    assert [cell["budget"] for cell in row["months"]] == [None, None, "900.00"]
    assert row["total"]["budget"] == "900.00"
    # ... and `verify` recomputes the same figures.
    checked = backend.invoke(["verify", "--from", "2026-01", "--to", "2026-05"])
    assert checked.exit_code == 0, checked.stdout + checked.stderr
    assert "budget 900.00, spent 850.00" in checked.stdout
    # A category added without a budget has none in any month, this one included.
    ok(backend.invoke(["category", "add", "Spare"]))
    assert history(backend, "Spare") == [
        {"from": None, "to": None, "amount": "0.00", "one_month": False}
    ]
    assert budgets(backend, "2026-04")["Spare"] is None
    assert budgets(backend, "2026-05")["Spare"] is None


def test_the_trend_and_its_average_follow_the_history(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "100", "--from", "2026-02"]))
    ok(backend.invoke(["category", "set-budget", "Food", "400", "--month", "2026-03"]))
    data = report(backend, "--by", "month", "--from", "2026-01", "--to", "2026-04")
    assert [row["budget"] for row in data["months"]] == [None, "100.00", "400.00", "100.00"]
    assert data["average"]["budget"] == "150.00"
    ranged = report(backend, "--from", "2026-01", "--to", "2026-04", "--category", "food")
    assert ranged["categories"][0]["budget"] == "600.00"


def test_merge_combines_the_budgets_month_by_month(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "100", "--from", "2026-01"]))
    ok(backend.invoke(["category", "set-budget", "Food", "150", "--from", "2026-06"]))
    ok(backend.invoke(["category", "add", "Takeaway", "--budget", "30", "--from", "2026-03"]))
    ok(backend.invoke(["category", "set-budget", "Takeaway", "80", "--month", "2026-07"]))
    ok(backend.invoke(["category", "set-budget", "Food", "10", "--month", "2026-04"]))
    months = [f"2026-{month:02}" for month in range(1, 13)]
    before = {month: budgets(backend, month) for month in months}

    def together(month: str) -> str | None:
        parts = [before[month][name] for name in ("Food", "Takeaway")]
        amounts = [Decimal(part) for part in parts if part is not None]
        return f"{sum(amounts, Decimal('0.00'))}" if amounts else None

    ok(backend.invoke(["category", "merge", "Takeaway", "--into", "Food"]))
    assert {month: budgets(backend, month)["Food"] for month in months} == {
        month: together(month) for month in months
    }
    assert budgets(backend, "2025-12")["Food"] is None


def test_add_expense_warning_and_transfer_check_use_that_months_budget(
    backend: Backend,
) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "50", "--from", "2026-01"]))
    ok(backend.invoke(["category", "set-budget", "Food", "500", "--from", "2026-02"]))
    warned = ok(backend.invoke(["add-expense", "60", "Food", "--date", "2026-01-15"]))
    assert "Food is over its 2026-01 budget: spent 60.00 of 50.00 (10.00 over)" in warned.stderr
    quiet = ok(backend.invoke(["add-expense", "60", "Food", "--date", "2026-02-15"]))
    assert "over" not in quiet.stderr
    refused = backend.invoke(
        ["transfer", "100", "--from", "Food", "--to", "Transport", "--month", "2026-01"]
    )
    assert refused.exit_code == 1
    assert "Food has only -10.00 available for 2026-01" in refused.stderr
    moved = ok(
        backend.invoke(
            ["transfer", "100", "--from", "Food", "--to", "Transport", "--month", "2026-02"]
        )
    )
    assert "Food       340.00 available" in moved.stdout


def test_verify_recomputes_the_history(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "100", "--from", "2026-02"]))
    ok(backend.invoke(["category", "set-budget", "Food", "250", "--month", "2026-03"]))
    ok(backend.invoke(["add-expense", "20", "Food", "--date", "2026-03-03"]))
    result = backend.invoke(["verify", "--from", "2026-01", "--to", "2026-04"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("verified: me@localhost, January 2026 to April 2026")
    assert "budget 450.00, spent 20.00" in result.stdout


def test_every_month_option_takes_this_last_and_next(backend: Backend) -> None:
    first_run(backend)
    last = (THIS_MONTH - dt.timedelta(days=1)).replace(day=1)
    following = (THIS_MONTH + dt.timedelta(days=32)).replace(day=1)
    for word, month in (("this", THIS_MONTH), ("last", last), ("NEXT", following)):
        assert report(backend, "--month", word)["period"]["from"] == f"{month:%Y-%m}"
    ok(backend.invoke(["category", "set-budget", "Food", "70", "--month", "next"]))
    assert history(backend, "Food")[-1]["from"] == f"{following:%Y-%m}"
    listed = ok(backend.invoke(["category", "list", "--month", "last", "--format", "json"]))
    assert json.loads(listed.stdout)["month"] == f"{last:%Y-%m}"


def test_verify_checks_income_and_history_rows_changed_behind_the_reports_back(
    backend: Backend,
) -> None:
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from budget_tracker.models import CategoryBudget, Income
    from budget_tracker.services.budgets import Period
    from budget_tracker.services.reports import category_report
    from budget_tracker.services.verify import check_report

    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "100", "--month", "2026-03"]))
    ok(backend.invoke(["add-income", "1000", "--date", "2026-03-02"]))
    march = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 1))

    def tamper(session: Session) -> None:
        session.execute(update(Income).values(amount=Decimal("1000.01")))
        session.execute(update(CategoryBudget).values(amount=Decimal("100.02")))

    with backend.database.transaction() as session:
        report = category_report(session, user_email=None, period=march)
        tamper(session)  # after the SQL report, before the independent pass
        result = check_report(session, report)
        session.rollback()
    assert [
        (item.category, item.measure, item.sql, item.independent) for item in result.mismatches
    ] == [
        ("Food", "budget", Decimal("100.00"), Decimal("100.02")),
        ("(income)", "income", Decimal("1000.00"), Decimal("1000.01")),
    ]


def matrix_cells(backend: Backend) -> dict[str, list[dict[str, Any]]]:
    data = json.loads(
        ok(
            backend.invoke(
                ["report", "--matrix", "--from", "2025-11", "--to", "2026-12", "--format", "json"]
            )
        ).stdout
    )
    return {row["category"]: row["months"] for row in data["categories"]}


@pytest.mark.parametrize(
    "fold",
    [
        ["category", "merge", "Takeaway", "--into", "Food"],
        ["category", "delete", "Takeaway", "--move-to", "Food"],
    ],
    ids=["merge", "delete-move-to"],
)
def test_folding_keeps_every_months_figures_of_the_two_together(
    backend: Backend, fold: list[str]
) -> None:
    ok(backend.invoke(["add-expense", "50", "Food", "--date", "2026-04-02"]))  # the first run
    for args in (
        ["category", "set-budget", "Food", "100", "--from", "2026-01"],
        ["category", "set-budget", "Food", "150", "--from", "2026-06"],
        ["category", "set-budget", "Food", "10", "--month", "2026-04"],
        ["category", "add", "Takeaway", "--budget", "30", "--from", "2026-01"],
        ["category", "set-budget", "Takeaway", "80", "--month", "2026-07"],
        ["category", "set-budget", "Takeaway", "45", "--from", "2026-09"],
        ["category", "set-budget", "Transport", "200", "--from", "2026-01"],
        ["transfer", "5", "--from", "Takeaway", "--to", "Food", "--month", "2026-02"],
        ["transfer", "20", "--from", "Transport", "--to", "Takeaway", "--month", "2026-07"],
        ["transfer", "15", "--from", "Food", "--to", "Transport", "--month", "2026-09"],
        ["add-expense", "12", "Takeaway", "--date", "2026-02-03"],
        ["add-expense", "90", "Takeaway", "--date", "2026-07-10"],
        ["add-expense", "160", "Food", "--date", "2026-06-30"],
    ):
        ok(backend.invoke(args))
    before = matrix_cells(backend)

    def together(food: dict[str, Any], takeaway: dict[str, Any]) -> tuple[Any, ...]:
        budgets = [Decimal(cell["budget"]) for cell in (food, takeaway) if cell["budget"]]
        budget = f"{sum(budgets, Decimal('0.00'))}" if budgets else None
        return food["month"], budget, f"{Decimal(food['spent']) + Decimal(takeaway['spent'])}"

    expected = [
        together(food, takeaway)
        for food, takeaway in zip(before["Food"], before["Takeaway"], strict=True)
    ]
    assert expected[6] == ("2026-05", "130.00", "0.00")  # a month no change touched
    ok(backend.invoke(fold))
    after = matrix_cells(backend)
    assert [(cell["month"], cell["budget"], cell["spent"]) for cell in after["Food"]] == expected
    assert "Takeaway" not in after
    assert {name: cells for name, cells in after.items() if name != "Food"} == {
        name: cells for name, cells in before.items() if name not in ("Food", "Takeaway")
    }


def test_edit_expense_warning_uses_that_months_budget(backend: Backend) -> None:
    """The warning after an edit reads the budget in force that month, as add-expense's
    does, not the opening budget."""
    first_run(backend)
    ok(backend.invoke(["category", "add", "Gifts", "--budget", "50", "--from", "2026-01"]))
    ok(backend.invoke(["category", "add", "Rent", "--budget", "100", "--from", "2026-01"]))
    ok(backend.invoke(["category", "set-budget", "Rent", "0", "--from", "2026-03"]))
    ok(backend.invoke(["add-expense", "40", "Gifts", "--date", "2026-01-15"]))  # expense 1
    ok(backend.invoke(["add-expense", "40", "Rent", "--date", "2026-03-15"]))  # expense 2
    over = ok(backend.invoke(["edit-expense", "1", "--amount", "60"]))
    assert over.stderr.splitlines()[-1] == (
        "Warning: Gifts is over its 2026-01 budget: spent 60.00 of 50.00 (10.00 over)"
    )
    # March has no Rent budget any more: spending there is unbudgeted, never "over".
    quiet = ok(backend.invoke(["edit-expense", "2", "--amount", "150"]))
    assert "Warning" not in quiet.stderr


def test_transfers_that_net_to_zero_still_give_a_budget(backend: Backend) -> None:
    """A category without a monthly budget that received and gave away budget in a month
    has a budget of 0.00 that month (a transfer touched it), the same in the report,
    `category list` and the add-expense warning."""
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Transport", "30", "--from", "2026-01"]))
    ok(
        backend.invoke(
            ["transfer", "5", "--from", "Transport", "--to", "Food", "--month", "2026-03"]
        )
    )
    ok(
        backend.invoke(
            ["transfer", "5", "--from", "Food", "--to", "Utilities", "--month", "2026-03"]
        )
    )
    assert budgets(backend, "2026-03")["Food"] == "0.00"
    listed = ok(backend.invoke(["category", "list", "--month", "2026-03", "--format", "json"]))
    food = {row["name"]: row for row in json.loads(listed.stdout)["categories"]}["Food"]
    assert (food["budget"], food["available"]) == ("0.00", "0.00")
    warned = ok(backend.invoke(["add-expense", "1", "Food", "--date", "2026-03-02"]))
    assert warned.stderr == (
        "Warning: Food is over its 2026-03 budget: spent 1.00 of 0.00 (1.00 over)\n"
    )
    edited = ok(backend.invoke(["edit-expense", "1", "--amount", "2"]))
    assert edited.stderr.splitlines()[-1] == (
        "Warning: Food is over its 2026-03 budget: spent 2.00 of 0.00 (2.00 over)"
    )
