"""Users: who a command acts for, and the zero-setup first run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    FromClause,
    Row,
    ScalarSelect,
    Select,
    exists,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from budget_tracker import rules
from budget_tracker.errors import Conflict, RoleHasOwnUser, UnknownUser, UserNotChosen
from budget_tracker.models import (
    Category,
    ConnectedUser,
    Expense,
    User,
    entered_by_person,
    insert_new_only,
    name_columns,
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


@dataclass(frozen=True)
class ActingUser:
    """The user a writing command acts for (a row of this unit of work), and what a first
    run created for it, or None."""

    user: User
    first_run: FirstRun | None


def _named_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalize_email(email)))
    if user is None:
        raise UnknownUser(normalize_email(email))
    return user


def default_user_condition(users: FromClause | None = None) -> ColumnElement[bool]:
    """SQL: this `users` row is the one a command acts for when none is named.

    Your own user: on PostgreSQL, the user linked to the connected role (`ConnectedUser`),
    so a person whose budget is shared with others still acts on their own budget by
    default. For a connection linked to no user (the tables' owner, one role for
    everything) and on SQLite: the user chosen with `budget user default EMAIL`, else the
    only user there is. The one rule for every service, including the single-statement
    hot paths that find the user inside a larger query.
    """
    table = User.__table__ if users is None else users
    other = User.__table__.alias("other_user")
    database_default = or_(table.c.is_default, ~exists().where(other.c.id != table.c.id))
    # NULL = NULL is NULL: without a connected user the database's default decides.
    return func.coalesce(table.c.id == ConnectedUser(), database_default, type_=Boolean)


def _default_candidates(session: Session) -> Sequence[Row[User, bool]]:
    """The connection's own user first, then the default user, then the others by id:
    enough rows to decide, in one query."""
    mine = func.coalesce(User.id == ConnectedUser(), false(), type_=Boolean).label("mine")
    return session.execute(
        select(User, mine).order_by(mine.desc(), User.is_default.desc(), User.id).limit(2)
    ).all()


def _default_user(users: Sequence[Row[User, bool]]) -> User:
    (first, mine) = users[0]
    if mine or first.is_default or len(users) == 1:
        return first
    raise UserNotChosen()


def create_first_user(session: Session, *, email: str | None = None) -> ActingUser:
    """The zero-setup first run: the default user (`email`, else the local one) and the
    starter categories.

    Safe when several first commands run at once on an empty database: each inserts
    only what is not there yet (`insert_new_only`), and only the one whose insert made
    the user reports a first run; the others act for the user it made.
    """
    email = email or DEFAULT_EMAIL
    dialect = session.get_bind().dialect.name
    # Skipped on any conflict: the same e-mail, or another first command's user that
    # became the default meanwhile (only one user can be).
    user = session.scalar(
        insert_new_only(dialect, User)
        .values(email=email, name=_local_name(), is_default=True)
        .returning(User)
    )
    if user is None:
        same = session.scalars(select(User).where(User.email == email)).one_or_none()
        if same is not None:
            return ActingUser(same, None)
        # Another first command made a different user the default: this one is not.
        user = session.scalar(
            insert_new_only(dialect, User, "email")
            .values(email=email, name=_local_name(), is_default=False)
            .returning(User)
        )
        if user is None:
            return ActingUser(session.scalars(select(User).where(User.email == email)).one(), None)
    session.execute(
        insert_new_only(dialect, Category, "user_id", "name_key").values(
            [
                {
                    "user_id": user.id,
                    **name_columns(name),
                    "color": color,
                    "monthly_budget": Decimal(0),
                }
                for name, color in STARTER_CATEGORIES
            ]
        )
    )
    return ActingUser(user, FirstRun(user, tuple(name for name, _ in STARTER_CATEGORIES)))


def _local_name() -> str:
    import getpass  # only the first run names the default user

    try:
        return getpass.getuser()[:100] or "Me"
    except (KeyError, OSError):
        return "Me"


def acting_user(session: Session, *, user_email: str | None) -> ActingUser:
    """The user a command acts for; on an empty database, first create it.

    The user named (`--user`/`BUDGET_USER`), else the default user (see
    `default_user_condition`). On an empty database the named user, or the local default
    `me@localhost`, is created with the starter categories. One query in the common case.
    Returns what a first run created (or None) so the CLI can say so once.
    """
    if user_email:
        found = session.scalar(select(User).where(User.email == normalize_email(user_email)))
        if found is not None:
            return ActingUser(found, None)
        if session.scalar(select(User.id).limit(1)) is not None:
            _named_user(session, user_email)  # refuses: an unknown user among others
        return create_first_user(session, email=normalize_email(user_email))
    users = _default_candidates(session)
    if not users:
        return create_first_user(session)
    return ActingUser(_default_user(users), None)


def find_acting_user(session: Session, *, user_email: str | None) -> User:
    """The user a read-only command acts for, creating nothing (see `acting_user`).

    Refuses as `acting_user` does (an unknown user among others, several users and no
    default). On an empty database it returns the user a first writing command would
    create, unsaved and never added to the session (`id` 0 matches no row), so the
    command shows an empty result and the database stays empty.
    """
    if user_email:
        found = session.scalar(select(User).where(User.email == normalize_email(user_email)))
        return found if found is not None else _not_found(session, user_email)
    users = _default_candidates(session)
    if not users:
        return not_yet_created(DEFAULT_EMAIL)
    return _default_user(users)


def _not_found(session: Session, user_email: str) -> User:
    """A named user that does not exist: refused among other users; on an empty database,
    the user a first writing command would create (see `find_acting_user`)."""
    if session.scalar(select(User.id).limit(1)) is not None:
        _named_user(session, user_email)  # refuses: an unknown user among others
    return not_yet_created(normalize_email(user_email))


@dataclass(frozen=True)
class FoundUser:
    """The user a read-only command acts for (a row of this unit of work), and whether
    it is this connection's default: the user its commands act for when none is named
    (`default_user_condition`; on PostgreSQL a person's role has its own user as
    default, whatever the database's default is)."""

    user: User
    default: bool


def find_acting_user_and_default(session: Session, *, user_email: str | None) -> FoundUser:
    """`find_acting_user`, and whether the user is this connection's default, read in the
    same query; a user found without `--user` is the default by definition."""
    if user_email:
        found = session.execute(
            select(User, default_user_condition().label("default")).where(
                User.email == normalize_email(user_email)
            )
        ).one_or_none()
        if found is None:
            return FoundUser(_not_found(session, user_email), True)
        return FoundUser(found[0], bool(found[1]))
    return FoundUser(find_acting_user(session, user_email=None), True)


def not_yet_created(email: str) -> User:
    """A stand-in for the user no writing command has created yet (never stored)."""
    return User(id=0, email=email, name=_local_name(), is_default=True)


@dataclass(frozen=True)
class UserInfo:
    """A user as a command shows it."""

    id: int
    email: str
    name: str
    role: str | None
    """The PostgreSQL role the person connects as, if linked."""
    default: bool
    """Whether commands act for this user when none is named."""

    @classmethod
    def of(cls, user: User) -> UserInfo:
        return cls(user.id, user.email, user.name, user.role_name, user.is_default)


@dataclass(frozen=True)
class UserRow(UserInfo):
    """A user with how many categories and expenses it has (`budget user list`)."""

    categories: int
    expenses: int


def add_user(session: Session, *, email: str, name: str, role: str | None = None) -> UserInfo:
    """Create a user (linked to the PostgreSQL `role`, if given); refused when the e-mail
    (in any case) is taken.

    One statement that inserts only a new e-mail: two commands adding the same user at
    once get one "Added" and one refusal, never a unique-key error. The first user
    becomes the default user; when the one user there was is not the default (a database
    from before defaults existed), it becomes the default now, so adding a second user
    leaves the first one's commands working as before.
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
    connected = session.scalar(select(ConnectedUser()))
    if connected is not None:
        # A person's role adding a user linked to itself: its commands act for its own
        # user (this one, when the role had none before), and the database's default
        # (the owner's, which row-level security hides from it) is not this
        # connection's to change.
        return replace(UserInfo.of(user), default=connected == user.id)
    others = session.scalars(
        select(User).where(User.id != user.id).order_by(User.is_default.desc(), User.id).limit(2)
    ).all()
    if not others:
        user.is_default = True
    elif len(others) == 1 and not others[0].is_default:
        others[0].is_default = True
    session.flush()
    return UserInfo.of(user)


def set_default_user(session: Session, *, user_email: str) -> UserInfo:
    """Make `user_email` the user commands act for when none is named (on connections
    linked to no user: a person's role always acts for its own user).

    Every user row is locked first (in id order): two commands choosing different users
    at once then act one after the other, and the second sees the first's default, where
    it would otherwise meet it on the one-default index.
    """
    user = _named_user(session, user_email)
    own = session.scalar(select(User.email).where(User.id == ConnectedUser()))
    if own is not None:
        raise RoleHasOwnUser(own)
    session.execute(select(User.id).order_by(User.id).with_for_update())
    session.execute(
        update(User).where(User.is_default, User.id != user.id).values(is_default=False)
    )
    session.execute(update(User).where(User.id == user.id).values(is_default=True))
    session.refresh(user)
    return UserInfo.of(user)


def list_users(session: Session) -> list[UserRow]:
    """Every user the connection may see, with their role and how many categories and
    expenses they have (one query). On PostgreSQL row-level security narrows it to the
    users linked to the connected role and those sharing a budget with it."""
    categories = (
        select(func.count()).where(Category.user_id == User.id).scalar_subquery().label("c")
    )
    expenses = select(func.count()).where(Expense.user_id == User.id).scalar_subquery().label("e")
    result = session.execute(
        select(
            User.id,
            User.email,
            User.name,
            User.role_name,
            default_user_condition().label("default"),
            categories,
            expenses,
        ).order_by(User.email)
    )
    return [UserRow(*row) for row in result]


def entered_by_condition(model: Any, email: str) -> ColumnElement[bool]:
    """SQL: the row of `model` (expenses, budget_transfers, income) was entered by the
    user `email`. The user is found inside the same statement; when nothing matches,
    `check_person` tells an unknown e-mail from a person who entered nothing."""
    person = select(User.id).where(User.email == normalize_email(email)).scalar_subquery()
    return entered_by_person(model) == person


def person_email(person_id: Any) -> ScalarSelect[str]:
    """SQL: the e-mail of the user `person_id` (who entered a row), read in the statement
    that needs it. NULL for a user this connection may not see: on PostgreSQL row-level
    security hides a member once the budget is no longer shared with them."""
    person = User.__table__.alias("person")
    return select(person.c.email).where(person.c.id == person_id).scalar_subquery()


def with_entered_by(statement: Select[*tuple[Any, ...]], model: Any) -> Select[*tuple[Any, ...]]:
    """`statement` over rows of `model` (expenses, budget_transfers, income) with two more
    columns, joined in the same statement: `entered_by_id`, the user who entered the row
    (`entered_by_person`), and `entered_by`, their e-mail (NULL as in `person_email`)."""
    person = aliased(User, name="person")
    who = entered_by_person(model)
    return statement.add_columns(
        who.label("entered_by_id"), person.email.label("entered_by")
    ).outerjoin_from(model, person, person.id == who)


def check_person(session: Session, *, email: str) -> None:
    """Refuse an `--entered-by` e-mail that names no user this connection may see."""
    _named_user(session, email)
