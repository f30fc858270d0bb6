"""`add-expense`, `expenses`, `edit-expense`, `delete-expense` on both backends."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import subprocess
import sys

import pytest

from tests.cli_helpers import (
    TODAY,
    add_transfer,
    counted_statements,
    error_text,
    execute,
    first_run,
    ok,
)
from tests.conftest import Backend

WELCOME = (
    "Welcome! Created local user me@localhost with categories Food, Transport, "
    "Entertainment, Utilities (set budgets with `budget category set-budget`).\n"
)


def add_user(backend: Backend, email: str, name: str = "Someone") -> None:
    execute(
        backend, "INSERT INTO users (email, name) VALUES (:email, :name)", email=email, name=name
    )


def add_category(backend: Backend, email: str, name: str, budget_cents: int = 0) -> None:
    execute(
        backend,
        "INSERT INTO categories (user_id, name, name_key, monthly_budget) "
        "SELECT id, :name, :key, :cents FROM users WHERE email = :email",
        email=email,
        name=name,
        key=name.casefold(),
        cents=budget_cents,
    )


def set_budget(backend: Backend, name: str, cents: int) -> None:
    execute(
        backend,
        "UPDATE categories SET monthly_budget = :cents WHERE name = :name",
        cents=cents,
        name=name,
    )


# --- add-expense ------------------------------------------------------------------------


def test_first_run_on_empty_database(backend: Backend) -> None:
    result = ok(backend.invoke(["add-expense", "12.50", "Food", "Lunch"]))
    assert result.stdout == f"Added expense 1: 12.50 Food on {TODAY.isoformat()}: Lunch\n"
    assert result.stderr == WELCOME
    assert backend.rows("SELECT email FROM users") == [("me@localhost",)]
    assert backend.rows("SELECT name, color FROM categories ORDER BY id") == [
        ("Food", "#E67E22"),
        ("Transport", "#3498DB"),
        ("Entertainment", "#9B59B6"),
        ("Utilities", "#16A085"),
    ]
    assert backend.rows("SELECT amount, description, spent_on FROM expenses") == [
        (1250, "Lunch", TODAY if backend.name == "postgresql" else TODAY.isoformat())
    ]
    # Said once: the second command is quiet.
    again = ok(backend.invoke(["add-expense", "3", "food"]))
    assert again.stderr == ""
    assert again.stdout == f"Added expense 2: 3.00 Food on {TODAY.isoformat()}\n"


def test_warm_add_expense_sends_at_most_four_statements(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "1", "Food"]))  # first run; also warms the pool
    with counted_statements(backend) as seen:
        ok(backend.invoke(["add-expense", "12.50", "food", "Lunch", "--date", "2026-03-05"]))
    assert len(seen) <= 4, seen
    assert seen[0] == "BEGIN" and seen[-1] == "COMMIT"
    assert [s for s in seen if s.lstrip().upper().startswith("INSERT")] != []


def test_warm_add_expense_with_user_option_is_as_cheap(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "1", "Food"]))
    add_user(backend, "other@example.com")
    with counted_statements(backend) as seen:
        ok(backend.invoke(["add-expense", "2", "Food", "--user", "ME@localhost"]))
    assert len(seen) <= 4, seen


def test_idempotency_key_is_stored(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "1", "Food"]))
    ok(backend.invoke(["add-expense", "1", "Food"]))
    keys = [row[0] for row in backend.rows("SELECT idempotency_key FROM expenses")]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(len(key) == 32 for key in keys)


def test_date_option_and_words(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "5", "Transport", "--date", "2026-02-28"]))
    ok(backend.invoke(["add-expense", "5", "Transport", "--date", "yesterday"]))
    rows = json.loads(ok(backend.invoke(["expenses", "--format", "json"])).stdout)["expenses"]
    dates = sorted(row["date"] for row in rows)
    assert dates == ["2026-02-28", (TODAY - dt.timedelta(days=1)).isoformat()]


@pytest.mark.parametrize(
    "text",
    ["Robert'); DROP TABLE expenses;--", 'say "hi"', "café ☕ 🍕", "日本語の昼食", "100% _sure_"],
)
def test_text_is_stored_as_given(backend: Backend, text: str) -> None:
    ok(backend.invoke(["add-expense", "1", "Food", f"  {text}  "]))
    rows = json.loads(ok(backend.invoke(["expenses", "--format", "json"])).stdout)["expenses"]
    assert rows[0]["description"] == text
    found = json.loads(
        ok(backend.invoke(["expenses", "--search", text[2:8], "--format", "json"])).stdout
    )
    assert found["count"] == 1


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("-3", "'-3' is negative; amounts must be positive"),
        ("0", "'0' is zero; amounts must be positive"),
        ("1e3", "'1e3' is not an amount (use digits, e.g. 12.50)"),
        ("nan", "'nan' is not an amount (use digits, e.g. 12.50)"),
        ("inf", "'inf' is not an amount (use digits, e.g. 12.50)"),
        ("12.345", "'12.345' has more than two decimal places"),
        ("abc", "'abc' is not an amount (use digits, e.g. 12.50)"),
        ("", "an amount is required"),
        ("100000000", "'100000000' is larger than the maximum of 99999999.99"),
    ],
)
def test_bad_amount_is_refused_with_exit_2(backend: Backend, amount: str, message: str) -> None:
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(["add-expense", "--", amount, "Food"])
    assert result.exit_code == 2
    assert result.stderr == f"Error: Invalid value for 'AMOUNT': {message}\n"
    assert backend.snapshot() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--date", "2026-02-30"],
            "Invalid value for '--date': '2026-02-30' is not a real date",
        ),
        (
            ["--date", "03/05/2026"],
            "Invalid value for '--date': '03/05/2026' is not a date (use YYYY-MM-DD, today or "
            "yesterday)",
        ),
        (
            ["x" * 201],
            "Invalid value for '[DESCRIPTION]': is 201 characters long; the limit is 200",
        ),
        (
            ["--user", "nobody"],
            "Invalid value for '--user' (env var: 'BUDGET_USER'): 'nobody' is not an e-mail "
            "address",
        ),
    ],
)
def test_bad_input_is_refused_with_exit_2(backend: Backend, args: list[str], message: str) -> None:
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(["add-expense", "5", "Food", *args])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message}\n"
    assert backend.snapshot() == before


def test_unknown_category_lists_categories_and_guesses(backend: Backend) -> None:
    first_run(backend)
    before = backend.snapshot()
    result = backend.invoke(["add-expense", "5", "Fod"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no category 'Fod' (categories: Entertainment, Food, Transport, Utilities); "
        "did you mean 'Food'?\n"
    )
    assert backend.snapshot() == before
    far = backend.invoke(["add-expense", "5", "Zzzzz"])
    assert far.exit_code == 1
    assert far.stderr == (
        "Error: no category 'Zzzzz' (categories: Entertainment, Food, Transport, Utilities)\n"
    )
    assert backend.snapshot() == before


def test_unknown_category_on_first_run_writes_nothing(backend: Backend) -> None:
    before = backend.snapshot()
    result = backend.invoke(["add-expense", "5", "Rent"])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: no category 'Rent' (categories: Entertainment,")
    assert backend.snapshot() == before  # the bootstrap rolled back with the refusal


def test_unknown_user_and_ambiguous_user(backend: Backend) -> None:
    first_run(backend)
    add_user(backend, "two@example.com")
    before = backend.snapshot()
    unknown = backend.invoke(["add-expense", "5", "Food", "--user", "who@example.com"])
    assert unknown.exit_code == 1
    assert unknown.stderr == (
        "Error: no user 'who@example.com': see `budget user list`, or add one with "
        "`budget user add EMAIL --name NAME`\n"
    )
    assert backend.snapshot() == before
    # The first user stays the default when another is added...
    ok(backend.invoke(["add-expense", "5", "Food"]))
    # ...but a database whose several users have no default needs a choice.
    execute(backend, "UPDATE users SET is_default = :no", no=False)
    before = backend.snapshot()
    several = backend.invoke(["add-expense", "5", "Food"])
    assert several.exit_code == 2
    assert several.stderr == (
        "Error: there are several users: choose one with --user EMAIL or the BUDGET_USER "
        "variable, or for every command with `budget user default EMAIL` "
        "(see `budget user list`)\n"
    )
    assert backend.snapshot() == before
    # The environment variable chooses too; the other user has no Food category.
    other = backend.invoke(["add-expense", "5", "Food"], env={"BUDGET_USER": "two@example.com"})
    assert other.exit_code == 1
    assert other.stderr == (
        "Error: no category 'Food': there are no categories yet; add one with "
        "`budget category add NAME`\n"
    )
    ok(backend.invoke(["add-expense", "5", "Food"], env={"BUDGET_USER": "me@localhost"}))


def test_over_budget_warning_counts_transfers_of_that_month(backend: Backend) -> None:
    first_run(backend)
    set_budget(backend, "Food", 10000)  # 100.00 a month
    march = dt.date(2026, 3, 1)
    add_transfer(backend, source="Transport", target="Food", cents=5000, month=march)
    add_transfer(backend, source="Food", target="Utilities", cents=2000, month=march)
    add_transfer(backend, source="Transport", target="Food", cents=90000, month=dt.date(2026, 4, 1))
    # March budget: 100 + 50 - 20 = 130.00
    within = ok(backend.invoke(["add-expense", "130", "Food", "--date", "2026-03-31"]))
    assert within.stderr == ""
    over = ok(backend.invoke(["add-expense", "0.01", "food", "--date", "2026-03-01"]))
    assert over.stderr == (
        "Warning: Food is over its 2026-03 budget: spent 130.01 of 130.00 (0.01 over)\n"
    )
    # February has only the monthly budget, and March's spending does not count there.
    feb = ok(backend.invoke(["add-expense", "100.50", "Food", "--date", "2026-02-28"]))
    assert feb.stderr == (
        "Warning: Food is over its 2026-02 budget: spent 100.50 of 100.00 (0.50 over)\n"
    )


def test_edit_expense_warns_over_budget_as_add_expense_does(backend: Backend) -> None:
    first_run(backend)
    set_budget(backend, "Food", 10000)  # 100.00 a month
    ok(backend.invoke(["add-expense", "60", "Transport", "--date", "2026-03-05"]))
    ok(backend.invoke(["add-expense", "60", "Food", "--date", "2026-03-06"]))
    within = ok(backend.invoke(["edit-expense", "2", "--amount", "100"]))
    assert "Warning" not in within.stderr
    over = ok(backend.invoke(["edit-expense", "1", "--category", "food"]))
    # The same line add-expense prints for the same state.
    assert over.stderr.splitlines()[-1] == (
        "Warning: Food is over its 2026-03 budget: spent 160.00 of 100.00 (60.00 over)"
    )
    ok(backend.invoke(["delete-expense", "1", "--yes"]))
    added = ok(backend.invoke(["add-expense", "60", "Food", "--date", "2026-03-07"]))
    assert added.stderr.splitlines()[-1] == over.stderr.splitlines()[-1]
    # Moving it to another month leaves March and is measured against that month.
    moved = ok(backend.invoke(["edit-expense", "3", "--date", "2026-04-01"]))
    assert "Warning" not in moved.stderr


def test_no_warning_for_a_category_without_budget(backend: Backend) -> None:
    result = ok(backend.invoke(["add-expense", "99999999.99", "Utilities"]))
    assert "Warning" not in result.stderr


def test_budget_moved_away_entirely_warns(backend: Backend) -> None:
    first_run(backend)
    add_transfer(backend, source="Transport", target="Food", cents=1000, month=TODAY.replace(day=1))
    result = ok(backend.invoke(["add-expense", "10.01", "Food"]))
    assert result.stderr == (
        f"Warning: Food is over its {TODAY:%Y-%m} budget: spent 10.01 of 10.00 (0.01 over)\n"
    )


# --- expenses ---------------------------------------------------------------------------


@pytest.fixture
def spending(backend: Backend) -> Backend:
    for args in (
        ["12.50", "Food", "Lunch at work", "--date", "2026-03-02"],
        ["3.20", "Transport", "Bus", "--date", "2026-03-02"],
        ["45", "Food", "Groceries", "--date", "2026-03-15"],
        ["20", "Entertainment", "Cinema", "--date", "2026-02-27"],
        ["7.05", "food", "lunch", "--date", "2026-04-01"],
    ):
        ok(backend.invoke(["add-expense", *args]))
    return backend


def listed_ids(backend: Backend, *args: str) -> list[int]:
    result = ok(backend.invoke(["expenses", "--format", "json", *args]))
    return [row["id"] for row in json.loads(result.stdout)["expenses"]]


def test_expenses_table_is_aligned_with_a_total(spending: Backend) -> None:
    result = ok(spending.invoke(["expenses"]))
    assert result.stdout == (
        "ID  Date        Category       Amount  Description\n"
        "--  ----------  -------------  ------  -------------\n"
        " 5  2026-04-01  Food             7.05  lunch\n"
        " 3  2026-03-15  Food            45.00  Groceries\n"
        " 2  2026-03-02  Transport        3.20  Bus\n"
        " 1  2026-03-02  Food            12.50  Lunch at work\n"
        " 4  2026-02-27  Entertainment   20.00  Cinema\n"
        "--  ----------  -------------  ------  -------------\n"
        "    Total       5 expenses      87.75\n"
    )


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["--month", "2026-03"], [3, 2, 1]),
        (["--from", "2026-03-02", "--to", "2026-03-15"], [3, 2, 1]),
        (["--from", "2026-03-03"], [5, 3]),
        (["--to", "2026-03-01"], [4]),
        (["--category", "FOOD"], [5, 3, 1]),
        (["--search", "LUNCH"], [5, 1]),
        (["--min", "12.50"], [3, 1, 4]),
        (["--max", "7.05"], [5, 2]),
        (["--min", "5", "--max", "20", "--category", "food"], [5, 1]),
        (["--limit", "2"], [5, 3]),
        (["--search", "%"], []),
    ],
)
def test_expenses_filters(spending: Backend, args: list[str], ids: list[int]) -> None:
    assert listed_ids(spending, *args) == ids


def test_expenses_json_and_csv(spending: Backend) -> None:
    data = json.loads(ok(spending.invoke(["expenses", "--limit", "1", "--format", "json"])).stdout)
    assert data == {
        "expenses": [
            {
                "id": 5,
                "date": "2026-04-01",
                "category": "Food",
                "amount": "7.05",
                "description": "lunch",
                "entered_by": "me@localhost",
            }
        ],
        "count": 5,
        "total": "87.75",
    }
    csv_out = ok(spending.invoke(["expenses", "--month", "2026-02", "--format", "csv"])).stdout
    assert csv_out == (
        "id,date,category,amount,description,entered_by\n"
        "4,2026-02-27,Entertainment,20.00,Cinema,me@localhost\n"
    )


def test_expenses_limit_says_what_it_cut(spending: Backend) -> None:
    result = ok(spending.invoke(["expenses", "--limit", "1"]))
    assert result.stdout.endswith("    Total       5 expenses   87.75\n")
    assert result.stderr == "showing 1 of 5 matching expenses (--limit)\n"


def test_expenses_empty(backend: Backend) -> None:
    result = ok(backend.invoke(["expenses"]))
    assert result.stdout == ""
    assert result.stderr == "no expenses match\n"  # reading creates no user (no welcome)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--month", "2026-13"],
            "Invalid value for '--month': '2026-13' is not a month (use YYYY-MM)",
        ),
        (
            ["--month", "2026-03", "--from", "2026-03-01"],
            "use either --month or --from/--to, not both",
        ),
        (
            ["--from", "2026-03-02", "--to", "2026-03-01"],
            "--from 2026-03-02 is after --to 2026-03-01",
        ),
        (
            ["--min", "5", "--max", "4"],
            "Invalid value for '--min': --min 5.00 is larger than --max 4.00",
        ),
        (["--limit", "0"], "Invalid value for '--limit': '0' is not positive"),
        (
            ["--format", "xml"],
            "Invalid value for '--format': 'xml' is not one of 'table', 'json', 'csv'.",
        ),
    ],
)
def test_expenses_bad_input(spending: Backend, args: list[str], message: str) -> None:
    result = spending.invoke(["expenses", *args])
    assert result.exit_code == 2
    assert error_text(result) == f"Error: {message}\n"


def test_expenses_unknown_category(spending: Backend) -> None:
    result = spending.invoke(["expenses", "--category", "Transprot"])
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: no category 'Transprot' (categories: Entertainment, Food, Transport, "
        "Utilities); did you mean 'Transport'?\n"
    )


# --- edit-expense and delete-expense ----------------------------------------------------


def test_edit_expense_changes_each_field(spending: Backend) -> None:
    result = ok(
        spending.invoke(
            [
                "edit-expense",
                "1",
                "--amount",
                "13.20",
                "--category",
                "transport",
                "--description",
                "Taxi",
                "--date",
                "2026-03-03",
            ]
        )
    )
    assert result.stdout == "Updated expense 1: 13.20 Transport on 2026-03-03: Taxi\n"
    assert result.stderr == "was: 12.50 Food on 2026-03-02: Lunch at work\n"
    ok(spending.invoke(["edit-expense", "1", "--description", ""]))
    assert spending.rows("SELECT amount, description FROM expenses WHERE id = 1") == [(1320, "")]


def test_edit_expense_refusals_write_nothing(spending: Backend) -> None:
    before = spending.snapshot()
    nothing = spending.invoke(["edit-expense", "1"])
    assert nothing.exit_code == 2
    assert error_text(nothing) == (
        "Error: nothing to change: give --amount, --category, --description or --date\n"
    )
    missing = spending.invoke(["edit-expense", "99", "--amount", "1"])
    assert missing.exit_code == 1
    assert missing.stderr == "Error: no expense with id 99\n"
    bad_category = spending.invoke(["edit-expense", "1", "--amount", "1", "--category", "Rent"])
    assert bad_category.exit_code == 1
    assert bad_category.stderr.startswith("Error: no category 'Rent' (categories:")
    bad_amount = spending.invoke(["edit-expense", "1", "--amount", "0"])
    assert bad_amount.exit_code == 2
    bad_id = spending.invoke(["edit-expense", "abc", "--amount", "1"])
    assert bad_id.exit_code == 2
    assert bad_id.stderr == "Error: Invalid value for 'ID': 'abc' is not a positive whole number\n"
    assert spending.snapshot() == before


def test_delete_expense(spending: Backend) -> None:
    # CliRunner's stdin is not a terminal: no question is asked.
    result = ok(spending.invoke(["delete-expense", "2"]))
    assert result.stdout == "Deleted expense 2: 3.20 Transport on 2026-03-02: Bus\n"
    assert listed_ids(spending) == [5, 3, 1, 4]
    ok(spending.invoke(["delete-expense", "3", "--yes"]))
    before = spending.snapshot()
    again = spending.invoke(["delete-expense", "3", "--yes"])
    assert again.exit_code == 1
    assert again.stderr == "Error: no expense with id 3\n"
    assert spending.snapshot() == before


def test_other_users_expenses_are_not_found(spending: Backend) -> None:
    add_user(spending, "two@example.com")
    add_category(spending, "two@example.com", "Food")
    other = {"BUDGET_USER": "two@example.com"}
    ok(spending.invoke(["add-expense", "99", "Food", "Theirs"], env=other))
    theirs = int(spending.scalar("SELECT max(id) FROM expenses"))
    me = {"BUDGET_USER": "me@localhost"}
    before = spending.snapshot()
    for args in (
        ["edit-expense", str(theirs), "--amount", "1"],
        ["delete-expense", str(theirs), "--yes"],
    ):
        result = spending.invoke(args, env=me)
        assert result.exit_code == 1
        assert result.stderr == f"Error: no expense with id {theirs}\n"
    assert spending.snapshot() == before
    assert theirs not in listed_ids(spending, "--user", "me@localhost")
    assert listed_ids(spending, "--user", "two@example.com") == [theirs]
    # Their category is invisible to me: mine is used, theirs untouched.
    ok(spending.invoke(["edit-expense", "1", "--category", "food"], env=me))
    mine = json.loads(
        ok(
            spending.invoke(["expenses", "--format", "json", "--category", "Food"], env=other)
        ).stdout
    )
    assert mine["count"] == 1


def run_on_terminal(
    backend: Backend, args: list[str], answer: str
) -> subprocess.CompletedProcess[str]:
    """Run `budget ARGS` in a subprocess whose stdin is a terminal, typing `answer`."""
    controller, terminal = pty.openpty()
    try:
        os.write(controller, answer.encode())
        return subprocess.run(
            [sys.executable, "-m", "budget_tracker", *args],
            stdin=terminal,
            capture_output=True,
            text=True,
            env={**os.environ, **backend.env, "NO_COLOR": "1"},
            timeout=60,
            check=False,
        )
    finally:
        os.close(terminal)
        os.close(controller)


def test_delete_expense_asks_on_a_terminal(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "3.20", "Transport", "Bus", "--date", "2026-03-02"]))
    before = backend.snapshot()
    declined = run_on_terminal(backend, ["delete-expense", "1"], "n\n")
    assert declined.returncode == 1
    assert declined.stderr == (
        "Delete expense 1 (3.20 Transport on 2026-03-02: Bus)? [y/N]: Error: aborted\n"
    )
    assert backend.snapshot() == before
    accepted = run_on_terminal(backend, ["delete-expense", "1"], "y\n")
    assert accepted.returncode == 0, accepted.stderr
    assert accepted.stdout == "Deleted expense 1: 3.20 Transport on 2026-03-02: Bus\n"
    assert backend.scalar("SELECT count(*) FROM expenses") == 0


@pytest.mark.parametrize(
    ("stored", "search"),
    [
        ("Bäckerei Müller", "MÜLLER"),
        ("CAFÉ de Flore", "café"),
        ("поездка в Москва", "москва"),
        ("ΟΔΟΣ", "οδοσ"),
        ("Ärger", "äRGER"),
    ],
)
def test_search_ignores_case_in_any_script_like_postgresql(
    backend: Backend, stored: str, search: str
) -> None:
    ok(backend.invoke(["add-expense", "5", "Food", stored, "--date", "2026-03-01"]))
    ok(backend.invoke(["add-expense", "6", "Food", "unrelated", "--date", "2026-03-01"]))
    result = ok(backend.invoke(["expenses", "--search", search, "--format", "json"]))
    assert [row["description"] for row in json.loads(result.stdout)["expenses"]] == [stored]
