"""`budget report --matrix`: categories as rows, months as columns, on both backends.

The data (the default user me@localhost, January to June 2026; today is 2026-05-14):

| category      | monthly budget (history)                     | spent                          |
|---------------|----------------------------------------------|--------------------------------|
| Entertainment | none                                         | Apr 25.00 (no budget)          |
| Food          | 300 from Jan, 150 from Mar, 500 in May only, | Jan 120.00, Feb 320.00 (over), |
|               | Mar: 20.00 moved in from Transport           | Mar 160.25, May 10.00          |
| Rent          | 900 from Apr (added then; none before)       | Apr 950.00 (over)              |
| Transport     | 80 from Feb; Mar: 20.00 moved out to Food    | Jan 40.00 (no budget yet)      |
| Utilities     | none                                         | nothing                        |

June is empty. Spending outside the range and another user's spending never show.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any

import pytest

from tests.cli_helpers import counted_statements, ok
from tests.conftest import Backend

RANGE = ["--from", "2026-01", "--to", "2026-06"]


@pytest.fixture(autouse=True)
def no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output to the test runner is not a terminal: no width limit unless a test sets
    COLUMNS (pytest-xdist's workers export COLUMNS=80; a shell may too)."""
    monkeypatch.delenv("COLUMNS", raising=False)


MONTHS = ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
CATEGORIES = ["Entertainment", "Food", "Rent", "Transport", "Utilities"]


def seed(backend: Backend) -> None:
    for args in (
        ["add-expense", "7.77", "Food", "--date", "2025-12-31"],  # first run; outside the range
        ["category", "set-budget", "Food", "300", "--from", "2026-01"],
        ["category", "set-budget", "Food", "150", "--from", "2026-03"],
        ["category", "set-budget", "Food", "500", "--month", "2026-05"],
        ["category", "set-budget", "Transport", "80", "--from", "2026-02"],
        ["category", "add", "Rent", "--budget", "900", "--from", "2026-04"],
        ["transfer", "20", "--from", "Transport", "--to", "Food", "--month", "2026-03"],
        ["add-expense", "120", "Food", "--date", "2026-01-05"],
        ["add-expense", "320", "Food", "--date", "2026-02-05"],
        ["add-expense", "160.25", "Food", "--date", "2026-03-31"],
        ["add-expense", "10", "Food", "--date", "2026-05-01"],
        ["add-expense", "40", "Transport", "--date", "2026-01-08"],
        ["add-expense", "25", "Entertainment", "--date", "2026-04-01"],
        ["add-expense", "950", "Rent", "--date", "2026-04-30"],
        ["add-expense", "8.88", "Food", "--date", "2026-07-01"],  # outside the range
        ["user", "add", "bob@example.com", "--name", "Bob"],
        ["category", "add", "Food", "--budget", "1", "--user", "bob@example.com"],
        ["add-expense", "999.99", "Food", "--date", "2026-02-01", "--user", "bob@example.com"],
    ):
        ok(backend.invoke(args))


def matrix(backend: Backend, *args: str, env: dict[str, str] | None = None) -> str:
    return ok(backend.invoke(["report", "--matrix", *args], env=env)).stdout


def as_json(backend: Backend, *args: str) -> dict[str, Any]:
    data = json.loads(matrix(backend, *args, "--format", "json"))
    assert isinstance(data, dict)
    return data


def report_json(backend: Backend, *args: str) -> dict[str, Any]:
    data = json.loads(ok(backend.invoke(["report", *args, "--format", "json"])).stdout)
    assert isinstance(data, dict)
    return data


FIGURES = ("budget", "carried", "spent", "available", "percent_used", "over_budget", "unbudgeted")


def figures(item: dict[str, Any]) -> dict[str, Any]:
    return {key: item[key] for key in FIGURES}


def test_every_cell_is_that_months_report(backend: Backend) -> None:
    seed(backend)
    data = as_json(backend, *RANGE)
    assert data["months"] == MONTHS
    assert [row["category"] for row in data["categories"]] == CATEGORIES
    for index, month in enumerate(MONTHS):
        one_month = report_json(backend, "--month", month)
        expected = {line["category"]: figures(line) for line in one_month["categories"]}
        cells = {row["category"]: row["months"][index] for row in data["categories"]}
        assert {name: cell["month"] for name, cell in cells.items()} == dict.fromkeys(
            CATEGORIES, month
        )
        assert {name: figures(cell) for name, cell in cells.items()} == expected, month
        assert data["totals"]["months"][index] == {"month": month, **one_month["totals"]}
    # The Total column is the report for the whole range, line by line and in total.
    whole = report_json(backend, *RANGE)
    assert {row["category"]: row["total"] for row in data["categories"]} == {
        line["category"]: figures(line) for line in whole["categories"]
    }
    assert data["totals"]["total"] == whole["totals"]


def test_cells_carry_what_each_months_report_carries(backend: Backend) -> None:
    """A category that rolls over: each cell carries what that month's report carries,
    and the Total column what was carried into the range's first month."""
    seed(backend)
    ok(backend.invoke(["category", "set-rollover", "Food", "on", "--from", "2025-12"]))
    ok(backend.invoke(["category", "set-rollover", "Food", "off", "--from", "2026-04"]))
    data = as_json(backend, *RANGE)
    food = next(row for row in data["categories"] if row["category"] == "Food")
    carried = [cell["carried"] for cell in food["months"]]
    # December's 7.77 spent without a budget, then January's and February's leftovers;
    # April keeps what March left, and nothing leaves April.
    assert carried == ["-7.77", "172.23", "152.23", "161.98", "0.00", "0.00"]
    for index, month in enumerate(MONTHS):
        report = report_json(backend, "--month", month)
        line = next(line for line in report["categories"] if line["category"] == "Food")
        assert figures(food["months"][index]) == figures(line), month
        assert data["totals"]["months"][index] == {"month": month, **report["totals"]}
    whole = report_json(backend, *RANGE)
    line = next(line for line in whole["categories"] if line["category"] == "Food")
    assert figures(food["total"]) == figures(line)
    assert data["totals"]["total"] == whole["totals"]


def test_budget_history_changes_across_the_range(backend: Backend) -> None:
    seed(backend)
    data = as_json(backend, *RANGE)
    budgets = {
        row["category"]: [cell["budget"] for cell in row["months"]] for row in data["categories"]
    }
    assert budgets == {
        "Entertainment": [None] * 6,
        "Food": ["300.00", "300.00", "170.00", "150.00", "500.00", "150.00"],
        "Rent": [None, None, None, "900.00", "900.00", "900.00"],
        "Transport": [None, "80.00", "60.00", "80.00", "80.00", "80.00"],
        "Utilities": [None] * 6,
    }
    marked = {
        (row["category"], cell["month"]): (cell["over_budget"], cell["unbudgeted"])
        for row in data["categories"]
        for cell in row["months"]
        if cell["over_budget"] or cell["unbudgeted"]
    }
    assert marked == {
        ("Entertainment", "2026-04"): (False, True),
        ("Food", "2026-02"): (True, False),
        ("Rent", "2026-04"): (True, False),
        ("Transport", "2026-01"): (False, True),
    }
    assert data["totals"]["total"]["budget"] == "4650.00"
    assert data["totals"]["total"]["spent"] == "1625.25"


TABLE = """\
Budget report for me@localhost <me@localhost>: January 2026 to June 2026

Category       2026-01   2026-02   2026-03   2026-04   2026-05   2026-06     Total
-------------  --------  --------  --------  --------  --------  --------  --------
Entertainment     0.00      0.00      0.00     25.00!     0.00      0.00     25.00!
Food            120.00    320.00!   160.25      0.00     10.00      0.00    610.25
Rent              0.00      0.00      0.00    950.00!     0.00      0.00    950.00
Transport        40.00!     0.00      0.00      0.00      0.00      0.00     40.00
Utilities         0.00      0.00      0.00      0.00      0.00      0.00      0.00
-------------  --------  --------  --------  --------  --------  --------  --------
Total           160.00    320.00    160.25    975.00     10.00      0.00   1625.25
Spent per month; ! over budget or spent without a budget (Total: the period)
"""


def test_table(backend: Backend) -> None:
    seed(backend)
    table = matrix(backend, *RANGE)
    name = table.split(" <", 1)[0].removeprefix("Budget report for ")
    assert table == TABLE.replace("for me@localhost <", f"for {name} <")


def test_month_words_and_narrowing_to_one_category(backend: Backend) -> None:
    seed(backend)
    # today is 2026-05-14: last = April, next = June
    assert matrix(backend, "--from", "last", "--to", "next") == matrix(
        backend, "--from", "2026-04", "--to", "2026-06"
    )
    lines = matrix(backend, *RANGE, "--category", "UTILITIES").splitlines()
    assert lines[0].endswith(" (Utilities): January 2026 to June 2026")
    # nothing is marked: no room is kept for marks
    assert lines[2:] == [
        "Category   2026-01  2026-02  2026-03  2026-04  2026-05  2026-06  Total",
        "---------  -------  -------  -------  -------  -------  -------  -----",
        "Utilities     0.00     0.00     0.00     0.00     0.00     0.00   0.00",
        "---------  -------  -------  -------  -------  -------  -------  -----",
        "Total         0.00     0.00     0.00     0.00     0.00     0.00   0.00",
        "Spent per month; ! over budget or spent without a budget (Total: the period)",
    ]
    one = as_json(backend, "--month", "2026-02", "--category", "food")
    assert one["category"] == "Food" and one["months"] == ["2026-02"]
    assert [row["category"] for row in one["categories"]] == ["Food"]


def test_default_range_is_the_last_twelve_months(backend: Backend) -> None:
    seed(backend)
    data = as_json(backend)
    assert data["months"][0] == "2025-06" and data["months"][-1] == "2026-05"
    assert len(data["months"]) == 12


def test_csv(backend: Backend) -> None:
    seed(backend)
    text = matrix(backend, "--from", "2026-03", "--to", "2026-04", "--format", "csv")
    assert text == (
        "row,category,2026-03_spent,2026-03_budget,2026-04_spent,2026-04_budget,"
        "total_spent,total_budget\n"
        "category,Entertainment,0.00,,25.00,,25.00,\n"
        "category,Food,160.25,170.00,0.00,150.00,160.25,320.00\n"
        "category,Rent,0.00,,950.00,900.00,950.00,900.00\n"
        "category,Transport,0.00,60.00,0.00,80.00,0.00,140.00\n"
        "category,Utilities,0.00,,0.00,,0.00,\n"
        "total,,160.25,230.00,975.00,1130.00,1135.25,1360.00\n"
    )
    rows = list(csv.DictReader(io.StringIO(matrix(backend, *RANGE, "--format", "csv"))))
    assert [row["category"] for row in rows] == [*CATEGORIES, ""]
    assert len(rows[0]) == 2 + 2 * (len(MONTHS) + 1)


def test_json_shape(backend: Backend) -> None:
    seed(backend)
    data = as_json(backend, "--from", "2026-06", "--to", "2026-06")
    assert set(data) == {"user", "period", "category", "months", "categories", "totals"}
    assert data["period"] == {
        "from": "2026-06",
        "to": "2026-06",
        "months": 1,
        "start_date": "2026-06-01",
        "end_date": "2026-06-30",
    }
    assert data["category"] is None
    food = data["categories"][1]
    assert food == {
        "category": "Food",
        "months": [
            {
                "month": "2026-06",
                "budget": "150.00",
                "carried": "0.00",
                "spent": "0.00",
                "available": "150.00",
                "percent_used": "0.0",
                "over_budget": False,
                "unbudgeted": False,
            }
        ],
        "total": {
            "budget": "150.00",
            "carried": "0.00",
            "spent": "0.00",
            "available": "150.00",
            "percent_used": "0.0",
            "over_budget": False,
            "unbudgeted": False,
        },
    }
    assert data["totals"]["months"][0]["budget"] == "1130.00"  # June is empty


def test_table_fits_the_terminal_or_says_how_to_narrow_it(backend: Backend) -> None:
    seed(backend)
    width = max(len(line) for line in TABLE.splitlines()[2:-1])
    assert width == 83
    assert matrix(backend, *RANGE, env={"COLUMNS": str(width)}).endswith(TABLE.split("\n", 2)[2])
    before = backend.snapshot()
    for columns, how in (
        (width - 1, "the last 5 months fit (--from 2026-02)"),
        (40, "only the last month fits (--from 2026-06)"),
        (30, "not even one month fits"),
    ):
        result = backend.invoke(["report", "--matrix", *RANGE], env={"COLUMNS": str(columns)})
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            f"Error: the month-by-month table is {width} columns wide and the terminal "
            f"{columns}: {how}, or use --format csv\n"
        )
    assert backend.snapshot() == before
    # What the message suggests does fit.
    narrowed = matrix(backend, "--from", "2026-02", "--to", "2026-06", env={"COLUMNS": "82"})
    assert max(len(line) for line in narrowed.splitlines()) <= 82
    # A long history: the suggestion is computed, not searched for, and it fits.
    long = backend.invoke(["report", "--matrix", "--from", "1990-01"], env={"COLUMNS": "120"})
    assert long.exit_code == 1
    suggested = re.search(r"the last (\d+) months fit \(--from (\d{4}-\d\d)\)", long.stderr)
    assert suggested is not None, long.stderr
    # Category 13 + Total 8 + 2, and 8 + 2 per month: 23 + 10 * 9 = 113 <= 120 < 123.
    assert int(suggested.group(1)) == 9
    fitted = matrix(backend, "--from", suggested.group(2), env={"COLUMNS": "120"})
    assert len(fitted.splitlines()[3]) <= 120
    # Machine formats are never cut to the terminal.
    assert matrix(backend, *RANGE, "--format", "csv", env={"COLUMNS": "30"}).count("\n") == 7


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--by", "month"], 2, "Error: --matrix cannot be combined with --by month\n"),
        (["--top", "3"], 2, "Error: --matrix cannot be combined with --top\n"),
        (
            ["--by", "month", "--top", "3"],
            2,
            "Error: --matrix cannot be combined with --by month or --top\n",
        ),
        (["--category", "Nope"], 1, "Error: no category 'Nope' for me@localhost\n"),
        (
            ["--from", "2026-03", "--to", "2026-01"],
            2,
            "Error: --from 2026-03 is after --to 2026-01: the period would be empty\n",
        ),
    ],
)
def test_refusals(backend: Backend, args: list[str], code: int, message: str) -> None:
    seed(backend)
    before = backend.snapshot()
    result = backend.invoke(["report", "--matrix", *args])
    assert result.exit_code == code
    assert result.stderr.endswith(message)
    assert result.stdout == ""
    assert backend.snapshot() == before


def test_empty_database_shows_nothing_and_creates_nothing(backend: Backend) -> None:
    result = backend.invoke(["report", "--matrix", *RANGE])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.endswith(": January 2026 to June 2026\n\n")
    assert result.stderr == (
        "no categories yet: add one with `budget category add NAME --budget AMOUNT`\n"
    )
    data = as_json(backend, *RANGE)
    assert data["categories"] == []
    assert [cell["spent"] for cell in data["totals"]["months"]] == ["0.00"] * 6
    assert data["totals"]["total"]["budget"] is None
    assert backend.scalar("SELECT count(*) FROM users") == 0


def test_one_statement_whatever_the_months_and_categories(backend: Backend) -> None:
    seed(backend)
    matrix(backend, "--user", "me@localhost")  # warm the pool: connection set-up not counted
    with counted_statements(backend, transactions=False) as few:
        matrix(backend, "--user", "me@localhost", "--month", "2026-01")
    for number in range(20):
        ok(backend.invoke(["category", "add", f"More {number}", "--budget", "1"]))
    with counted_statements(backend, transactions=False) as many:
        matrix(backend, "--user", "me@localhost", "--from", "2024-01", "--to", "2026-12")
    # The user lookup and the matrix; SQLite also sends BEGIN itself.
    assert len(few) == len(many) == 2 + (backend.name == "sqlite"), many
