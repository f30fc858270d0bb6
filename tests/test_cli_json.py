"""One JSON shape per entity: every command that prints an expense, income, a transfer, a
category or a user prints the same keys with the same value types."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from tests.cli_helpers import ok
from tests.conftest import Backend

Shape = dict[str, tuple[type, ...]]

EXPENSE: Shape = {
    "id": (int,),
    "date": (str,),
    "category": (str,),
    "amount": (str,),
    "description": (str,),
    "entered_by": (str,),
}
TRANSFER: Shape = {
    "id": (int,),
    "month": (str,),
    "from": (str,),
    "to": (str,),
    "amount": (str,),
    "note": (str,),
    "reverses": (int, type(None)),
    "undone_by": (int, type(None)),
    "created_at": (str,),
    "entered_by": (str,),
}
CATEGORY: Shape = {
    "id": (int,),
    "name": (str,),
    "color": (str, type(None)),
    "monthly_budget": (str,),
}
USER: Shape = {"id": (int,), "email": (str,), "name": (str,), "default": (bool,)}
INCOME: Shape = {
    "id": (int,),
    "date": (str,),
    "amount": (str,),
    "source": (str,),
    "entered_by": (str,),
}

# Each command that prints an entity, and where the entity is in its JSON output.
Pick = Callable[[Any], list[dict[str, Any]]]
PRINTERS: list[tuple[Shape, list[str], Pick]] = [
    (EXPENSE, ["add-expense", "3.10", "Food", "Tea", "--format", "json"], lambda d: [d]),
    (EXPENSE, ["edit-expense", "1", "--amount", "4", "--format", "json"], lambda d: [d]),
    (EXPENSE, ["expenses", "--format", "json"], lambda d: d["expenses"]),
    (EXPENSE, ["report", "--top", "3", "--format", "json"], lambda d: d["top_expenses"]),
    (EXPENSE, ["delete-expense", "2", "--yes", "--format", "json"], lambda d: [d]),
    (CATEGORY, ["category", "add", "Fun", "--budget", "5", "--format", "json"], lambda d: [d]),
    (CATEGORY, ["category", "list", "--format", "json"], lambda d: d["categories"]),
    (
        TRANSFER,
        ["transfer", "5", "--from", "Food", "--to", "Fun", "--format", "json"],
        lambda d: [d],
    ),
    (TRANSFER, ["transfer", "--undo", "1", "--format", "json"], lambda d: [d]),
    (TRANSFER, ["transfers", "--format", "json"], lambda d: d),
    (USER, ["user", "add", "ana@example.com", "--name", "Ana", "--format", "json"], lambda d: [d]),
    (USER, ["user", "default", "me@localhost", "--format", "json"], lambda d: [d]),
    (USER, ["user", "list", "--format", "json"], lambda d: d),
    (USER, ["report", "--format", "json"], lambda d: [d["user"]]),
    (USER, ["report", "--by", "month", "--format", "json"], lambda d: [d["user"]]),
    (INCOME, ["add-income", "900", "Salary", "--format", "json"], lambda d: [d]),
    (INCOME, ["add-income", "50", "Refund", "--format", "json"], lambda d: [d]),
    (INCOME, ["edit-income", "1", "--amount", "950", "--format", "json"], lambda d: [d]),
    (INCOME, ["income", "--format", "json"], lambda d: d["income"]),
    (INCOME, ["delete-income", "2", "--yes", "--format", "json"], lambda d: [d]),
]
# Listings that add figures to the entity (the month's budget and spending, counts).
EXTRA_KEYS = {
    ("category", "list"): {"budget", "carried", "spent", "available"},
    ("user", "list"): {"categories", "expenses"},
}
CREATING = {"add-expense", "add-income", "transfer", "category add", "user add"}


def test_every_creating_command_prints_its_row_as_json(backend: Backend) -> None:
    """Runs the commands in order (each needs what the one before created)."""
    ok(backend.invoke(["add-expense", "12.50", "Food", "Lunch", "--date", "2026-03-02"]))
    ok(backend.invoke(["category", "set-budget", "Food", "100"]))
    covered: set[str] = set()
    for shape, args, pick in PRINTERS:
        result = ok(backend.invoke(args))
        objects = pick(json.loads(result.stdout))
        assert objects, args
        extra = EXTRA_KEYS.get((args[0], args[1]), set())
        for item in objects:
            assert set(item) == set(shape) | extra, args
            for key, types in shape.items():
                assert isinstance(item[key], types), (args, key, item[key])
        covered.add(args[0] if args[0] not in ("user", "category") else " ".join(args[:2]))
    assert covered >= CREATING


@pytest.mark.parametrize("name", sorted(CREATING))
def test_creating_commands_take_format_json(name: str) -> None:
    from budget_tracker.cli import main

    command: Any = main.commands[name.split()[0]]
    if " " in name:
        command = command.commands[name.split()[1]]
    formats = [p for p in command.params if p.name == "fmt"]
    assert formats and "json" in formats[0].type.choices
