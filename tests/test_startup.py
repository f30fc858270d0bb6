"""Start-up stays light: `--help` imports no database library, a command only its module.

`budget --help` and every command's `--help` leave SQLAlchemy, psycopg2 and Alembic
unimported; `budget --help` imports no command module and not `logging`; a command
imports only the module that defines it (`LazyCommands`), and `add-expense` on a
migrated database imports no Alembic and nothing only other commands or refusals need.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import click.testing
import pytest

from budget_tracker.cli import BudgetGroup, main
from budget_tracker.cli.commands import ALL
from tests.cli_helpers import first_run
from tests.conftest import Backend

HEAVY = ("sqlalchemy", "psycopg2", "alembic")
COMMAND_MODULES = sorted({entry.module for entry in ALL.values()})

PROBE = """
import json, sys
from budget_tracker.cli import main
try:
    main(sys.argv[1:], prog_name="budget")
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def run_probe(args: list[str], env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    """Run `budget ARGS` in a new interpreter: its stdout and every module it imported."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    return result.stdout, set(json.loads(result.stderr.strip().splitlines()[-1]))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


def command_paths() -> list[list[str]]:
    """`[]`, every command and every subcommand (this loads every command module)."""
    ctx = click.Context(main)
    paths: list[list[str]] = [[]]
    for name in main.list_commands(ctx):
        command = main.get_command(ctx, name)
        assert command is not None
        paths.append([name])
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=ctx, info_name=name)
            paths += [[name, sub] for sub in command.list_commands(sub_ctx)]
    return paths


def test_command_paths_cover_every_subcommand() -> None:
    """The parametrization below must not silently lose the subcommands of groups."""
    paths = {" ".join(path) for path in command_paths()}
    assert {"add-expense", "user add", "category merge", "db upgrade", "export"} <= paths


@pytest.mark.parametrize("path", command_paths(), ids=lambda p: " ".join(p) or "budget")
def test_help_imports_no_database_library(path: list[str]) -> None:
    stdout, modules = run_probe([*path, "--help"])
    assert "Usage:" in stdout
    assert heavy(modules) == []


def test_top_level_help_imports_no_command_module() -> None:
    stdout, modules = run_probe(["--help"])
    for name in ALL:
        assert f"  {name} " in stdout
    assert sorted(modules & set(COMMAND_MODULES)) == []
    assert "logging" not in modules


def test_a_command_imports_only_its_own_module() -> None:
    _, modules = run_probe(["add-expense", "--help"])
    assert sorted(modules & set(COMMAND_MODULES)) == ["budget_tracker.cli.expenses"]


def test_add_expense_imports_only_what_it_needs(backend: Backend) -> None:
    first_run(backend)
    env = {**os.environ, **backend.env}
    stdout, modules = run_probe(["add-expense", "12.50", "Food", "Lunch"], env=env)
    assert stdout.startswith("Added expense ")
    assert heavy(modules) != []  # the probe did reach the database
    assert sorted(m for m in modules if m.split(".")[0] == "alembic") == []
    ours = {m for m in modules if m.startswith("budget_tracker.")}
    assert sorted(ours & set(COMMAND_MODULES)) == ["budget_tracker.cli.expenses"]
    assert sorted(m for m in ours if m.startswith("budget_tracker.services.")) == [
        "budget_tracker.services.budgets",
        "budget_tracker.services.categories",
        "budget_tracker.services.expenses",
        "budget_tracker.services.users",
    ]
    assert "budget_tracker.migrate" not in modules
    # Needed only by refusals ("did you mean"), the first run (getpass) or SQLite.
    unneeded = {"difflib", "getpass"} | ({"sqlite3"} if backend.name == "postgresql" else set())
    assert sorted(modules & unneeded) == []


@pytest.mark.parametrize("name", sorted(ALL))
def test_registry_matches_the_command(name: str) -> None:
    """Each entry loads a command of that name whose short help is the registry's."""
    command = main.commands[name]
    assert command.name == name
    assert ALL[name].short_help == command.get_short_help_str(limit=10_000)


@pytest.mark.parametrize("width", [50, 60, 80, 100])
def test_help_lists_commands_as_click_would(width: int) -> None:
    """The lazy listing is click's own `Group.format_commands`, at wide and narrow widths."""
    group = BudgetGroup("budget")  # nothing loaded yet: the listing uses the registry
    ctx = click.Context(group, info_name="budget")
    lazy = click.HelpFormatter(width=width)
    group.format_commands(ctx, lazy)
    stock = click.HelpFormatter(width=width)
    click.Group.format_commands(group, ctx, stock)  # loads every command to ask it
    assert lazy.getvalue() == stock.getvalue()
    assert "add-expense" in lazy.getvalue()


def test_unknown_command_suggests_lazy_names() -> None:
    result = click.testing.CliRunner().invoke(main, ["add-expens"])
    assert result.exit_code == 2
    assert "Did you mean one of: 'add-expense', 'edit-expense', 'expenses'?" in result.stderr


def test_exit_skips_the_final_garbage_collections() -> None:
    """`main` leaves the heap to the OS: `gc.freeze()` runs at exit, after every handler."""
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0))\n"
        "from budget_tracker.cli import main\n"
        "main(['--version'], prog_name='budget')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["budget, version 0.1.0", "frozen True"]


def test_python_dash_m_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "budget_tracker", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("budget, version ")
