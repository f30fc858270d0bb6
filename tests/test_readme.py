"""The README stays true: every command and option is documented, and its Python example runs."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest

from budget_tracker.cli import main
from budget_tracker.cli.commands import ALL
from tests.conftest import Backend

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")


def leaf_commands() -> Iterator[tuple[str, click.Command]]:
    for name in ALL:
        command = main.commands[name]
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, command


COMMANDS = sorted(leaf_commands())


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[name for name, _ in COMMANDS])
def test_every_command_and_option_is_in_the_readme(name: str, command: click.Command) -> None:
    assert f"budget {name}" in README or f"`{name}" in README, name
    for param in command.params:
        if isinstance(param, click.Option):
            for option in param.opts:
                if option.startswith("--") and option != "--help":
                    assert option in README, (name, option)


def test_top_level_options_are_in_the_readme() -> None:
    for param in main.params:
        for option in param.opts:
            if option.startswith("--") and option != "--help":
                assert option in README, option


def python_snippet() -> str:
    section = README.split("## Use from Python", 1)[1].split("\n## ", 1)[0]
    blocks: list[str] = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    return blocks[0]


def test_the_use_from_python_snippet_runs(backend: Backend, tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(python_snippet(), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, **backend.env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "added expense 1",
        "2026-03-02 Food 12.50 Lunch",
    ]
    assert backend.scalar("SELECT count(*) FROM expenses") == 1


# --- every JSON example ------------------------------------------------------------------

JSON_EXAMPLE = re.compile(
    r"`budget ([^`]*--format json[^`]*)`[^\n]*\n(?:[^\n]+\n)*?\n```json\n(.*?)```", re.DOTALL
)
EXAMPLES = [(command, json.loads(body)) for command, body in JSON_EXAMPLE.findall(README)]


def json_listings() -> list[str]:
    """Every listing and report: the commands whose --format offers json beside a table."""
    names = []
    for name, command in COMMANDS:
        for param in command.params:
            choices = getattr(param.type, "choices", ())
            if "--format" in getattr(param, "opts", ()) and {"json", "table"} <= set(choices):
                names.append(name)
    return names


def test_every_listing_and_report_has_a_json_example() -> None:
    documented = {command for command, _ in EXAMPLES}
    for name in json_listings():
        if name == "db check":  # a health check's steps, described in its own section
            continue
        assert any(command.startswith(f"{name} ") for command in documented), name
    for variant in ("report --month", "report --by month", "report --matrix"):
        assert any(command.startswith(variant) for command in documented), variant


def seed_for_examples(backend: Backend) -> None:
    """A little of everything the examples show: two users, a share, budget history, a
    transfer, expenses and income in February 2028, an import profile."""
    for args in (
        ["user", "add", "alice@example.com", "--name", "Alice"],
        ["user", "add", "bob@example.com", "--name", "Bob"],
        ["category", "add", "Food", "--budget", "300", "--color", "#2E7D32"],
        ["category", "add", "Rent", "--budget", "900"],
        ["category", "set-budget", "Food", "350", "--from", "2028-03"],
        ["category", "set-budget", "Food", "500", "--month", "2028-12"],
        ["category", "set-rollover", "Food", "on", "--from", "2028-03"],
        ["transfer", "40", "--from", "Rent", "--to", "Food", "--month", "2028-02"],
        ["add-expense", "350.25", "Food", "Groceries", "--date", "2028-02-10"],
        ["add-expense", "900", "Rent", "February rent", "--date", "2028-02-01"],
        ["add-income", "3000", "Salary", "--date", "2028-02-25"],
        ["share", "bob@example.com", "--read-only"],
        ["import", "june.csv", "--save-profile", "sparkasse"],
    ):
        result = backend.invoke(args)
        assert result.exit_code == 0, (args, result.stderr)


def conforms(documented: Any, real: Any, where: str) -> None:
    """The real output has exactly the documented keys, at every level, and the same value
    types (null stands for a value that may be absent, so it matches any)."""
    if documented is None or real is None:
        return
    assert type(documented) is type(real), (where, documented, real)
    if isinstance(documented, dict):
        assert set(documented) == set(real), (where, sorted(documented), sorted(real))
        for key in documented:
            conforms(documented[key], real[key], f"{where}.{key}")
    elif isinstance(documented, list):
        assert bool(documented) == bool(real), (where, "empty on one side")
        for item in documented:
            conforms(item, real[0], f"{where}[]")
        for item in real:
            conforms(documented[0], item, f"{where}[]")


@pytest.mark.parametrize(("command", "documented"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_json_example_has_the_real_keys(
    backend: Backend,
    command: str,
    documented: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    header = "date,amount,category,description\n"
    (tmp_path / "lunch.csv").write_text(f"{header}2028-02-11,12.50,Food,Lunch\n", encoding="utf-8")
    (tmp_path / "june.csv").write_text(f"{header}2027-06-01,3.00,Food,Tea\n", encoding="utf-8")
    seed_for_examples(backend)  # in tmp_path: it imports june.csv
    result = backend.invoke(shlex.split(command))
    assert result.exit_code == 0, result.stderr
    conforms(documented, json.loads(result.stdout), command)
