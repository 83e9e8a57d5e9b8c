"""What the web pages show, read from the store: earlier notes, callbacks, a person's history, open runs.

Each reads in a unit of work: the page's own when it has one (one consistent read), else one of its own."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import date

from safecall.domain import TaskStatus
from safecall.runs import RunStatus, run_status
from safecall.store import Attempt, AuditEvent, CampaignRun, Database, Person, RunMember, VisitTask


def earlier_notes(
    db: Database,
    person_ids: list[int],
    *,
    except_tasks: AbstractSet[int] = frozenset(),
    kinds: tuple[str, ...] = ("visit",),
) -> dict[int, list[tuple[str, str]]]:
    """person id -> (kind, note) of their other (earlier) tasks of `kinds`, newest first.

    Visit notes by default: an officer's call-back notes hold what the person said on the phone, for officers only.
    """
    notes: dict[int, list[tuple[str, str]]] = {pid: [] for pid in person_ids}
    if not person_ids:
        return notes
    with db.unit(read_only=True) as unit:  # a page's own unit when it has one (UnitOfWork, store/db.py)
        for task_id, person_id, kind, note in unit.tasks.notes_of(person_ids, kinds):
            if task_id not in except_tasks:
                notes[person_id].append((kind, note))
    return notes


def task_and_person(db: Database, task_id: int) -> tuple[VisitTask, Person] | None:
    with db.unit(read_only=True) as unit:
        return unit.tasks.with_person(task_id)


@dataclass
class CallbackItem:
    task: VisitTask
    person: Person


def callbacks(db: Database, *, since: date) -> tuple[list[CallbackItem], list[CallbackItem]]:
    """(open callbacks, callbacks closed since `since`): words of risk (위험 발언) first, then oldest first."""
    with db.unit(read_only=True) as unit:
        items = [CallbackItem(task, person) for task, person in unit.tasks.callbacks()]
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
    with db.unit(read_only=True) as unit, unit.session() as session:
        person = session.get(Person, person_id)
        if person is None:
            return None
        return PersonHistory(
            person,
            unit.members.of_person(person_id),
            unit.attempts.of_person(person_id),
            unit.tasks.of_person(person_id),
            unit.members.changes_of(person_id),
        )


def open_runs(db: Database) -> list[RunStatus]:
    with db.unit(read_only=True) as unit:
        return [run_status(unit, run_id) for run_id in unit.runs.open_ids()]
