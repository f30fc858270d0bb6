"""`budget user add` and `budget user list` on both backends."""

from __future__ import annotations

import json

import pytest

from tests.cli_helpers import error_text, ok
from tests.conftest import Backend


def test_add_and_list_users(backend: Backend) -> None:
    empty = ok(backend.invoke(["user", "list"]))
    assert empty.stdout == ""
    assert empty.stderr == "no users yet: add one with `budget user add EMAIL --name NAME`\n"
    added = ok(backend.invoke(["user", "add", " Ana@Example.COM ", "--name", " Ana María "]))
    assert added.stdout == "Added user 1: ana@example.com (Ana María)\n"
    ok(backend.invoke(["user", "add", "bo@example.com", "--name", "Bo"]))
    ok(backend.invoke(["category", "add", "Rent", "--user", "bo@example.com"]))
    ok(backend.invoke(["add-expense", "5", "rent", "--user", "bo@example.com"]))
    listed = ok(backend.invoke(["user", "list"]))
    assert listed.stdout == (
        "ID  E-mail           Name       Categories  Expenses  Default\n"
        "--  ---------------  ---------  ----------  --------  -------\n"
        " 1  ana@example.com  Ana María           0         0  yes\n"
        " 2  bo@example.com   Bo                  1         1\n"
    )
    data = json.loads(ok(backend.invoke(["user", "list", "--format", "json"])).stdout)
    assert data[1] == {
        "id": 2,
        "email": "bo@example.com",
        "name": "Bo",
        "categories": 1,
        "expenses": 1,
        "default": False,
    }


def test_a_new_user_is_not_bootstrapped(backend: Backend) -> None:
    ok(backend.invoke(["user", "add", "ana@example.com", "--name", "Ana"]))
    result = ok(backend.invoke(["category", "list"]))
    assert result.stderr == "no categories yet: add one with `budget category add NAME`\n"
    assert backend.scalar("SELECT count(*) FROM users") == 1


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ANA@example.com", "--name", "Other"], 1, "a user 'ana@example.com' already exists"),
        (
            ["not-an-email", "--name", "X"],
            2,
            "Invalid value for 'EMAIL': 'not-an-email' is not an e-mail address",
        ),
        (["x@example.com"], 2, "Missing option '--name'."),
        (["x@example.com", "--name", "  "], 2, "Invalid value for '--name': must not be empty"),
    ],
)
def test_user_add_refusals(backend: Backend, args: list[str], code: int, message: str) -> None:
    ok(backend.invoke(["user", "add", "ana@example.com", "--name", "Ana"]))
    before = backend.snapshot()
    result = backend.invoke(["user", "add", *args])
    assert result.exit_code == code
    assert error_text(result) == f"Error: {message}\n"
    assert backend.snapshot() == before


def test_adding_a_second_user_keeps_the_first_ones_commands_working(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "5", "Food"]))  # first run: me@localhost
    ok(backend.invoke(["user", "add", "ana@example.com", "--name", "Ana"]))
    report = ok(backend.invoke(["report"]))
    assert "me@localhost" in report.stdout
    ok(backend.invoke(["add-expense", "6", "Food"]))
    assert backend.scalar("SELECT count(*) FROM expenses") == 2


def test_user_default_chooses_who_commands_act_for(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "5", "Food"]))
    ok(backend.invoke(["user", "add", "ana@example.com", "--name", "Ana"]))
    ok(backend.invoke(["category", "add", "Rent", "--user", "ana@example.com"]))
    chosen = ok(backend.invoke(["user", "default", "ANA@example.com"]))
    assert chosen.stdout == "Commands now act for ana@example.com (Ana) unless told otherwise\n"
    # Every way of finding the acting user follows it: the hot paths and the others.
    ok(backend.invoke(["add-expense", "7", "rent"]))
    ok(backend.invoke(["category", "add", "Rent2"]))
    ok(backend.invoke(["category", "set-budget", "Rent", "100"]))
    ok(backend.invoke(["transfer", "1", "--from", "Rent", "--to", "Rent2"]))
    listed = json.loads(ok(backend.invoke(["expenses", "--format", "json"])).stdout)
    assert [row["category"] for row in listed["expenses"]] == ["Rent"]
    assert backend.rows(
        "SELECT u.email FROM expenses e JOIN users u ON u.id = e.user_id ORDER BY e.id"
    ) == [("me@localhost",), ("ana@example.com",)]
    # --user and BUDGET_USER still win.
    mine = json.loads(
        ok(backend.invoke(["expenses", "--format", "json", "--user", "me@localhost"])).stdout
    )
    assert mine["count"] == 1 and mine["expenses"][0]["amount"] == "5.00"
    assert backend.scalar("SELECT count(*) FROM users WHERE is_default") == 1
    unknown = backend.invoke(["user", "default", "who@example.com"])
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: no user 'who@example.com'")


def test_budget_user_on_an_empty_database_creates_that_user(backend: Backend) -> None:
    result = ok(backend.invoke(["add-expense", "5", "Food"], env={"BUDGET_USER": "x@y"}))
    assert result.stderr.startswith("Welcome! Created local user x@y with categories Food,")
    assert backend.rows("SELECT email, is_default FROM users") == [("x@y", True)]
    # Once there are users, an unknown one is refused as before.
    unknown = backend.invoke(["add-expense", "5", "Food"], env={"BUDGET_USER": "z@y"})
    assert unknown.exit_code == 1
    assert unknown.stderr.startswith("Error: no user 'z@y'")
