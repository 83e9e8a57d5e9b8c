"""The people on the roster: look-up, pause, resume and close."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Session, select

from safecall.errors import InputError, NotFoundError
from safecall.store import Attempt, Database, Person, audit, person_attempts

CLOSE_REASONS = ("hospitalised", "moved", "deceased", "declined", "other")


def find_person(session: Session, ref: str) -> Person:
    """By id, or by exact name when that name is unique."""
    if ref.isdigit():
        person = session.get(Person, int(ref))
        if person is None:
            raise NotFoundError(f"no person with id {ref}")
        return person
    matches = list(session.exec(select(Person).where(Person.name == ref)))
    if not matches:
        raise NotFoundError(f"no person named {ref!r}")
    if len(matches) > 1:
        ids = ", ".join(f"{p.id} (born {p.birth_date})" for p in matches)
        raise InputError(f"{len(matches)} people are named {ref!r}; give the id: {ids}")
    return matches[0]


def list_people(db: Database, *, status: str | None = None, team: str | None = None) -> list[Person]:
    with db.session() as session:
        query = select(Person).order_by(Person.team, Person.dong, Person.name)
        if status:
            query = query.where(Person.status == status)
        if team:
            query = query.where(Person.team == team)
        return list(session.exec(query))


def person_history(db: Database, ref: str) -> tuple[Person, list[Attempt]]:
    with db.session() as session:
        person = find_person(session, ref)
        attempts = list(session.exec(person_attempts(person.id).order_by(Attempt.placed_at)))
        return person, attempts


def attempt_result(attempt: Attempt) -> str:
    """An attempt's result for the history: a call-back is marked (caller ID can be forged), a spoken answer quoted."""
    text = attempt.disposition or "in progress"
    if attempt.inbound:
        text += " (call-back)"
    if attempt.speech_text is not None:
        text += f' said "{attempt.speech_text}" ({attempt.speech_confidence or 0:.0%})'
    return text


def _change(db: Database, ref: str, now: datetime, action: str, detail: str, apply) -> Person:
    with db.transaction() as session:
        person = find_person(session, ref)
        apply(person)
        person.updated_at = now
        session.add(person)
        audit(session, at=now, action=action, subject=f"person {person.id}", detail=detail)
        return person


def pause(db: Database, ref: str, *, until: date, today: date, now: datetime) -> Person:
    if until < today:
        raise InputError(f"--until {until} is in the past")

    def apply(person: Person) -> None:
        if person.status == "closed":
            raise InputError(f"person {person.id} is closed ({person.closed_reason}); resume is not possible, re-import instead")
        person.status, person.paused_until = "paused", until

    return _change(db, ref, now, "person.pause", f"until={until}", apply)


def resume(db: Database, ref: str, *, now: datetime) -> Person:
    def apply(person: Person) -> None:
        person.status, person.paused_until, person.closed_reason = "active", None, None

    return _change(db, ref, now, "person.resume", "", apply)


def close(db: Database, ref: str, *, reason: str, now: datetime) -> Person:
    if reason not in CLOSE_REASONS:
        raise InputError(f"unknown reason {reason!r} (use {', '.join(CLOSE_REASONS)})")

    def apply(person: Person) -> None:
        person.status, person.closed_reason, person.paused_until = "closed", reason, None

    return _change(db, ref, now, "person.close", f"reason={reason}", apply)
