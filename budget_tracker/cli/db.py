"""`budget db check|upgrade|current|copy|grant`: health, migrations, revision, copying and
people's roles."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from budget_tracker.cli.output import dump_json, info, style
from budget_tracker.cli.portable import copy_command
from budget_tracker.cli.state import AppState

if TYPE_CHECKING:
    from budget_tracker.config import Settings

MARKS = {
    "pass": ("PASS", "green"),
    "fail": ("FAIL", "red"),
    "skip": ("SKIP", "yellow"),
    "warn": ("WARN", "yellow"),
}
REMEDIES = {
    "upgrade": ": run `budget db upgrade`",
    "roles": " (fine for one person; give each person a role with `budget db grant ROLE`)",
}
"""How to act on a step's finding (`health.Remedy`), after its detail."""


@click.group("db")
def db_group() -> None:
    """Check the database, migrate it, copy it, and show its schema revision.

    \b
    Example:
      budget db check
      budget db upgrade
      budget db copy --from local --to "$DATABASE_URL"
    """


db_group.add_command(copy_command)


@db_group.command("check")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format; json is for scripts.",
)
@click.pass_obj
@click.pass_context
def check(ctx: click.Context, state: AppState, fmt: str) -> None:
    """Run the deployment sanity sequence, one line per step.

    Configuration, the URL (password masked), pooled/direct endpoints, connection and
    SELECT 1 latency, TLS, server version, schema revision against the code's head, the
    tables, a create-and-read round trip (rolled back) and the pool. Exits 0 only when
    every step passes; otherwise with the first failure's code (3 unreachable, 4 schema,
    5 configuration).

    \b
    Example:
      budget db check
      budget db check --format json
    """
    from budget_tracker.services.health import check_database

    database = state.database
    database.migrate_sqlite = False  # a check reports the schema; it never changes it
    report = check_database(database)
    details = [step.detail + REMEDIES.get(step.remedy or "", "") for step in report.steps]
    if fmt == "json":
        shown = report.as_dict()
        for step, detail in zip(shown["steps"], details, strict=True):
            step["detail"] = detail
        click.echo(dump_json(shown))
    else:
        width = max(len(step.name) for step in report.steps)
        for step, detail in zip(report.steps, details, strict=True):
            mark, color = MARKS[step.status]
            click.echo(f"{style(mark, fg=color, bold=True)}  {step.name:<{width}}  {detail}")
    ctx.exit(report.exit_code)


@db_group.command("upgrade")
@click.pass_obj
def upgrade(state: AppState) -> None:
    """Migrate the database to this version's schema (alembic upgrade head).

    Runs over the direct URL (DATABASE_URL_UNPOOLED, or derived from a Neon -pooler
    host), never through the pooler. Safe to run twice or concurrently.

    \b
    Example:
      budget db upgrade
    """
    from budget_tracker.config import mask_url
    from budget_tracker.errors import ConfigError
    from budget_tracker.migrate import head_revision
    from budget_tracker.migrate import upgrade as migrate_to
    from budget_tracker.services.health import is_neon_pooled
    from budget_tracker.triage import diagnose

    settings = state.database.settings
    if is_neon_pooled(settings.migration_url):
        raise ConfigError(
            f"migrations would run through the pooler ({settings.migration_url.host}): set "
            "DATABASE_URL_UNPOOLED to the direct URL (the host without -pooler)"
        )
    variable = _migration_url_variable(settings)
    try:
        before = _current_revision(settings)
        head = head_revision()
        if before == head:
            info(f"{mask_url(settings.migration_url)} is already at revision {head} (head)")
            return
        migrate_to(settings.migration_url)
    except Exception as exc:
        error = None if state.debug else diagnose(exc, variable)
        if error is None:
            raise
        raise error from None
    info(
        f"upgraded {mask_url(settings.migration_url)} from revision {before or 'none'} "
        f"to {_current_revision(settings)} (head)"
    )


@db_group.command("current")
@click.pass_obj
def current(state: AppState) -> None:
    """Show the database's schema revision and this version's head.

    Prints the revision; exits 4 when it is not the head (run `budget db upgrade`).

    \b
    Example:
      budget db current
    """
    from budget_tracker.errors import SchemaNotMigrated
    from budget_tracker.migrate import head_revision
    from budget_tracker.schema_version import is_unknown_revision, newer_than_this_version

    revision = _current_revision(state.database.settings)
    head = head_revision()
    if revision == head:
        click.echo(f"{revision} (head)")
        return
    click.echo(revision or "none")
    if is_unknown_revision(revision):
        raise newer_than_this_version(str(revision))
    raise SchemaNotMigrated(
        f"the database is at revision {revision or 'none'}, this version's head is {head}: "
        "run `budget db upgrade`"
    )


@db_group.command("grant")
@click.argument("role")
@click.pass_obj
def grant(state: AppState, role: str) -> None:
    """Give the PostgreSQL role ROLE what the app needs, nothing more.

    Run it with the tables' owner's direct URL (DATABASE_URL_UNPOOLED). Creates the group
    role budget_members when missing, grants it the app's tables and sequences, and grants
    it to ROLE; row-level security then limits ROLE to the users linked to it (`budget
    user add --role`, `budget user link`) and the budgets shared with it. Safe to run
    again, e.g. after `budget db upgrade`.

    \b
    Example:
      budget db grant bob
    """
    from sqlalchemy.pool import NullPool

    from budget_tracker.config import mask_url
    from budget_tracker.engine import create_app_engine
    from budget_tracker.services.sharing import GROUP_ROLE, grant_role
    from budget_tracker.triage import diagnose

    settings = state.database.settings
    if settings.is_sqlite:
        grant_role_on_sqlite()
    engine = create_app_engine(settings, url=settings.migration_url, poolclass=NullPool)
    try:
        with engine.begin() as connection:
            owner = grant_role(connection, role)
    except Exception as exc:
        error = None if state.debug else diagnose(exc, _migration_url_variable(settings))
        if error is None:
            raise
        raise error from None
    finally:
        engine.dispose()
    info(
        f"granted {GROUP_ROLE} to {role} on {mask_url(settings.migration_url)} "
        f"(tables owned by {owner.name})"
    )


def grant_role_on_sqlite() -> None:
    from budget_tracker.errors import BudgetError

    raise BudgetError(
        "roles and row-level security are PostgreSQL features: a SQLite file is private "
        "to the account that owns it (0600)"
    )


def _migration_url_variable(settings: Settings) -> str:
    """The setting that holds the URL migrations use, for messages about it."""
    if settings.direct_url_derived:
        return "DATABASE_URL (its host without -pooler)"
    if "DATABASE_URL_UNPOOLED" in settings.sources:
        return "DATABASE_URL_UNPOOLED"
    if "DATABASE_URL" in settings.sources:
        return "DATABASE_URL"
    return "BUDGET_DB_PATH"


def _current_revision(settings: Settings) -> str | None:
    """The revision recorded in the database, read over the direct URL."""
    from sqlalchemy.pool import NullPool

    from budget_tracker.engine import create_app_engine
    from budget_tracker.migrate import current_revision
    from budget_tracker.schema_version import sqlite_revision

    path = settings.sqlite_path
    if path is not None:
        # Read with the standard library: never creates the file, and a file that is not
        # a database is one line.
        return sqlite_revision(path) if path.exists() else None
    engine = create_app_engine(settings, url=settings.migration_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return current_revision(connection)
    finally:
        engine.dispose()
