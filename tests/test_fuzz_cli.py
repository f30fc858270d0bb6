"""Every command, driven with generated arguments: one line and a documented exit code.

Hypothesis builds invocations of every command in the registry (`cli/commands.py`, groups
included) from the command's own options and arguments, filled with hostile values: odd
Unicode, control characters, empty strings, huge and negative numbers, dates and months
at the edges. For each it asserts that there is no traceback, that the exit code is one
of the documented ones, and that a refused command wrote nothing.

The CI budget is small (`DEFAULT_EXAMPLES` per backend, a fixed seed). For a long run:

    BUDGET_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest tests/test_fuzz_cli.py

(random seeds; a failure prints the invocation that caused it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import click
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budget_tracker.cli import main
from budget_tracker.cli.commands import ALL
from budget_tracker.errors import (
    EXIT_BAD_INPUT,
    EXIT_CONFIG,
    EXIT_DB_UNAVAILABLE,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_SCHEMA,
)
from tests.cli_helpers import ok
from tests.conftest import Backend

DEFAULT_EXAMPLES = 120
EXAMPLES = int(os.environ.get("BUDGET_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))
LONG_RUN = "BUDGET_FUZZ_EXAMPLES" in os.environ
DOCUMENTED_EXITS = {EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_DB_UNAVAILABLE, EXIT_SCHEMA}
# `db upgrade` and `db check` change or probe the deployment, not the data: not fuzzed.
SKIPPED = {"db upgrade", "db check"}


def leaf_commands() -> Iterator[tuple[str, click.Command]]:
    """Every runnable command, by its full name (`category add`), from the registry."""
    for name in ALL:
        command = main.commands[name]
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                yield f"{name} {sub_name}", sub
        else:
            yield name, command


COMMANDS = sorted((name, cmd) for name, cmd in leaf_commands() if name not in SKIPPED)

HOSTILE = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "12.50",
    "1e3",
    "nan",
    "-",
    "--",
    "99999999.99",
    "100000000",
    "9" * 25,
    str(2**63),
    str(2**64 + 1),
    "9999-12-31",
    "0001-01-01",
    "9999-12",
    "0001-05",
    "2026-02-30",
    "today",
    "Food",
    "food",
    "Ｆｏｏｄ",
    "١٢",
    "１２",
    "12\u00a0",
    "a\x00b",
    "line\nbreak",
    "\x1b[31mred\x1b[0m",
    "zero\u200bwidth",
    "\u202eevil",
    "x" * 300,
    "me@localhost",
    "@",
    "a@b",
    "#zzzzzz",
    "#FF0000",
    "%s'; DROP TABLE expenses; --",
    "😀",
]
VALUES = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=30),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)


def invocations(name: str, command: click.Command) -> st.SearchStrategy[list[str]]:
    """Argument lists for `command`: its options (with generated values) and positionals."""
    options: list[tuple[str, bool]] = []
    positionals = 0
    for param in command.params:
        if isinstance(param, click.Option):
            if param.hidden or "--help" in param.opts:
                continue
            options.append((max(param.opts, key=len), param.is_flag or param.count))
        else:
            positionals += 1 if param.nargs == 1 else 2

    def option(choice: tuple[str, bool]) -> st.SearchStrategy[list[str]]:
        flag, bare = choice
        return st.just([flag]) if bare else VALUES.map(lambda value: [flag, value])

    chosen = (
        st.lists(st.sampled_from(options).flatmap(option), max_size=3) if options else st.just([])
    )

    def assemble(parts: tuple[list[str], list[list[str]], bool]) -> list[str]:
        positional, chosen_options, options_first = parts
        flat = [token for pair in chosen_options for token in pair]
        return [*name.split(), *(flat + positional if options_first else positional + flat)]

    return st.tuples(
        st.lists(VALUES, min_size=0, max_size=positionals + 1), chosen, st.booleans()
    ).map(assemble)


ANY_INVOCATION = st.sampled_from(COMMANDS).flatmap(lambda entry: invocations(*entry))


def seed(backend: Backend) -> None:
    ok(backend.invoke(["add-expense", "12.50", "Food", "Lunch", "--date", "2026-03-02"]))
    ok(backend.invoke(["category", "set-budget", "Food", "100"]))
    ok(backend.invoke(["transfer", "5", "--from", "Food", "--to", "Transport"]))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not LONG_RUN,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(args=ANY_INVOCATION)
def test_no_command_crashes_or_writes_on_refusal(backend: Backend, args: list[str]) -> None:
    if backend.scalar("SELECT count(*) FROM users") == 0:
        seed(backend)
    before = backend.snapshot()
    result = backend.invoke(args, input="")
    assert "Traceback" not in result.stderr, (args, result.stderr)
    assert result.exit_code in DOCUMENTED_EXITS | {EXIT_CONFIG}, (args, result.stderr)
    if result.exit_code != EXIT_OK:
        assert backend.snapshot() == before, (args, result.stderr)
        # One line, or click's usage block ending in one line.
        assert result.stderr.count("Error: ") == 1, (args, result.stderr)


def test_every_registered_command_is_fuzzed() -> None:
    names = {name for name, _ in COMMANDS}
    assert {name for name in ALL if name != "db"} <= {name.split()[0] for name in names}
    assert "user default" in names and "category merge" in names
