"""`budget category add|list|rename|set-budget|delete|merge` on both backends."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.cli_helpers import (
    TODAY,
    add_transfer,
    category_id,
    counted_statements,
    error_text,
    execute,
    first_run,
    ok,
)
from tests.conftest import Backend

THIS_MONTH = TODAY.replace(day=1)
LAST_YEAR = THIS_MONTH.replace(year=THIS_MONTH.year - 1)


def categories(backend: Backend) -> dict[str, dict[str, str]]:
    data = json.loads(ok(backend.invoke(["category", "list", "--format", "json"])).stdout)
    return {row["name"]: row for row in data["categories"]}


def refused(backend: Backend, args: list[str], code: int, message: str) -> None:
    """The command fails with `code` and the one-line `message`, and writes nothing."""
    before = backend.snapshot()
    result = backend.invoke(args)
    assert result.exit_code == code
    assert error_text(result) == f"Error: {message}\n"
    assert backend.snapshot() == before


# --- add and list -----------------------------------------------------------------------


def test_add_category(backend: Backend) -> None:
    first_run(backend)
    result = ok(
        backend.invoke(["category", "add", " Rent ", "--budget", "900", "--color", "#c0392b"])
    )
    assert result.stdout == "Added category 5: Rent (monthly budget 900.00 from 2026-05)\n"
    # No opening budget: the budget is history that starts this month.
    assert backend.rows(
        "SELECT name, name_key, color, monthly_budget FROM categories WHERE id = 5"
    ) == [("Rent", "rent", "#C0392B", 0)]
    assert backend.rows("SELECT amount, one_month FROM category_budgets WHERE category_id = 5") == [
        (90000, False)
    ]
    assert categories(backend)["Rent"]["budget"] == "900.00"
    ok(backend.invoke(["category", "add", "Café ☕"]))
    assert categories(backend)["Café ☕"]["budget"] is None


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["FOOD"], 1, "a category named 'Food' already exists"),
        (["  "], 2, "Invalid value for 'NAME': must not be empty"),
        (["x" * 51], 2, "Invalid value for 'NAME': is 51 characters long; the limit is 50"),
        (
            ["Rent", "--budget", "-5"],
            2,
            "Invalid value for '--budget': '-5' is negative; amounts must be positive",
        ),
        (
            ["Rent", "--color", "red"],
            2,
            "Invalid value for '--color': 'red' is not a colour (use #RRGGBB)",
        ),
    ],
)
def test_add_category_refusals(backend: Backend, args: list[str], code: int, message: str) -> None:
    first_run(backend)
    refused(backend, ["category", "add", *args], code, message)


def test_list_shows_this_months_budget_and_spending(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "set-budget", "Food", "300"]))
    ok(backend.invoke(["category", "set-budget", "Transport", "100"]))
    add_transfer(backend, source="Transport", target="Food", cents=2550, month=THIS_MONTH)
    add_transfer(backend, source="Transport", target="Food", cents=99900, month=LAST_YEAR)
    ok(backend.invoke(["add-expense", "40.10", "Food"]))
    ok(backend.invoke(["add-expense", "500", "Food", "--date", LAST_YEAR.isoformat()]))
    result = ok(backend.invoke(["category", "list"]))
    assert result.stdout == (
        "ID  Category       Colour   Budget  Spent  Available\n"
        "--  -------------  -------  ------  -----  ---------\n"
        " 3  Entertainment  #9B59B6           0.00       0.00\n"
        " 1  Food           #E67E22  325.50  40.10     285.40\n"
        " 2  Transport      #3498DB   74.50   0.00      74.50\n"
        " 4  Utilities      #16A085           0.00       0.00\n"
        "--  -------------  -------  ------  -----  ---------\n"
        f"    Total {TODAY:%Y-%m}           400.00  40.10     359.90\n"
    )
    food = categories(backend)["Food"]
    assert food == {
        "id": 1,
        "name": "Food",
        "color": "#E67E22",
        "monthly_budget": "300.00",
        "budget": "325.50",
        "carried": "0.00",
        "spent": "40.10",
        "available": "285.40",
    }
    other_month = ok(
        backend.invoke(["category", "list", "--month", f"{LAST_YEAR:%Y-%m}", "--format", "csv"])
    )
    assert other_month.stdout.splitlines()[:3] == [
        "id,name,color,budget,spent,available",
        "3,Entertainment,#9B59B6,,0.00,0.00",
        # set-budget applies from this month on: last year Food had only the transfer.
        "1,Food,#E67E22,999.00,500.00,499.00",
    ]


def test_list_sends_the_same_statements_for_any_number_of_categories(backend: Backend) -> None:
    first_run(backend)
    with counted_statements(backend) as few:
        ok(backend.invoke(["category", "list"]))
    for index in range(8):
        ok(backend.invoke(["category", "add", f"Extra {index}", "--budget", "1"]))
        ok(backend.invoke(["add-expense", "2", f"extra {index}"]))
    with counted_statements(backend) as many:
        ok(backend.invoke(["category", "list"]))
    assert len(many) == len(few)


# --- rename and set-budget --------------------------------------------------------------


def test_rename(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["add-expense", "5", "Food"]))
    result = ok(backend.invoke(["category", "rename", "food", "Groceries"]))
    assert result.stdout == "Renamed category Food to Groceries\n"
    ok(backend.invoke(["category", "rename", "groceries", "GROCERIES"]))  # a change of case
    assert categories(backend)["GROCERIES"]["spent"] == "5.00"
    refused(
        backend,
        ["category", "rename", "groceries", "transport"],
        1,
        "a category named 'Transport' already exists",
    )
    refused(
        backend,
        ["category", "rename", "Transprt", "Bus"],
        1,
        "no category 'Transprt' (categories: Entertainment, GROCERIES, Transport, Utilities); "
        "did you mean 'Transport'?",
    )


def test_set_budget(backend: Backend) -> None:
    first_run(backend)
    result = ok(backend.invoke(["category", "set-budget", "FOOD", "400"]))
    now = f"{THIS_MONTH:%Y-%m}"
    assert result.stdout == f"Set the monthly budget of Food to 400.00 from {now} on (was 0.00)\n"
    assert ok(backend.invoke(["category", "set-budget", "food", "0"])).stdout == (
        f"Set the monthly budget of Food to 0.00 from {now} on (was 400.00)\n"
    )
    refused(
        backend,
        ["category", "set-budget", "Food", "1.234"],
        2,
        "Invalid value for 'AMOUNT': '1.234' has more than two decimal places",
    )
    refused(
        backend,
        ["category", "set-budget", "Rent", "5"],
        1,
        "no category 'Rent' (categories: Entertainment, Food, Transport, Utilities)",
    )


# --- delete and merge -------------------------------------------------------------------


def test_delete_unused_category(backend: Backend) -> None:
    first_run(backend)
    assert ok(backend.invoke(["category", "delete", "utilities"])).stdout == (
        "Deleted category Utilities\n"
    )
    assert sorted(categories(backend)) == ["Entertainment", "Food", "Transport"]


def test_delete_a_category_with_budget_history(backend: Backend) -> None:
    """Budgets are not use: a category with a budget history and nothing spent or moved
    is deleted with its history."""
    first_run(backend)
    ok(backend.invoke(["category", "add", "Rent", "--budget", "900", "--from", "2026-01"]))
    ok(backend.invoke(["category", "set-budget", "Rent", "950", "--month", "2026-03"]))
    assert ok(backend.invoke(["category", "delete", "rent"])).stdout == "Deleted category Rent\n"
    assert "Rent" not in categories(backend)
    assert backend.scalar("SELECT count(*) FROM category_budgets") == 0


def test_delete_is_refused_while_in_use(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["add-expense", "5", "Food"]))
    add_transfer(backend, source="Transport", target="Entertainment", cents=100, month=THIS_MONTH)
    refused(
        backend,
        ["category", "delete", "food"],
        1,
        "category 'Food' is in use (1 expense, 0 transfers): use --move-to OTHER to move them, "
        "or `budget category merge`",
    )
    refused(
        backend,
        ["category", "delete", "Transport"],
        1,
        "category 'Transport' is in use (0 expenses, 1 transfer): use --move-to OTHER to move "
        "them, or `budget category merge`",
    )
    refused(
        backend,
        ["category", "delete", "Food", "--move-to", "food"],
        1,
        "'Food' and 'food' are the same category",
    )
    refused(
        backend,
        ["category", "delete", "Food", "--move-to", "Rent"],
        1,
        "no category 'Rent' (categories: Entertainment, Food, Transport, Utilities)",
    )


def seed_ledger(backend: Backend) -> None:
    """Takeaway and Food with expenses, a budget each, and transfers among three categories."""
    first_run(backend)
    ok(backend.invoke(["category", "add", "Takeaway", "--budget", "50"]))
    ok(backend.invoke(["category", "set-budget", "Food", "300"]))
    for amount in ("10", "20"):
        ok(backend.invoke(["add-expense", amount, "Takeaway"]))
    ok(backend.invoke(["add-expense", "30", "Food"]))
    add_transfer(backend, source="Transport", target="Takeaway", cents=1000, month=THIS_MONTH)
    add_transfer(backend, source="Takeaway", target="Utilities", cents=500, month=THIS_MONTH)
    add_transfer(backend, source="Food", target="Takeaway", cents=2000, month=THIS_MONTH)
    add_transfer(backend, source="Takeaway", target="Food", cents=300, month=THIS_MONTH)


def test_merge_moves_everything_and_nets_out_transfers_between_the_two(backend: Backend) -> None:
    seed_ledger(backend)
    # An undo entry of the Food -> Takeaway transfer: also between the two, removed with it.
    food, takeaway = category_id(backend, "Food"), category_id(backend, "Takeaway")
    original = backend.scalar(
        "SELECT id FROM budget_transfers WHERE from_category_id = :f AND to_category_id = :t",
        f=food,
        t=takeaway,
    )
    execute(
        backend,
        "INSERT INTO budget_transfers (user_id, from_category_id, to_category_id, amount, month,"
        " note, reverses_id) VALUES (1, :t, :f, 2000, :m, 'undo', :r)",
        t=takeaway,
        f=food,
        m=THIS_MONTH,
        r=original,
    )
    before = categories(backend)
    combined_budget = sum(Decimal(before[name]["budget"]) for name in ("Food", "Takeaway"))
    result = ok(backend.invoke(["category", "merge", "takeaway", "--into", "FOOD"]))
    assert result.stdout == (
        "Merged Takeaway into Food: moved 2 expenses and 2 transfers to Food; removed 3 "
        "transfers between Takeaway and Food, which net out once they are one category\n"
    )
    assert result.stderr == "Food's monthly budget is now 350.00\n"
    after = categories(backend)
    assert "Takeaway" not in after
    assert after["Food"]["monthly_budget"] == "350.00"
    assert after["Food"]["spent"] == "60.00"
    # The merged category's budget this month is what the two had together.
    assert Decimal(after["Food"]["budget"]) == combined_budget
    assert after["Transport"]["budget"] == before["Transport"]["budget"]
    assert after["Utilities"]["budget"] == before["Utilities"]["budget"]
    assert backend.scalar("SELECT count(*) FROM expenses WHERE category_id = :t", t=takeaway) == 0


def test_delete_with_move_to_combines_the_budgets_like_merge(backend: Backend) -> None:
    seed_ledger(backend)
    before = categories(backend)
    result = ok(backend.invoke(["category", "delete", "Takeaway", "--move-to", "food"]))
    assert result.stdout == (
        "Deleted category Takeaway; moved 2 expenses and 2 transfers to Food; removed 2 "
        "transfers between Takeaway and Food, which net out once they are one category\n"
    )
    assert result.stderr == "Food's monthly budget is now 350.00\n"
    after = categories(backend)
    assert after["Food"]["monthly_budget"] == "350.00"
    assert after["Food"]["spent"] == "60.00"
    assert Decimal(after["Food"]["budget"]) == sum(
        Decimal(before[name]["budget"]) for name in ("Food", "Takeaway")
    )


def test_delete_with_move_to_never_leaves_the_target_overdrawn(backend: Backend) -> None:
    """S with budget 100 moved 50 to T and 30 to U: deleting S into T used to drop S's
    budget but keep its transfer out to U, leaving T at -30.00 for the month."""
    first_run(backend)
    ok(backend.invoke(["category", "add", "Spare", "--budget", "100"]))
    add_transfer(backend, source="Spare", target="Food", cents=5000, month=THIS_MONTH)
    add_transfer(backend, source="Spare", target="Transport", cents=3000, month=THIS_MONTH)
    ok(backend.invoke(["category", "delete", "Spare", "--move-to", "Food"]))
    food = categories(backend)["Food"]
    assert (food["budget"], food["available"]) == ("70.00", "70.00")


def test_a_negative_combined_budget_needs_allow_overdraw(backend: Backend) -> None:
    first_run(backend)
    # An overdrawn transfer (as --allow-overdraw makes) leaves Spare at -30.00 this month.
    ok(backend.invoke(["category", "add", "Spare"]))
    add_transfer(backend, source="Spare", target="Transport", cents=3000, month=THIS_MONTH)
    for command in (
        ["category", "delete", "Spare", "--move-to", "Food"],
        ["category", "merge", "Spare", "--into", "Food"],
    ):
        refused(
            backend,
            command,
            1,
            f"Food would have a budget of -30.00 for {THIS_MONTH:%Y-%m} (1 month below zero) "
            "once it takes over Spare's transfers (--allow-overdraw does it anyway)",
        )
    ok(backend.invoke(["category", "set-budget", "Food", "30"]))
    ok(backend.invoke(["category", "delete", "Spare", "--move-to", "Food"]))
    assert categories(backend)["Food"]["budget"] == "0.00"


def test_allow_overdraw_moves_it_anyway(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["category", "add", "Spare"]))
    add_transfer(backend, source="Spare", target="Transport", cents=3000, month=THIS_MONTH)
    ok(backend.invoke(["category", "delete", "Spare", "--move-to", "Food", "--allow-overdraw"]))
    assert categories(backend)["Food"]["budget"] == "-30.00"


def test_merge_refusals(backend: Backend) -> None:
    seed_ledger(backend)
    refused(
        backend,
        ["category", "merge", "Takeaway", "--into", "TAKEAWAY"],
        1,
        "'Takeaway' and 'TAKEAWAY' are the same category",
    )
    refused(
        backend,
        ["category", "merge", "Takeawy", "--into", "Food"],
        1,
        "no category 'Takeawy' (categories: Entertainment, Food, Takeaway, Transport, "
        "Utilities); did you mean 'Takeaway'?",
    )
    refused(backend, ["category", "merge", "Takeaway"], 2, "Missing option '--into'.")


def test_other_users_categories_are_invisible(backend: Backend) -> None:
    first_run(backend)
    ok(backend.invoke(["user", "add", "two@example.com", "--name", "Two"]))
    two = ["--user", "two@example.com"]
    ok(backend.invoke(["category", "add", "Hobbies", *two]))
    ok(backend.invoke(["add-expense", "9", "Hobbies", *two]))
    me = ["--user", "me@localhost"]
    message = "no category 'Hobbies' (categories: Entertainment, Food, Transport, Utilities)"
    for args in (
        ["category", "rename", "Hobbies", "Mine", *me],
        ["category", "set-budget", "Hobbies", "5", *me],
        ["category", "delete", "Hobbies", *me],
        ["category", "merge", "Hobbies", "--into", "Food", *me],
        ["category", "merge", "Food", "--into", "Hobbies", *me],
        ["add-expense", "1", "Hobbies", *me],
        ["expenses", "--category", "Hobbies", *me],
    ):
        refused(backend, args, 1, message)
    # Same names per user are fine, and lists do not mix.
    ok(backend.invoke(["category", "add", "Food", *two]))
    data = json.loads(ok(backend.invoke(["category", "list", "--format", "json", *two])).stdout)
    assert [(row["name"], row["spent"]) for row in data["categories"]] == [
        ("Food", "0.00"),
        ("Hobbies", "9.00"),
    ]
