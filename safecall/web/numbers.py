"""The officers' number-fix tasks (번호 확인 필요): who they are, what was dialled, and recording the fix.

A task of kind "number" is made when a call met a number that does not exist. The officer either enters the corrected
number, which is checked as a roster's is (safecall/phones.py, and no other person on the roster holds it) and takes
the place of the number that failed, or records that there is no number to call (연락처 없음): the person then must be
seen at home, so the run's visit task is made if the run did not already make one. Either closes the task, with audit.
The routes in safecall/web/officer.py only call these functions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import col, or_, select

from safecall import phones
from safecall.domain import PersonStatus, TaskKind, TaskStatus
from safecall.errors import InputError, Keyword, NotFoundError
from safecall.i18n import N_
from safecall.lifecycle import record_task_outcome
from safecall.store import Attempt, Database, Disposition, Person, VisitTask, audit
from safecall.visits import NUMBER_OUTCOMES, OUTCOME_KOREAN

FIXED, NO_CONTACT = NUMBER_OUTCOMES[0], "no_contact"  # 연락처 없음: the web's only (it sends a visit team)


@dataclass
class NumberTask:
    task: VisitTask
    person: Person
    dead: list[str]  # the numbers that proved not to exist in the task's run (E.164)
    last: Attempt | None  # the person's last attempt in that run


def open_number_tasks(db: Database) -> list[NumberTask]:
    """Open number-fix tasks, oldest first, each with the numbers that failed and the last attempt of its run."""
    with db.session() as session:
        rows = list(
            session.exec(
                select(VisitTask, Person)
                .join(Person, col(Person.id) == VisitTask.person_id)
                .where(VisitTask.kind == TaskKind.NUMBER, VisitTask.status == TaskStatus.OPEN)
                .order_by(col(VisitTask.created_at), col(VisitTask.id))
            )
        )
        items = []
        for task, person in rows:
            attempts = list(
                session.exec(
                    select(Attempt)
                    .where(Attempt.run_id == task.run_id, Attempt.person_id == person.id)
                    .order_by(col(Attempt.number))
                )
            )
            dead = list(
                dict.fromkeys(a.phone for a in attempts if a.disposition == Disposition.INVALID_NUMBER and a.phone)
            )
            items.append(NumberTask(task, person, dead, attempts[-1] if attempts else None))
    return items


def fix_number(
    db: Database, task_id: int, *, outcome: str, phone: str = "", now: datetime, tz: ZoneInfo, actor: str
) -> Person:
    """Record a number-fix task's outcome: FIXED with the corrected `phone`, or NO_CONTACT. Refused, with nothing
    written, when the number is not a valid Korean number, is the one that failed, or is another person's."""
    if outcome not in (FIXED, NO_CONTACT):
        raise InputError(
            N_("unknown outcome {outcome!r} for a {kind} task (use {choices})"),
            outcome=outcome,
            kind=TaskKind.NUMBER,
            choices=f"{FIXED}, {NO_CONTACT}",
        )
    new = None
    if outcome == FIXED:
        try:
            new = phones.normalise(phone)
        except ValueError as exc:
            raise InputError(N_("the corrected number: {problem}"), problem=exc.args[0]) from None
    local = now.astimezone(tz)
    with db.transaction() as session:
        task = session.get(VisitTask, task_id)
        if task is None or task.kind != TaskKind.NUMBER:
            raise NotFoundError(N_("no number task {task}"), task=task_id)
        if task.status == TaskStatus.CLOSED:
            raise InputError(
                N_("visit task {task} is already closed with outcome {outcome}"),
                task=task_id,
                outcome=Keyword("outcome", task.outcome or ""),  # a closed task has its outcome
            )
        person = session.get(Person, task.person_id)
        assert person is not None, "a task's person is kept (the task refers to it)"
        dead = set(
            session.exec(
                select(Attempt.phone).where(
                    Attempt.run_id == task.run_id,
                    Attempt.person_id == person.id,
                    Attempt.disposition == Disposition.INVALID_NUMBER,
                )
            )
        )
        line = f"{local:%Y-%m-%d %H:%M} {OUTCOME_KOREAN[outcome]}"
        if new is not None:
            line += _replace_number(session, person, new, dead, now=now, task_id=task_id, actor=actor)
        else:
            _visit_when_unreachable(session, task, person, now=now, local=local)
        record_task_outcome(task, outcome=outcome, line=line, now=now, actor=actor, close=True)
        person.updated_at = now
        session.add_all([task, person])
        audit(
            session, at=now, action="visit.record", subject=f"task {task_id}", detail=f"outcome={outcome}", actor=actor
        )
    return person


def _replace_number(
    session, person: Person, new: str, dead: set[str], *, now: datetime, task_id: int, actor: str
) -> str:
    """Put the corrected number in place of the dead one, audited; refused if it is the dead one or another's."""
    if new in dead:
        raise InputError(
            N_("the corrected number: {number} is the number that does not exist"), number=phones.national(new)
        )
    holder = session.exec(
        select(Person).where(
            Person.id != person.id,
            Person.status != PersonStatus.CLOSED,
            or_(Person.phone == new, Person.phone2 == new),
        )
    ).first()
    if holder is not None:
        raise InputError(
            N_("the corrected number: {number} is already {name}'s (id {id}) on the roster"),
            number=phones.national(new),
            name=holder.name,
            id=holder.id,
        )
    field = "phone2" if person.phone2 and person.phone2 in dead and person.phone not in dead else "phone"
    old = getattr(person, field)
    setattr(person, field, new)
    audit(
        session,
        at=now,
        action="person.phone",
        subject=f"person {person.id}",
        detail=f"{field} {phones.mask(old)} -> {phones.mask(new)} (task {task_id})",
        actor=actor,
    )
    return f": {phones.mask(old)} → {phones.mask(new)}"


def _visit_when_unreachable(session, task: VisitTask, person: Person, *, now: datetime, local: datetime) -> None:
    """Nobody can ring the person: the team checks on them at home (once per run)."""
    seen = session.exec(
        select(VisitTask).where(
            VisitTask.run_id == task.run_id, VisitTask.person_id == person.id, VisitTask.kind == TaskKind.VISIT
        )
    ).first()
    if seen is None:
        session.add(
            VisitTask(
                person_id=task.person_id,  # the person is the task's
                run_id=task.run_id,
                kind=TaskKind.VISIT,
                team=person.team,
                created_at=now,
                created_on=local.date(),
            )
        )
