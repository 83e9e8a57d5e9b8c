"""Backups of an instance's database, taken while the scheduler runs, and their restore.

SQLite: the online backup API (`copy_sqlite`), which copies the pages committed in the WAL as well; a plain `cp`
of the file misses them. PostgreSQL: `pg_dump --format=custom`, restored by `pg_restore --clean`. The password
goes to the client programs in PGPASSWORD, never on their command line (any local user can read that).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import make_url

from safecall.errors import SafeCallError
from safecall.i18n import N_
from safecall.store.db import Database, _create_private_file, copy_sqlite

STAMP = "%Y%m%dT%H%M%SZ"
PREFIX = "safecall-"


class BackupError(SafeCallError):
    """A backup could not be taken or restored; nothing was changed."""


@dataclass(frozen=True)
class Backup:
    path: Path
    taken_at: datetime  # UTC, from its name


def backup_suffix(db: Database) -> str:
    return ".db" if db.is_sqlite else ".dump"


def backup_name(db: Database, now: datetime) -> str:
    return f"{PREFIX}{now.astimezone(UTC).strftime(STAMP)}{backup_suffix(db)}"


def take_backup(db: Database, target: Path, *, pg_dump: str = "pg_dump") -> Path:
    """A consistent copy of the database at `target`, owner-only; other processes may go on writing meanwhile."""
    if target.exists():
        raise BackupError(N_("{path} already exists; a backup never overwrites a file"), path=target)
    if db.is_sqlite:
        try:
            return copy_sqlite(db.sqlite_file(), target)
        except Exception as exc:
            target.unlink(missing_ok=True)
            raise BackupError(
                N_("cannot back up {url} to {path}: {reason}"), url=db.safe_url(), path=target, reason=str(exc)
            ) from exc
    _create_private_file(target)  # owner-only before pg_dump writes into it
    args, env = _libpq(db)
    try:
        _run(
            [pg_dump, "--format=custom", "--no-owner", f"--file={target}", *args],
            env,
            db,
            target,
            N_(
                "`pg_dump` was not found: install the PostgreSQL client of the server's version "
                "(Debian: apt-get install postgresql-client)"
            ),
        )
    except BackupError:
        target.unlink(missing_ok=True)  # no empty or half-written file that looks like a backup
        raise
    return target


def backup_before_upgrade(db: Database, folder: Path, head: str, now: datetime) -> Path:
    """The backup `db upgrade` takes of a PostgreSQL database before changing its schema to `head`."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return take_backup(db, folder / backup_name(db, now).replace(PREFIX, f"{PREFIX}before-{head}-", 1))


def restore_backup(db: Database, source: Path, *, pg_restore: str = "pg_restore") -> None:
    """The database becomes the backup `source`, whole. Stop the scheduler, web and workers first."""
    if not source.is_file():
        raise BackupError(N_("{path}: no such backup file"), path=source)
    if db.is_sqlite:
        import sqlite3
        from urllib.parse import quote

        try:
            original = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True)
            try:
                if original.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                    raise BackupError(N_("{path} is damaged (integrity_check); nothing was restored"), path=source)
                with db.engine.connect() as connection:  # the backup API writes the live file under SQLite's locks
                    driver = connection.connection.driver_connection
                    assert driver is not None  # an open connection has its driver's
                    original.backup(driver)
            finally:
                original.close()
        except sqlite3.DatabaseError as exc:
            raise BackupError(
                N_("{path} is not a SafeCall SQLite backup ({reason}); nothing was restored"),
                path=source,
                reason=str(exc),
            ) from exc
        db.engine.dispose()
        return
    args, env = _libpq(db)
    _run(
        [pg_restore, "--clean", "--if-exists", "--no-owner", "--single-transaction", *args, str(source)],
        env,
        db,
        source,
        N_(
            "`pg_restore` was not found: install the PostgreSQL client of the server's version "
            "(Debian: apt-get install postgresql-client)"
        ),
    )


def list_backups(folder: Path) -> list[Backup]:
    """The backups in `folder`, oldest first, read from their names."""
    found = []
    for path in folder.glob(f"{PREFIX}*") if folder.is_dir() else []:
        stamp = path.name.removeprefix(PREFIX).split(".", 1)[0]
        try:
            found.append(Backup(path, datetime.strptime(stamp, STAMP).replace(tzinfo=UTC)))
        except ValueError:
            continue  # another file: left alone
    return sorted(found, key=lambda b: b.taken_at)


def daily_backup(db: Database, folder: Path, *, keep: int, now: datetime, due: bool) -> Path | None:
    """Today's backup when it is `due` and none was taken in the last 20 hours; then only the newest `keep` stay."""
    backups = list_backups(folder)
    if not due or (backups and now - backups[-1].taken_at < timedelta(hours=20)):
        return None
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    taken = take_backup(db, folder / backup_name(db, now))
    for old in list_backups(folder)[:-keep]:
        old.path.unlink(missing_ok=True)
    return taken


def _libpq(db: Database) -> tuple[list[str], dict[str, str]]:
    """Connection arguments for pg_dump/pg_restore, and their environment (the password in PGPASSWORD)."""
    url = make_url(db.url)
    args = [f"--dbname={url.database}"]
    if url.host:
        args.append(f"--host={url.host}")
    if url.port:
        args.append(f"--port={url.port}")
    if url.username:
        args.append(f"--username={url.username}")
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = url.password
    for key, values in url.normalized_query.items():  # e.g. sslmode=require
        if key == "sslmode":
            env["PGSSLMODE"] = values[-1]  # given twice, the last one counts
    return args, env


def _run(command: list[str], env: dict[str, str], db: Database, path: Path, missing) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(missing)
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(
            N_("{program} failed on {url} ({path}): {reason}"),
            program=Path(command[0]).name,
            url=db.safe_url(),
            path=path,
            reason=_without_secrets(db, result.stderr.strip()[-500:]),
        )


def _without_secrets(db: Database, text: str) -> str:
    for secret in db._secrets:
        text = text.replace(secret, "***")
    return text
