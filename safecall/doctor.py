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
from safecall.errors import Lines, Message, SafeCallError
from safecall.i18n import N_
from safecall.services import Services
from safecall.store import Database
from safecall.store.db import current_actor
from safecall.telephony.base import Check

PROBE_WAIT_SECONDS = 2.0  # how long the write test waits for another process's lock
MIN_FREE_BYTES = 64 * 1024 * 1024  # a week's calls of a district take a few MiB; less than this is a disk about to fill


def _private(path: Path, mode: int) -> Check:
    name = Message(N_("permissions {name}"), name=path.name)
    if not path.exists():
        return Check(name, True, Message(N_("{path} does not exist yet"), path=path))
    actual = stat.S_IMODE(path.stat().st_mode)
    ok = actual & 0o077 == 0
    if ok:
        return Check(name, ok, Message(N_("{path} is {mode}"), path=path, mode=f"{actual:o}"))
    return Check(name, ok, Message(N_("{path} is {mode}; should be {wanted} (chmod {wanted} {path})"), path=path, mode=f"{actual:o}",
                                   wanted=f"{mode:o}"))


def sqlite_fault(file: Path, exc: Exception) -> Message:
    """What a SQLite error on `file` means for the officer, and what to do."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        return Message(N_("{file} is locked by another process ({text}): a SafeCall command or scheduler still running, or a stuck one "
                          "(`fuser {file}` names it); nothing can be recorded until it ends"), file=file, text=text)
    if "readonly" in text or "read-only" in text:
        return Message(N_("{file} cannot be written ({text}): make the file and its folder writable by {user}, the user "
                          "that runs SafeCall (chmod 600 {file}; chmod 700 {folder}), or remount its file system read-write"),
                       file=file, text=text, user=current_actor(), folder=file.parent)
    if "full" in text:
        return Message(N_("{file} is full ({text}): free space on its disk (`df -h {folder}`), then run doctor again"),
                       file=file, text=text, folder=file.parent)
    return Message(N_("{file}: {text}"), file=file, text=text)


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
            return Check(Message(N_("database writable")), False, sqlite_fault(file, exc))
        finally:
            raw.execute(f"PRAGMA busy_timeout = {int(db.busy_timeout * 1000)}")
    return Check(Message(N_("database writable")), True, Message(N_("{file}: a test write was made and rolled back"), file=file))


def _sqlite_space(db: Database, file: Path, disk_usage: Callable) -> Check:
    with db.engine.connect() as connection:
        pages = connection.exec_driver_sql("PRAGMA page_count").scalar()
        limit = connection.exec_driver_sql("PRAGMA max_page_count").scalar()
    if pages >= limit:
        return Check(Message(N_("database space")), False, sqlite_fault(file, sqlite3.OperationalError(
            f"database or disk is full: {pages} pages, the most this database may have")))
    free = disk_usage(file.parent).free
    if free < MIN_FREE_BYTES:
        return Check(Message(N_("database space")), False, sqlite_fault(file, sqlite3.OperationalError(
            f"database or disk is full: {free // (1024 * 1024)} MiB free on its disk, SafeCall needs {MIN_FREE_BYTES // (1024 * 1024)} MiB")))
    return Check(Message(N_("database space")), True, Message(N_("{mib} MiB free on the disk of {file}"), mib=free // (1024 * 1024), file=file))


def _database_checks(db: Database, disk_usage: Callable) -> list[Check]:
    checks: list[Check] = []
    file = Path(make_url(db.url).database) if db.is_sqlite else None
    try:
        if file is not None:
            with db.engine.connect() as connection:
                result = connection.execute(sa.text("PRAGMA integrity_check")).scalar()
                checks.append(Check(Message(N_("database integrity")), result == "ok", f"integrity_check: {result}"))
                mode = connection.execute(sa.text("PRAGMA journal_mode")).scalar()
                checks.append(Check(Message(N_("database journal")), mode == "wal", f"journal_mode={mode}"))
            checks.append(_sqlite_writable(db, file))
            checks.append(_sqlite_space(db, file, disk_usage))
        state = db.schema_state()
    except (SafeCallError, sa.exc.DBAPIError, sqlite3.Error) as exc:
        if file is not None:
            detail = sqlite_fault(file, getattr(exc, "orig", exc))
        else:
            detail = exc.message() if isinstance(exc, SafeCallError) else db.error_text(exc)
        checks.append(Check(Message(N_("database")), False, Message(N_("cannot use {url}: {detail}"), url=db.safe_url(), detail=detail)))
        return checks
    schema = (Message(N_("database {state}, SafeCall {head}"), state=state.describe(), head=state.head) if state.current == state.head
              else Message(N_("database {state}, SafeCall {head}; run `safecall db upgrade`"), state=state.describe(), head=state.head))
    checks.append(Check(Message(N_("schema revision")), state.current == state.head, schema))
    if file is not None:
        checks += [_private(file, 0o600), _private(file.parent, 0o700)]
    return checks


def _audit_chain(db: Database) -> Check:
    """The audit's hash chain: an edited or deleted row is named (safecall/audit.py)."""
    from safecall.audit import verify_chain

    try:
        report = verify_chain(db)
    except (SafeCallError, sa.exc.DBAPIError) as exc:  # an old schema: the schema check says what to do
        return Check(Message(N_("audit chain")), False, exc.message() if isinstance(exc, SafeCallError) else db.error_text(exc))
    if report.ok:
        return Check(Message(N_("audit chain")), True, Message(N_("{rows} rows, none changed or deleted"), rows=report.rows))
    return Check(Message(N_("audit chain")), False, Lines(report.problems[:10], sep="; "))


def run_doctor(services: Services, wait_seconds: float = 10, disk_usage: Callable = shutil.disk_usage) -> list[Check]:
    checks = _database_checks(services.db, disk_usage)
    if any(check.name == "schema revision" and check.ok for check in checks):  # the chain's columns are there
        checks.append(_audit_chain(services.db))
    checks.append(_private(services.instance.outbox, 0o700))
    for name in list_campaigns(services.instance):
        _, problems = check_campaign(services.instance, name)
        checks.append(Check(Message(N_("campaign {name}"), name=name), not problems,
                            Message(N_("valid")) if not problems else Lines(problems, sep="; ")))
    for name in services.instance.trunks.trunks:
        try:
            for check in services.check_trunk(name, wait_seconds=wait_seconds):
                checks.append(Check(Message(N_("trunk {name}: {check}"), name=name, check=check.name), check.ok, check.detail))
        except SafeCallError as exc:
            checks.append(Check(Message(N_("trunk {name}"), name=name), False, exc.message()))
    return checks
