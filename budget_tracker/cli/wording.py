"""The services' refusals and notes in the command line's words: flags, and what to run.

The services never spell the command line. A message names an option of the call by its
Python keyword (`errors.option("date_format")`); here it becomes the flag of the click
parameter of that name in the running command or a group around it (`--date-format`), so
flags are spelled only in the click decorators. A refusal that calls for another command
is an error class of its own carrying its data (`errors.UnknownUser`); what to run about
it is written here.
"""

from __future__ import annotations

import functools

import click

from budget_tracker.errors import (
    BudgetBelowZero,
    BudgetError,
    CategoryInUse,
    InsufficientBudget,
    NoCategories,
    NotTableOwner,
    RoleHasOwnUser,
    SourceNotMigrated,
    UnknownCategories,
    UnknownPerson,
    UnknownProfile,
    UnknownTransfer,
    UnknownUser,
    UserNotChosen,
    Wording,
)

_WHAT_TO_DO: dict[type[BudgetError], str] = {
    UnknownPerson: ": see `budget user list`",
    UnknownUser: ": see `budget user list`, or add one with `budget user add EMAIL --name NAME`",
    RoleHasOwnUser: "; choose another with --user EMAIL or BUDGET_USER (`budget user default` "
    "sets the default of the tables' owner)",
    NoCategories: "; add one with `budget category add NAME`",
    CategoryInUse: ": use --move-to OTHER to move them, or `budget category merge`",
    UnknownTransfer: ": see `budget transfers`",
    UnknownProfile: " (see `budget import-profile list`)",
    NotTableOwner: ": run `budget db grant` with the owner's direct URL (DATABASE_URL_UNPOOLED)",
    SourceNotMigrated: ": run `budget db upgrade` on it first",
    InsufficientBudget: " (--allow-overdraw moves it anyway)",
    BudgetBelowZero: " (--allow-overdraw does it anyway)",
}
"""What to do, added to the message of each refusal that calls for another command or a
flag the service cannot know about."""


def for_people(exc: BudgetError, ctx: click.Context | None) -> str:
    """A refusal's one-line message at the command line; `ctx` is the context of the
    command that failed (its flags spell the options the message names)."""
    if isinstance(exc, UserNotChosen):
        return (
            "there are several users: choose one with --user EMAIL or the BUDGET_USER "
            "variable, or for every command with `budget user default EMAIL` "
            "(see `budget user list`)"
        )
    if isinstance(exc, UnknownCategories):
        return (
            f"{exc.found}; add them with `budget category add NAME` or import with "
            f"{flag(ctx, 'create_categories')}; nothing was imported"
        )
    for kind in type(exc).__mro__:
        what_to_do = _WHAT_TO_DO.get(kind)
        if what_to_do is not None:
            return said(exc.wording, ctx) + what_to_do
    return said(exc.wording, ctx)


def said(text: str | Wording, ctx: click.Context | None = None) -> str:
    """`text` with the options it names spelled as flags of `ctx` (by default, the
    command running now)."""
    if isinstance(text, str):
        return text
    if ctx is None:
        ctx = click.get_current_context(silent=True)
    return text.render(functools.partial(flag, ctx))


def flag(ctx: click.Context | None, keyword: str) -> str:
    """The flag of the option named `keyword` in `ctx`'s command or a group around it
    (`--from` for `date_from`); the keyword itself when none has such an option."""
    while ctx is not None:
        for param in ctx.command.params:
            if param.name == keyword and isinstance(param, click.Option):
                return _longest(param.opts)
        ctx = ctx.parent
    return keyword


def _longest(names: list[str]) -> str:
    """`--verbose` of `-v`/`--verbose`: the spelling a message reads best."""
    return max(names, key=len)
