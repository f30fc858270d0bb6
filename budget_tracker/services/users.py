"""Users: who a command acts for, and the zero-setup first run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import ColumnElement, FromClause, exists, func, or_, select, update
from sqlalchemy.orm import Session

from budget_tracker.errors import Conflict, InvalidInput, NotFound
from budget_tracker.models import Category, Expense, User, normalize_email

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


def _named_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(
            f"no user {normalize_email(email)!r}: see `budget user list`, or add one "
            "with `budget user add EMAIL --name NAME`"
        )
    return user


def default_user_condition(users: FromClause | None = None) -> ColumnElement[bool]:
    """SQL: this `users` row is the one a command acts for when none is named.

    The user chosen with `budget user default EMAIL`, else the only user there is. The
    one rule for every service, including the single-statement hot paths that find the
    user inside a larger query.
    """
    table = User.__table__ if users is None else users
    other = User.__table__.alias("other_user")
    return or_(table.c.is_default, ~exists().where(other.c.id != table.c.id))


def _default_candidates(session: Session) -> Sequence[User]:
    """The default user first, then the others by id: enough rows to decide, in one query."""
    return session.scalars(select(User).order_by(User.is_default.desc(), User.id).limit(2)).all()


def _default_user(users: Sequence[User]) -> User:
    if users[0].is_default or len(users) == 1:
        return users[0]
    raise InvalidInput(
        "there are several users: choose one with --user EMAIL or the BUDGET_USER "
        "variable, or for every command with `budget user default EMAIL` "
        "(see `budget user list`)"
    )


def create_first_user(session: Session, *, email: str | None = None) -> FirstRun:
    """The zero-setup first run: the default user (`email`, else the local one) and the
    starter categories."""
    user = User(email=email or DEFAULT_EMAIL, name=_local_name(), is_default=True)
    session.add(user)
    session.flush()
    for name, color in STARTER_CATEGORIES:
        session.add(Category(user_id=user.id, name=name, color=color, monthly_budget=Decimal(0)))
    session.flush()
    return FirstRun(user=user, categories=tuple(name for name, _ in STARTER_CATEGORIES))


def _local_name() -> str:
    import getpass  # only the first run names the default user

    try:
        return getpass.getuser()[:100] or "Me"
    except (KeyError, OSError):
        return "Me"


def acting_user(session: Session, *, user_email: str | None) -> tuple[User, FirstRun | None]:
    """The user a command acts for; on an empty database, first create it.

    The user named (`--user`/`BUDGET_USER`), else the default user (see
    `default_user_condition`). On an empty database the named user, or the local default
    `me@localhost`, is created with the starter categories. One query in the common case.
    Returns what a first run created (or None) so the CLI can say so once.
    """
    users = _default_candidates(session) if not user_email else ()
    if user_email:
        found = session.scalar(select(User).where(User.email == normalize_email(user_email)))
        if found is not None:
            return found, None
        if session.scalar(select(User.id).limit(1)) is not None:
            _named_user(session, user_email)  # refuses: an unknown user among others
        first_run = create_first_user(session, email=normalize_email(user_email))
        return first_run.user, first_run
    if not users:
        first_run = create_first_user(session)
        return first_run.user, first_run
    return _default_user(users), None


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    categories: int
    expenses: int
    default: bool
    """Whether commands act for this user when none is named."""


def add_user(session: Session, *, email: str, name: str) -> User:
    """Create a user; refused when the e-mail (in any case) is taken.

    The first user becomes the default user. When the one user there is has not been
    made the default (a database from before defaults existed), it becomes the default
    now, so adding a second user leaves the first one's commands working as before.
    """
    email = normalize_email(email)
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise Conflict(f"a user {email!r} already exists")
    existing = _default_candidates(session)
    if len(existing) == 1 and not existing[0].is_default:
        existing[0].is_default = True
    user = User(email=email, name=name, is_default=not existing)
    session.add(user)
    session.flush()
    return user


def set_default_user(session: Session, *, user_email: str) -> User:
    """Make `user_email` the user commands act for when none is named."""
    user = _named_user(session, user_email)
    session.execute(
        update(User).where(User.is_default, User.id != user.id).values(is_default=False)
    )
    session.execute(update(User).where(User.id == user.id).values(is_default=True))
    session.refresh(user)
    return user


def list_users(session: Session) -> list[UserRow]:
    """Every user with how many categories and expenses they have (one query)."""
    categories = (
        select(func.count()).where(Category.user_id == User.id).scalar_subquery().label("c")
    )
    expenses = select(func.count()).where(Expense.user_id == User.id).scalar_subquery().label("e")
    result = session.execute(
        select(User.id, User.email, User.name, categories, expenses, User.is_default).order_by(
            User.email
        )
    )
    return [UserRow(*row) for row in result]
