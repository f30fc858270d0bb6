"""Users: who a command acts for, and the zero-setup first run."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budget_tracker.errors import InvalidInput, NotFound
from budget_tracker.models import Category, User, normalize_email

DEFAULT_EMAIL = "me@localhost"
STARTER_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("Food", "#E67E22"),
    ("Transport", "#3498DB"),
    ("Entertainment", "#9B59B6"),
    ("Utilities", "#16A085"),
)


@dataclass(frozen=True)
class FirstRun:
    """What the first command on an empty database created (the CLI says so once)."""

    user: User
    categories: tuple[str, ...]


def resolve_user(session: Session, *, email: str | None) -> User:
    """The acting user: the one named, else the only one. Refuses when it is ambiguous."""
    if email:
        user = session.scalar(select(User).where(User.email == normalize_email(email)))
        if user is None:
            raise NotFound(
                f"no user {normalize_email(email)!r}: see `budget user list`, or add one "
                "with `budget user add EMAIL --name NAME`"
            )
        return user
    users = session.scalars(select(User).order_by(User.id).limit(2)).all()
    if len(users) == 1:
        return users[0]
    if not users:
        raise NotFound("there are no users yet: add one with `budget user add EMAIL --name NAME`")
    raise InvalidInput(
        "there are several users: choose one with --user EMAIL or the BUDGET_USER variable "
        "(see `budget user list`)"
    )


def bootstrap_if_empty(session: Session) -> FirstRun | None:
    """On a database with no users, create the local default user and starter categories."""
    if session.scalar(select(func.count()).select_from(User)):
        return None
    user = User(email=DEFAULT_EMAIL, name=_local_name())
    session.add(user)
    session.flush()
    for name, color in STARTER_CATEGORIES:
        session.add(Category(user_id=user.id, name=name, color=color, monthly_budget=Decimal(0)))
    session.flush()
    return FirstRun(user=user, categories=tuple(name for name, _ in STARTER_CATEGORIES))


def _local_name() -> str:
    try:
        return getpass.getuser()[:100] or "Me"
    except (KeyError, OSError):
        return "Me"


def acting_user(session: Session, *, email: str | None) -> tuple[User, FirstRun | None]:
    """The user a command acts for; on an empty database, first create the local default.

    Returns what a first run created (or None) so the CLI can say so once.
    """
    first_run = None if email else bootstrap_if_empty(session)
    if first_run is not None:
        return first_run.user, first_run
    return resolve_user(session, email=email), None
