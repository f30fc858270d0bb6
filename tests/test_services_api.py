"""The services are a library: what every public service function returns is a frozen
dataclass (or a list of them, or a plain value), never a tuple, a named tuple or a row;
and what they say never spells the command line (no flag, no `budget COMMAND`): options
are named by their Python keyword, and the command line words the rest."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import importlib
import inspect
import pkgutil
import re
import types
import typing
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

import budget_tracker.services
from budget_tracker.errors import (
    BudgetError,
    CategoryInUse,
    InvalidInput,
    UnknownCategories,
    UnknownTransfer,
)
from budget_tracker.models import Base
from budget_tracker.services.budgets import date_range, resolve_period
from budget_tracker.services.categories import delete_category
from budget_tracker.services.expenses import add_expense
from budget_tracker.services.importer import ImportOptions, import_expenses
from budget_tracker.services.transfers import transfer_budget, undo_transfer
from tests.cli_helpers import first_run
from tests.conftest import Backend

PLAIN = (str, bool, int, type(None))

# Services that hand ORM rows to other services inside one unit of work (the user acted
# for, a category to lock and change, rows streamed from a cursor): building blocks, not
# results to show.
BUILDING_BLOCKS = {
    "find_acting_user",
    "find_category",
    "lock_categories",
    "not_yet_created",
    "stream_rows",
}


def service_functions() -> Iterator[tuple[str, Any]]:
    package = budget_tracker.services
    for module_info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        module = importlib.import_module(module_info.name)
        for name, function in vars(module).items():
            if (
                inspect.isfunction(function)
                and function.__module__ == module.__name__
                and not name.startswith("_")
                and "session" in inspect.signature(function).parameters
            ):
                yield f"{module.__name__}.{name}", function


FUNCTIONS = sorted(service_functions())


def result_types(annotation: Any) -> Iterator[Any]:
    """The classes a return annotation can produce (unions opened, list items opened)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for argument in typing.get_args(annotation):
            yield from result_types(argument)
    elif origin is list or (origin is tuple and typing.get_args(annotation)[1:] == (...,)):
        # A collection (an immutable one inside a frozen result), not an anonymous record.
        yield from result_types(typing.get_args(annotation)[0])
    else:
        yield annotation


def test_the_audit_sees_the_services() -> None:
    names = {name.rsplit(".", 1)[1] for name, _ in FUNCTIONS}
    assert {"add_expense", "list_transfers", "add_user", "acting_user", "merge_categories"} <= names


@pytest.mark.parametrize(("name", "function"), FUNCTIONS, ids=[name for name, _ in FUNCTIONS])
def test_a_service_returns_frozen_dataclasses(name: str, function: Any) -> None:
    if function.__name__ in BUILDING_BLOCKS:
        return
    hints = typing.get_type_hints(function, localns={"Session": Session})
    for result in result_types(hints["return"]):
        origin = typing.get_origin(result) or result
        assert origin is not tuple and origin is not Row, f"{name} returns {result}"
        assert not (isinstance(origin, type) and issubclass(origin, tuple)), name
        if origin in PLAIN or not isinstance(origin, type):
            continue
        assert not issubclass(origin, Base), f"{name} returns an ORM row"
        if issubclass(origin, BaseException):
            continue
        assert dataclasses.is_dataclass(origin), f"{name} returns {origin.__name__}"
        params = origin.__dataclass_params__  # type: ignore[attr-defined]
        assert params.frozen, f"{name} returns a mutable {origin.__name__}"


# --- what the services say ------------------------------------------------------------------

SERVICES = Path(budget_tracker.services.__file__).parent
COMMAND_LINE = re.compile(r"(?<![\w-])--[a-z]|`budget ")
"""A flag (`--month`) or a command to run (`` `budget user list` ``)."""


def command_line_words(source: str) -> list[tuple[int, str]]:
    """(line, text) of every string literal in `source` that spells the command line.

    Docstrings (and attribute docstrings: any string that is a statement of its own) are
    prose and may mention options; every other literal, f-strings' parts included, may
    end up in a message and must not."""
    tree = ast.parse(source)
    prose = {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in prose
        and COMMAND_LINE.search(node.value)
    ]


def test_the_scan_finds_command_line_words_outside_docstrings() -> None:
    source = (
        "def f(month):\n"
        '    """Refuses `--month` twice (prose: allowed)."""\n'
        '    hint = f"use --columns {month}=HEADER"\n'
        '    raise InvalidInput("see `budget user list`" + hint)\n'
    )
    assert command_line_words(source) == [
        (3, "use --columns "),
        (4, "see `budget user list`"),
    ]


@pytest.mark.parametrize(
    "path", sorted(SERVICES.rglob("*.py")), ids=lambda path: str(path.relative_to(SERVICES))
)
def test_services_do_not_spell_the_command_line(path: Path) -> None:
    found = command_line_words(path.read_text(encoding="utf-8"))
    assert found == [], f"{path.name} spells the command line (name options with `option`)"


def refusal(work: Callable[[], object]) -> BudgetError:
    with pytest.raises(BudgetError) as caught:
        work()
    message = str(caught.value)
    assert "--" not in message and "`budget" not in message, message
    return caught.value


def test_period_refusals_name_the_keywords() -> None:
    today, march, january = dt.date(2026, 5, 9), dt.date(2026, 3, 1), dt.date(2026, 1, 1)
    both = refusal(lambda: resolve_period(today=today, month=march, to_month=march))
    assert str(both) == "month cannot be combined with from_month/to_month"
    empty = refusal(lambda: resolve_period(today=today, from_month=march, to_month=january))
    assert str(empty) == "from_month 2026-03 is after to_month 2026-01: the period would be empty"
    days = refusal(lambda: date_range(march, march, None))
    assert str(days) == "use either month or date_from/date_to, not both"
    backwards = refusal(lambda: date_range(None, march, january))
    assert str(backwards) == "date_from 2026-03-01 is after date_to 2026-01-01"
    assert isinstance(backwards, InvalidInput)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_services_refuse_in_their_own_words(backend: Backend, tmp_path: Path) -> None:
    first_run(backend)
    run = backend.database.run
    today = dt.date(2026, 3, 9)
    run(
        lambda session: add_expense(
            session,
            user_email=None,
            category="Food",
            amount=Decimal("4.50"),
            spent_on=today,
            description="lunch",
            idempotency_key=None,
        )
    )

    in_use = refusal(
        lambda: run(
            lambda session: delete_category(
                session, user_email=None, name="Food", move_to=None, today=today
            )
        )
    )
    assert isinstance(in_use, CategoryInUse)
    assert (in_use.category, in_use.expenses, in_use.transfers) == ("Food", 1, 0)
    assert str(in_use) == "category 'Food' is in use (1 expense, 0 transfers)"

    to_itself = refusal(
        lambda: run(
            lambda session: transfer_budget(
                session,
                user_email=None,
                source="Food",
                target="FOOD",
                amount=Decimal("1"),
                month=today,
            )
        )
    )
    assert str(to_itself) == (
        "cannot transfer from 'Food' to itself: source and target must be different categories"
    )

    unknown = refusal(
        lambda: run(lambda session: undo_transfer(session, user_email=None, transfer_id=7))
    )
    assert isinstance(unknown, UnknownTransfer) and str(unknown) == "no transfer 7"

    bad_date = tmp_path / "dates.csv"
    bad_date.write_text("date,amount,category,description\n03/01/2026,1,Food,x\n")
    rows = refusal(
        lambda: run(
            lambda session: import_expenses(
                session, user_email=None, path=bad_date, options=ImportOptions()
            )
        )
    )
    assert str(rows) == (
        "dates.csv has 1 bad row; nothing was imported:\n"
        "  line 2, column date: '03/01/2026' is not a date (use YYYY-MM-DD or date_format)"
    )

    new = tmp_path / "new.csv"
    new.write_text("date,amount,category,description\n2026-03-01,1,Rent,x\n")
    categories = refusal(
        lambda: run(
            lambda session: import_expenses(
                session, user_email=None, path=new, options=ImportOptions()
            )
        )
    )
    assert isinstance(categories, UnknownCategories) and categories.names == ("Rent",)
    assert str(categories) == (
        "new.csv uses 1 unknown category: Rent; create them first or import with "
        "create_categories; nothing was imported"
    )
