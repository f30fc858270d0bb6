"""Users: who a command acts for, and the zero-setup first run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from budget_tracker import rules
from budget_tracker.errors import Conflict, InvalidInput, NotFound
from budget_tracker.models import (
    Category,
    Expense,
    User,
    insert_new_only,
    name_key,
    normalize_email,
)

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
        return _named_user(session, email)
    users = _first_two_users(session)
    if not users:
        raise NotFound("there are no users yet: add one with `budget user add EMAIL --name NAME`")
    return _only_user(users)


def _named_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise NotFound(
            f"no user {normalize_email(email)!r}: see `budget user list`, or add one "
            "with `budget user add EMAIL --name NAME`"
        )
    return user


def _first_two_users(session: Session) -> Sequence[User]:
    """Enough users to tell "none", "just one" and "several" apart, in one query.

    On PostgreSQL, when several are visible and exactly one is linked to the connected
    role, that one is the only candidate (one more query, on that path only): a person
    who sees budgets shared with them (row-level security) acts on their own by default.
    """
    users = session.scalars(select(User).order_by(User.id).limit(2)).all()
    if len(users) < 2 or session.get_bind().dialect.name != "postgresql":
        return users
    mine = session.scalars(
        select(User).where(User.role_name == func.current_user()).order_by(User.id).limit(2)
    ).all()
    return mine if len(mine) == 1 else users


def _only_user(users: Sequence[User]) -> User:
    if len(users) > 1:
        raise InvalidInput(
            "there are several users: choose one with --user EMAIL or the BUDGET_USER "
            "variable (see `budget user list`)"
        )
    return users[0]


def create_default_user(session: Session) -> tuple[User, FirstRun | None]:
    """The zero-setup first run: the local default user and the starter categories.

    Safe when several first commands run at once on an empty database: each inserts
    only what is not there yet (`insert_new_only`), and only the one whose insert made
    the user reports a first run; the others act for the user it made.
    """
    dialect = session.get_bind().dialect.name
    user = session.scalar(
        insert_new_only(dialect, User, "email")
        .values(email=DEFAULT_EMAIL, name=_local_name())
        .returning(User)
    )
    if user is None:
        return session.scalars(select(User).where(User.email == DEFAULT_EMAIL)).one(), None
    session.execute(
        insert_new_only(dialect, Category, "user_id", "name_key").values(
            [
                {
                    "user_id": user.id,
                    "name": name,
                    "name_key": name_key(name),
                    "color": color,
                    "monthly_budget": Decimal(0),
                }
                for name, color in STARTER_CATEGORIES
            ]
        )
    )
    return user, FirstRun(user=user, categories=tuple(name for name, _ in STARTER_CATEGORIES))


def _local_name() -> str:
    import getpass  # only the first run names the default user

    try:
        return getpass.getuser()[:100] or "Me"
    except (KeyError, OSError):
        return "Me"


def acting_user(session: Session, *, email: str | None) -> tuple[User, FirstRun | None]:
    """The user a command acts for; on an empty database, first create the local default.

    One query in the common case. Returns what a first run created (or None) so the CLI
    can say so once.
    """
    if email:
        return _named_user(session, email), None
    users = _first_two_users(session)
    if not users:
        return create_default_user(session)
    return _only_user(users), None


@dataclass(frozen=True)
class UserRow:
    id: int
    email: str
    name: str
    role: str | None
    categories: int
    expenses: int


def add_user(session: Session, *, email: str, name: str, role: str | None = None) -> User:
    """Create a user (linked to the PostgreSQL `role`, if given); refused when the e-mail
    (in any case) is taken.

    One statement that inserts only a new e-mail: two commands adding the same user at
    once get one "Added" and one refusal, never a unique-key error.
    """
    email = rules.check_email(email)
    name = rules.check_user_name(name)
    if role is not None:
        from budget_tracker.services.sharing import check_role_name

        role = check_role_name(role)
    dialect = session.get_bind().dialect.name
    user: User | None = session.scalar(
        insert_new_only(dialect, User, "email")
        .values(email=email, name=name, role_name=role)
        .returning(User)
    )
    if user is None:
        raise Conflict(f"a user {email!r} already exists")
    return user


def list_users(session: Session) -> list[UserRow]:
    """Every user the connection may see, with their role and how many categories and
    expenses they have (one query). On PostgreSQL row-level security narrows it to the
    users linked to the connected role and those sharing a budget with it."""
    categories = (
        select(func.count()).where(Category.user_id == User.id).scalar_subquery().label("c")
    )
    expenses = select(func.count()).where(Expense.user_id == User.id).scalar_subquery().label("e")
    result = session.execute(
        select(User.id, User.email, User.name, User.role_name, categories, expenses).order_by(
            User.email
        )
    )
    return [UserRow(*row) for row in result]
