"""`budget verify`: agrees with the report on correct data, and catches planted mismatches."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import event, text, update
from sqlalchemy.orm import Session

from budget_tracker.models import Expense
from budget_tracker.services.budgets import Period
from budget_tracker.services.reports import category_report, month_matrix
from budget_tracker.services.verify import check_report
from tests.conftest import Backend
from tests.report_ledger import ALICE, EXPENSES, seed

FEBRUARY = Period(dt.date(2028, 2, 1), dt.date(2028, 2, 1))


def verify(backend: Backend, *args: str) -> tuple[int, str, str]:
    result = backend.invoke(["verify", "--user", ALICE, *args])
    return result.exit_code, result.stdout, result.stderr


def test_verified_on_correct_data(backend: Backend) -> None:
    seed(backend)
    assert verify(backend, "--month", "2028-02") == (
        0,
        "verified: alice@example.com, February 2028: 5 categories, budget 1550.00, "
        "spent 1340.25 (5 expenses from database)\n",
        "",
    )
    assert verify(backend, "--from", "2027-12", "--to", "2028-04") == (
        0,
        "verified: alice@example.com, December 2027 to April 2028: 5 categories, "
        "budget 7750.00, spent 1463.12 (9 expenses from database)\n",
        "",
    )


def test_verified_on_an_empty_month_and_with_many_categories(backend: Backend) -> None:
    seed(backend, extra_categories=30)
    code, out, _ = verify(backend, "--month", "2028-04")
    assert (code, out) == (
        0,
        "verified: alice@example.com, April 2028: 35 categories, budget 1580.00, "
        "spent 0.00 (0 expenses from database)\n",
    )
    code, out, _ = verify(backend, "--month", "2028-02")
    assert code == 0
    assert "spent 1340.55 (35 expenses from database)" in out


def test_a_row_changed_behind_the_reports_back_is_a_mismatch(backend: Backend) -> None:
    seed(backend)
    leap_day = int(backend.scalar("SELECT id FROM expenses WHERE description = 'leap day'"))

    def tamper(session: Session) -> None:
        # After the SQL report, before the independent pass: one cent more on the leap day.
        session.execute(
            update(Expense).where(Expense.id == leap_day).values(amount=Decimal("150.26"))
        )

    with backend.database.transaction() as session:
        report = category_report(session, user_email=ALICE, period=FEBRUARY)
        tamper(session)  # after the SQL report, before the independent pass
        result = check_report(session, report)
        session.rollback()
    assert not result.verified
    assert [
        (item.category, item.measure, item.sql, item.independent, item.difference)
        for item in result.mismatches
    ] == [("Food", "spent", Decimal("350.25"), Decimal("350.26"), Decimal("-0.01"))]
    assert result.report.totals.spent == Decimal("1340.25")
    assert result.spent == Decimal("1340.26")


def test_a_budget_changed_behind_the_reports_back_is_a_mismatch(backend: Backend) -> None:
    seed(backend)

    def tamper(session: Session) -> None:
        session.execute(text("UPDATE budget_transfers SET amount = 4001 WHERE amount = 4000"))

    with backend.database.transaction() as session:
        report = category_report(session, user_email=ALICE, period=FEBRUARY)
        tamper(session)  # after the SQL report, before the independent pass
        result = check_report(session, report)
        session.rollback()
    assert [
        (item.category, item.measure, item.sql, item.independent) for item in result.mismatches
    ] == [
        ("Food", "budget", Decimal("340.00"), Decimal("340.01")),
        ("Rent", "budget", Decimal("960.00"), Decimal("959.99")),
    ]


def write_export(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    lines = ["date,amount,category,description"]
    lines += [
        f"{day},{amount},{category},{description}" for day, category, amount, description in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_an_export_file_that_matches_verifies(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    export = write_export(tmp_path / "expenses.csv", EXPENSES)
    code, out, err = verify(backend, "--month", "2028-02", "--from-file", str(export))
    assert (code, err) == (0, "")
    assert out == (
        "verified: alice@example.com, February 2028: 5 categories, budget 1550.00, "
        f"spent 1340.25 (5 expenses from {export})\n"
    )


def test_a_file_that_differs_from_the_database(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    rows = [row for row in EXPENSES if row[3] != "birthday"]  # Gifts' only expense is gone
    rows = [(d, c, "150.20" if desc == "leap day" else a, desc) for d, c, a, desc in rows]
    rows.append(("2028-02-29", "Travel", "12.00", "not a category here"))
    export = write_export(tmp_path / "expenses.csv", rows)
    before = backend.snapshot()
    code, out, err = verify(backend, "--month", "2028-02", "--from-file", str(export))
    assert code == 1
    assert out == (
        "MISMATCH: alice@example.com, February 2028: the report and the raw rows "
        f"({export}) disagree\n"
        "Category                  Measure     SQL  Independent  Difference\n"
        "------------------------  -------  ------  -----------  ----------\n"
        "Food                      spent    350.25       350.20        0.05\n"
        "Gifts                     spent     30.00         0.00       30.00\n"
        "Travel (not in database)  spent      0.00        12.00      -12.00\n"
    )
    assert err == "Error: verification failed: 3 mismatches\n"
    assert backend.snapshot() == before


def test_a_file_with_a_bad_row_is_refused(backend: Backend, tmp_path: Path) -> None:
    seed(backend)
    export = write_export(tmp_path / "bad.csv", [("2028-02-03", "Food", "1.234", "x")])
    code, out, err = verify(backend, "--month", "2028-02", "--from-file", str(export))
    assert (code, out) == (2, "")
    assert err == f"Error: {export}:2: '1.234' has more than two decimal places\n"
    other = tmp_path / "other.csv"
    other.write_text("when,how much\n2028-02-03,1.00\n", encoding="utf-8")
    code, out, err = verify(backend, "--month", "2028-02", "--from-file", str(other))
    assert code == 2
    assert err == (
        f"Error: {other} has no date, amount, category column: expected the expense export "
        "columns date,amount,category,description\n"
    )


def test_raw_rows_are_streamed(backend: Backend) -> None:
    seed(backend)
    streamed: list[tuple[str, bool]] = []

    def record(_conn: object, _cursor: object, statement: str, *rest: Any) -> None:
        context = rest[-2]
        table = next(
            (name for name in ("expenses", "budget_transfers", "categories") if name in statement),
            "",
        )
        streamed.append((table, bool(context.execution_options.get("stream_results"))))

    event.listen(backend.database.engine, "before_cursor_execute", record)
    try:
        code, _, _ = verify(backend, "--month", "2028-02")
    finally:
        event.remove(backend.database.engine, "before_cursor_execute", record)
    assert code == 0
    # The independent pass: the user's categories, then the period's transfers and
    # expenses as one streamed (server-side on PostgreSQL) cursor, fetched in batches,
    # never a whole table in memory; then the period's income (a plain query).
    assert streamed[-3:] == [("categories", False), ("expenses", True), ("", False)]


def test_a_range_is_checked_month_by_month(backend: Backend, tmp_path: Path) -> None:
    # The leap day's expense dated a month early in the file: the period's sums agree,
    # January and February do not.
    seed(backend)
    rows = [
        ("2028-01-29", c, a, d) if d == "leap day" else (day, c, a, d) for day, c, a, d in EXPENSES
    ]
    export = write_export(tmp_path / "expenses.csv", rows)
    code, out, err = verify(
        backend, "--from", "2028-01", "--to", "2028-02", "--from-file", str(export)
    )
    assert code == 1
    assert out == (
        "MISMATCH: alice@example.com, January 2028 to February 2028: the report and the raw "
        f"rows ({export}) disagree\n"
        "Category  Month    Measure     SQL  Independent  Difference\n"
        "--------  -------  -------  ------  -----------  ----------\n"
        "Food      2028-01  spent    100.10       250.35     -150.25\n"
        "Food      2028-02  spent    350.25       200.00      150.25\n"
    )
    assert err == "Error: verification failed: 2 mismatches\n"
    assert verify(backend, "--from", "2028-01", "--to", "2028-02")[0] == 0


def test_budgets_are_checked_month_by_month(backend: Backend) -> None:
    seed(backend)
    range_ = Period(dt.date(2028, 1, 1), dt.date(2028, 2, 1))

    def tamper(session: Session) -> None:
        # January's transfer moved to February: the range's budgets still add up.
        session.execute(
            text("UPDATE budget_transfers SET month = '2028-02-01' WHERE amount = 2550")
        )

    with backend.database.transaction() as session:
        report = category_report(session, user_email=ALICE, period=range_)
        matrix = month_matrix(session, user_email=ALICE, period=range_)
        tamper(session)  # after the SQL report, before the independent pass
        result = check_report(session, report, matrix=matrix)
        session.rollback()
    assert [
        (item.category, item.month, item.measure, item.sql, item.independent)
        for item in result.mismatches
    ] == [
        ("Food", dt.date(2028, 1, 1), "budget", Decimal("274.50"), Decimal("300.00")),
        ("Fun", dt.date(2028, 1, 1), "budget", Decimal("75.50"), Decimal("50.00")),
        ("Food", dt.date(2028, 2, 1), "budget", Decimal("340.00"), Decimal("314.50")),
        ("Fun", dt.date(2028, 2, 1), "budget", Decimal("50.00"), Decimal("75.50")),
    ]
