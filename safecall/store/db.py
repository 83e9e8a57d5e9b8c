"""Engine, sessions and schema migrations.

SQLite (the default) runs in WAL mode with a busy timeout and an owner-only
file; PostgreSQL is reached with psycopg 3. The schema is kept by Alembic
migrations in safecall/store/migrations, for both.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pwd
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlmodel import Session, create_engine

from safecall.corereads import MIGRATIONS, at_head, begin_one_read, migration_head  # noqa: F401 (migration_head re-exported)
from safecall.dburl import mask_url, url_secrets
from safecall.errors import SafeCallError
from safecall.i18n import N_
from safecall.store.models import AuditEvent, table_of
from safecall.store.prepared import DriverConnection, Prepared
from safecall.store.repositories import Attempts, Members, Outbox, Runs, Tasks

FIRST_REVISION = "0001"  # what databases made before migrations existed are
MIGRATION_LOCK = 5_104_2026  # PostgreSQL advisory lock: workers starting together migrate one at a time


class StoreError(SafeCallError):
    """The database could not be opened, is locked, full or of another schema version."""


@dataclass(frozen=True)
class SchemaState:
    current: str | None  # None: a new, empty database, or one made before migrations existed (has_tables)
    head: str
    known: set[str]
    has_tables: bool
    release: str | None = None  # the SafeCall release that last made or upgraded it, from its audit (0.2.0 on)

    @property
    def newer(self) -> bool:
        """Made or upgraded by a newer SafeCall than this one: a revision this one does not know."""
        return self.current is not None and self.current not in self.known

    def describe(self) -> str:
        return self.current or ("0001 (made before migrations)" if self.has_tables else "empty (created on first use)")


@dataclass(frozen=True)
class Upgrade:
    applied: list[str]
    backup: Path | None
    head: str  # the revision the database is at now


class Database:
    def __init__(self, url: str, busy_timeout: float = 30):
        self.url = url
        self.root = self  # a UnitOfWork's is the database it was opened on
        self._secrets = url_secrets(url)
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        if self.is_sqlite and parsed.database and parsed.database != ":memory:":
            _create_private_file(Path(parsed.database))
        kwargs = {"connect_args": {"check_same_thread": False, "timeout": busy_timeout}} if self.is_sqlite else {}
        self.busy_timeout = busy_timeout
        self._prepared: dict[sa.ClauseElement, Prepared] = {}
        self._held = threading.local()  # the connection `holding_a_connection` keeps for one thread
        # Every unit of work here ends in a commit or rollback (SQLAlchemy's or the driver's), so the pool's own
        # rollback when a connection is returned only costs time (about a third of a small transaction).
        self.engine = create_engine(url, pool_reset_on_return=None, **kwargs)
        if self.is_sqlite:
            sa.event.listen(self.engine, "connect", lambda connection, _: _sqlite_pragmas(connection, busy_timeout))

    def create_schema(self) -> None:
        """Make a new database at the newest schema;
        an older one must be upgraded on purpose (`safecall db upgrade`)."""
        if self._at_head():  # every command's start: alembic is imported only when there is work for it
            return
        state = self.schema_state()
        if state.current == state.head:
            return
        if state.current is None and not state.has_tables:
            self.upgrade()
            return
        if state.newer:
            raise self.newer_error(state)
        raise StoreError(
            N_(
                "the database {url} is at schema revision {current}, this SafeCall needs {head}: "
                "run `safecall db upgrade` (it keeps a backup of a SQLite file)"
            ),
            url=self.safe_url(),
            current=state.current or FIRST_REVISION,
            head=state.head,
        )

    def _at_head(self) -> bool:
        """Whether the database's one stored revision is the newest migration's, read without alembic."""
        try:
            with self.engine.connect() as connection:
                return at_head(connection)
        except sa.exc.OperationalError as exc:
            raise StoreError(N_("cannot open the database: {reason}"), reason=self.error_text(exc)) from exc

    def schema_state(self) -> SchemaState:
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        try:
            with self.engine.connect() as connection:
                tables = set(sa.inspect(connection).get_table_names())
                current = MigrationContext.configure(connection).get_current_revision()
                release = None
                audit_table = table_of(AuditEvent)
                if audit_table.name in tables:  # the newest upgrade's row says which release made it (see `upgrade`)
                    detail = connection.execute(
                        sa.select(audit_table.c.detail)
                        .where(audit_table.c.action == "db.upgrade")
                        .order_by(audit_table.c.id.desc())
                        .limit(1)
                    ).scalar()
                    found = re.match(r"SafeCall (\d[\w.+-]*):", detail or "")
                    release = found.group(1) if found else None
        except sa.exc.OperationalError as exc:
            raise StoreError(N_("cannot open the database: {reason}"), reason=self.error_text(exc)) from exc
        scripts = ScriptDirectory.from_config(self._alembic_config())
        known = {script.revision for script in scripts.walk_revisions()}
        head = scripts.get_current_head()
        assert head is not None  # the package's migrations have one head
        # current None with tables: made by SafeCall 0.1, before migrations; it is revision 0001 in all but name.
        return SchemaState(
            current=current,
            head=head,
            known=known,
            has_tables="person" in tables,
            release=release,
        )

    def newer_error(self, state: SchemaState) -> StoreError:
        """What an older SafeCall says of a database a newer one upgraded: which release to use, and how to go back."""
        if state.release:
            return StoreError(
                N_(
                    "the database {url} was upgraded by SafeCall {release} (schema revision {current}), "
                    "newer than this SafeCall {version}, which knows revisions up to {head}: "
                    "install SafeCall {release} again, or go back to this release with the backup "
                    'taken before that upgrade (docs/operations.md, "Rolling back"); nothing was changed'
                ),
                url=self.safe_url(),
                release=state.release,
                current=state.current,
                version=safecall_version(),
                head=state.head,
            )
        return StoreError(
            N_(
                "the database {url} is at schema revision {current}, "
                "made by a SafeCall newer than this one ({version}, which knows revisions up to {head}): "
                "install the newer release again, or go back with the backup taken before that upgrade "
                '(docs/operations.md, "Rolling back"); nothing was changed'
            ),
            url=self.safe_url(),
            current=state.current,
            version=safecall_version(),
            head=state.head,
        )

    def upgrade(
        self,
        pg_backup: Callable[[str], Path] | None = None,
        *,
        take_backup: bool = True,
        rules_of_campaign: Callable[[str], str | None] | None = None,
    ) -> Upgrade:
        """Bring the schema to the newest revision in place. A database with data is backed up first: a SQLite file
        beside itself, a PostgreSQL one by `pg_backup(head)` (the caller's pg_dump, safecall/backup.py); refused
        when it cannot be, unless the operator took one and says so with take_backup=False.

        `rules_of_campaign`: a campaign's rules as a run keeps them, from the files (a revision gives them to open
        runs).
        """
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        state = self.schema_state()
        if state.newer:
            raise self.newer_error(state)  # before any backup: its name would say it comes before an older revision
        if state.current == state.head:
            return Upgrade([], None, state.head)
        backup = None
        if self.is_sqlite and state.has_tables:
            backup = self.backup(Path(f"{self.sqlite_file()}.before-{state.head}.bak"))
        elif state.has_tables and take_backup:
            if pg_backup is None:
                raise StoreError(
                    N_("no way to back up {url} before upgrading it: run `safecall db upgrade`, which uses pg_dump"),
                    url=self.safe_url(),
                )
            backup = pg_backup(state.head)
        config = self._alembic_config()
        try:
            with self.engine.begin() as connection:
                if connection.dialect.name == "postgresql":
                    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
                    if MigrationContext.configure(connection).get_current_revision() == state.head:
                        return Upgrade([], None, state.head)  # another process upgraded while this one waited
                config.attributes["connection"] = connection
                config.attributes["rules_of_campaign"] = rules_of_campaign
                if state.current is None and state.has_tables:
                    command.stamp(config, FIRST_REVISION)
                command.upgrade(config, "head")
                if (
                    state.has_tables
                ):  # which release this is, for an older one that meets this database later (`newer_error`)
                    with Session(bind=connection) as session:
                        audit(
                            session,
                            at=real_now(),
                            action="db.upgrade",
                            subject="database",
                            detail=f"SafeCall {safecall_version()}: "
                            f"schema {state.current or FIRST_REVISION} -> {state.head}",
                        )
                        session.flush()
        except sa.exc.OperationalError as exc:
            raise StoreError(
                N_("the upgrade of {url} failed and was rolled back: {reason}"),
                url=self.safe_url(),
                reason=self.error_text(exc),
            ) from exc
        scripts = ScriptDirectory.from_config(config)
        start = state.current or (FIRST_REVISION if state.has_tables else None)
        return Upgrade(
            [script.revision for script in scripts.iterate_revisions(state.head, start)][::-1], backup, state.head
        )

    def backup(self, target: Path) -> Path:
        """A consistent copy of the SQLite file, owner-only."""
        return copy_sqlite(self.sqlite_file(), target)

    def sqlite_file(self) -> Path:
        database = make_url(self.url).database
        assert database is not None  # SafeCall keeps SQLite in a file (it never opens an in-memory one)
        return Path(database)

    @staticmethod
    def _alembic_config():
        from alembic.config import Config as AlembicConfig

        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS))
        return config

    def safe_url(self) -> str:
        return mask_url(self.url)

    def error_text(self, exc: Exception) -> str:
        """`explain` for this database, with no password of its URL in it, whatever the driver wrote."""
        text = explain(exc, self.safe_url())
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One unit of work: committed whole, or rolled back whole. A locked or full database is a StoreError."""
        with self.store_errors(), self.session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def statements(self) -> Iterator[DriverConnection]:
        """One unit of work in prepared statements (`prepared`), on a pooled driver connection: the engine's hot path.

        Committed whole or rolled back whole, as `transaction`; a connection that failed in the driver is
        discarded, not pooled (after a server restart it is dead, and the next unit of work gets a new one).
        Inside `holding_a_connection` on this thread, the held connection serves, unless a unit already uses it.
        """
        held = getattr(self._held, "connection", None)
        reuse = held is not None and not self._held.busy
        with self.store_errors():
            connection = held if held is not None and reuse else self.engine.raw_connection()
            if reuse:
                self._held.busy = True
            try:
                yield connection
                connection.commit()
            except BaseException as exc:
                if isinstance(exc, self.engine.dialect.loaded_dbapi.Error):
                    connection.invalidate(exc)
                    if reuse:  # it is dead: the rest of the block takes connections from the pool
                        self._held.connection = None
                        connection.close()
                else:
                    connection.rollback()
                raise
            finally:
                if reuse:
                    self._held.busy = False
                else:
                    connection.close()

    @contextmanager
    def holding_a_connection(self) -> Iterator[None]:
        """This thread's units of work (`statements`) reuse one pooled connection until the block ends.

        For the dialer's run, where units of work follow each other all week: taking a connection from the
        pool and giving it back costs ~16 us a time, about 5 % of the engine's week (BENCHMARKS.md).
        """
        with self.store_errors():
            self._held.connection, self._held.busy = self.engine.raw_connection(), False
        try:
            yield
        finally:
            held, self._held.connection = self._held.connection, None
            if held is not None:
                held.close()

    @property
    def for_writes(self) -> Database:
        """Where a write of the caller goes: here, unless this is a read-only unit (then its root, on its own)."""
        return self

    @contextmanager
    def unit(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """One unit of work for the caller's block: committed whole at its end, rolled back whole if it raises
        (UnitOfWork). `read_only`: one consistent read, in which a write is an error."""
        unit = UnitOfWork(self, read_only=read_only)
        with self.store_errors():
            try:
                yield unit
            except BaseException:
                unit.finish(commit=False)
                raise
            unit.finish(commit=True)

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        """A Core connection for reads (columns, no ORM objects); inside a unit, the unit's."""
        with self.engine.connect() as connection:
            yield connection

    @contextmanager
    def store_errors(self) -> Iterator[None]:
        """A locked or full database, through the ORM or the driver (prepared statements), is a StoreError."""
        try:
            yield
        except (sa.exc.OperationalError, self.engine.dialect.loaded_dbapi.OperationalError) as exc:
            raise StoreError(self.error_text(exc)) from exc

    def prepared(self, statement: sa.ClauseElement) -> Prepared:
        """`statement` compiled for this database, once (see prepared.py).

        IVR threads and the dialer share this cache: two may compile the same statement at once, to the same result.
        """
        prepared = self._prepared.get(statement)
        if prepared is None:
            prepared = self._prepared[statement] = Prepared(statement, self.engine.dialect)
        return prepared

    def dispose(self) -> None:
        self.engine.dispose()


def explain(exc: Exception, where: str) -> str:
    text = str(getattr(exc, "orig", exc))
    if "locked" in text or "busy" in text:
        return f"the database {where} is locked by another process ({text}); nothing was changed: try again"
    if "full" in text:
        return f"the database {where} is full ({text}); nothing was changed: free disk space and try again"
    return f"database error on {where}: {text}; nothing was changed"


def copy_sqlite(source: Path, target: Path) -> Path:
    """A consistent copy of a SQLite file (the online backup API, while others may write), owner-only.
    The source is opened read-only: copying can never change it."""
    import sqlite3
    from urllib.parse import quote

    _create_private_file(target)
    original = sqlite3.connect(f"file:{quote(str(source))}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        original.backup(copy)
    finally:
        copy.close()
        original.close()
    return target


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


def safecall_version() -> str:
    """This release, as installed (pyproject.toml's version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("safecall")
    except PackageNotFoundError:
        return "unknown"


def current_actor() -> str:
    """The OS account running this process, from its real user id: LOGNAME and USER can be set by anyone."""
    uid = os.getuid()
    try:
        return f"os:{pwd.getpwuid(uid).pw_name}(uid {uid})"
    except KeyError:  # a uid with no passwd entry (some containers)
        return f"os:uid {uid}"


def real_now() -> datetime:
    """The system's time: what audit rows store beside `at`, which a drill's --now moves."""
    return datetime.now(UTC)


def audit(
    session: Session, *, at: datetime, action: str, subject: str, detail: str = "", actor: str | None = None
) -> None:
    """Record who did what; part of the caller's transaction. `at` may be a drill's time; real_at never is.

    The row joins the tamper-evident chain: the UPDATE of the chain's head locks it (a write lock on SQLite, a row
    lock on PostgreSQL) until this transaction ends, so rows chain one after another even from several processes."""
    seq, previous = session.execute(
        sa.text("UPDATE auditchain SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash")
    ).one()
    event = AuditEvent(
        at=at,
        actor=actor or current_actor(),
        action=action,
        subject=subject,
        detail=detail,
        real_at=real_now(),
        seq=seq,
    )
    event.hash = chain_hash(previous, event)
    session.execute(sa.text("UPDATE auditchain SET hash = :hash WHERE id = 1"), {"hash": event.hash})
    session.add(event)


def chain_hash(previous: str, event) -> str:
    """SHA-256 of the previous row's hash and this row's fields. Never change it: old rows are verified with it."""

    def utc(value: datetime | None) -> str | None:
        return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")

    fields = [
        previous,
        event.seq,
        utc(event.at),
        utc(event.real_at),
        event.actor,
        event.action,
        event.subject,
        event.detail,
    ]
    return hashlib.sha256(json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")).hexdigest()


class UnitOfWork(Database):
    """One unit of work, opened by its caller: a web request, a CLI command (a webhook and a dialer tick keep theirs
    in the lifecycle's prepared statements, each committed before the trunk hears of it). Made by `Database.unit`,
    which commits or rolls it back; the caller only uses it.

    One connection in one transaction. It is a Database to the code it is handed to, sharing its root's engine and
    compiled statements: their `session()`, `transaction()`, `statements()` and `reading()` all run on the unit's
    connection, each as a savepoint (a block that fails is undone alone, as before), so the functions that take a
    database need no change to take part. The repositories (`runs`, `members`, `attempts`, `tasks`, `outbox`) are
    the unit's reads by table.

    A read unit is one consistent read: every query sees the database as it was at the unit's first, whatever others
    commit meanwhile (SQLite: one deferred transaction in WAL mode, `query_only`; PostgreSQL: REPEATABLE READ, READ
    ONLY). A write unit on SQLite takes the write lock at its first statement (BEGIN IMMEDIATE): a deferred one that
    read first could not write after another process's commit (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits
    out)."""

    def __init__(self, root: Database, *, read_only: bool):
        self.__dict__.update(root.__dict__)  # url, engine, the prepared statements' cache, ...
        self.root = root  # for what must not wait for the unit: the access log, a lease
        self.read_only = read_only
        self._connection: sa.Connection | None = None
        self._finished = False
        self._savepoints = itertools.count(1)
        self.runs = Runs(self)
        self.members = Members(self)
        self.attempts = Attempts(self)
        self.tasks = Tasks(self)
        self.outbox = Outbox(self)

    # ---- what the unit's code runs on --------------------------------------------------------------------------
    def connection(self) -> sa.Connection:
        """The unit's connection, opened and its transaction begun at first use (a unit nobody reads costs nothing)."""
        if self._connection is None:
            if self._finished:  # a reader that outlived its unit would open a transaction nobody ends
                raise RuntimeError("this unit of work has ended")
            connection = self.root.engine.connect()
            try:
                if self.read_only:
                    if self.root.is_sqlite:  # a write here would be a bug: it fails instead of upgrading the snapshot
                        connection.exec_driver_sql("PRAGMA query_only=1")
                    begin_one_read(connection)
                else:
                    connection.begin()
                    if self.root.is_sqlite:
                        connection.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _close(connection, reset=self.root.is_sqlite and self.read_only)
                raise
            self._connection = connection
        return self._connection

    def session(self) -> Session:
        """An ORM session on the unit's connection: its commit releases a savepoint, its close without one undoes it."""
        return Session(bind=self.connection(), expire_on_commit=False, join_transaction_mode="create_savepoint")

    # transaction() is Database's: on this unit's session() its commit releases a savepoint, its rollback undoes it.

    @contextmanager
    def statements(self) -> Iterator[DriverConnection]:
        """The unit's driver connection for prepared statements, the block a savepoint of the unit."""
        with self.store_errors():
            raw = self.connection().connection
            name = f"unit_{next(self._savepoints)}"
            driver = raw.dbapi_connection
            assert driver is not None  # None only once the pooled connection is closed
            cursor = driver.cursor()
            try:
                cursor.execute(f"SAVEPOINT {name}")
                try:
                    yield raw
                except BaseException:
                    cursor.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    cursor.execute(f"RELEASE SAVEPOINT {name}")
                    raise
                cursor.execute(f"RELEASE SAVEPOINT {name}")
            finally:
                cursor.close()

    @contextmanager
    def reading(self) -> Iterator[sa.Connection]:
        yield self.connection()

    @property
    def for_writes(self) -> Database:
        return self.root if self.read_only else self

    @contextmanager
    def holding_a_connection(self) -> Iterator[None]:
        yield  # a unit holds one already

    @contextmanager
    def unit(self, *, read_only: bool = False) -> Iterator[UnitOfWork]:
        """Inside a unit, a unit asked for is this one: the caller that opened it owns the transaction."""
        yield self

    def dispose(self) -> None:
        pass  # the engine is the root's

    # ---- the end, by Database.unit -----------------------------------------------------------------------------
    def finish(self, *, commit: bool) -> None:
        connection, self._connection, self._finished = self._connection, None, True
        if connection is None:
            return
        try:
            if commit:
                connection.commit()
            else:
                connection.rollback()
        finally:
            _close(connection, reset=self.root.is_sqlite and self.read_only)


def _close(connection: sa.Connection, *, reset: bool) -> None:
    """Back to the pool as it came: not query-only (the pool does not reset connections, db.py)."""
    try:
        if reset:
            if connection.in_transaction():
                connection.rollback()
            connection.exec_driver_sql("PRAGMA query_only=0")
            connection.commit()
    finally:
        connection.close()
