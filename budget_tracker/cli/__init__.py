"""The `budget` command line: a thin click layer over the services.

This package imports only click and light modules at start-up: each command's module is
imported when that command runs (`LazyCommands`, from the list in `commands.py`), and
SQLAlchemy, psycopg2 and Alembic are imported inside command bodies, so `budget --help`
stays fast. Every error that reaches the top is turned into one line on stderr and a
documented exit code (`budget_tracker.errors`); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import atexit
import gc
import sys
from collections.abc import Iterator, Mapping, MutableMapping
from gettext import gettext as _
from typing import Any

import click

from budget_tracker import __version__
from budget_tracker.cli.commands import ALL, Entry
from budget_tracker.cli.state import AppState
from budget_tracker.errors import EXIT_REFUSED, BudgetError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported from its module when first looked up.

    Listing the names (`budget --help`, "did you mean ...?") imports no command module;
    looking one up imports only the module that defines it. click accepts any mutable
    mapping as a group's `commands`, so its own lookup, listing and suggestions, and
    `add_command`, work unchanged.
    """

    def __init__(self, entries: Mapping[str, Entry]) -> None:
        self._entries = dict(entries)
        self._loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self._loaded.get(name)
        if command is None:
            import importlib

            entry = self._entries[name]
            command = getattr(importlib.import_module(entry.module), entry.attribute)
            if not isinstance(command, click.Command):
                raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
            self._loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        known = self._entries.pop(name, None) is not None
        if self._loaded.pop(name, None) is None and not known:
            raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        yield from self._entries
        yield from (name for name in self._loaded if name not in self._entries)

    def __len__(self) -> int:
        return len(self._entries.keys() | self._loaded.keys())

    def summary(self, name: str) -> click.Command:
        """The command itself once loaded; until then a stand-in with the same short help.

        The stand-in's help is the registry's first sentence, which click shortens to a
        given width exactly as it shortens the real docstring.
        """
        loaded = self._loaded.get(name)
        if loaded is not None:
            return loaded
        return click.Command(name, help=self._entries[name].short_help)


class BudgetGroup(click.Group):
    """The top-level group: lazily loaded commands; every failure is one line and a code."""

    commands: LazyCommands

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = LazyCommands(ALL)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """click's `Group.format_commands`, with short help that imports no command module."""
        shown: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            command = self.commands.summary(name)
            if not command.hidden:
                shown.append((name, command))
        if not shown:
            return
        # Allow for 3 times the default spacing, as click does.
        limit = formatter.width - 6 - max(len(name) for name, _command in shown)
        with formatter.section(_("Commands")):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in shown])

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        state = extra.pop("obj", None) or AppState()
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, obj=state, **extra)
        _leave_heap_to_the_os_at_exit()
        try:
            result = super().main(args, prog_name, complete_var, False, obj=state, **extra)
        except click.exceptions.UsageError as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", EXIT_REFUSED)
        except BudgetError as exc:
            if state.debug:
                raise
            _fail(str(exc), exc.exit_code)
        except Exception as exc:
            if state.debug:
                raise
            from budget_tracker.triage import diagnose

            error = diagnose(exc)
            if error is None:
                raise
            _fail(str(error), error.exit_code)
        finally:
            state.close()
        sys.exit(result if isinstance(result, int) else 0)


def _leave_heap_to_the_os_at_exit() -> None:
    """Skip the interpreter's garbage collections at exit: the process is about to end.

    When Python shuts down it runs full collections over every object still alive, and a
    command that used SQLAlchemy has tens of thousands (its modules, our models, the
    dialect): on the benchmark machine that was about a quarter of `budget add-expense`'s
    CPU time (and several ms of `budget --help`'s), spent only to free memory the OS
    reclaims anyway. `gc.freeze()` as the last exit handler (registered first, so run
    last) moves them out of the collector's sight. Nothing is lost: resources are closed
    explicitly before that (the database in `BudgetGroup.main`'s `finally`, files by their
    `with` blocks), atexit handlers such as logging's flush still run, and objects are
    still freed by reference counting; only objects kept alive by reference cycles are
    left for the OS to reclaim with the rest of the process.
    """
    global _exit_gc_skipped
    if not _exit_gc_skipped:
        atexit.register(gc.freeze)
        _exit_gc_skipped = True


_exit_gc_skipped = False


def _fail(message: str, code: int) -> None:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


@click.group(cls=BudgetGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="budget")
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.option(
    "-v", "--verbose", count=True, help="Log connection health and retries to stderr (-vv: more)."
)
@click.pass_obj
def main(state: AppState, debug: bool, verbose: int) -> None:
    """Track spending against monthly category budgets.

    Runs on a local SQLite file with no setup, or on PostgreSQL / Neon when DATABASE_URL
    is set (see `budget db check`).

    \b
    Example:
      budget add-expense 12.50 Food "Lunch"
      budget report
    """
    state.debug = debug
    state.set_verbosity(verbose)
