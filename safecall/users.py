"""Accounts of the web app: argon2 password hashes, roles, disable and reset.
The CLI and the web's admin page use these."""

from __future__ import annotations

import re
import secrets
import unicodedata
from datetime import datetime

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, select
from zxcvbn import zxcvbn

from safecall.domain import WebRole
from safecall.errors import InputError, NotFoundError
from safecall.glossary import ROLE as ROLE_WORDS
from safecall.i18n import N_
from safecall.store import Database, WebSession, WebUser, audit, stored_id

ROLES = ("team", "officer", "admin")
ROLE_KOREAN = ROLE_WORDS
MIN_PASSWORD = 10
MIN_STRENGTH = 3  # zxcvbn's score (0-4): 3 is "safely unguessable" against an offline attack on a slow hash
MAX_USERNAME = 32
# After NFKC: ASCII letters (lower case) and digits, Hangul syllables, and '-', '_', '.' between them. Nothing else,
# so no name can look like another: Cyrillic 'а' is refused, fullwidth 'ａｄｍｉｎ' becomes 'admin',
# 'officer²' 'officer2'.
USERNAME = re.compile(r"[a-z0-9\uac00-\ud7a3]+(?:[-_.][a-z0-9\uac00-\ud7a3]+)*")
# argon2id at OWASP's recommended minimum (Password Storage Cheat Sheet: 19 MiB, 2 passes, 1 lane), with zxcvbn's
# strength 3 above. argon2-cffi's default (RFC 9106's low-memory choice: 64 MiB, 3 passes, 4 lanes) took 8x the CPU
# of a login and, ten logins at once, stalled every page; hashes made with it still verify (the parameters are in
# the hash) and are made again with these at the user's next login.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# Verifying against this when the user does not exist costs the same time as a real check:
# no user enumeration by timing.
_DUMMY_HASH = HASHER.hash("not a password of anyone")


def new_password() -> str:
    """A password to hand to the person (16 url-safe characters); they may keep it."""
    return secrets.token_urlsafe(12)


def normalise_username(typed: str) -> str:
    """The one spelling of a user name: NFKC (fullwidth and superscript forms become plain ones),
    Latin in lower case."""
    return unicodedata.normalize("NFKC", typed).strip().lower()


def _spellings(typed: str) -> set[str]:
    """The names a typed one may be stored as: normalised, or as typed (accounts made before names were normalised)."""
    return {normalise_username(typed), typed}


def check_username(typed: str) -> str:
    """The normalised name, or InputError when it holds anything but Latin or Hangul letters, digits and - _ ."""
    name = normalise_username(typed)
    if not name or len(name) > MAX_USERNAME or not USERNAME.fullmatch(name):
        raise InputError(
            N_(
                "user name {name!r}: "
                "use at most {most} Latin letters (a-z), Hangul, digits, and '-', '_' or '.' between them"
            ),
            name=typed[: MAX_USERNAME * 2],
            most=MAX_USERNAME,
        )
    return name


def _check_password(password: str, username: str = "") -> None:
    if len(password) < MIN_PASSWORD:
        raise InputError(N_("the password must have at least {most} characters"), most=MIN_PASSWORD)
    # zxcvbn cost grows with length; 200 characters is far beyond any password a person types.
    if zxcvbn(password[:200], user_inputs=[username, "safecall", "안심콜"])["score"] < MIN_STRENGTH:
        raise InputError(
            N_(
                "the password is too easy to guess (repeated, common or a pattern); "
                "use a longer phrase of unrelated words"
            )
        )


def add_user(
    db: Database,
    username: str,
    password: str,
    *,
    role: str,
    team: str | None,
    teams: list[str],
    now: datetime,
    actor: str | None = None,
) -> WebUser:
    if role not in ROLES:
        raise InputError(N_("unknown role {role!r} (use {choices})"), role=role, choices=", ".join(ROLES))
    if role == WebRole.TEAM and team not in teams:
        if not team:
            raise InputError(N_("a team member needs --team, one of: {teams}"), teams=", ".join(teams))
        raise InputError(
            N_("no team {team!r} in config/safecall.toml (teams: {teams})"), team=team, teams=", ".join(teams)
        )
    if role != WebRole.TEAM and team:
        raise InputError(N_("only a team member (--role team) belongs to one team"))
    username = check_username(username)
    _check_password(password, username)
    with db.transaction() as session:
        if session.exec(select(WebUser).where(sa.func.lower(WebUser.username) == username)).first():
            raise InputError(N_("user {user!r} already exists"), user=username)
        user = WebUser(
            username=username, password_hash=HASHER.hash(password), role=WebRole(role), team=team, created_at=now
        )
        session.add(user)
        audit(
            session,
            at=now,
            action="user.add",
            subject=f"user {username}",
            detail=f"role={role}" + (f" team={team}" if team else ""),
            actor=actor,
        )
    return user


def list_users(db: Database) -> list[WebUser]:
    with db.session() as session:
        return list(session.exec(select(WebUser).order_by(col(WebUser.username))))


def _get(session: Session, username: str) -> WebUser:
    user = session.exec(select(WebUser).where(col(WebUser.username).in_(_spellings(username)))).first()
    if user is None:
        raise NotFoundError(f"no user {username!r}")
    return user


def end_sessions_of(session: Session, user_id: int) -> None:
    """Every web session of this account ends (disable, reset); part of the caller's transaction."""
    session.execute(sa.delete(WebSession).where(col(WebSession.user_id) == user_id))


def disable_user(db: Database, username: str, *, now: datetime, actor: str | None = None) -> WebUser:
    """The account can no longer log in, and every session it has ends at its next request."""
    with db.transaction() as session:
        user = _get(session, username)
        user.disabled, user.session_version = True, user.session_version + 1
        session.add(user)
        end_sessions_of(session, stored_id(user))
        audit(session, at=now, action="user.disable", subject=f"user {username}", actor=actor)
    return user


def reset_password(db: Database, username: str, password: str, *, now: datetime, actor: str | None = None) -> WebUser:
    """A new password; the account is enabled again and its old sessions end."""
    _check_password(password, normalise_username(username))
    with db.transaction() as session:
        user = _get(session, username)
        user.password_hash, user.disabled = HASHER.hash(password), False
        user.session_version += 1
        session.add(user)
        end_sessions_of(session, stored_id(user))
        audit(session, at=now, action="user.reset", subject=f"user {username}", actor=actor)
    return user


def authenticate(db: Database, username: str, password: str, *, hasher: PasswordHasher = HASHER) -> WebUser | None:
    """The enabled user with this password, or None; as slow for an unknown name as for a wrong password."""
    with db.session() as session:
        user = session.exec(select(WebUser).where(col(WebUser.username).in_(_spellings(username)))).first()
    try:
        hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or user.disabled:
        return None
    if hasher.check_needs_rehash(user.password_hash):
        _rehash(db, user, hasher.hash(password))
    return user


def _rehash(db: Database, user: WebUser, new_hash: str) -> None:
    """The same password under the hasher's parameters now. Only if the hash is still the one just checked: a reset
    meanwhile wins."""
    with db.transaction() as session:
        session.execute(
            sa.update(WebUser)
            .where(col(WebUser.id) == user.id, col(WebUser.password_hash) == user.password_hash)
            .values(password_hash=new_hash)
        )


def get_user(db: Database, user_id: int) -> WebUser | None:
    with db.session() as session:
        return session.get(WebUser, user_id)
