"""Import profiles: the `budget import` options that fit one bank, saved under a name.

A profile is a small TOML document, readable and editable by hand; the same document can
be kept in a file and given with `--rules FILE`. Stored per user in `import_profiles`, so
it travels with the user's data. Example:

    # Sparkasse CSV-CAMT export
    delimiter = ";"
    encoding = "cp1252"
    date_format = "%d.%m.%y"
    description = "{Beguenstigter/Zahlungspflichtiger} {Verwendungszweck}"
    fallback_category = "Other"

    [columns]
    date = "Buchungstag"
    amount = "Betrag"

    [[skip_rows]]
    match = "Umbuchung|Kreditkartenabrechnung"
    column = "Buchungstext"

    [[category_rules]]
    match = "REWE|EDEKA|ALDI"
    category = "Food"

Rules: `match` is a case-insensitive regular expression searched in `column` (any column
and the description when `column` is absent); the first category rule that matches
wins, else `fallback_category`.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from budget_tracker.errors import InvalidInput, NotFound, UnknownProfile
from budget_tracker.models import ImportProfile, name_key
from budget_tracker.services.bankfiles.records import COLUMN_ROLES
from budget_tracker.services.bankfiles.statement import Rule, rule
from budget_tracker.services.users import acting_user, find_acting_user

LAYOUT_KEYS: dict[str, type] = {
    "delimiter": str,
    "encoding": str,
    "skip": int,
    "no_header": bool,
    "date_format": str,
    "decimal_comma": bool,
    "signs": str,
    "outflow_value": str,
    "description": str,
    "category": str,
    "fallback_category": str,
    "credits": str,
}
"""Top-level keys of a profile and their TOML types (columns and rules are tables)."""
DELIMITER_NAMES = {",": ",", ";": ";", "tab": "\t", "\t": "\t", "|": "|", "pipe": "|"}
SIGNS = ("spending-negative", "spending-positive")
CREDITS = ("skip", "income")


@dataclass(frozen=True)
class Profile:
    """A profile's settings, checked; `values` holds the top-level keys that were set."""

    values: Mapping[str, Any]
    columns: Mapping[str, str]
    skip_rules: tuple[Rule, ...]
    category_rules: tuple[Rule, ...]
    document: str


def parse(text: str, *, origin: str) -> Profile:
    """Read and check a profile document; InvalidInput names `origin` and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"{origin} is not a valid profile (TOML: {exc})") from exc
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key in ("columns", "skip_rows", "category_rules"):
            continue
        expected = LAYOUT_KEYS.get(key)
        if expected is None:
            known = ", ".join([*LAYOUT_KEYS, "columns", "skip_rows", "category_rules"])
            raise InvalidInput(f"{origin}: {key!r} is not a profile setting ({known})")
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise InvalidInput(f"{origin}: {key} must be a {expected.__name__}")
        values[key] = value
    if "delimiter" in values:
        if values["delimiter"] not in DELIMITER_NAMES:
            raise InvalidInput(f"{origin}: delimiter must be one of , ; tab |")
        values["delimiter"] = DELIMITER_NAMES[values["delimiter"]]
    if values.get("signs", SIGNS[0]) not in SIGNS:
        raise InvalidInput(f"{origin}: signs must be {' or '.join(SIGNS)}")
    if values.get("credits", CREDITS[0]) not in CREDITS:
        raise InvalidInput(f"{origin}: credits must be {' or '.join(CREDITS)}")
    if values.get("skip", 0) < 0:
        raise InvalidInput(f"{origin}: skip must be 0 or more")
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(
        isinstance(v, str | int) and not isinstance(v, bool) for v in columns.values()
    ):
        raise InvalidInput(f"{origin}: [columns] maps fields to header names")
    unknown = [key for key in columns if key not in COLUMN_ROLES]
    if unknown:
        raise InvalidInput(
            f"{origin}: [columns] has {', '.join(map(repr, unknown))}; fields are "
            f"{', '.join(COLUMN_ROLES)}"
        )
    return Profile(
        values=values,
        columns={key: str(value) for key, value in columns.items()},
        skip_rules=_rules(data.get("skip_rows", []), origin, "skip_rows", needs_category=False),
        category_rules=_rules(
            data.get("category_rules", []), origin, "category_rules", needs_category=True
        ),
        document=text,
    )


def _rules(items: Any, origin: str, table: str, *, needs_category: bool) -> tuple[Rule, ...]:
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise InvalidInput(f"{origin}: {table} must be [[{table}]] tables")
    rules = []
    for number, item in enumerate(items, start=1):
        pattern = item.get("match")
        category = item.get("category")
        column = item.get("column")
        extra = set(item) - {"match", "column", "category"}
        if (
            not isinstance(pattern, str)
            or not pattern
            or (column is not None and not isinstance(column, str))
            or (needs_category and not (isinstance(category, str) and category.strip()))
            or (not needs_category and category is not None)
            or extra
        ):
            keys = "match, column and category" if needs_category else "match and column"
            raise InvalidInput(f"{origin}: [[{table}]] number {number} takes {keys}")
        rules.append(rule(pattern, column=column, category=category))
    return tuple(rules)


def render(
    values: Mapping[str, Any],
    columns: Mapping[str, str],
    rules_document: str | None = None,
) -> str:
    """A profile document for these settings (rules copied from `rules_document`)."""
    lines = ["# budget import profile"]
    for key in LAYOUT_KEYS:
        value = values.get(key)
        if value is None or value is False:
            continue
        if key == "delimiter":
            value = "tab" if value == "\t" else value
        lines.append(f"{key} = {_toml(value)}")
    if columns:
        lines += ["", "[columns]"]
        lines += [f"{key} = {_toml(value)}" for key, value in columns.items()]
    if rules_document:
        data = tomllib.loads(rules_document)
        for table in ("skip_rows", "category_rules"):
            for item in data.get(table, []):
                lines += ["", f"[[{table}]]"]
                lines += [f"{key} = {_toml(value)}" for key, value in item.items()]
    return "\n".join(lines) + "\n"


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML string


def _check_name(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInput("a profile name must not be empty")
    if len(cleaned) > 50:
        raise InvalidInput(f"{cleaned!r} is longer than 50 characters")
    return cleaned


def save_profile(session: Session, *, user_email: str | None, name: str, document: str) -> bool:
    """Store `document` as the profile `name` (replacing it); True when it is new."""
    user = acting_user(session, user_email=user_email).user
    cleaned = _check_name(name)
    existing = session.scalars(
        select(ImportProfile)
        .where(ImportProfile.user_id == user.id, ImportProfile.name_key == name_key(cleaned))
        .with_for_update()
    ).first()
    if existing is not None:
        existing.document = document
        session.flush()
        return False
    session.add(ImportProfile(user_id=user.id, name=cleaned, document=document))
    session.flush()
    return True


def load_profile(session: Session, *, user_email: str | None, name: str) -> str:
    user = find_acting_user(session, user_email=user_email)
    document = session.scalars(
        select(ImportProfile.document).where(
            ImportProfile.user_id == user.id, ImportProfile.name_key == name_key(name)
        )
    ).first()
    if document is None:
        raise UnknownProfile(name)
    return document


def list_profiles(session: Session, *, user_email: str | None) -> list[str]:
    user = find_acting_user(session, user_email=user_email)
    return list(
        session.scalars(
            select(ImportProfile.name)
            .where(ImportProfile.user_id == user.id)
            .order_by(ImportProfile.name_key)
        )
    )


def delete_profile(session: Session, *, user_email: str | None, name: str) -> None:
    user = acting_user(session, user_email=user_email).user
    result = session.execute(
        delete(ImportProfile).where(
            ImportProfile.user_id == user.id, ImportProfile.name_key == name_key(name)
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise NotFound(f"no import profile named {name!r}")
