"""Weekly runs: launching (one per campaign per week), enrolment, attempt outcomes and status."""

from __future__ import annotations

import os
import socket
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, func, select

from safecall.campaign import CampaignDef
from safecall.errors import InputError, NotFoundError, RunLockedError
from safecall.policy import CallingCalendar, retry_at, week_start, weekly_slot
from safecall.store import (
    Attempt, CampaignRun, Database, Disposition, MemberState, Person, RunMember, VisitTask, audit,
)
from safecall.store.prepared import DriverConnection, new_values
from safecall.telephony.base import CallEvent, LineResult

ATTEMPT, MEMBER, PERSON, RUN, TASK = (model.__table__ for model in (Attempt, RunMember, Person, CampaignRun, VisitTask))

LINE_TO_DISPOSITION = {
    LineResult.ANSWERED: Disposition.ANSWERED_NO_KEY,
    LineResult.NO_ANSWER: Disposition.NO_ANSWER,
    LineResult.BUSY: Disposition.BUSY,
    LineResult.FAILED: Disposition.FAILED,
    LineResult.INVALID_NUMBER: Disposition.INVALID_NUMBER,
    LineResult.MACHINE: Disposition.MACHINE,
}


def is_dialable(person: Person, today: date) -> bool:
    """Consented, active (or pause over) people only; everyone else is stored but never called."""
    if person.consent_date is None or person.consent_date > today:
        return False
    if person.status == "closed":
        return False
    if person.status == "paused" and (person.paused_until is None or person.paused_until >= today):
        return False
    return True


def dialable_clause(today: date) -> list:
    """is_dialable as SQL, for enrolling a whole roster in one statement; the two must agree (tested)."""
    return [
        Person.consent_date.is_not(None), Person.consent_date <= today, Person.status != "closed",
        sa.not_(sa.and_(Person.status == "paused", sa.or_(Person.paused_until.is_(None), Person.paused_until >= today))),
    ]


def _target_filter(campaign: CampaignDef):
    conditions = []
    if campaign.targets.teams:
        conditions.append(Person.team.in_(campaign.targets.teams))
    if campaign.targets.dongs:
        conditions.append(Person.dong.in_(campaign.targets.dongs))
    if campaign.targets.risks:
        conditions.append(Person.risk.in_(campaign.targets.risk_levels()))
    return conditions


def launch_run(db: Database, campaign: CampaignDef, calendar: CallingCalendar, *, now: datetime,
               label: str = "weekly", only_people: list[int] | None = None) -> tuple[CampaignRun, bool]:
    """This week's run of the campaign (or an ad-hoc one under `label` for `only_people`), created with its members if new."""
    week = week_start(now, calendar.tz)
    with db.transaction() as session:
        existing = session.exec(select(CampaignRun).where(
            CampaignRun.campaign == campaign.name, CampaignRun.week_start == week, CampaignRun.label == label)).first()
        if existing:
            return existing, False
        slot = weekly_slot(week, campaign.schedule.weekday, campaign.schedule.start, calendar.tz)
        first_call = calendar.next_open(max(slot, now))
        if week_start(first_call, calendar.tz) != week:
            # Calling into next week would overlap next week's run and call people twice.
            raise InputError(f"no calling time is left in the week of {week}; "
                             f"next week's run can be launched from {first_call.astimezone(calendar.tz):%Y-%m-%d %H:%M}")
        run = CampaignRun(campaign=campaign.name, week_start=week, label=label, launched_at=now, first_call_at=first_call)
        session.add(run)
        session.flush()
        today = now.astimezone(calendar.tz).date()
        # People still being retried by last week's run are left to it, so nobody is called by two runs.
        still_open = select(RunMember.person_id).join(CampaignRun, CampaignRun.id == RunMember.run_id).where(
            CampaignRun.campaign == campaign.name, CampaignRun.status == "open",
            RunMember.state.in_([MemberState.PENDING, MemberState.IN_CALL]))
        # One INSERT ... SELECT: the roster is never loaded into memory, whatever its size.
        candidates = sa.select(sa.literal(run.id), Person.id, sa.literal(MemberState.PENDING), sa.literal(0),
                               sa.literal(first_call, type_=MEMBER.c.next_attempt_at.type)).where(
            *_target_filter(campaign), *dialable_clause(today), Person.id.not_in(still_open))
        if only_people is not None:
            candidates = candidates.where(Person.id.in_(only_people))
        enrolled = session.connection().execute(sa.insert(MEMBER).from_select(
            [MEMBER.c.run_id, MEMBER.c.person_id, MEMBER.c.state, MEMBER.c.attempts_made, MEMBER.c.next_attempt_at],
            candidates.order_by(Person.id))).rowcount
        audit(session, at=now, action="campaign.launch", subject=f"run {run.id}",
              detail=f"campaign={campaign.name} week={week} label={label} people={enrolled}")
    return run, True


def get_run(session: Session, run_id: int) -> CampaignRun:
    run = session.get(CampaignRun, run_id)
    if run is None:
        raise NotFoundError(f"no run {run_id}")
    return run


def lock_owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _owner_is_dead(owner: str) -> bool:
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def acquire_run_lock(db: Database, run_id: int, owner: str, *, now: datetime, ttl: timedelta) -> None:
    """Only one process dials a run; a lock whose process died, or whose lease ran out, is taken over."""
    with db.transaction() as session:
        run = get_run(session, run_id)
        holder = run.lock_owner
        if holder and holder != owner and run.lock_until and run.lock_until > now and not _owner_is_dead(holder):
            raise RunLockedError(f"run {run_id} is being dialled by {holder} (lease until {run.lock_until:%Y-%m-%d %H:%M:%S} UTC)")
        stolen = session.execute(
            sa.update(CampaignRun)
            .where(CampaignRun.id == run_id, CampaignRun.lock_owner.is_(None) if holder is None else CampaignRun.lock_owner == holder)
            .values(lock_owner=owner, lock_until=now + ttl)
        )
        if stolen.rowcount != 1:
            raise RunLockedError(f"run {run_id} was locked by another process just now")


_RENEW_LEASE = sa.update(RUN).where(RUN.c.id == sa.bindparam("run_id"), RUN.c.lock_owner == sa.bindparam("owner")).values(
    new_values("lock_until"))


def renew_run_lock(db: Database, run_id: int, owner: str, *, now: datetime, ttl: timedelta) -> None:
    """Extend the lease `owner` holds; if another process took the run over meanwhile, this one must stop."""
    with db.statements() as connection:
        renewed = db.prepared(_RENEW_LEASE).execute(connection, {"run_id": run_id, "owner": owner, "new_lock_until": now + ttl})
    if renewed != 1:
        raise RunLockedError(f"run {run_id} was taken over by another process while this one was dialling; this one stops")


def release_run_lock(db: Database, run_id: int, owner: str) -> None:
    with db.transaction() as session:
        session.execute(
            sa.update(CampaignRun).where(CampaignRun.id == run_id, CampaignRun.lock_owner == owner).values(lock_owner=None, lock_until=None)
        )


ANSWERED = (Disposition.ACKNOWLEDGED, Disposition.HELP_REQUESTED)
ANSWERED_STATES = (MemberState.ACKNOWLEDGED, MemberState.HELP_REQUESTED)
# What deciding about an attempt needs, returned by the statements that change it.
_ATTEMPT_SUMMARY = (ATTEMPT.c.id, ATTEMPT.c.run_id, ATTEMPT.c.member_id, ATTEMPT.c.person_id, ATTEMPT.c.status, ATTEMPT.c.disposition)

# The hot path's statements, run prepared (store/prepared.py): every call passes through them.
# Writes say what they expect (an open call, no key yet, a person not yet answered) and return what they
# changed, so the common case is one statement, not a read and a write.
_ATTEMPT_BY_TOKEN = sa.select(*_ATTEMPT_SUMMARY).where(ATTEMPT.c.token == sa.bindparam("call_token"))
_RECORD_KEY = (
    sa.update(ATTEMPT).where(ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.digit.is_(None))
    .values(new_values("digit", "keyed_at", "disposition")).returning(*_ATTEMPT_SUMMARY)
)
_END_CALL = (
    sa.update(ATTEMPT).where(ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.status == "placing")
    .values(status="done", ended_at=sa.bindparam("new_ended_at"),
            answered_at=sa.func.coalesce(ATTEMPT.c.answered_at, sa.bindparam("new_answered_at", type_=ATTEMPT.c.answered_at.type)),
            # A keypress already recorded decides the disposition; otherwise the line's result does.
            disposition=sa.case((sa.or_(*(ATTEMPT.c.disposition == answer for answer in ANSWERED)), ATTEMPT.c.disposition),
                                else_=sa.bindparam("line_disposition")))
    .returning(*_ATTEMPT_SUMMARY)
)
_NOTE_ANSWER = sa.update(ATTEMPT).where(
    ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.status == "placing", ATTEMPT.c.answered_at.is_(None),
).values(new_values("answered_at"))
MEMBER_ATTEMPTS = sa.select(ATTEMPT.c.phone, ATTEMPT.c.disposition).where(
    ATTEMPT.c.member_id == sa.bindparam("member_id")).order_by(ATTEMPT.c.number)
_MEMBER = sa.select(MEMBER.c.state, MEMBER.c.attempts_made).where(MEMBER.c.id == sa.bindparam("member_id"))
_PERSON = sa.select(PERSON.c.phone, PERSON.c.phone2, PERSON.c.team).where(PERSON.c.id == sa.bindparam("person_id"))
SETTLE_MEMBER = sa.update(MEMBER).where(MEMBER.c.id == sa.bindparam("member_id")).values(
    new_values("state", "next_attempt_at", "final_at"))
# A person who answered is never downgraded by a later report: their row is final.
_SETTLE_UNANSWERED_MEMBER = SETTLE_MEMBER.where(*(MEMBER.c.state != state for state in ANSWERED_STATES))
_SET_CALL_ID = sa.update(ATTEMPT).where(
    ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.trunk_call_id.is_(None)).values(new_values("trunk_call_id"))
# Tasks: a visit or a callback for a person, and its closing when a late keypress shows they answered.
_EARLIER_STATES = (
    sa.select(MEMBER.c.state).join(CampaignRun, CampaignRun.id == MEMBER.c.run_id)
    .where(MEMBER.c.person_id == sa.bindparam("person_id"), MEMBER.c.id != sa.bindparam("member_id"),
           sa.or_(*(MEMBER.c.state == state for state in MemberState.FINAL)))
    .order_by(CampaignRun.week_start.desc(), MEMBER.c.id.desc())
)
_ADD_TASK = sa.insert(TASK).values(status="open", overdue=False, **new_values(
    "person_id", "run_id", "kind", "team", "created_at", "created_on", "weeks_without_ack", "answered_without_key"))
_CLOSE_TASK_ANSWERED_LATE = sa.update(TASK).where(
    TASK.c.run_id == sa.bindparam("run_id"), TASK.c.person_id == sa.bindparam("person_id"), TASK.c.status == "open",
).values(status="closed", outcome="acknowledged_late", recorded_by="safecall", **new_values("recorded_at"))


class Outcomes:
    """Writes what calls came to. Also the KeypressSink every trunk's IVR side reports to.

    Every call passes through here two or three times, so it speaks plain statements, not the ORM.
    """

    def __init__(self, db: Database, campaign: CampaignDef, calendar: CallingCalendar):
        self.db = db
        self.campaign = campaign
        self.calendar = calendar

    def is_live(self, token: str) -> bool:
        """Whether `token` names an attempt whose call is still open: only that call may report."""
        with self.db.statements() as connection:
            attempt = self.db.prepared(_ATTEMPT_BY_TOKEN).first(connection, {"call_token": token})
        return attempt is not None and attempt.status == "placing"

    def note_call_id(self, token: str, call_id: str) -> None:
        with self.db.statements() as connection:
            self.db.prepared(_SET_CALL_ID).execute(connection, {"call_token": token, "new_trunk_call_id": call_id})

    def record_keypress(self, token: str, digit: str, outcome: str, at: datetime) -> bool:
        if outcome not in ANSWERED:
            return False
        with self.db.statements() as connection:
            attempt = self.db.prepared(_RECORD_KEY).first(
                connection, {"call_token": token, "new_digit": digit, "new_keyed_at": at, "new_disposition": outcome})
            if attempt is None:  # no such call, or its key was recorded before (kept: the first key counts)
                attempt = self.db.prepared(_ATTEMPT_BY_TOKEN).first(connection, {"call_token": token})
                if attempt is None:
                    return False
            if attempt.status == "done":
                # A keypress reported after the call was closed (late or out-of-order callback): it still counts.
                self._settle_late_keypress(connection, attempt, at)
        return True

    def _settle_late_keypress(self, connection: DriverConnection, attempt, at: datetime) -> None:
        self.db.prepared(_CLOSE_TASK_ANSWERED_LATE).execute(
            connection, {"run_id": attempt.run_id, "person_id": attempt.person_id, "new_recorded_at": at})
        self._finalise(connection, attempt, at)

    def apply(self, events: list[CallEvent], connection: DriverConnection | None = None) -> list:
        """Record what the trunk reported, all in one transaction (the caller's, if given); returns the attempts that closed.

        An unknown token, or a report on a call already closed, changes nothing.
        """
        closed = []
        if not events:
            return closed
        if connection is None:
            with self.db.statements() as connection:
                return self.apply(events, connection)
        answered_at = {event.token: event.at for event in reversed(events) if event.kind == "answered"}
        for event in events:
            if event.kind != "ended":
                continue
            attempt = self.db.prepared(_END_CALL).first(connection, {
                "call_token": event.token, "new_ended_at": event.at, "new_answered_at": answered_at.pop(event.token, None),
                "line_disposition": LINE_TO_DISPOSITION.get(event.result, Disposition.UNKNOWN)})
            if attempt is not None:
                self._finalise(connection, attempt, event.at)
                closed.append(attempt)
        for token, at in answered_at.items():  # answered, not yet ended
            self.db.prepared(_NOTE_ANSWER).execute(connection, {"call_token": token, "new_answered_at": at})
        return closed

    def _finalise(self, connection: DriverConnection, attempt, at: datetime) -> None:
        """The person's next step after `attempt` (already written): final, or a retry."""
        change = {"member_id": attempt.member_id, "new_next_attempt_at": None, "new_final_at": at}
        if attempt.disposition in ANSWERED:
            state = MemberState.ACKNOWLEDGED if attempt.disposition == Disposition.ACKNOWLEDGED else MemberState.HELP_REQUESTED
            settled = self.db.prepared(_SETTLE_UNANSWERED_MEMBER).execute(connection, {**change, "new_state": state})
            if settled and state == MemberState.HELP_REQUESTED:
                self._add_task(connection, attempt, "callback", at)
            return
        member = self.db.prepared(_MEMBER).first(connection, {"member_id": attempt.member_id})
        if member.state in ANSWERED_STATES:
            return
        person = self.db.prepared(_PERSON).first(connection, {"person_id": attempt.person_id})
        attempts = self.db.prepared(MEMBER_ATTEMPTS).all(connection, {"member_id": attempt.member_id})
        retries_used = member.attempts_made - 1
        if attempt.disposition in self.campaign.retry.retry_on and retries_used < self.campaign.retry.max_retries and usable_numbers(person, attempts):
            change.update(new_state=MemberState.PENDING, new_final_at=None,
                          new_next_attempt_at=retry_at(self.campaign.retry.spacing, retries_used + 1, at, self.calendar))
        else:
            change["new_state"] = MemberState.UNREACHABLE
            self._add_task(connection, attempt, "visit", at, attempts)
        self.db.prepared(SETTLE_MEMBER).execute(connection, change)

    def _add_task(self, connection: DriverConnection, attempt, kind: str, at: datetime, attempts=()) -> None:
        team = self.db.prepared(_PERSON).first(connection, {"person_id": attempt.person_id}).team
        weeks = 1
        if kind == "visit":
            weeks += self._unreached_weeks_before(connection, attempt)
        self.db.prepared(_ADD_TASK).execute(connection, {
            "new_person_id": attempt.person_id, "new_run_id": attempt.run_id, "new_kind": kind, "new_team": team,
            "new_created_at": at, "new_created_on": at.astimezone(self.calendar.tz).date(), "new_weeks_without_ack": weeks,
            "new_answered_without_key": any(a.disposition == Disposition.ANSWERED_NO_KEY for a in attempts)})

    def _unreached_weeks_before(self, connection: DriverConnection, attempt) -> int:
        """How many weeks straight before this one the person ended unreachable."""
        count = 0
        for (state,) in self.db.prepared(_EARLIER_STATES).all(connection, {"person_id": attempt.person_id, "member_id": attempt.member_id}):
            if state != MemberState.UNREACHABLE:
                break
            count += 1
        return count


def usable_numbers(person: Person, attempts: list[Attempt]) -> list[str]:
    """The person's numbers, less those that proved not to exist this run."""
    dead = {a.phone for a in attempts if a.disposition == Disposition.INVALID_NUMBER}
    return [n for n in (person.phone, person.phone2) if n and n not in dead]


def number_for_attempt(person: Person, attempts: list[Attempt], attempt_number: int) -> str | None:
    """Alternate between the first and second phone on retries."""
    numbers = usable_numbers(person, attempts)
    return numbers[(attempt_number - 1) % len(numbers)] if numbers else None


@dataclass
class RunStatus:
    run: CampaignRun
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
        return self.acknowledged_first_try + self.acknowledged_after_retries + self.help_requests + self.final_non_responders + self.withdrawn


def run_status(db: Database, run_id: int) -> RunStatus:
    with db.session() as session:
        run = get_run(session, run_id)
        status = RunStatus(run=run)
        rows = session.exec(
            select(RunMember.state, RunMember.attempts_made, func.count())
            .where(RunMember.run_id == run_id).group_by(RunMember.state, RunMember.attempts_made)
        )
        for state, attempts_made, count in rows:
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
        for disposition, count in session.exec(
            select(Attempt.disposition, func.count()).where(Attempt.run_id == run_id).group_by(Attempt.disposition)
        ):
            status.attempts_by_disposition[disposition or "in progress"] = count
    return status


def list_runs(db: Database, campaign: str | None = None) -> list[CampaignRun]:
    with db.session() as session:
        query = select(CampaignRun).order_by(CampaignRun.id)
        if campaign:
            query = query.where(CampaignRun.campaign == campaign)
        return list(session.exec(query))
