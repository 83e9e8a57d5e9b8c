"""Sessions, CSRF tokens and the login limit, all kept in the database so that they hold across restarts.

A session cookie is signed (itsdangerous) and carries a random session token (none before login), a CSRF token
and its expiry. A logged-in session is a row in `websession` holding the token's SHA-256: logout deletes it, and
so do disabling the account and resetting its password (users.py), so a copy of the cookie stops working at once.
Anonymous visitors get a cookie too, so the login form has a CSRF token.

The login limit counts attempts per user name and per client address in fixed windows (`logincount`). A password
is checked only after both counts were raised in one statement each (`... WHERE checked < limit`), so parallel
requests cannot pass the limit; a window boundary can let up to twice the limit through, once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select

from safecall import users
from safecall.audit import log_access
from safecall.clock import Clock
from safecall.store import Database, LoginCount, WebSession, WebUser, audit

COOKIE = "safecall_session"
MIN_SECRET = 32
KEY_LENGTH = 64  # characters of a typed user name that the limiter and the audit keep: no name is longer
MAX_KEYS = 2_000  # user names and addresses counted in one window; past it, logins under new keys are refused


@dataclass(frozen=True)
class Session:
    token: str | None  # the server-side session's token; None before login
    csrf: str
    expires: datetime

    def matches(self, token: str | None) -> bool:
        return token is not None and bool(token) and hmac.compare_digest(self.csrf, token)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


class SessionCodec:
    def __init__(self, secret: str, lifetime: timedelta, clock: Clock):
        if len(secret) < MIN_SECRET:
            raise ValueError(
                f"the web secret key must have at least {MIN_SECRET} characters (e.g. `openssl rand -hex 32`)"
            )
        self.serializer = URLSafeSerializer(secret, salt="safecall-session")
        self.lifetime, self.clock = lifetime, clock

    def new(self, token: str | None = None) -> Session:
        return Session(token, secrets.token_urlsafe(24), self.clock.now() + self.lifetime)

    def dumps(self, session: Session) -> str:
        return self.serializer.dumps([session.token, session.csrf, session.expires.timestamp()])

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None when it is missing, forged, of an older form or expired."""
        if not cookie:
            return None
        try:
            token, csrf, expires = self.serializer.loads(cookie)
            session = Session(token, csrf, datetime.fromtimestamp(expires, self.clock.now().tzinfo))
        except (BadSignature, ValueError, TypeError, OverflowError, OSError):
            return None
        return session if session.expires > self.clock.now() else None


class SessionStore:
    """Logged-in sessions in the database."""

    def __init__(self, db: Database, lifetime: timedelta, clock: Clock):
        self.db, self.lifetime, self.clock = db, lifetime, clock

    def create(self, user: WebUser) -> str:
        token, now = secrets.token_urlsafe(32), self.clock.now()
        assert user.id is not None, "a session is made for a stored user"
        with self.db.transaction() as session:
            session.execute(sa.delete(WebSession).where(col(WebSession.expires_at) <= now))  # the ended ones
            session.add(
                WebSession(
                    token_hash=token_hash(token), user_id=user.id, created_at=now, expires_at=now + self.lifetime
                )
            )
        return token

    def user(self, token: str | None) -> WebUser | None:
        """The enabled user of a live session, or None."""
        if not token or not isinstance(token, str):
            return None
        with self.db.session() as session:
            row = session.exec(
                select(WebUser)
                .join(WebSession, col(WebSession.user_id) == WebUser.id)
                .where(WebSession.token_hash == token_hash(token), WebSession.expires_at > self.clock.now())
            ).first()
        return row if row is not None and not row.disabled else None

    def end(self, token: str | None) -> None:
        if token and isinstance(token, str):
            with self.db.transaction() as session:
                session.execute(sa.delete(WebSession).where(col(WebSession.token_hash) == token_hash(token)))


class LoginLimiter:
    """At most `attempts` password checks that did not succeed, per user name and per client address, in each
    window of `window`. Refused requests are counted, not written one by one: the audit gets one row when a key
    is first refused in a window and one row with the window's total when the window is cleared away."""

    def __init__(self, db: Database, attempts: int, window: timedelta, clock: Clock, *, max_keys: int = MAX_KEYS):
        self.db, self.attempts, self.window, self.clock, self.max_keys = db, attempts, window, clock, max_keys

    def _window(self) -> datetime:
        now = self.clock.now().astimezone(UTC)
        seconds = int(self.window.total_seconds())
        return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)

    @staticmethod
    def _keys(username: str, address: str) -> list[tuple[str, str]]:
        return [("addr", address[:KEY_LENGTH]), ("user", username[:KEY_LENGTH])]

    def reserve(self, username: str, address: str) -> bool:
        """True: the caller may check one password (and must then call `failed` or `succeeded`). False: refused."""
        window, now = self._window(), self.clock.now()
        with self.db.transaction() as session:
            self._clear_past_windows(session, window, now)
            keys = self._keys(username, address)
            taken: list[tuple[str, str]] = []
            for scope, key in keys:
                if not self._take(session, scope, key, window):
                    for done in taken:  # give back what was taken for the other key
                        self._add(session, *done, window, checked=-1)
                    self._refused(session, scope, key, window, now, username, address)
                    return False
                taken.append((scope, key))
            return True

    def _take(self, session, scope: str, key: str, window: datetime) -> bool:
        exists = session.execute(
            sa.select(col(LoginCount.id)).where(
                col(LoginCount.scope) == scope, col(LoginCount.key) == key, col(LoginCount.window_start) == window
            )
        ).first()
        if exists is None:
            keys_now = session.execute(
                sa.select(sa.func.count()).select_from(LoginCount).where(col(LoginCount.window_start) == window)
            ).scalar()
            if keys_now >= self.max_keys:
                return False
            insert = (postgresql.insert if session.bind.dialect.name == "postgresql" else sqlite.insert)(LoginCount)
            session.execute(
                insert.values(
                    scope=scope, key=key, window_start=window, checked=0, failed=0, refused=0
                ).on_conflict_do_nothing()
            )  # another request may have made it just now
        # One statement: the row lock (PostgreSQL) or the write lock (SQLite) makes the count and the raise atomic.
        result = session.execute(
            sa.update(LoginCount)
            .where(
                col(LoginCount.scope) == scope,
                col(LoginCount.key) == key,
                col(LoginCount.window_start) == window,
                col(LoginCount.checked) < self.attempts,
            )
            .values(checked=LoginCount.checked + 1)
        )
        return result.rowcount == 1

    @staticmethod
    def _add(session, scope: str, key: str, window: datetime, **amounts: int) -> int:
        values = {name: getattr(LoginCount, name) + amount for name, amount in amounts.items()}
        return session.execute(
            sa.update(LoginCount)
            .where(col(LoginCount.scope) == scope, col(LoginCount.key) == key, col(LoginCount.window_start) == window)
            .values(**values)
        ).rowcount

    def _refused(
        self, session, scope: str, key: str, window: datetime, now: datetime, username: str, address: str
    ) -> None:
        self._add(session, scope, key, window, refused=1)
        refused = session.execute(
            sa.select(col(LoginCount.refused)).where(
                col(LoginCount.scope) == scope, col(LoginCount.key) == key, col(LoginCount.window_start) == window
            )
        ).scalar()
        if refused == 1:  # the first refusal of this key in this window; the rest are summed when the window is cleared
            audit(
                session,
                at=now,
                action="web.login_refused",
                subject=f"user {username[:KEY_LENGTH]}",
                detail=f"from={address[:KEY_LENGTH]} limit={scope} window={window:%Y-%m-%dT%H:%MZ}",
                actor="web:-",
            )

    def _clear_past_windows(self, session, window: datetime, now: datetime) -> None:
        past = list(session.exec(select(LoginCount).where(LoginCount.window_start < window)))
        for row in past:
            if row.refused > 1:
                audit(
                    session,
                    at=now,
                    action="web.login_refusals",
                    subject=f"{row.scope} {row.key}",
                    detail=f"refused={row.refused} failed={row.failed} window={row.window_start:%Y-%m-%dT%H:%MZ}",
                    actor="web:-",
                )
        if past:
            session.execute(sa.delete(LoginCount).where(col(LoginCount.window_start) < window))

    def failed(self, username: str, address: str) -> None:
        window, now = self._window(), self.clock.now()
        with self.db.transaction() as session:
            for scope, key in self._keys(username, address):
                self._add(session, scope, key, window, failed=1)
            audit(
                session,
                at=now,
                action="web.login_failed",
                subject=f"user {username[:KEY_LENGTH]}",
                detail=f"from={address[:KEY_LENGTH]}",
                actor="web:-",
            )

    def succeeded(self, username: str, address: str) -> None:
        """A right password: the name's count starts again, and the address gets its attempt back."""
        window = self._window()
        with self.db.transaction() as session:
            (addr_scope, addr), (user_scope, user) = self._keys(username, address)
            self._add(session, addr_scope, addr, window, checked=-1)
            session.execute(
                sa.update(LoginCount)
                .where(
                    col(LoginCount.scope) == user_scope,
                    col(LoginCount.key) == user,
                    col(LoginCount.window_start) == window,
                )
                .values(checked=0, failed=0)
            )


@dataclass(frozen=True)
class LoginOutcome:
    user: WebUser | None  # None: refused by the limiter, or a wrong name or password
    token: str | None = None  # the new server-side session's, when the password was right
    refused: bool = False  # the limiter said no before any password was checked


def log_in(
    db: Database,
    limiter: LoginLimiter,
    sessions: SessionStore,
    username: str,
    password: str,
    address: str,
    *,
    hasher,
    now: Callable[[], datetime],
) -> LoginOutcome:
    """A whole login in one call: the limiter's reservation, the argon2 check, the session and the audit row.

    The web app runs it on its own few login threads: one hop there instead of five through the threads that serve
    pages, so a login never queues behind pages between its steps, and pages never wait for argon2."""
    if not limiter.reserve(username, address):
        return LoginOutcome(None, refused=True)
    user = users.authenticate(db, username, password, hasher=hasher)
    if user is None:
        limiter.failed(username, address)
        return LoginOutcome(None)
    limiter.succeeded(username, address)
    token = sessions.create(user)
    log_access(
        db,
        at=now(),
        action="web.login",
        subject=f"user {user.username}",
        detail=f"from={address}",
        actor=f"web:{user.username}",
    )
    return LoginOutcome(user, token)
