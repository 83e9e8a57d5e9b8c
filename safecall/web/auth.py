"""Sessions in signed cookies, CSRF tokens and the failed-login limit.

A session cookie is signed (itsdangerous) and carries the user id, the account's session version (raised by
disable and reset, which ends older sessions), a CSRF token and its expiry, read against the app's clock.
Anonymous visitors get a cookie too, so the login form has a CSRF token.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer

from safecall.clock import Clock

COOKIE = "safecall_session"
MIN_SECRET = 32
PRUNE_AT = 10_000  # keys (user names and addresses) before failures outside the window are forgotten


@dataclass(frozen=True)
class Session:
    user_id: int | None
    version: int
    csrf: str
    expires: datetime

    def matches(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf, token)


class SessionCodec:
    def __init__(self, secret: str, lifetime: timedelta, clock: Clock):
        if len(secret) < MIN_SECRET:
            raise ValueError(f"the web secret key must have at least {MIN_SECRET} characters (e.g. `openssl rand -hex 32`)")
        self.serializer = URLSafeSerializer(secret, salt="safecall-session")
        self.lifetime, self.clock = lifetime, clock

    def new(self, user_id: int | None = None, version: int = 0) -> Session:
        return Session(user_id, version, secrets.token_urlsafe(24), self.clock.now() + self.lifetime)

    def dumps(self, session: Session) -> str:
        return self.serializer.dumps([session.user_id, session.version, session.csrf, session.expires.timestamp()])

    def loads(self, cookie: str | None) -> Session | None:
        """The session in a cookie, or None when it is missing, forged or expired."""
        if not cookie:
            return None
        try:
            user_id, version, csrf, expires = self.serializer.loads(cookie)
        except (BadSignature, ValueError, TypeError):
            return None
        session = Session(user_id, version, csrf, datetime.fromtimestamp(expires, self.clock.now().tzinfo))
        return session if session.expires > self.clock.now() else None


class LoginLimiter:
    """At most `attempts` failed logins per user name and per client address within `window`; then refused until
    the oldest failure leaves the window. In memory: a restart forgets, which costs an attacker a restart each time."""

    def __init__(self, attempts: int, window: timedelta, clock: Clock):
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[str, deque] = defaultdict(deque)
        self._prune_at = PRUNE_AT
        self._lock = threading.Lock()

    def _recent(self, key: str) -> deque:
        failures, cutoff = self._failures[key], self.clock.now() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        return failures

    def blocked(self, username: str, address: str) -> bool:
        with self._lock:
            return any(len(self._recent(key)) >= self.attempts for key in (f"user:{username}", f"addr:{address}"))

    def failed(self, username: str, address: str) -> None:
        with self._lock:
            for key in (f"user:{username}", f"addr:{address}"):
                self._recent(key).append(self.clock.now())
            if len(self._failures) > self._prune_at:  # made-up names must not fill the memory: forget those outside the window
                for key in [key for key in self._failures if not self._recent(key)]:
                    del self._failures[key]
                self._prune_at = max(PRUNE_AT, 2 * len(self._failures))  # amortised: not a scan per failure

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{username}", None)
