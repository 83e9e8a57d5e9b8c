"""`safecall doctor`: is this instance healthy? Database integrity, writability, space and schema, file permissions,
campaigns, trunks."""

from __future__ import annotations

import shutil
import sqlite3
import stat
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from safecall.campaign import check_campaign, list_campaigns
from safecall.errors import SafeCallError
from safecall.services import Services
from safecall.store import Database
from safecall.store.db import current_actor
from safecall.telephony.base import Check

PROBE_WAIT_SECONDS = 2.0  # how long the write test waits for another process's lock
MIN_FREE_BYTES = 64 * 1024 * 1024  # a week's calls of a district take a few MiB; less than this is a disk about to fill


def _private(path: Path, mode: int) -> Check:
    if not path.exists():
        return Check(f"permissions {path.name}", True, f"{path} does not exist yet")
    actual = stat.S_IMODE(path.stat().st_mode)
    ok = actual & 0o077 == 0
    return Check(f"permissions {path.name}", ok, f"{path} is {actual:o}" + ("" if ok else f"; should be {mode:o} (chmod {mode:o} {path})"))


def sqlite_fault(file: Path, exc: Exception) -> str:
    """What a SQLite error on `file` means for the officer, and what to do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return (f"{file} is locked by another process ({text}): a SafeCall command or scheduler still running, or a stuck one "
                f"(`fuser {file}` names it); nothing can be recorded until it ends")
    if "readonly" in text or "read-only" in text:
        return (f"{file} cannot be written ({text}): make the file and its folder writable by {current_actor()}, the user "
                f"that runs SafeCall (chmod 600 {file}; chmod 700 {file.parent}), or remount its file system read-write")
    if "full" in text:
        return f"{file} is full ({text}): free space on its disk (`df -h {file.parent}`), then run doctor again"
    return f"{file}: {text}"


def _sqlite_writable(db: Database, file: Path) -> Check:
    """A real write, rolled back: a lock held by another process, a read-only file or a full database refuses it."""
    with db.engine.connect() as connection:
        raw = connection.connection.driver_connection
        raw.execute(f"PRAGMA busy_timeout = {int(min(PROBE_WAIT_SECONDS, db.busy_timeout) * 1000)}")
        try:
            raw.execute("BEGIN IMMEDIATE")
            try:
                raw.execute("CREATE TABLE safecall_doctor_probe (x BLOB)")
                raw.execute("INSERT INTO safecall_doctor_probe VALUES (zeroblob(16384))")  # a few new pages
            finally:
                if raw.in_transaction:  # SQLite has already rolled back a statement that found the database full
                    raw.execute("ROLLBACK")
        except sqlite3.Error as exc:
            return Check("database writable", False, sqlite_fault(file, exc))
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(db.busy_timeout * 1000)}")
    return Check("database writable", True, f"{file}: a test write was made and rolled back")


def _sqlite_space(db: Database, file: Path, disk_usage: Callable) -> Check:
    with db.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        limit = connection.exec_driver_sql("PRAGMA max_page_count").scalar()
    if pages >= limit:
        return Check("database space", False, sqlite_fault(file, sqlite3.OperationalError(
            f"database or disk is full: {pages} pages, the most this database may have")))
    free = disk_usage(file.parent).free
    if free < MIN_FREE_BYTES:
        return Check("database space", False, sqlite_fault(file, sqlite3.OperationalError(
            f"database or disk is full: {free // (1024 * 1024)} MiB free on its disk, SafeCall needs {MIN_FREE_BYTES // (1024 * 1024)} MiB")))
    return Check("database space", True, f"{free // (1024 * 1024)} MiB free on the disk of {file}")


def _database_checks(db: Database, disk_usage: Callable) -> list[Check]:
    checks: list[Check] = []
    file = Path(make_url(db.url).database) if db.is_sqlite else None
    try:
        if file is not None:
            with db.engine.connect() as connection:
                result = connection.execute(sa.text("PRAGMA integrity_check")).scalar()
                checks.append(Check("database integrity", result == "ok", f"integrity_check: {result}"))
                mode = connection.execute(sa.text("PRAGMA journal_mode")).scalar()
                checks.append(Check("database journal", mode == "wal", f"journal_mode={mode}"))
            checks.append(_sqlite_writable(db, file))
            checks.append(_sqlite_space(db, file, disk_usage))
        state = db.schema_state()
    except (SafeCallError, sa.exc.DBAPIError, sqlite3.Error) as exc:
        if file is not None:
            detail = sqlite_fault(file, getattr(exc, "orig", exc))
        else:
            detail = str(exc) if isinstance(exc, SafeCallError) else db.error_text(exc)
        checks.append(Check("database", False, f"cannot use {db.safe_url()}: {detail}"))
        return checks
    checks.append(Check("schema revision", state.current == state.head,
                        f"database {state.describe()}, SafeCall {state.head}" + ("" if state.current == state.head else "; run `safecall db upgrade`")))
    if file is not None:
        checks += [_private(file, 0o600), _private(file.parent, 0o700)]
    return checks


def run_doctor(services: Services, wait_seconds: float = 10, disk_usage: Callable = shutil.disk_usage) -> list[Check]:
    checks = _database_checks(services.db, disk_usage)
    checks.append(_private(services.instance.outbox, 0o700))
    for name in list_campaigns(services.instance):
        _, problems = check_campaign(services.instance, name)
        checks.append(Check(f"campaign {name}", not problems, "valid" if not problems else "; ".join(problems)))
    for name in services.instance.trunks.trunks:
        try:
            for check in services.check_trunk(name, wait_seconds=wait_seconds):
                checks.append(Check(f"trunk {name}: {check.name}", check.ok, check.detail))
        except SafeCallError as exc:
            checks.append(Check(f"trunk {name}", False, str(exc)))
    return checks
