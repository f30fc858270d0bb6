"""People's PostgreSQL roles and shared budgets.

On PostgreSQL, row-level security (revision 0011) decides what a connection sees: a role
sees the users linked to it (`users.role_name`) and the budgets shared with it
(`budget_shares`), and writes only in its own budgets and those shared with it without
`read_only`. Table owners and superusers bypass it. `grant_role` gives a person's role the
privileges the app needs through one group role, and `connection_role` says whether the
policies apply to a connection. On SQLite sharing is an application feature only.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, func, select, text
from sqlalchemy.orm import Session, aliased

from budget_tracker import rules
from budget_tracker.errors import (
    BudgetError,
    Conflict,
    InvalidInput,
    NotFound,
    NotTableOwner,
    UnknownPerson,
)
from budget_tracker.models import ROLE_NAME_MAX, TABLE_NAMES, BudgetShare, User, insert_new_only
from budget_tracker.services.users import UserInfo

GROUP_ROLE = "budget_members"
"""The group role holding the app's table privileges; `budget db grant` grants it."""

DERIVED_TABLES = ("category_month_spent",)
"""Tables a person's role only reads: the database's triggers keep them."""
WRITTEN_TABLES = tuple(
    name for name in TABLE_NAMES if name not in ("unit_outcomes", *DERIVED_TABLES)
)
"""Tables a person's role reads and writes (row-level security narrows the rows)."""


def check_role_name(value: str) -> str:
    """A PostgreSQL role name: 1 to 63 characters, no control characters."""
    value = value.strip()
    if not value or len(value) > ROLE_NAME_MAX or not value.isprintable():
        raise InvalidInput(
            f"invalid role name {value!r}: 1 to {ROLE_NAME_MAX} printable characters"
        )
    return value


@dataclass(frozen=True)
class ConnectionRole:
    """Who a PostgreSQL connection is, and whether row-level security applies to it."""

    name: str
    superuser: bool
    owner: bool | None
    """It owns the app's tables (or is a member of the role that does); None when there
    are no tables yet."""

    @property
    def bypasses_policies(self) -> bool:
        return self.superuser or bool(self.owner)


def connection_role(connection: Connection) -> ConnectionRole:
    """One query: the connected role, and whether it is a superuser or the tables' owner."""
    name, superuser, owner = connection.execute(
        text(
            "SELECT current_user::text, r.rolsuper OR r.rolbypassrls, "
            "pg_has_role(current_user, c.relowner, 'USAGE') "
            "FROM pg_roles r LEFT JOIN pg_class c ON c.oid = to_regclass('expenses') "
            "WHERE r.rolname = current_user"
        )
    ).one()
    return ConnectionRole(str(name), bool(superuser), None if owner is None else bool(owner))


def grant_role(connection: Connection, role: str) -> ConnectionRole:
    """Give `role` what the app needs through the group role, nothing more.

    Run as the tables' owner (the direct URL): creates the group role when missing,
    grants it the schema, the app's tables and their sequences (and the same on tables
    the owner creates later), then grants it to `role`. Idempotent.
    """
    role = check_role_name(role)
    if connection.dialect.name != "postgresql":
        raise BudgetError(
            "roles and row-level security are PostgreSQL features: a SQLite file is "
            "private to its owner (0600)"
        )
    target = connection.execute(
        text("SELECT rolsuper FROM pg_roles WHERE rolname = :role"), {"role": role}
    ).one_or_none()
    if target is None:
        raise NotFound(f"no PostgreSQL role {role!r}: create it first (on Neon: Roles → New role)")
    me = connection_role(connection)
    if not me.owner:
        raise NotTableOwner(me.name)
    if role == me.name:
        raise BudgetError(f"{role!r} owns the tables: it needs no grant")
    quote = connection.dialect.identifier_preparer.quote
    group = quote(GROUP_ROLE)
    connection.execute(
        text(
            "DO $$ BEGIN "
            f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{GROUP_ROLE}') THEN "
            f"CREATE ROLE {group} NOLOGIN; END IF; "
            "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        )
    )
    schema = quote(str(connection.execute(text("SELECT current_schema()")).scalar()))
    tables = ", ".join(quote(name) for name in WRITTEN_TABLES)
    for statement in (
        f"GRANT USAGE ON SCHEMA {schema} TO {group}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {tables} TO {group}",
        f"GRANT SELECT ON {', '.join(quote(name) for name in DERIVED_TABLES)} TO {group}",
        # Outcomes of retried commands: written and read by their random key, pruned by age.
        f"GRANT SELECT, INSERT, DELETE ON unit_outcomes TO {group}",
        f"GRANT SELECT ON alembic_version TO {group}",
        f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {schema} TO {group}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {group}",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE ON SEQUENCES TO {group}",
    ):
        connection.execute(text(statement))
    member = connection.execute(
        text(
            "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = :group AND r.rolname = :role"
        ),
        {"group": GROUP_ROLE, "role": role},
    ).first()
    if member is None:  # roles are shared by every database of the server: grant once
        connection.execute(text(f"GRANT {group} TO {quote(role)}"))
    return me


# --- users and roles -------------------------------------------------------------------


def link_user(session: Session, *, email: str, role: str) -> UserInfo:
    """Link an existing user to the PostgreSQL role the person connects as."""
    role = check_role_name(role)
    user = session.scalar(
        select(User).where(User.email == rules.check_email(email)).with_for_update()
    )
    if user is None:
        raise UnknownPerson(rules.check_email(email))
    user.role_name = role
    session.flush()
    return UserInfo.of(user)


# --- shares ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareRow:
    owner: str
    member: str
    access: str
    direction: str
    """'shared by me' or 'shared with me', seen from the acting user."""


@dataclass(frozen=True)
class ShareChange:
    """A share made, changed or ended: whose budget, with whom."""

    owner: str
    member: str
    existed: bool
    """A share already existed (`share` then updated its access)."""


def share(session: Session, *, owner: User, email: str, read_only: bool) -> ShareChange:
    """Share `owner`'s budget with the user `email` (or change the access of the share
    that exists)."""
    member = _user_by_email(session, email, any_user=True)
    if member.id == owner.id:
        raise InvalidInput("you cannot share a budget with yourself")
    dialect = session.get_bind().dialect.name
    made = session.scalar(
        insert_new_only(dialect, BudgetShare, "owner_id", "member_id")
        .values(owner_id=owner.id, member_id=member.id, read_only=read_only)
        .returning(BudgetShare.id)
    )
    if made is None:
        existing = session.scalars(
            select(BudgetShare).where(
                BudgetShare.owner_id == owner.id, BudgetShare.member_id == member.id
            )
        ).one()
        existing.read_only = read_only
        session.flush()
        return ShareChange(owner.email, member.email, existed=True)
    return ShareChange(owner.email, member.email, existed=False)


def unshare(session: Session, *, owner: User, email: str) -> ShareChange:
    """Stop sharing `owner`'s budget with the user `email`."""
    member = _user_by_email(session, email)
    result = session.execute(
        delete(BudgetShare).where(
            BudgetShare.owner_id == owner.id, BudgetShare.member_id == member.id
        )
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        raise Conflict(f"your budget is not shared with {member.email!r}")
    return ShareChange(owner.email, member.email, existed=True)


def list_shares(session: Session, *, user: User) -> list[ShareRow]:
    """Shares in both directions: budgets `user` shares, and budgets shared with `user`."""
    owner, member = aliased(User), aliased(User)
    result = session.execute(
        select(owner.id, owner.email, member.email, BudgetShare.read_only)
        .join(owner, owner.id == BudgetShare.owner_id)
        .join(member, member.id == BudgetShare.member_id)
        .where((BudgetShare.owner_id == user.id) | (BudgetShare.member_id == user.id))
        .order_by(owner.email, member.email)
    )
    return [
        ShareRow(
            owner=owner_email,
            member=member_email,
            access="read-only" if read_only else "read-write",
            direction="shared by me" if owner_id == user.id else "shared with me",
        )
        for owner_id, owner_email, member_email, read_only in result
    ]


def _user_by_email(session: Session, email: str, *, any_user: bool = False) -> User:
    """The user `email`; with `any_user`, also one row-level security hides (on
    PostgreSQL, through a function that reveals only the id)."""
    email = rules.check_email(email)
    if any_user and session.get_bind().dialect.name == "postgresql":
        user_id = session.scalar(select(func.budget_user_id(email)))
        user = None if user_id is None else User(id=user_id, email=email, name="")
        if user is not None:
            return user
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        raise UnknownPerson(email)
    return user
