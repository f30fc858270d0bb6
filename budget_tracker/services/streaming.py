"""Read a large result in fixed batches: flat memory, few round trips.

On PostgreSQL `stream_results` declares a server-side cursor (transaction-scoped, so it
is safe through PgBouncer in transaction mode) and every batch is one `FETCH` round trip.
SQLAlchemy fetches one row first and then batches of `yield_per`; a batch shorter than
asked for means the cursor is exhausted, so we stop there instead of paying one more
round trip for an empty `FETCH`. A result smaller than one batch therefore costs DECLARE,
FETCH 1, FETCH, CLOSE. On SQLite the rows are read lazily from the file either way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Executable
from sqlalchemy.orm import Session

BATCH_ROWS = 10_000
"""Rows per round trip: 10,000 export rows (the widest) hold a few MB, and a year of a
busy user's expenses arrives in a handful of fetches instead of dozens."""


def stream_rows(
    session: Session, statement: Executable, *, batch: int = BATCH_ROWS
) -> Iterator[Any]:
    """The statement's rows (`Row`s), fetched `batch` at a time, never all held at once."""
    # Core execution on the session's connection (same transaction): the ORM's result
    # would refill a short batch from the next fetch before handing it over, costing the
    # empty FETCH this saves. The rows are the same; column types still apply.
    result = session.connection().execute(
        statement, execution_options={"stream_results": True, "yield_per": batch}
    )
    with result:
        for partition in result.partitions():
            yield from partition
            if len(partition) < batch:
                break  # a short batch is the last one
