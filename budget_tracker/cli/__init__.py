"""The `budget` command line: a thin click layer over the services.

This package imports only click and light modules at start-up: SQLAlchemy, psycopg2 and
Alembic are imported inside command bodies, so `budget --help` stays fast. Every error
that reaches the top is turned into one line on stderr and a documented exit code
(`budget_tracker.errors`); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

from budget_tracker import __version__
from budget_tracker.cli.state import AppState
from budget_tracker.errors import EXIT_REFUSED, BudgetError

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BudgetGroup(click.Group):
    """A group whose `main` turns every failure into one line and an exit code."""

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
    level = logging.ERROR
    if verbose == 1:
        level = logging.INFO
    elif verbose > 1:
        level = logging.DEBUG
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(message)s")
    logging.getLogger("budget_tracker").setLevel(level)


def _register() -> None:
    """Attach the command modules. Each imports only click and light helpers."""
    from budget_tracker.cli import commands

    for command in commands.ALL:
        main.add_command(command)


_register()
