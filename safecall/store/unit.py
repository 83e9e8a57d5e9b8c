"""One unit of work, opened by its caller: a web request, a CLI command (a webhook and a dialer tick keep theirs in
the lifecycle's prepared statements, each committed before the trunk hears of it).

A unit is one connection in one transaction, committed whole when the caller's block ends, rolled back whole when
it raises. It is a `Database` to the code it is handed to: their `session()`, `transaction()`, `statements()` and
`reading()` all run on the unit's connection, each as a savepoint (a block that fails is undone alone, as before),
so the functions that take a database need no change to take part. The repositories (`runs`, `members`,
`attempts`, `tasks`, `outbox`) are the unit's reads by table.

A read unit is one consistent read: every query sees the database as it was at the unit's first, whatever others
commit meanwhile (SQLite: one deferred transaction in WAL mode, `query_only`; PostgreSQL: REPEATABLE READ, READ
ONLY). A write unit on SQLite takes the write lock at its first statement (BEGIN IMMEDIATE): a deferred one that
read first could not write after another process's commit (SQLITE_BUSY_SNAPSHOT, which no busy timeout waits out).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlmodel import Session

from safecall.store.db import Database
from safecall.store.prepared import DriverConnection
from safecall.store.repositories import Attempts, Members, Outbox, Runs, Tasks


class UnitOfWork(Database):
    """See the module. Made by `Database.unit`, which commits or rolls it back; the caller only uses it.

    A Database to the functions it is handed to; it shares its root's engine and compiled statements."""

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
                connection.begin()
                if self.root.is_sqlite:
                    if self.read_only:  # a write here would be a bug: it fails instead of upgrading the snapshot
                        connection.exec_driver_sql("PRAGMA query_only=1")
                    connection.exec_driver_sql("BEGIN" if self.read_only else "BEGIN IMMEDIATE")
                elif self.read_only:
                    connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            except BaseException:
                _close(connection, reset=self.root.is_sqlite and self.read_only)
                raise
            self._connection = connection
        return self._connection

    def session(self) -> Session:
        """An ORM session on the unit's connection: its commit releases a savepoint, its close without one undoes it."""
        return Session(bind=self.connection(), expire_on_commit=False, join_transaction_mode="create_savepoint")

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self.store_errors(), self.session() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def statements(self) -> Iterator[DriverConnection]:
        """The unit's driver connection for prepared statements, the block a savepoint of the unit."""
        with self.store_errors():
            raw = self.connection().connection
            name = f"unit_{next(self._savepoints)}"
            cursor = raw.dbapi_connection.cursor()
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
