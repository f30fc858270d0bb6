"""The services are a library: what every public service function returns is a frozen
dataclass (or a list of them, or a plain value), never a tuple, a named tuple or a row."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

import budget_tracker.services
from budget_tracker.models import Base

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
