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
from types import TracebackType
from typing import Any, NoReturn

import click

from budget_tracker import __version__
from budget_tracker.cli.commands import ALL, Entry
from budget_tracker.cli.state import AppState
from budget_tracker.errors import EXIT_BAD_INPUT, EXIT_REFUSED, BudgetError, InvalidInput

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CommandContext(click.Context):
    """The context every `budget` command runs in: a domain error leaving the command
    notes where it happened (`AppState.failed_in`), so that its message can name the
    options by this command's flags once the contexts are gone (`wording.for_people`)."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if isinstance(exc_value, BudgetError):
            state = self.find_object(AppState)
            if state is not None and state.failed_in is None:
                state.failed_in = self  # the innermost context leaves first
        return super().__exit__(exc_type, exc_value, tb)


def _in_command_contexts(command: click.Command) -> click.Command:
    """`command` (and every subcommand of a group) set to run in a `CommandContext`."""
    command.context_class = CommandContext
    if isinstance(command, click.Group):
        for subcommand in command.commands.values():
            _in_command_contexts(subcommand)
    return command


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported from its module when first looked up.

    Listing the names (`budget --help`, "did you mean ...?") imports no command module;
    looking one up imports only the module that defines it. click accepts any mutable
    mapping as a group's `commands`, so its own lookup, listing and suggestions, and
    `add_command`, work unchanged. Each runs in a `CommandContext`.
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
            self._loaded[name] = _in_command_contexts(command)
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = _in_command_contexts(command)

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

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # Past click's own handler, which would exit 1 for it: a closed pipe is no error.
            raise _PipeClosed() from None

    def main(
        self,
        args: Any = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        state = extra.pop("obj", None) or AppState()
        state.failed_in = None
        prog_name = prog_name or "budget"  # also under `python -m budget_tracker`
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, obj=state, **extra)
        _leave_heap_to_the_os_at_exit()
        argv = list(sys.argv[1:] if args is None else args)
        try:
            _refuse_unusable_arguments(argv)
            _load_env_file()
            result = super().main(argv, prog_name, complete_var, False, obj=state, **extra)
            _flush_stdout()
        except (BrokenPipeError, _PipeClosed):
            _stdout_gone()
            result = 0
        except click.exceptions.BadParameter as exc:
            if isinstance(exc, click.exceptions.MissingParameter):
                _usage_error(exc)
            _fail(exc.format_message(), exc.exit_code)
        except click.exceptions.UsageError as exc:
            _usage_error(exc)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except click.exceptions.Abort:
            _fail("aborted", EXIT_REFUSED)
        except BudgetError as exc:
            if state.debug:
                _show_traceback(exc)
            _fail(_for_people(exc, state), exc.exit_code)
        except Exception as exc:
            from budget_tracker.triage import diagnose

            error = None if state.debug else diagnose(exc)
            if error is None and not state.debug and _out_of_range(exc):
                _fail("a date or number is outside the range budget supports", EXIT_BAD_INPUT)
            if error is None:
                _show_traceback(exc)
                sys.exit(EXIT_REFUSED)
            _fail(str(error), error.exit_code)
        finally:
            state.close()
        sys.exit(result if isinstance(result, int) else 0)


def _out_of_range(exc: BaseException) -> bool:
    """The last line of defence for values past what `datetime` or an integer column holds
    (a date beyond 9999, a month after 9999-12): bad input, said in one line. Parameter
    types refuse such values first with a better message wherever they are known."""
    if isinstance(exc, OverflowError):
        return True
    return (
        isinstance(exc, ValueError)
        and str(exc).startswith("year ")
        and (str(exc).endswith(" is out of range"))
    )


class _PipeClosed(Exception):
    """The reader of stdout went away (`budget expenses | head`)."""


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


def _fail(message: str, code: int) -> NoReturn:
    from budget_tracker.redact import scrub

    click.echo(f"Error: {scrub(message)}", err=True)
    sys.exit(code)


def _for_people(exc: BudgetError, state: AppState) -> str:
    """A domain error's message in the command line's words: the options it names as the
    failed command's flags, and the command or flag that helps, if any.

    The services' errors carry data and plain wording; flags exist only on this side.
    """
    from budget_tracker.cli.wording import for_people

    return for_people(exc, state.failed_in)


def _load_env_file() -> None:
    """Read `.env` before the options, so its values count for options' environment
    variables too (`--user` / BUDGET_USER); only costs a `stat` when there is none."""
    from budget_tracker.config import load_dotenv_file

    load_dotenv_file()


def _show_traceback(exc: BaseException) -> None:
    """`--debug`: the full traceback, with passwords masked like every other output."""
    import traceback

    from budget_tracker.redact import scrub

    click.echo(scrub("".join(traceback.format_exception(exc))).rstrip("\n"), err=True)


def _usage_error(exc: click.exceptions.UsageError) -> NoReturn:
    """click's usage line, `Try 'budget COMMAND -h' for help.`, then the one-line error.

    Used for how a command is called (a missing argument, an unknown option or command);
    a value that is given but invalid is one line (`BadParameter`), like every refusal.
    """
    ctx = exc.ctx
    if ctx is not None:
        click.echo(ctx.get_usage(), err=True)
        click.echo(f"Try '{ctx.command_path} -h' for help.\n", err=True)
    _fail(exc.format_message(), exc.exit_code)


def _refuse_unusable_arguments(argv: list[str]) -> None:
    """Arguments (and `BUDGET_USER`) must be text: bytes that are not UTF-8 are bad input.

    Python hands such bytes over as lone surrogates, which no database driver, file or
    terminal accepts; stopping here keeps them from reaching any of those. A NUL character
    cannot come from a shell, but can from a program calling `main` with a list: no file
    name or database value may hold one.
    """
    import os

    named = [("argument", arg) for arg in argv]
    named.append(("BUDGET_USER", os.environ.get("BUDGET_USER", "")))
    for label, value in named:
        if _undecodable(value):
            raise InvalidInput(f"{label} {_shown(value)} is not valid UTF-8 text")
        if "\x00" in value:
            raise InvalidInput(f"{label} {_shown(value)} contains a NUL character")


def _undecodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _shown(value: str) -> str:
    """`value` quoted, with undecodable bytes as `\\xff` escapes (never a raw surrogate)."""
    text = value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "'" + text.replace("\x00", "\\x00") + "'"


def _flush_stdout() -> None:
    """Flush now, so that a reader that went away (`| head`) is noticed inside `main`."""
    import contextlib

    with contextlib.suppress(ValueError):  # already closed
        sys.stdout.flush()


def _stdout_gone() -> None:
    """The reader closed the pipe: not an error (`budget expenses | head`), exit quietly.

    Python's documented recipe: point stdout at /dev/null so that the interpreter's own
    flush at exit does not raise again.
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (tests' captured stdout)
        pass


@click.group("budget", cls=BudgetGroup, context_settings=CONTEXT_SETTINGS)
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
