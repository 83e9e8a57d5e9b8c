"""A unit of work's reads by table (UnitOfWork in db.py): the queries the pages, reports and loops share, in one place.

Each reads on its unit's connection, so all of one unit's reads see the same database. Rows come back as the
models (expunged: they outlive the savepoint they were read in) or as plain column tuples where a list is long.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Protocol, cast

import sqlalchemy as sa
from sqlmodel import Session, col, select

from safecall.domain import OutboxKind, RunState, SendStatus, TaskKind
from safecall.store.models import (
    Attempt,
    AuditEvent,
    CampaignRun,
    OutboxMessage,
    Person,
    RunMember,
    VisitTask,
    person_attempts,
)

# Built once, the ids and kinds bound at each call: every list page reads this, and building the statement cost as
# much as running it.
_NOTES_OF = (
    sa.select(col(VisitTask.id), col(VisitTask.person_id), col(VisitTask.kind), col(VisitTask.note))
    .where(
        col(VisitTask.person_id).in_(sa.bindparam("people", expanding=True)),
        col(VisitTask.note).is_not(None),
        col(VisitTask.kind).in_(sa.bindparam("kinds", expanding=True)),
    )
    .order_by(col(VisitTask.id).desc())
)


class Unit(Protocol):
    """What a repository reads through: its unit of work (store/db.py)."""

    def session(self) -> Session: ...

    def reading(self) -> AbstractContextManager[sa.Connection]: ...


class _Repository:
    def __init__(self, unit: Unit):
        self.unit = unit

    def _all(self, query) -> list:
        with self.unit.session() as session:
            return list(session.exec(query))


class Runs(_Repository):
    def open_ids(self) -> list[int]:
        return self._all(
            select(CampaignRun.id).where(CampaignRun.status == RunState.OPEN).order_by(col(CampaignRun.id))
        )


class Members(_Repository):
    def of_person(self, person_id: int) -> list[tuple[CampaignRun, RunMember]]:
        """The person's runs and their place in each, newest week first."""
        return self._all(
            select(CampaignRun, RunMember)
            .join(RunMember, col(RunMember.run_id) == CampaignRun.id)
            .where(RunMember.person_id == person_id)
            .order_by(col(CampaignRun.week_start).desc(), col(CampaignRun.id).desc())
        )

    def changes_of(self, person_id: int) -> list[AuditEvent]:
        """The person's pauses, resumptions and closings, from the audit, newest first."""
        return self._all(
            select(AuditEvent)
            .where(AuditEvent.subject == f"person {person_id}", col(AuditEvent.action).like("person.%"))
            .order_by(col(AuditEvent.id).desc())
        )


class Attempts(_Repository):
    def of_person(self, person_id: int) -> list[Attempt]:
        """Every call placed to the person, newest first."""
        return self._all(person_attempts(person_id).order_by(col(Attempt.placed_at).desc()))


class Tasks(_Repository):
    def with_person(self, task_id: int) -> tuple[VisitTask, Person] | None:
        with self.unit.session() as session:
            task = session.get(VisitTask, task_id)
            if task is None:
                return None
            person = session.get(Person, task.person_id)
            return (task, person) if person is not None else None

    def of_person(self, person_id: int) -> list[VisitTask]:
        return self._all(select(VisitTask).where(VisitTask.person_id == person_id).order_by(col(VisitTask.id).desc()))

    def callbacks(self) -> list[tuple[VisitTask, Person]]:
        """Every call-back task with its person: words of risk (위험 발언) first, then oldest first."""
        return self._all(
            select(VisitTask, Person)
            .join(Person, col(Person.id) == VisitTask.person_id)
            .where(VisitTask.kind == TaskKind.CALLBACK)
            .order_by(col(VisitTask.risk_speech).desc(), col(VisitTask.created_at), col(VisitTask.id))
        )

    def notes_of(self, person_ids: list[int], kinds: Iterable[str]) -> list[tuple[int, int, str, str]]:
        """(task, person, kind, note) of the people's tasks of `kinds` that have a note, newest first.

        Columns on the unit's connection, not ORM objects: every list page reads this."""
        with self.unit.reading() as connection:
            rows = connection.execute(_NOTES_OF, {"people": list(person_ids), "kinds": list(kinds)})
            # Ids are set on stored rows, and only tasks with a note are read.
            return cast("list[tuple[int, int, str, str]]", [tuple(row) for row in rows])


class Outbox(_Repository):
    def due(self, kinds: Iterable[OutboxKind], retried: Iterable[SendStatus], now: datetime) -> list[OutboxMessage]:
        """Messages of `kinds` whose next try is due, oldest first."""
        return self._all(
            select(OutboxMessage)
            .where(
                col(OutboxMessage.kind).in_(list(kinds)),
                col(OutboxMessage.status).in_(list(retried)),
                col(OutboxMessage.next_try_at) <= now,
            )
            .order_by(col(OutboxMessage.id))
        )

    def awaiting_reports(self, now: datetime) -> list[OutboxMessage]:
        """Texts handed over whose delivery report is due to be read."""
        return self._all(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == SendStatus.SENT,
                col(OutboxMessage.provider_id).is_not(None),
                col(OutboxMessage.next_try_at) <= now,
            )
            .order_by(col(OutboxMessage.id))
        )
