"""Reads at a command's start with SQLAlchemy Core only: the schema's newest revision, and a run's status.

`campaign status` is what an officer runs most; loading the ORM (sqlmodel, the store's models and their mappers)
cost it more than half a second of CPU before a row was read (issue 29). Its three small queries need none of it:
the tables are named here by the columns they read, and tests/test_corereads.py checks them against the models.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from safecall.domain import MemberState

MIGRATIONS = Path(__file__).parent / "store" / "migrations"
REVISION_LINE = re.compile(r"""^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(?:['"]([^'"]+)['"]|None)""", re.M)

RUN = sa.table(
    "campaignrun",
    sa.column("id", sa.Integer),
    sa.column("campaign", sa.String),
    sa.column("week_start", sa.Date),
    sa.column("status", sa.String),
    sa.column("rules", sa.Text),
)
MEMBER = sa.table(
    "runmember", sa.column("run_id", sa.Integer), sa.column("state", sa.String), sa.column("attempts_made", sa.Integer)
)
ATTEMPT = sa.table("attempt", sa.column("run_id", sa.Integer), sa.column("disposition", sa.String))


def migration_head() -> str | None:
    """The newest revision of migrations/versions, read from the files' `revision` and `down_revision` lines (None when
    they do not name exactly one head: alembic then decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for script in (MIGRATIONS / "versions").glob("*.py"):
        for name, value in REVISION_LINE.findall(script.read_text(encoding="utf-8")):
            (revisions if name == "revision" else parents).add(value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def at_head(connection: sa.Connection) -> bool:
    """Whether the database's one stored revision is the newest migration's (False for an empty or older one)."""
    head = migration_head()
    if head is None or not sa.inspect(connection).has_table("alembic_version"):
        return False
    return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [head]


@dataclass
class RunStatus:
    run: Any  # the run's row: id, campaign, week_start, status (a CampaignRun, or a Core row with those columns)
    people: int = 0
    acknowledged_first_try: int = 0
    acknowledged_after_retries: int = 0
    help_requests: int = 0
    waiting_first_call: int = 0
    pending_retries: int = 0
    in_call: int = 0
    final_non_responders: int = 0
    withdrawn: int = 0
    attempts_by_disposition: Counter = field(default_factory=Counter)

    @property
    def finished(self) -> int:
        return (
            self.acknowledged_first_try
            + self.acknowledged_after_retries
            + self.help_requests
            + self.final_non_responders
            + self.withdrawn
        )


def members_by_state(run_id: int) -> sa.Select:
    return (
        sa.select(MEMBER.c.state, MEMBER.c.attempts_made, sa.func.count())
        .where(MEMBER.c.run_id == run_id)
        .group_by(MEMBER.c.state, MEMBER.c.attempts_made)
    )


def attempts_by_disposition(run_id: int) -> sa.Select:
    return (
        sa.select(ATTEMPT.c.disposition, sa.func.count())
        .where(ATTEMPT.c.run_id == run_id)
        .group_by(ATTEMPT.c.disposition)
    )


def count_status(run: Any, connection: sa.Connection) -> RunStatus:
    """The run's people by where they stand, and its attempts by result."""
    status = RunStatus(run=run)
    for state, attempts_made, count in connection.execute(members_by_state(run.id)):
        status.people += count
        if state == MemberState.ACKNOWLEDGED:
            if attempts_made == 1:
                status.acknowledged_first_try += count
            else:
                status.acknowledged_after_retries += count
        elif state == MemberState.HELP_REQUESTED:
            status.help_requests += count
        elif state == MemberState.PENDING:
            if attempts_made == 0:
                status.waiting_first_call += count
            else:
                status.pending_retries += count
        elif state == MemberState.IN_CALL:
            status.in_call += count
        elif state == MemberState.UNREACHABLE:
            status.final_non_responders += count
        elif state == MemberState.WITHDRAWN:
            status.withdrawn += count
    for disposition, count in connection.execute(attempts_by_disposition(run.id)):
        status.attempts_by_disposition[disposition or "in progress"] = count
    return status


def begin_one_read(connection: sa.Connection) -> None:
    """Begin the connection's transaction as one consistent read: every query in it sees the same database, whatever
    others commit meanwhile (a run's counts add up). SQLite in WAL mode keeps the snapshot of a deferred transaction's
    first read; the driver begins none for a SELECT by itself."""
    if not connection.in_transaction():
        connection.begin()
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")


def read_status(connection: sa.Connection, run_id: int | None) -> RunStatus | None:
    """The status of the run asked for, or of the latest run; None when there is no such run."""
    query = sa.select(RUN)
    query = query.where(RUN.c.id == run_id) if run_id is not None else query.order_by(RUN.c.id.desc()).limit(1)
    run = connection.execute(query).first()
    return None if run is None else count_status(run, connection)


def status_if_current(database_url: str, busy_timeout: float, run_id: int | None) -> RunStatus | None:
    """The run's status read directly; None when the database is not there yet, not at the newest revision, cannot be
    read, or has no such run (the caller then opens it the usual way, which creates, refuses, asks to upgrade or says
    what is wrong, in the words every command uses)."""
    url = sa.engine.make_url(database_url)
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite and not (url.database and url.database != ":memory:" and Path(url.database).exists()):
        return None
    connect_args = {"timeout": busy_timeout} if sqlite else {}  # as Database opens it
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args=connect_args)
    try:
        with engine.connect() as connection:
            begin_one_read(connection)  # the command's one unit of work
            return read_status(connection, run_id) if at_head(connection) else None
    except sa.exc.DBAPIError:
        return None  # locked, broken or unreachable: the usual way says which, as every other command does
    finally:
        engine.dispose()
