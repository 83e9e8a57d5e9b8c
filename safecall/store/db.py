"""Engine and session set-up. SQLite runs in WAL mode with a busy timeout; its file is owner-only."""

from __future__ import annotations

import getpass
import os
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel, create_engine

from safecall.errors import SafeCallError
from safecall.store.models import SCHEMA_VERSION, AuditEvent, SchemaInfo


class StoreError(SafeCallError):
    """The database could not be opened, is locked, full or of another schema version."""


class Database:
    def __init__(self, url: str, busy_timeout: float = 30):
        self.url = url
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            _create_private_file(Path(parsed.database))
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": busy_timeout}} if self.is_sqlite else {}
        self.busy_timeout = busy_timeout
        self.engine = create_engine(url, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", lambda connection, _: _sqlite_pragmas(connection, busy_timeout))

    def create_schema(self) -> None:
        try:
            SQLModel.metadata.create_all(self.engine)
            with self.session() as session:
                info = session.get(SchemaInfo, 1)
                if info is None:
                    session.add(SchemaInfo(id=1, version=SCHEMA_VERSION))
                elif info.version != SCHEMA_VERSION:
                    raise StoreError(f"database schema version {info.version}, this SafeCall needs {SCHEMA_VERSION}")
                session.commit()
        except sa.exc.OperationalError as exc:
            raise StoreError(f"cannot open the database: {explain(exc, self.safe_url())}") from exc

    def safe_url(self) -> str:
        return make_url(self.url).render_as_string(hide_password=True)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed whole, or rolled back whole. A locked or full database is a StoreError."""
        with self.session() as session:
            try:
                yield session
                session.commit()
            except sa.exc.OperationalError as exc:
                session.rollback()
                raise StoreError(explain(exc, self.safe_url())) from exc
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        self.engine.dispose()


def explain(exc: sa.exc.OperationalError, where: str) -> str:
    text = str(exc.orig)
    if "locked" in text or "busy" in text:
        return f"the database {where} is locked by another process ({text}); nothing was changed: try again"
    if "full" in text:
        return f"the database {where} is full ({text}); nothing was changed: free disk space and try again"
    return f"database error on {where}: {text}; nothing was changed"


def _create_private_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


def _sqlite_pragmas(dbapi_connection, busy_timeout: float) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def current_actor() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return f"uid:{os.getuid()}"


def audit(session: Session, *, at: datetime, action: str, subject: str, detail: str = "", actor: str | None = None) -> None:
    """Record who did what; part of the caller's transaction."""
    session.add(AuditEvent(at=at, actor=actor or current_actor(), action=action, subject=subject, detail=detail))
