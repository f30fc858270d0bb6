"""The README stays true: every command and option is documented, and its Python example runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

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
