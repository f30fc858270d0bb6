"""Rollover: `category set-rollover`, what is carried into each month, and every figure
that reads it (report, category list, add-expense warning, transfer funds check, verify),
with the per-month spending the database keeps equal to the expenses. Both backends."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.cli_helpers import first_run, kept_sums_match_expenses, ok
from tests.conftest import Backend


def report(backend: Backend, *args: str) -> dict[str, Any]:
    data = json.loads(ok(backend.invoke(["report", "--format", "json", *args])).stdout)
    assert isinstance(data, dict)
    return data


def line(backend: Backend, month: str, name: str = "Fun") -> dict[str, Any]:
    """The category's report line for one month."""
    rows = report(backend, "--month", month)["categories"]
    found: dict[str, Any] = next(row for row in rows if row["category"] == name)
    return found


def carried(backend: Backend, *months: str, name: str = "Fun") -> list[str]:
    return [line(backend, month, name)["carried"] for month in months]


def spend(backend: Backend, amount: str, day: str, name: str = "Fun") -> int:
    result = ok(backend.invoke(["add-expense", amount, name, "--date", day, "--format", "json"]))
    expense_id: int = json.loads(result.stdout)["id"]
    return expense_id


def rollover(backend: Backend, name: str, setting: str, month: str) -> str:
    result = ok(backend.invoke(["category", "set-rollover", name, setting, "--from", month]))
    return result.stdout


def fun(backend: Backend, budget: str = "100") -> None:
    first_run(backend)
    ok(backend.invoke(["category", "add", "Fun", "--budget", budget, "--from", "2025-12"]))


def test_on_off_and_on_again_with_a_negative_carry(backend: Backend) -> None:
    fun(backend)
    assert rollover(backend, "Fun", "on", "2026-01") == (
        "Rollover of Fun is on from 2026-01 on (was off)\n"
    )
    spend(backend, "30", "2026-01-10")
    spend(backend, "200", "2026-02-10")
    # Jan leaves 70; Feb 100 + 70 - 200 = -30 goes into Mar, which starts short.
    assert carried(backend, "2025-12", "2026-01", "2026-02", "2026-03") == [
        "0.00",
        "0.00",
        "70.00",
        "-30.00",
    ]
    assert rollover(backend, "Fun", "off", "2026-03") == (
        "Rollover of Fun is off from 2026-03 on (was on)\n"
    )
    # March keeps what was carried into it; nothing leaves March or later.
    march = line(backend, "2026-03")
    assert (march["carried"], march["available"], march["over_budget"]) == (
        "-30.00",
        "70.00",
        False,
    )
    assert carried(backend, "2026-04", "2026-05") == ["0.00", "0.00"]
    rollover(backend, "Fun", "on", "2026-05")
    spend(backend, "10", "2026-05-02")
    # On again: May starts from nothing carried; May's leftover goes into June.
    assert carried(backend, "2026-05", "2026-06", "2026-07") == ["0.00", "90.00", "190.00"]
    # An earlier change leaves the later one in force from its own month.
    rollover(backend, "Fun", "off", "2026-04")
    assert carried(backend, "2026-06") == ["90.00"]
    history = json.loads(
        ok(backend.invoke(["category", "budgets", "Fun", "--format", "json"])).stdout
    )
    assert history["rollover"] == [
        {"from": "2026-01", "to": "2026-02", "enabled": True},
        {"from": "2026-03", "to": "2026-03", "enabled": False},
        {"from": "2026-04", "to": "2026-04", "enabled": False},
        {"from": "2026-05", "to": None, "enabled": True},
    ]
    table = ok(backend.invoke(["category", "budgets", "Fun"])).stdout
    assert table.splitlines()[-1].split() == ["2026-05", "rollover", "on"]
    kept_sums_match_expenses(backend)


def test_overrides_budget_changes_and_transfers_count_in_the_carry(backend: Backend) -> None:
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    ok(backend.invoke(["category", "set-budget", "Food", "100", "--from", "2026-01"]))
    ok(backend.invoke(["category", "set-budget", "Fun", "500", "--month", "2026-02"]))
    ok(backend.invoke(["category", "set-budget", "Fun", "50", "--from", "2026-03"]))
    ok(backend.invoke(["transfer", "20", "--from", "Fun", "--to", "Food", "--month", "2026-01"]))
    ok(backend.invoke(["transfer", "5", "--from", "Food", "--to", "Fun", "--month", "2026-02"]))
    spend(backend, "10", "2026-01-31")
    # Jan: 100 - 20 - 10 = 70; Feb: 500 + 5 + 70 = 575; Mar: 50 + 575 = 625.
    assert carried(backend, "2026-02", "2026-03", "2026-04") == ["70.00", "575.00", "625.00"]
    # Over a range, Carried is what was carried into its first month.
    period = report(backend, "--from", "2026-02", "--to", "2026-03")
    fun_line = next(row for row in period["categories"] if row["category"] == "Fun")
    assert (fun_line["budget"], fun_line["carried"], fun_line["available"]) == (
        "555.00",
        "70.00",
        "625.00",
    )
    # A category without rollover shows nothing carried.
    assert carried(backend, "2026-04", name="Food") == ["0.00"]


def test_editing_or_deleting_a_past_expense_changes_later_carries(backend: Backend) -> None:
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    expense = spend(backend, "10", "2026-01-05")
    assert carried(backend, "2026-03") == ["190.00"]
    ok(backend.invoke(["edit-expense", str(expense), "--amount", "40"]))
    assert carried(backend, "2026-03") == ["160.00"]
    ok(backend.invoke(["edit-expense", str(expense), "--date", "2026-02-05"]))
    assert carried(backend, "2026-02", "2026-03") == ["100.00", "160.00"]
    ok(backend.invoke(["edit-expense", str(expense), "--category", "Food"]))
    assert carried(backend, "2026-03") == ["200.00"]
    ok(backend.invoke(["edit-expense", str(expense), "--category", "Fun"]))
    ok(backend.invoke(["delete-expense", str(expense), "--yes"]))
    assert carried(backend, "2026-03") == ["200.00"]
    kept_sums_match_expenses(backend)


def test_merge_and_delete_move_to_carry_the_moved_spending(backend: Backend) -> None:
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    ok(backend.invoke(["category", "add", "Takeaway", "--budget", "0"]))
    ok(backend.invoke(["category", "add", "Snacks", "--budget", "0"]))
    spend(backend, "15", "2026-01-20", name="Takeaway")
    spend(backend, "5", "2026-02-20", name="Snacks")
    rollover(backend, "Takeaway", "on", "2026-01")
    assert carried(backend, "2026-03") == ["200.00"]
    ok(backend.invoke(["category", "merge", "Takeaway", "--into", "Fun"]))
    assert carried(backend, "2026-02", "2026-03") == ["85.00", "185.00"]
    ok(backend.invoke(["category", "delete", "Snacks", "--move-to", "Fun"]))
    assert carried(backend, "2026-03") == ["180.00"]
    assert backend.scalar("SELECT count(*) FROM category_rollovers") == 1
    kept_sums_match_expenses(backend)


def test_available_everywhere_includes_what_was_carried(backend: Backend) -> None:
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    spend(backend, "130", "2026-01-05")  # Jan overspent by 30: Feb starts with -30
    listed = json.loads(
        ok(backend.invoke(["category", "list", "--month", "2026-02", "--format", "json"])).stdout
    )
    row = next(row for row in listed["categories"] if row["name"] == "Fun")
    assert (row["budget"], row["carried"], row["available"]) == ("100.00", "-30.00", "70.00")
    table = ok(backend.invoke(["category", "list", "--month", "2026-02"])).stdout
    assert "Carried" in table.splitlines()[0]
    # The add-expense warning counts the carried amount: 80 of 70 available.
    added = ok(backend.invoke(["add-expense", "80", "Fun", "--date", "2026-02-03"]))
    assert "Fun is over its 2026-02 budget: spent 80.00 of 70.00 (10.00 over)" in added.stderr
    expense_id = added.stdout.split(":")[0].split()[-1]
    edited = ok(backend.invoke(["edit-expense", expense_id, "--amount", "70"]))
    assert "over its" not in edited.stderr
    edited = ok(backend.invoke(["edit-expense", expense_id, "--amount", "80"]))
    assert "Fun is over its 2026-02 budget: spent 80.00 of 70.00 (10.00 over)" in edited.stderr
    # The transfer's funds check counts it too: March has 100 + (-10) available.
    refused = backend.invoke(
        ["transfer", "90.01", "--from", "Fun", "--to", "Food", "--month", "2026-03"]
    )
    assert refused.exit_code == 1, refused.output
    assert "90.00" in refused.stderr
    ok(backend.invoke(["transfer", "90", "--from", "Fun", "--to", "Food", "--month", "2026-03"]))
    # Money carried from February can be moved out of March: budget 100, carried 40.
    ok(backend.invoke(["category", "set-budget", "Fun", "0", "--month", "2026-04"]))
    assert carried(backend, "2026-04") == ["0.00"]
    spend(backend, "1", "2026-04-01")
    assert line(backend, "2026-04")["available"] == "-1.00"


def test_the_report_shows_carried_only_when_a_category_rolls_over(backend: Backend) -> None:
    fun(backend)
    plain = ok(backend.invoke(["report", "--month", "2026-02"])).stdout
    assert "Carried" not in plain
    plain_csv = ok(backend.invoke(["report", "--month", "2026-02", "--format", "csv"])).stdout
    assert "carried" not in plain_csv.splitlines()[0]
    rollover(backend, "Fun", "on", "2026-02")
    # On in view, nothing carried yet: the column is shown.
    shown = ok(backend.invoke(["report", "--month", "2026-02"])).stdout
    assert "Carried" in shown
    spend(backend, "25", "2026-02-03")
    march = ok(backend.invoke(["report", "--month", "2026-03"])).stdout.splitlines()
    header = march[3].split()
    assert header[:4] == ["Category", "Budget", "Carried", "Spent"]
    fun_row = next(text for text in march if text.startswith("Fun"))
    assert fun_row.split()[:5] == ["Fun", "100.00", "75.00", "0.00", "175.00"]
    csv_text = ok(backend.invoke(["report", "--month", "2026-03", "--format", "csv"])).stdout
    assert "carried" in csv_text.splitlines()[0].split(",")


def test_verify_checks_carried_amounts_and_the_kept_sums(backend: Backend) -> None:
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    spend(backend, "30", "2026-01-10")
    ok(backend.invoke(["transfer", "10", "--from", "Fun", "--to", "Food", "--month", "2026-02"]))
    verified = backend.invoke(["verify", "--month", "2026-03"])
    assert verified.exit_code == 0, verified.output
    # A kept sum that disagrees with the expenses is found, and so is the carry it feeds.
    with backend.database.engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(text("UPDATE category_month_spent SET spent = spent + 1"))
    mismatch = backend.invoke(["verify", "--month", "2026-03"])
    assert mismatch.exit_code == 1
    assert "carried" in mismatch.stdout
    assert "spent in 2026-01 (kept)" in mismatch.stdout


def test_set_rollover_refuses_unknown_categories_and_settings(backend: Backend) -> None:
    fun(backend)
    unknown = backend.invoke(["category", "set-rollover", "Nope", "on"])
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: no category 'Nope'")
    bad = backend.invoke(["category", "set-rollover", "Fun", "maybe"])
    assert bad.exit_code == 2
    assert backend.scalar("SELECT count(*) FROM category_rollovers") == 0
    # The default month is this month; `last`/`next` name months like every month option.
    assert ok(backend.invoke(["category", "set-rollover", "Fun", "on"])).stdout.endswith(
        "from 2026-05 on (was off)\n"
    )
    assert ok(
        backend.invoke(["category", "set-rollover", "Fun", "off", "--from", "next"])
    ).stdout == ("Rollover of Fun is off from 2026-06 on (was on)\n")


def test_an_import_is_summed_for_the_carry_like_single_expenses(
    backend: Backend, tmp_path: Path
) -> None:
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    statement = tmp_path / "bank.csv"
    statement.write_text(
        "date,amount,category,description\n"
        "2026-01-15,23.40,Fun,Cinema\n"
        "2026-01-16,6.60,Fun,Popcorn\n"
        "2026-02-02,60.00,Fun,Concert\n"
        "2026-02-03,1.00,Food,Bread\n",
        encoding="utf-8",
    )
    ok(backend.invoke(["import", str(statement)]))
    assert carried(backend, "2026-02", "2026-03") == ["70.00", "110.00"]
    kept_sums_match_expenses(backend)


def test_the_trend_counts_what_each_month_carried(backend: Backend) -> None:
    """`report --by month` shows each month as its one-month report does: what was
    carried into it counts in its available; the totals carry what came into the first
    month; the table and CSV show a Carried column."""
    fun(backend)
    rollover(backend, "Fun", "on", "2026-01")
    spend(backend, "30", "2026-01-10")
    spend(backend, "200", "2026-02-10")
    args = ["--by", "month", "--category", "Fun", "--from", "2026-01", "--to", "2026-03"]
    trend = report(backend, *args)
    assert [(m["month"], m["carried"], m["available"]) for m in trend["months"]] == [
        ("2026-01", "0.00", "70.00"),
        ("2026-02", "70.00", "-30.00"),
        ("2026-03", "-30.00", "70.00"),
    ]
    for month in trend["months"]:
        one = line(backend, month["month"])
        assert (month["carried"], month["available"]) == (one["carried"], one["available"])
    # 300 budgeted + nothing carried into January - 230 spent.
    assert (trend["totals"]["carried"], trend["totals"]["available"]) == ("0.00", "70.00")
    table = ok(backend.invoke(["report", *args])).stdout
    assert "Carried" in table.splitlines()[2]
    csv = ok(backend.invoke(["report", *args, "--format", "csv"])).stdout
    assert csv.splitlines()[:3] == [
        "month,budget,carried,spent,available,income,savings_rate",
        "2026-01,100.00,0.00,30.00,70.00,0.00,",
        "2026-02,100.00,70.00,200.00,-30.00,0.00,",
    ]
