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
        "ID  E-mail           Name       Categories  Expenses\n"
        "--  ---------------  ---------  ----------  --------\n"
        " 1  ana@example.com  Ana María           0         0\n"
        " 2  bo@example.com   Bo                  1         1\n"
    )
    data = json.loads(ok(backend.invoke(["user", "list", "--format", "json"])).stdout)
    assert data[1] == {
        "id": 2,
        "email": "bo@example.com",
        "name": "Bo",
        "role": None,
        "categories": 1,
        "expenses": 1,
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
