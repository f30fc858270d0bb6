"""Read-only commands never write: on an empty database they show an empty result and
leave every table empty; the default user and starter categories come with the first
writing command."""

from __future__ import annotations

import json

import pytest

from budget_tracker.cli import commands
from budget_tracker.models import TABLE_NAMES
from tests.cli_helpers import ok
from tests.conftest import Backend

# Every command that only reads the budget, with the arguments it needs, and the exit
# status on an empty database: 0, or 1 (refused, NotFound) where it names a row that
# does not exist yet.
READ_ONLY: dict[str, tuple[list[str], int]] = {
    "expenses": (["expenses"], 0),
    "expenses --format json": (["expenses", "--format", "json"], 0),
    "income": (["income"], 0),
    "transfers": (["transfers"], 0),
    "report": (["report"], 0),
    "report --format json": (["report", "--format", "json"], 0),
    "report --by month": (["report", "--by", "month"], 0),
    "verify": (["verify"], 0),
    "export": (["export"], 0),
    "export --format json": (["export", "--format", "json"], 0),
    "shares": (["shares"], 0),
    "user list": (["user", "list"], 0),
    "category list": (["category", "list"], 0),
    "category list --user": (["category", "list", "--user", "ana@example.com"], 0),
    "category budgets": (["category", "budgets", "Food"], 1),
    "import-profile list": (["import-profile", "list"], 0),
    "import-profile show": (["import-profile", "show", "bank"], 1),
    "db current": (["db", "current"], 0),
    "help": (["help"], 0),
}
# The top-level commands whose every use writes (or that hold writing sub-commands only
# next to the read-only ones listed above).
WRITING = {
    "add-expense",
    "edit-expense",
    "delete-expense",
    "add-income",
    "edit-income",
    "delete-income",
    "share",
    "unshare",
    "transfer",
    "import",
    "backup",
    "restore",
}


def row_counts(backend: Backend) -> dict[str, int]:
    return {table: backend.scalar(f"SELECT count(*) FROM {table}") for table in TABLE_NAMES}


def test_every_command_is_classified() -> None:
    """A new command is either listed as read-only above (and tested) or as writing."""
    read_only = {args[0] for args, _ in READ_ONLY.values()}
    assert read_only | WRITING >= set(commands.ALL), set(commands.ALL) - read_only - WRITING
    assert not read_only & WRITING - {"user", "category", "import-profile", "db"}


@pytest.mark.parametrize("case", list(READ_ONLY))
def test_read_only_command_on_an_empty_database_writes_nothing(backend: Backend, case: str) -> None:
    args, code = READ_ONLY[case]
    result = backend.invoke(args)
    assert result.exit_code == code, result.stderr
    assert "Traceback" not in result.stderr
    assert "Welcome" not in result.stderr
    assert row_counts(backend) == dict.fromkeys(TABLE_NAMES, 0)
    if "json" in args:
        json.loads(result.stdout)  # stdout stays clean JSON


def test_an_empty_report_has_the_shape_of_a_report_without_rows(backend: Backend) -> None:
    data = json.loads(ok(backend.invoke(["report", "--format", "json"])).stdout)
    assert data["user"]["email"] == "me@localhost"
    assert row_counts(backend) == dict.fromkeys(TABLE_NAMES, 0)


def test_the_first_writing_command_still_creates_the_default_user(backend: Backend) -> None:
    ok(backend.invoke(["report"]))
    added = ok(backend.invoke(["add-expense", "5", "food"]))
    assert "Welcome" in added.stderr
    assert backend.scalar("SELECT count(*) FROM users") == 1
    assert backend.scalar("SELECT count(*) FROM categories") == 4
    report = json.loads(ok(backend.invoke(["report", "--format", "json"])).stdout)
    assert report["user"]["email"] == "me@localhost"


def test_a_named_unknown_user_among_others_is_still_refused(backend: Backend) -> None:
    ok(backend.invoke(["user", "add", "ana@example.com", "--name", "Ana"]))
    before = backend.snapshot()
    result = backend.invoke(["report", "--user", "bo@example.com"])
    assert result.exit_code == 1
    assert "no user" in result.stderr
    assert backend.snapshot() == before
