"""What the web pages show, read from the store: earlier notes, callbacks, a person's history, open runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlmodel import select

from safecall.domain import RunState, TaskKind, TaskStatus
from safecall.runs import RunStatus, run_status
from safecall.store import Attempt, AuditEvent, CampaignRun, Database, Person, RunMember, VisitTask, person_attempts

# Built once, the ids and kinds bound at each call: every list page reads this, and building the statement cost as
# much as running it.
EARLIER_NOTES = (
    sa.select(VisitTask.id, VisitTask.person_id, VisitTask.kind, VisitTask.note)
    .where(
        VisitTask.person_id.in_(sa.bindparam("people", expanding=True)),
        VisitTask.note.is_not(None),
        VisitTask.kind.in_(sa.bindparam("kinds", expanding=True)),
    )
    .order_by(VisitTask.id.desc())
)


def earlier_notes(
    db: Database, person_ids: list[int], *, except_tasks: set[int] = frozenset(), kinds: tuple[str, ...] = ("visit",)
) -> dict[int, list[tuple[str, str]]]:
    """person id -> (kind, note) of their other (earlier) tasks of `kinds`, newest first.

    Visit notes by default: an officer's call-back notes hold what the person said on the phone, for officers only.
    """
    notes: dict[int, list[tuple[str, str]]] = {pid: [] for pid in person_ids}
    if not person_ids:
        return notes
    with (
        db.engine.connect() as connection
    ):  # columns only: a Connection costs less than an ORM Session (every list page reads this)
        for task_id, person_id, kind, note in connection.execute(
            EARLIER_NOTES, {"people": list(person_ids), "kinds": list(kinds)}
        ):
            if task_id not in except_tasks:
                notes[person_id].append((kind, note))
    return notes


def task_and_person(db: Database, task_id: int) -> tuple[VisitTask, Person] | None:
    with db.session() as session:
        task = session.get(VisitTask, task_id)
        return (task, session.get(Person, task.person_id)) if task is not None else None


@dataclass
class CallbackItem:
    task: VisitTask
    person: Person


def callbacks(db: Database, *, since: date) -> tuple[list[CallbackItem], list[CallbackItem]]:
    """(open callbacks, callbacks closed since `since`): words of risk (위험 발언) first, then oldest first."""
    with db.session() as session:
        rows = session.exec(
            select(VisitTask, Person)
            .join(Person, Person.id == VisitTask.person_id)
            .where(VisitTask.kind == TaskKind.CALLBACK)
            .order_by(VisitTask.risk_speech.desc(), VisitTask.created_at, VisitTask.id)
        )
        items = [CallbackItem(task, person) for task, person in rows]
    return (
        [i for i in items if i.task.status == TaskStatus.OPEN],
        [i for i in items if i.task.status == TaskStatus.CLOSED and i.task.created_on >= since],
    )


@dataclass
class PersonHistory:
    person: Person
    runs: list[tuple[CampaignRun, RunMember]]
    attempts: list[Attempt]
    tasks: list[VisitTask]
    changes: list[AuditEvent]  # pauses, resumptions, closings


def person_history(db: Database, person_id: int) -> PersonHistory | None:
    with db.session() as session:
        person = session.get(Person, person_id)
        if person is None:
            return None
        runs = list(
            session.exec(
                select(CampaignRun, RunMember)
                .join(RunMember, RunMember.run_id == CampaignRun.id)
                .where(RunMember.person_id == person_id)
                .order_by(CampaignRun.week_start.desc(), CampaignRun.id.desc())
            )
        )
        attempts = list(session.exec(person_attempts(person_id).order_by(Attempt.placed_at.desc())))
        tasks = list(
            session.exec(select(VisitTask).where(VisitTask.person_id == person_id).order_by(VisitTask.id.desc()))
        )
        changes = list(
            session.exec(
                select(AuditEvent)
                .where(AuditEvent.subject == f"person {person_id}", AuditEvent.action.like("person.%"))
                .order_by(AuditEvent.id.desc())
            )
        )
    return PersonHistory(person, runs, attempts, tasks, changes)


def open_runs(db: Database) -> list[RunStatus]:
    with db.session() as session:
        ids = list(
            session.exec(select(CampaignRun.id).where(CampaignRun.status == RunState.OPEN).order_by(CampaignRun.id))
        )
    return [run_status(db, run_id) for run_id in ids]
