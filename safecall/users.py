"""Accounts of the web app: argon2 password hashes, roles, disable and reset. The CLI and the web's admin page use these."""

from __future__ import annotations

import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, select

from safecall.errors import InputError, NotFoundError
from safecall.store import Database, WebUser, audit

ROLES = ("team", "officer", "admin")
ROLE_KOREAN = {"team": "방문팀", "officer": "복지 담당", "admin": "관리자"}
MIN_PASSWORD = 10
HASHER = PasswordHasher()
# Verifying against this when the user does not exist costs the same time as a real check: no user enumeration by timing.
_DUMMY_HASH = HASHER.hash("not a password of anyone")


def new_password() -> str:
    """A password to hand to the person (16 url-safe characters); they may keep it."""
    return secrets.token_urlsafe(12)


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"the password must have at least {MIN_PASSWORD} characters")


def add_user(db: Database, username: str, password: str, *, role: str, team: str | None, teams: list[str], now: datetime,
             actor: str | None = None) -> WebUser:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r} (use {', '.join(ROLES)})")
    if role == "team" and team not in teams:
        raise InputError(f"a team member needs --team, one of: {', '.join(teams)}" if not team else
                         f"no team {team!r} in config/safecall.toml (teams: {', '.join(teams)})")
    if role != "team" and team:
        raise InputError("only a team member (--role team) belongs to one team")
    if not username or not username.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise InputError(f"user name {username!r}: use letters, digits, '-', '_' or '.'")
    _check_password(password)
    with db.transaction() as session:
        if session.exec(select(WebUser).where(WebUser.username == username)).first():
            raise InputError(f"user {username!r} already exists")
        user = WebUser(username=username, password_hash=HASHER.hash(password), role=role, team=team, created_at=now)
        session.add(user)
        audit(session, at=now, action="user.add", subject=f"user {username}", detail=f"role={role}" + (f" team={team}" if team else ""),
              actor=actor)
    return user


def list_users(db: Database) -> list[WebUser]:
    with db.session() as session:
        return list(session.exec(select(WebUser).order_by(WebUser.username)))


def _get(session: Session, username: str) -> WebUser:
    user = session.exec(select(WebUser).where(WebUser.username == username)).first()
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def disable_user(db: Database, username: str, *, now: datetime, actor: str | None = None) -> WebUser:
    """The account can no longer log in, and every session it has ends at its next request."""
    with db.transaction() as session:
        user = _get(session, username)
        user.disabled, user.session_version = True, user.session_version + 1
        session.add(user)
        audit(session, at=now, action="user.disable", subject=f"user {username}", actor=actor)
    return user


def reset_password(db: Database, username: str, password: str, *, now: datetime, actor: str | None = None) -> WebUser:
    """A new password; the account is enabled again and its old sessions end."""
    _check_password(password)
    with db.transaction() as session:
        user = _get(session, username)
        user.password_hash, user.disabled = HASHER.hash(password), False
        user.session_version += 1
        session.add(user)
        audit(session, at=now, action="user.reset", subject=f"user {username}", actor=actor)
    return user


def authenticate(db: Database, username: str, password: str) -> WebUser | None:
    """The enabled user with this password, or None; as slow for an unknown name as for a wrong password."""
    with db.session() as session:
        user = session.exec(select(WebUser).where(WebUser.username == username)).first()
    try:
        HASHER.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    return user


def get_user(db: Database, user_id: int) -> WebUser | None:
    with db.session() as session:
        return session.get(WebUser, user_id)
