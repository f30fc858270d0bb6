"""What a unit of work returned, recorded in its own transaction for a retry to report.

When a COMMIT's acknowledgement is lost, the client cannot tell whether the transaction
committed, and the runner retries the whole unit of work. Run again against its own
committed changes, a command would report them as someone else's: "no expense with id
3" for the expense it just deleted, "already exists" for the category it just added. So
the runner stores each writing unit's return value under the unit's key, in the same
transaction (`record`): it is committed exactly when the changes are. A retry after an
uncertain COMMIT first looks for it (`recorded`) and, when it is there, returns it
instead of running the work again.

Return values are stored as tagged JSON (`encode`/`decode`): dataclasses and mapped rows
of this package, `Decimal`, dates, tuples, lists, enums and plain JSON values. Only
classes defined in `budget_tracker` are ever rebuilt from the database.

A unit whose result can be rebuilt from rows it writes under its own idempotency key
(`add-expense`, `transfer`) marks itself with `outcome_in_rows`, so the hot commands do
not pay a statement for this.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib
import json
import logging
import random
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, insert, inspect, select
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.orm import Session

from budget_tracker.models import UnitOutcome

log = logging.getLogger(__name__)

KEEP_FOR = dt.timedelta(hours=1)
"""How long an outcome is kept: far longer than any retry (`BUDGET_RETRY_SECONDS`)."""
PRUNE_CHANCE = 1 / 64
"""Share of recorded units that also delete outcomes older than `KEEP_FOR`."""

# `Session.info` key set by a service whose result its own keyed rows already recover.
_IN_ROWS_INFO = "budget_outcome_in_rows"
_PACKAGE = "budget_tracker."


def outcome_in_rows(session: Session) -> None:
    """Say that this unit's result is recovered from its own keyed rows on a retry.

    The runner then records nothing for it (one statement less on the hot path).
    """
    session.info[_IN_ROWS_INFO] = True


def record(session: Session, *, key: str, result: Any) -> None:
    """Store `result` under `key` in the unit's transaction (unless its rows carry it)."""
    if session.info.get(_IN_ROWS_INFO):
        return
    try:
        payload = json.dumps(encode(result), ensure_ascii=False, separators=(",", ":"))
    except TypeError as exc:
        # A result that cannot be stored is a programming error in the unit; keep the unit
        # working (as before outcomes existed) and say so in the log.
        log.warning("outcome of unit of work %s not recorded: %s", key, exc)
        return
    now = dt.datetime.now(dt.UTC)
    session.execute(insert(UnitOutcome).values(key=key, result=payload, created_at=now))
    if random.random() < PRUNE_CHANCE:
        prune(session, before=now - KEEP_FOR)


def recorded(session: Session, *, key: str) -> tuple[bool, Any]:
    """(True, result) when a committed attempt of unit `key` recorded its result."""
    payload = session.scalar(select(UnitOutcome.result).where(UnitOutcome.key == key))
    if payload is None:
        return False, None
    log.info("retry found the outcome of unit of work %s, committed by an earlier attempt", key)
    return True, decode(json.loads(payload))


def prune(session: Session, *, before: dt.datetime) -> int:
    """Delete outcomes recorded before `before`; returns how many."""
    result = session.execute(delete(UnitOutcome).where(UnitOutcome.created_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


# --- tagged JSON ------------------------------------------------------------------------


def encode(value: Any) -> Any:
    """`value` as JSON-ready data that `decode` turns back into an equal value."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, enum.Enum):
        return {"$enum": _name(type(value)), "value": encode(value.value)}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.date):
        return {"$date": value.isoformat()}
    if isinstance(value, tuple):
        return {"$tuple": [encode(item) for item in value]}
    if isinstance(value, list):
        return [encode(item) for item in value]
    if isinstance(value, dict) and all(isinstance(name, str) for name in value):
        return {"$dict": {name: encode(item) for name, item in value.items()}}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {
            field.name: encode(getattr(value, field.name))
            for field in dataclasses.fields(value)
            if field.init
        }
        return {"$dataclass": _name(type(value)), "fields": fields}
    try:
        state = inspect(value)
    except NoInspectionAvailable:
        state = None
    if state is not None and hasattr(state, "mapper"):
        # Only what is loaded: touching an expired attribute would cost a query.
        columns = {
            attribute.key: encode(getattr(value, attribute.key))
            for attribute in state.mapper.column_attrs
            if attribute.key not in state.unloaded
        }
        return {"$row": _name(type(value)), "columns": columns}
    raise TypeError(f"cannot record a {type(value).__name__} as a unit's outcome")


def decode(data: Any) -> Any:
    """The value `encode` turned into `data`."""
    if isinstance(data, list):
        return [decode(item) for item in data]
    if not isinstance(data, dict):
        return data
    if "$decimal" in data:
        return Decimal(data["$decimal"])
    if "$datetime" in data:
        return dt.datetime.fromisoformat(data["$datetime"])
    if "$date" in data:
        return dt.date.fromisoformat(data["$date"])
    if "$tuple" in data:
        return tuple(decode(item) for item in data["$tuple"])
    if "$dict" in data:
        return {name: decode(item) for name, item in data["$dict"].items()}
    if "$enum" in data:
        return _class(data["$enum"])(decode(data["value"]))
    if "$dataclass" in data:
        cls = _class(data["$dataclass"])
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{data['$dataclass']} is not a dataclass")
        return cls(**{name: decode(item) for name, item in data["fields"].items()})
    if "$row" in data:
        return _class(data["$row"])(**{name: decode(v) for name, v in data["columns"].items()})
    raise ValueError(f"not an encoded outcome: {sorted(data)}")


def _name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _class(name: str) -> Any:
    """A class of this package by `module:qualname` (nothing outside it is ever loaded)."""
    module_name, _, qualname = name.partition(":")
    if not module_name.startswith(_PACKAGE):
        raise ValueError(f"outcome class {name!r} is not part of budget_tracker")
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, type):
        raise ValueError(f"{name!r} is not a class")
    return target


def is_outcome_conflict(exc: BaseException) -> bool:
    """Whether `exc` is the outcome INSERT meeting a row already recorded under its key."""
    from sqlalchemy.exc import IntegrityError

    return isinstance(exc, IntegrityError) and "unit_outcomes" in str(exc.orig)
