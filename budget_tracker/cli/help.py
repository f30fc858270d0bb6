"""`budget help [COMMAND]`: the same text as `budget [COMMAND] --help`."""

from __future__ import annotations

import click


@click.command("help")
@click.argument("command", nargs=-1)
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show the help of budget or of one COMMAND.

    A subcommand is named after its group: `budget help category add`.

    \b
    Example:
      budget help
      budget help add-expense
    """
    top = ctx.find_root()
    current: click.Command = top.command
    current_ctx = top
    for name in command:
        sub = current.get_command(current_ctx, name) if isinstance(current, click.Group) else None
        if sub is None:
            raise click.UsageError(f"No such command {' '.join(command)!r}.", ctx)
        current_ctx = click.Context(sub, info_name=name, parent=current_ctx)
        current = sub
    click.echo(current.get_help(current_ctx))
