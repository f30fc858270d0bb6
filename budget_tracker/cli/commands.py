"""The list of top-level commands and groups, one module per capability."""

from __future__ import annotations

import click

ALL: list[click.Command] = []
