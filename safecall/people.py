"""The people on the roster: look-up, pause, resume and close."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime

from sqlmodel import Session, col, select

from safecall.domain import CHECKIN_DIGIT, PersonStatus
from safecall.errors import InputError, Keyword, NotFoundError
from safecall.i18n import N_, Texts
from safecall.store import Attempt, Database, Person, audit, person_attempts, stored_id

MAX_ID_DIGITS = 15  # a longer id overflows the database's integers; no person has one
CLOSE_REASONS = ("hospitalised", "moved", "deceased", "declined", "other")


def find_person(session: Session, ref: str) -> Person:
    """By id, or by exact name when that name is unique; the name as typed is NFC-normalised, as the roster's are."""
    ref = unicodedata.normalize("NFC", ref.strip())
    if ref.isdigit():
        person = session.get(Person, int(ref)) if len(ref) <= MAX_ID_DIGITS else None
        if person is None:
            raise NotFoundError(N_("no person with id {ref}"), ref=ref)
        return person
    matches = list(session.exec(select(Person).where(Person.name == ref)))
    if not matches:
        raise NotFoundError(N_("no person named {ref!r}"), ref=ref)
    if len(matches) > 1:
        ids = ", ".join(f"{p.id} (born {p.birth_date})" for p in matches)
        raise InputError(
            N_("{count} people are named {ref!r}; give the id: {ids}"), count=len(matches), ref=ref, ids=ids
        )
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
        attempts = list(session.exec(person_attempts(stored_id(person)).order_by(col(Attempt.placed_at))))
        return person, attempts


def attempt_result(attempt: Attempt, texts: Texts | None = None) -> str:
    """An attempt's result for the history: a call-back is marked (caller ID can be forged), a spoken answer quoted.

    In `texts`' language (English by default).
    """
    texts = texts or Texts("en")
    text = texts.word("disposition", attempt.disposition or "in progress")
    if attempt.inbound:
        text += texts._(N_(" (call-back)"))
    if attempt.digit == CHECKIN_DIGIT:
        text += texts._(N_(" (one-tap link)"))
    if attempt.speech_text is not None:
        text += texts._(N_(' said "{words}" ({confidence})')).format(
            words=attempt.speech_text, confidence=f"{attempt.speech_confidence or 0:.0%}"
        )
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
        raise InputError(N_("--until {until} is in the past"), until=until)

    def apply(person: Person) -> None:
        if person.status == PersonStatus.CLOSED:
            raise InputError(
                N_("person {id} is closed ({reason}); resume is not possible, re-import instead"),
                id=person.id,
                reason=Keyword("reason", person.closed_reason or ""),
            )
        person.status, person.paused_until = PersonStatus.PAUSED, until

    return _change(db, ref, now, "person.pause", f"until={until}", apply)


def resume(db: Database, ref: str, *, now: datetime) -> Person:
    def apply(person: Person) -> None:
        person.status, person.paused_until, person.closed_reason = PersonStatus.ACTIVE, None, None

    return _change(db, ref, now, "person.resume", "", apply)


def close(db: Database, ref: str, *, reason: str, now: datetime) -> Person:
    if reason not in CLOSE_REASONS:
        raise InputError(
            N_("unknown reason {reason!r} (use {choices})"), reason=reason, choices=", ".join(CLOSE_REASONS)
        )

    def apply(person: Person) -> None:
        person.status, person.closed_reason, person.paused_until = PersonStatus.CLOSED, reason, None

    return _change(db, ref, now, "person.close", f"reason={reason}", apply)
