"""`budget report` on hand-made data whose answers are worked out by hand, on both backends.

The data is the hand-made ledger of `tests/report_ledger.py` (user alice, February 2028
unless said otherwise), with every answer worked out by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event

from budget_tracker.cli import main
from budget_tracker.cli.state import AppState
from budget_tracker.models import Category, Expense, User
from tests.cli_helpers import counted_statements
from tests.conftest import TODAY, Backend
from tests.report_ledger import ALICE, BUDGETS, seed


def report(backend: Backend, *args: str) -> str:
    result = backend.invoke(["report", "--user", ALICE, *args])
    assert result.exit_code == 0, result.stderr
    return result.stdout


FEBRUARY_TABLE = """\
Budget report for Alice <alice@example.com>: February 2028
Income 0.00  Budgeted 1550.00  Spent 1340.25  Saved -1340.25  Unbudgeted -1550.00

Category   Budget    Spent  Available       Used  Spent vs budget
--------  -------  -------  ---------  ---------  ----------------------  -
Food       340.00   350.25     -10.25     103.0%  [####################]  !
Fun         50.00    60.00     -10.00     120.0%  [####################]  !
Gifts           -    30.00     -30.00  no budget  [####################]  !
Rent       960.00   900.00      60.00      93.8%  [###################.]
Savings    200.00     0.00     200.00       0.0%  [....................]
--------  -------  -------  ---------  ---------  ----------------------  -
Total     1550.00  1340.25     209.75      86.5%  [#################...]
"""


def test_one_month_table(backend: Backend) -> None:
    seed(backend)
    assert report(backend, "--month", "2028-02") == FEBRUARY_TABLE


def test_default_is_the_current_month(backend: Backend) -> None:
    seed(backend)
    this_month = TODAY.replace(day=1)
    assert report(backend) == report(backend, "--month", f"{this_month:%Y-%m}")
    assert report(backend).startswith(
        f"Budget report for Alice <alice@example.com>: {this_month:%B %Y}\n"
    )


def test_one_month_json(backend: Backend) -> None:
    seed(backend)
    data = json.loads(report(backend, "--month", "2028-02", "--format", "json"))
    assert data["user"] == {"id": 1, "email": ALICE, "name": "Alice", "default": False}
    assert data["period"] == {
        "from": "2028-02",
        "to": "2028-02",
        "months": 1,
        "start_date": "2028-02-01",
        "end_date": "2028-02-29",
    }
    assert data["categories"][0] == {
        "category": "Food",
        "base_budget": "300.00",
        "transfers_in": "40.00",
        "transfers_out": "0.00",
        "budget": "340.00",
        "carried": "0.00",
        "spent": "350.25",
        "available": "-10.25",
        "percent_used": "103.0",
        "over_budget": True,
        "unbudgeted": False,
    }
    by_name = {row["category"]: row for row in data["categories"]}
    assert [row["category"] for row in data["categories"]] == list(BUDGETS)
    assert by_name["Gifts"]["percent_used"] is None
    assert by_name["Gifts"]["budget"] is None
    assert by_name["Gifts"]["over_budget"] is False
    assert by_name["Gifts"]["unbudgeted"] is True
    assert (by_name["Rent"]["transfers_out"], by_name["Rent"]["budget"]) == ("40.00", "960.00")
    assert by_name["Savings"]["spent"] == "0.00"
    assert data["totals"] == {
        "budget": "1550.00",
        "carried": "0.00",
        "spent": "1340.25",
        "available": "209.75",
        "percent_used": "86.5",
        "over_budget": False,
        "unbudgeted": False,
    }
    assert "top_expenses" not in data


def test_one_month_csv(backend: Backend) -> None:
    seed(backend)
    rows = list(
        csv.DictReader(io.StringIO(report(backend, "--month", "2028-02", "--format", "csv")))
    )
    assert [(row["row"], row["category"], row["budget"], row["spent"]) for row in rows] == [
        ("category", "Food", "340.00", "350.25"),
        ("category", "Fun", "50.00", "60.00"),
        ("category", "Gifts", "", "30.00"),
        ("category", "Rent", "960.00", "900.00"),
        ("category", "Savings", "200.00", "0.00"),
        ("total", "", "1550.00", "1340.25"),
    ]
    assert rows[0] == {
        "row": "category",
        "category": "Food",
        "base_budget": "300.00",
        "transfers_in": "40.00",
        "transfers_out": "0.00",
        "budget": "340.00",
        "spent": "350.25",
        "available": "-10.25",
        "percent_used": "103.0",
        "over_budget": "true",
        "unbudgeted": "false",
    }
    assert (rows[2]["percent_used"], rows[5]["percent_used"]) == ("", "86.5")


def test_january_ends_on_the_31st(backend: Backend) -> None:
    seed(backend)
    data = json.loads(report(backend, "--month", "2028-01", "--format", "json"))
    numbers = {row["category"]: (row["budget"], row["spent"]) for row in data["categories"]}
    assert numbers == {
        "Food": ("274.50", "100.10"),
        "Fun": ("75.50", "10.00"),
        "Gifts": (None, "0.00"),
        "Rent": ("1000.00", "0.00"),
        "Savings": ("200.00", "0.00"),
    }
    assert data["period"]["end_date"] == "2028-01-31"


def test_empty_month(backend: Backend) -> None:
    seed(backend)
    data = json.loads(report(backend, "--month", "2028-04", "--format", "json"))
    assert {row["spent"] for row in data["categories"]} == {"0.00"}
    assert data["totals"]["budget"] == "1550.00"
    assert data["totals"]["percent_used"] == "0.0"


def test_range_sums_the_months_budgets(backend: Backend) -> None:
    seed(backend)
    data = json.loads(report(backend, "--from", "2028-01", "--to", "2028-03", "--format", "json"))
    assert data["period"]["months"] == 3
    numbers = {
        row["category"]: (row["base_budget"], row["budget"], row["spent"])
        for row in data["categories"]
    }
    assert numbers == {
        "Food": ("900.00", "914.50", "455.35"),
        "Fun": ("150.00", "175.50", "70.00"),
        "Gifts": ("0.00", None, "30.00"),
        "Rent": ("3000.00", "2960.00", "900.00"),
        "Savings": ("600.00", "600.00", "0.00"),
    }
    assert (data["totals"]["budget"], data["totals"]["spent"]) == ("4650.00", "1455.35")
    assert report(backend, "--from", "2028-01", "--to", "2028-03").startswith(
        "Budget report for Alice <alice@example.com>: January 2028 to March 2028\n"
    )


def test_category_and_top(backend: Backend) -> None:
    seed(backend)
    assert report(backend, "--month", "2028-02", "--category", "food", "--top", "5") == (
        "Budget report for Alice <alice@example.com>: February 2028\n"
        "Income 0.00  Budgeted 340.00  Spent 350.25  Saved -350.25  Unbudgeted -340.00\n"
        "\n"
        "Category  Budget   Spent  Available    Used  Spent vs budget\n"
        "--------  ------  ------  ---------  ------  ----------------------  -\n"
        "Food      340.00  350.25     -10.25  103.0%  [####################]  !\n"
        "--------  ------  ------  ---------  ------  ----------------------  -\n"
        "Total     340.00  350.25     -10.25  103.0%  [####################]  !\n"
        "\n"
        "Largest 2 expenses\n"
        "Date        Category  Amount  Description\n"
        "----------  --------  ------  ---------------------\n"
        "2028-02-01  Food      200.00  first day of february\n"
        "2028-02-29  Food      150.25  leap day\n"
    )
    data = json.loads(report(backend, "--month", "2028-02", "--top", "3", "--format", "json"))
    assert [{k: v for k, v in row.items() if k != "id"} for row in data["top_expenses"]] == [
        {
            "date": "2028-02-15",
            "category": "Rent",
            "amount": "900.00",
            "description": "february rent",
            "entered_by": "alice@example.com",
        },
        {
            "date": "2028-02-01",
            "category": "Food",
            "amount": "200.00",
            "description": "first day of february",
            "entered_by": "alice@example.com",
        },
        {
            "date": "2028-02-29",
            "category": "Food",
            "amount": "150.25",
            "description": "leap day",
            "entered_by": "alice@example.com",
        },
    ]
    assert all(isinstance(row["id"], int) for row in data["top_expenses"])


TREND_TABLE = """\
Budget report for Alice <alice@example.com>: December 2027 to April 2028

Month     Budget    Spent  Available  Spent vs budget
-------  -------  -------  ---------  ----------------------
2027-12  1550.00     7.77    1542.23  [#...................]
2028-01  1550.00   110.10    1439.90  [#...................]
2028-02  1550.00  1340.25     209.75  [#################...]
2028-03  1550.00     5.00    1545.00  [#...................]
2028-04  1550.00     0.00    1550.00  [....................]
-------  -------  -------  ---------  ----------------------
Average  1550.00   292.62    1257.38  [####................]
"""


def test_trend_by_month(backend: Backend) -> None:
    seed(backend)
    assert report(backend, "--by", "month", "--from", "2027-12", "--to", "2028-04") == TREND_TABLE


def test_trend_for_one_category_in_every_format(backend: Backend) -> None:
    seed(backend)
    args = ["--by", "month", "--category", "FOOD", "--from", "2027-12", "--to", "2028-04"]
    data = json.loads(report(backend, *args, "--format", "json"))
    assert data["category"] == "Food"
    assert data["months"] == [
        {
            "month": "2027-12",
            "budget": "300.00",
            "carried": "0.00",
            "spent": "7.77",
            "available": "292.23",
            "income": "0.00",
            "savings_rate": None,
        },
        {
            "month": "2028-01",
            "budget": "274.50",
            "carried": "0.00",
            "spent": "100.10",
            "available": "174.40",
            "income": "0.00",
            "savings_rate": None,
        },
        {
            "month": "2028-02",
            "budget": "340.00",
            "carried": "0.00",
            "spent": "350.25",
            "available": "-10.25",
            "income": "0.00",
            "savings_rate": None,
        },
        {
            "month": "2028-03",
            "budget": "300.00",
            "carried": "0.00",
            "spent": "5.00",
            "available": "295.00",
            "income": "0.00",
            "savings_rate": None,
        },
        {
            "month": "2028-04",
            "budget": "300.00",
            "carried": "0.00",
            "spent": "0.00",
            "available": "300.00",
            "income": "0.00",
            "savings_rate": None,
        },
    ]
    assert data["totals"] == {
        "budget": "1514.50",
        "carried": "0.00",
        "spent": "463.12",
        "available": "1051.38",
        "income": "0.00",
    }
    assert data["average"] == {
        "budget": "302.90",
        "carried": "0.00",
        "spent": "92.62",
        "available": "210.28",
        "income": "0.00",
    }
    assert report(backend, *args, "--format", "csv") == (
        "month,budget,spent,available,income,savings_rate\n"
        "2027-12,300.00,7.77,292.23,0.00,\n"
        "2028-01,274.50,100.10,174.40,0.00,\n"
        "2028-02,340.00,350.25,-10.25,0.00,\n"
        "2028-03,300.00,5.00,295.00,0.00,\n"
        "2028-04,300.00,0.00,300.00,0.00,\n"
        "average,302.90,92.62,210.28,0.00,\n"
    )
    table = report(backend, *args)
    assert table.splitlines()[0] == (
        "Budget report for Alice <alice@example.com> (Food): December 2027 to April 2028"
    )
    assert "2028-02  340.00  350.25     -10.25  [####################]  !" in table


def test_trend_defaults_to_the_last_twelve_months(backend: Backend) -> None:
    seed(backend)
    data = json.loads(report(backend, "--by", "month", "--format", "json"))
    this_month = TODAY.replace(day=1)
    assert len(data["months"]) == 12
    assert data["months"][-1]["month"] == f"{this_month:%Y-%m}"
    data = json.loads(report(backend, "--by", "month", "--to", "2028-02", "--format", "json"))
    assert data["months"][0]["month"] == "2027-03"


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["--month", "2028-02", "--from", "2028-01"],
            2,
            "Error: --month cannot be combined with --from/--to",
        ),
        (
            ["--from", "2028-03", "--to", "2028-01"],
            2,
            "Error: --from 2028-03 is after --to 2028-01: the period would be empty",
        ),
        (["--category", "Nope"], 1, "Error: no category 'Nope' for alice@example.com"),
        (
            ["--by", "month", "--category", "Nope"],
            1,
            "Error: no category 'Nope' for alice@example.com",
        ),
        (
            ["--top", "3", "--format", "csv"],
            2,
            "Error: --top works with the category report in table or json format",
        ),
        (["--month", "2028-13"], 2, "'2028-13' is not a month (use YYYY-MM)"),
    ],
)
def test_refusals(backend: Backend, args: list[str], code: int, message: str) -> None:
    seed(backend)
    before = backend.snapshot()
    result = backend.invoke(["report", "--user", ALICE, *args])
    assert result.exit_code == code
    assert message in result.stderr
    assert result.stdout == ""
    assert backend.snapshot() == before


@pytest.mark.parametrize("args", [[], ["--top", "3"], ["--by", "month"]])
def test_statement_count_does_not_grow_with_categories(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, args: list[str]
) -> None:
    seed(backend)
    report(backend, "--month", "2028-02")  # warm the pool: connection set-up is not counted
    with counted_statements(backend, transactions=False) as few:
        report(backend, "--from", "2028-01", "--to", "2028-02", *args)
    with backend.database.transaction() as session:
        user_id = session.query(User.id).filter(User.email == ALICE).scalar()
        for number in range(40):
            category = Category(user_id=user_id, name=f"More {number}", monthly_budget=Decimal(1))
            session.add(category)
            session.flush()
            session.add(
                Expense(
                    user_id=user_id,
                    category_id=category.id,
                    amount=Decimal("1.00"),
                    spent_on=dt.date(2028, 2, 2),
                )
            )
    with counted_statements(backend, transactions=False) as many:
        report(backend, "--from", "2028-01", "--to", "2028-02", *args)
    assert len(many) == len(few)
    # The user lookup, the report, and --top's query; SQLite also sends BEGIN itself
    # (psycopg2 sends BEGIN with the first statement and COMMIT is not a cursor call).
    expected = 2 + (args == ["--top", "3"]) + (backend.name == "sqlite")
    assert len(few) == expected, few


def test_report_with_many_categories_is_right(backend: Backend) -> None:
    seed(backend, extra_categories=30)
    data = json.loads(report(backend, "--month", "2028-02", "--format", "json"))
    assert len(data["categories"]) == 35
    assert data["totals"]["budget"] == "1580.00"
    assert data["totals"]["spent"] == "1340.55"


def test_first_run_on_an_empty_database(backend: Backend) -> None:
    empty = backend.invoke(["report", "--month", "2028-02"])
    assert empty.exit_code == 0, empty.stderr
    assert empty.stdout.splitlines()[0].endswith(" <me@localhost>: February 2028")
    assert empty.stdout.splitlines()[1:] == [
        "Income 0.00  Budgeted 0.00  Spent 0.00  Saved 0.00  Unbudgeted 0.00",
        "",
    ]
    assert empty.stderr == (
        "no categories yet: add one with `budget category add NAME --budget AMOUNT`\n"
    )
    assert backend.scalar("SELECT count(*) FROM users") == 0  # reading creates nothing

    added = backend.invoke(["add-expense", "0.01", "Food", "--date", "2028-01-31"])
    assert added.exit_code == 0, added.stderr
    assert "Welcome! Created local user me@localhost" in added.stderr
    result = backend.invoke(["report", "--month", "2028-02"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[5:] == [
        "Entertainment       -   0.00       0.00     -  [....................]",
        "Food                -   0.00       0.00     -  [....................]",
        "Transport           -   0.00       0.00     -  [....................]",
        "Utilities           -   0.00       0.00     -  [....................]",
        "-------------  ------  -----  ---------  ----  ----------------------",
        "Total               -   0.00       0.00     -  [....................]",
    ]


def test_colour_only_on_a_terminal(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(backend)
    args = ["report", "--user", ALICE, "--month", "2028-02"]

    def run() -> list[str]:
        # color=True: the runner keeps ANSI codes as a terminal would receive them.
        result = backend.runner.invoke(
            main, args, obj=AppState(database=backend.database, today=lambda: TODAY), color=True
        )
        assert result.exit_code == 0, result.stderr
        return result.stdout.splitlines()

    assert not any("\x1b[" in line for line in run())  # not a terminal: no colour
    monkeypatch.setattr("budget_tracker.cli.output.color_enabled", lambda stream=None: True)
    coloured = run()
    food = next(line for line in coloured if "Food " in line)
    assert food.startswith("\x1b[31m\x1b[1mFood ") and food.endswith("!\x1b[0m")
    assert "\x1b[" not in next(line for line in coloured if line.startswith("Rent "))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_category_report_reads_the_covering_index_on_an_analyzed_sqlite_file(
    backend: Backend,
) -> None:
    """Once a SQLite file has planner statistics (`ANALYZE`, or `PRAGMA optimize`), its
    planner preferred skip-scanning `(category_id, spent_on)` over every user's rows and
    reading each table row: twenty times slower on a long history. The report names the
    covering `(user_id, spent_on, category_id, amount)` index, so the plan cannot drift."""
    seed(backend)
    engine = backend.database.engine
    # The statistics of ten years of three users' spending (1,000,000 rows, 60 categories).
    with engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
        connection.exec_driver_sql("DELETE FROM sqlite_stat1")
        connection.exec_driver_sql(
            "INSERT INTO sqlite_stat1 VALUES "
            "('expenses', 'ix_expenses_user_id_spent_on_category_id_amount',"
            " '1000000 333334 92 5 1'),"
            "('expenses', 'ix_expenses_category_id_spent_on', '1000000 16667 5'),"
            "('expenses', 'sqlite_autoindex_expenses_1', '1000000 333334 333334'),"
            "('categories', 'sqlite_autoindex_categories_1', '60 20 1'),"
            "('categories', 'sqlite_autoindex_categories_2', '60 20 1')"
        )
    sent: list[tuple[str, Any]] = []

    def record(*args: Any) -> None:
        sent.append((args[2], args[3]))

    event.listen(engine, "before_cursor_execute", record)
    try:
        report(backend, "--from", "2027-01", "--to", "2028-12")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    [(sql, parameters)] = [(sql, p) for sql, p in sent if "FROM expenses" in sql]
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE sqlite_schema")  # (re)load the statistics
        plan = [
            row[3] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", parameters)
        ]
    reads = [step for step in plan if " expenses " in f"{step} "]
    assert reads == [
        "SEARCH expenses USING COVERING INDEX ix_expenses_user_id_spent_on_category_id_amount "
        "(user_id=? AND spent_on>? AND spent_on<?)"
    ], plan
