"""Staff accounts (admins, supervisors, consultants), sign-in with lockout, and server-side sessions."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Column
from sqlmodel import Field, SQLModel, select
from sqlmodel.ext.asyncio.session import AsyncSession

from infoopt.core.clock import utcnow
from infoopt.core.columns import enum_column
from infoopt.core.errors import DomainError
from infoopt.staff.throttle import SignInThrottle

T = TypeVar("T")

SESSION_LIFETIME = timedelta(hours=10)  # one working day; consultants sign in each morning
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()
# Verified against when the username is unknown or the account disabled, so every failure takes the
# same time and none tells whether the account exists.
_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))
# argon2 takes about a quarter of a second of CPU per check: never on the event loop, and at most two
# at once, so a storm of sign-ins queues here instead of stalling every other request.
_PASSWORD_WORK = ThreadPoolExecutor(max_workers=2, thread_name_prefix="argon2")


async def _off_loop(work: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_PASSWORD_WORK, work)


def _matches(password_hash: str, password: str) -> bool:
    try:
        return bool(_hasher.verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


class Role(StrEnum):
    ADMIN = "admin"
    SUPERVISOR = "supervisor"
    CONSULTANT = "consultant"


class StaffUser(SQLModel, table=True):
    __tablename__ = "staff_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    password_hash: str = Field(max_length=200)
    role: Role = Field(sa_column=Column(enum_column(Role), nullable=False))
    office_code: str | None = Field(default=None, max_length=32, foreign_key="pid_office.code")
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    last_sign_in_at: datetime | None = None


class StaffSession(SQLModel, table=True):
    """A signed-in browser. The cookie holds a random token; only its hash is stored."""

    __tablename__ = "staff_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(foreign_key="staff_user.id", index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime


class UsernameTaken(DomainError):
    code = "username_taken"


# A username appears in page addresses (/admin/users/<name>/active) and in the audit trail: no slashes,
# spaces or other characters that need escaping.
USERNAME = re.compile(r"[^\W_][\w.@-]{0,63}")


class WeakPassword(DomainError):
    status_code = 422
    code = "weak_password"


class SignInFailed(DomainError):
    """Wrong username or password, or a locked or disabled account: one message for all."""

    status_code = 401
    code = "sign_in_failed"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user(
    session: AsyncSession, *, username: str, password: str, role: Role, office_code: str | None = None
) -> StaffUser:
    """Add a staff account with an argon2 hash of the password."""
    username = username.strip().lower()
    if not USERNAME.fullmatch(username):
        raise WeakPassword(
            "the username must have 1 to 64 characters: letters, digits and . _ - @, starting with a letter or digit"
        )
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if (await session.exec(select(StaffUser).where(StaffUser.username == username))).first():
        raise UsernameTaken(f"the username {username!r} is taken")
    password_hash = await _off_loop(lambda: _hasher.hash(password))
    user = StaffUser(username=username, password_hash=password_hash, role=role, office_code=office_code)
    session.add(user)
    await session.flush()
    return user


async def staff_list(session: AsyncSession) -> list[StaffUser]:
    """Every staff account, active ones first, by username."""
    users = (await session.exec(select(StaffUser))).all()
    return sorted(users, key=lambda user: (not user.active, user.username))


class UnknownUser(DomainError):
    status_code = 404
    code = "unknown_user"


async def set_active(session: AsyncSession, username: str, *, active: bool) -> StaffUser:
    """Switch an account on or off; a switched-off account's sessions stop working at once."""
    user = (await session.exec(select(StaffUser).where(StaffUser.username == username))).first()
    if user is None:
        raise UnknownUser(f"no staff account {username!r}")
    user.active = active
    session.add(user)
    await session.flush()
    return user


class SignInThrottled(DomainError):
    """Too many failed sign-ins from this address for this username: wait, then try again."""

    status_code = 429
    code = "too_many_sign_ins"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after} s")
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


async def authenticate(session: AsyncSession, *, username: str, password: str) -> StaffUser:
    """The active user for these credentials; the same work and answer for every kind of failure."""
    name = username.strip().lower()
    user = None
    if name and "\x00" not in name:  # PostgreSQL text holds no NUL: no account can be named so
        user = (await session.exec(select(StaffUser).where(StaffUser.username == name))).first()
    known = user is not None and user.active
    stored_hash = user.password_hash if known and user is not None else _DUMMY_HASH
    matches = await _off_loop(lambda: _matches(stored_hash, password))
    if not known or not matches or user is None:
        raise SignInFailed("wrong username or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await _off_loop(lambda: _hasher.hash(password))
    user.last_sign_in_at = utcnow()
    session.add(user)
    await session.flush()
    return user


async def sign_in(
    session: AsyncSession, throttle: SignInThrottle, *, address: str, username: str, password: str
) -> StaffUser:
    """Check the credentials under the throttle: SignInThrottled, SignInFailed, or the user."""
    wait = await throttle.wait_seconds(address, username)
    if wait:
        raise SignInThrottled(wait)
    try:
        user = await authenticate(session, username=username, password=password)
    except SignInFailed:
        await throttle.failed(address, username)
        raise
    await throttle.succeeded(address, username)
    return user


async def start_session(session: AsyncSession, user: StaffUser) -> tuple[str, StaffSession]:
    """A new session for the user: the cookie token (shown once) and its stored record."""
    assert user.id is not None
    token = secrets.token_urlsafe(32)
    record = StaffSession(
        token_hash=_token_hash(token),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        expires_at=utcnow() + SESSION_LIFETIME,
    )
    session.add(record)
    await session.flush()
    return token, record


async def session_for_token(session: AsyncSession, token: str) -> tuple[StaffUser, StaffSession] | None:
    """The active user and session behind a cookie token, or None."""
    if not token:
        return None
    found = (
        await session.exec(
            select(StaffUser, StaffSession)
            .join(StaffSession, StaffSession.user_id == StaffUser.id)  # type: ignore[arg-type]
            .where(StaffSession.token_hash == _token_hash(token))
        )
    ).first()
    if found is None:
        return None
    user, record = found
    if record.expires_at <= utcnow() or not user.active:
        return None
    return user, record


async def end_session(session: AsyncSession, token: str) -> None:
    """Sign out: the token stops working at once."""
    record = (
        await session.exec(select(StaffSession).where(StaffSession.token_hash == _token_hash(token)))
    ).first()
    if record is not None:
        await session.delete(record)
        await session.flush()
