"""The call lifecycle: what follows a call (a pure decision), and the module that writes attempts, tasks and members'
states.

(history.py writes one thing more: each member's first-call time, once, when a run is launched.)

`next_step` decides, from what an attempt came to, whether the person is retried and when, or is final and
owes a visit or a callback; it is tested as a decision table. `CallLifecycle` carries the decisions out: it
claims due people, writes attempts, records keypresses and call ends, settles members and adds tasks. The
dialer and the trunks only call it. It is also the CallSink every trunk's IVR side reports to: the token
alone finds the attempt, its run and its campaign, so one trunk serves every open run, and a report is
recorded by whichever process receives it.

Every call passes through here a few times, so the hot path speaks prepared statements (store/prepared.py).
Writes say what they expect (an open call, no key yet, a person not yet answered) and return what they
changed, so the common case is one statement, not a read and a write.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col

from safecall import helpline
from safecall.campaign import CampaignDef
from safecall.domain import ANSWERED, CHECKIN_DIGIT, PersonStatus
from safecall.ivr import IvrFlow
from safecall.policy import CallingCalendar, narrowed, retry_at
from safecall.store import (
    FINAL_STATES,
    Attempt,
    AttemptStatus,
    CampaignRun,
    Database,
    Disposition,
    MemberState,
    Person,
    RunMember,
    RunState,
    TaskKind,
    TaskStatus,
    VisitTask,
    table_of,
)
from safecall.store.db import real_now
from safecall.store.prepared import DriverConnection, new_values
from safecall.telephony.base import CallEvent, LineResult, LiveCall

ATTEMPT, MEMBER, PERSON, RUN, TASK = (table_of(model) for model in (Attempt, RunMember, Person, CampaignRun, VisitTask))

LINE_TO_DISPOSITION: dict[str | None, Disposition] = {
    LineResult.ANSWERED: Disposition.ANSWERED_NO_KEY,
    LineResult.NO_ANSWER: Disposition.NO_ANSWER,
    LineResult.BUSY: Disposition.BUSY,
    LineResult.FAILED: Disposition.FAILED,
    LineResult.INVALID_NUMBER: Disposition.INVALID_NUMBER,
    LineResult.MACHINE: Disposition.MACHINE,
}
ANSWERED_STATES = (MemberState.ACKNOWLEDGED, MemberState.HELP_REQUESTED)


# ---- the decision ----


@dataclass(frozen=True)
class Retry:
    at: datetime


@dataclass(frozen=True)
class Final:
    state: str  # a MemberState
    task: TaskKind | None


@dataclass(frozen=True)
class Unchanged:
    """The person already answered: no later report changes that."""


def next_step(
    *,
    disposition: str,
    member_state: str,
    retries_used: int,
    max_retries: int,
    retry_on: list[str],
    numbers_left: bool,
    spacing: list[str],
    ended_at: datetime,
    calendar: CallingCalendar,
) -> Retry | Final | Unchanged:
    """What follows an attempt that came to `disposition`, for a person whose run member is in `member_state`."""
    if disposition == Disposition.ACKNOWLEDGED:
        return Unchanged() if member_state in ANSWERED_STATES else Final(MemberState.ACKNOWLEDGED, None)
    if disposition == Disposition.HELP_REQUESTED:
        return Unchanged() if member_state in ANSWERED_STATES else Final(MemberState.HELP_REQUESTED, TaskKind.CALLBACK)
    if member_state in ANSWERED_STATES:
        return Unchanged()
    if disposition in retry_on and retries_used < max_retries and numbers_left:
        return Retry(retry_at(spacing, retries_used + 1, ended_at, calendar))
    return Final(MemberState.UNREACHABLE, TaskKind.VISIT)


def usable_numbers(person, attempts) -> list[str]:
    """The person's numbers, less those that proved not to exist this run."""
    dead = {a.phone for a in attempts if a.disposition == Disposition.INVALID_NUMBER}
    return [n for n in (person.phone, person.phone2) if n and n not in dead]


def number_for_attempt(person, attempts, attempt_number: int) -> str | None:
    """Alternate between the first and second phone on retries."""
    numbers = usable_numbers(person, attempts)
    return numbers[(attempt_number - 1) % len(numbers)] if numbers else None


def is_dialable(person: Person, today: date) -> bool:
    """Consented, active (or pause over) people only; everyone else is stored but never called."""
    if person.consent_date is None or person.consent_date > today:
        return False
    if person.status == PersonStatus.CLOSED:
        return False
    if person.status == PersonStatus.PAUSED and (person.paused_until is None or person.paused_until >= today):
        return False
    return True


def dialable_clause(today: date | sa.BindParameter[date]) -> list[sa.ColumnElement[bool]]:
    """is_dialable as SQL, for enrolling a whole roster in one statement; the two must agree (tested)."""
    return [
        col(Person.consent_date).is_not(None),
        col(Person.consent_date) <= today,
        col(Person.status) != PersonStatus.CLOSED,
        sa.not_(
            sa.and_(
                col(Person.status) == PersonStatus.PAUSED,
                sa.or_(col(Person.paused_until).is_(None), col(Person.paused_until) >= today),
            )
        ),
    ]


# ---- what a run's campaign brings ----


@dataclass(frozen=True)
class CampaignRules:
    definition: CampaignDef
    calendar: CallingCalendar
    flow: IvrFlow


class RunRulesBook:
    """Each run's rules, made from the run's own snapshot (safecall/runrules.py) once per run and snapshot version.

    `parse(text)` makes the rules of a snapshot; `current(campaign)` is the snapshot of a campaign's files as they
    are now, kept by a run that has none yet (launched before runs kept their rules).
    """

    def __init__(self, parse: Callable[[str], CampaignRules], current: Callable[[str], str]):
        self.parse, self.current = parse, current
        self._of_run: dict[int, tuple[int, CampaignRules]] = {}
        self._parsed: dict[str, CampaignRules] = {}  # runs of one campaign launched with the same files share them

    def known(self, run_id: int, version: int | None = None) -> CampaignRules | None:
        """The run's rules if read before (at `version`, if given)."""
        kept = self._of_run.get(run_id)
        return kept[1] if kept is not None and (version is None or kept[0] == version) else None

    def keep(self, run_id: int, version: int, text: str) -> CampaignRules:
        rules = self._parsed.get(text)
        if rules is None:
            rules = self._parsed[text] = self.parse(text)
        self._of_run[run_id] = (version, rules)
        return rules


# ---- statements ----

_ATTEMPT_SUMMARY = (
    ATTEMPT.c.id,
    ATTEMPT.c.run_id,
    ATTEMPT.c.member_id,
    ATTEMPT.c.person_id,
    ATTEMPT.c.status,
    ATTEMPT.c.disposition,
    ATTEMPT.c.risk_speech,
)
_ATTEMPT_BY_TOKEN = sa.select(*_ATTEMPT_SUMMARY).where(ATTEMPT.c.token == sa.bindparam("call_token"))
_LIVE_CALL = (
    sa.select(
        ATTEMPT.c.id,
        ATTEMPT.c.trunk_call_id,
        ATTEMPT.c.ivr_started_at,
        ATTEMPT.c.run_id,
        RUN.c.rules_version,
        PERSON.c.voice_style,
    )
    .join(RUN, RUN.c.id == ATTEMPT.c.run_id)
    .join(PERSON, PERSON.c.id == ATTEMPT.c.person_id)
    .where(ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.status == AttemptStatus.PLACING)
)
_START_IVR = (
    sa.update(ATTEMPT)
    .where(
        ATTEMPT.c.token == sa.bindparam("call_token"),
        ATTEMPT.c.status == AttemptStatus.PLACING,
        ATTEMPT.c.ivr_started_at.is_(None),
    )
    .values(new_values("ivr_started_at"))
)
_RUN_RULES = sa.select(RUN.c.campaign, RUN.c.rules, RUN.c.rules_version).where(RUN.c.id == sa.bindparam("run_id"))
_RULES_VERSION = sa.select(RUN.c.rules_version).where(RUN.c.id == sa.bindparam("run_id"))
_KEEP_RULES = (
    sa.update(RUN).where(RUN.c.id == sa.bindparam("run_id"), RUN.c.rules.is_(None)).values(new_values("rules"))
)
_RECORD_KEY = (
    sa.update(ATTEMPT)
    .where(ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.digit.is_(None))
    .values(new_values("digit", "keyed_at", "disposition"))
    .returning(*_ATTEMPT_SUMMARY)
)
_RECORD_SPOKEN = _RECORD_KEY.values(new_values("speech_text", "speech_confidence", "risk_speech"))
_NOTE_SPEECH = (
    sa.update(ATTEMPT)
    .where(
        ATTEMPT.c.token == sa.bindparam("call_token"),
        ATTEMPT.c.status == AttemptStatus.PLACING,
        ATTEMPT.c.digit.is_(None),
    )
    .values(new_values("speech_text", "speech_confidence"))
)
_END_CALL = (
    sa.update(ATTEMPT)
    .where(ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.status == AttemptStatus.PLACING)
    .values(
        status=AttemptStatus.DONE,
        ended_at=sa.bindparam("new_ended_at"),
        answered_at=sa.func.coalesce(
            ATTEMPT.c.answered_at, sa.bindparam("new_answered_at", type_=ATTEMPT.c.answered_at.type)
        ),
        # A keypress already recorded decides the disposition; otherwise the line's result does.
        disposition=sa.case(
            (sa.or_(*(ATTEMPT.c.disposition == answer for answer in ANSWERED)), ATTEMPT.c.disposition),
            else_=sa.bindparam("line_disposition"),
        ),
    )
    .returning(*_ATTEMPT_SUMMARY)
)
_NOTE_ANSWER = (
    sa.update(ATTEMPT)
    .where(
        ATTEMPT.c.token == sa.bindparam("call_token"),
        ATTEMPT.c.status == AttemptStatus.PLACING,
        ATTEMPT.c.answered_at.is_(None),
    )
    .values(new_values("answered_at"))
)
_CORRECT_PLACED_AT = (
    sa.update(ATTEMPT).where(ATTEMPT.c.id == sa.bindparam("attempt_id")).values(new_values("placed_at"))
)
MEMBER_ATTEMPTS = (
    sa.select(ATTEMPT.c.phone, ATTEMPT.c.disposition)
    .where(ATTEMPT.c.member_id == sa.bindparam("member_id"))
    .order_by(ATTEMPT.c.number)
)
_MEMBER = sa.select(MEMBER.c.state, MEMBER.c.attempts_made).where(MEMBER.c.id == sa.bindparam("member_id"))
_PERSON = sa.select(PERSON.c.phone, PERSON.c.phone2, PERSON.c.team).where(PERSON.c.id == sa.bindparam("person_id"))
SETTLE_MEMBER = (
    sa.update(MEMBER)
    .where(MEMBER.c.id == sa.bindparam("member_id"))
    .values(new_values("state", "next_attempt_at", "final_at"))
)
# A person who answered is never downgraded by a later report: their row is final.
_SETTLE_UNANSWERED_MEMBER = SETTLE_MEMBER.where(*(MEMBER.c.state != state for state in ANSWERED_STATES))
# ... but raised from acknowledged to help: a one-tap 잘 지내요 during a call where the person then pressed 2.
_RAISE_TO_HELP = SETTLE_MEMBER.where(MEMBER.c.state == MemberState.ACKNOWLEDGED)
_SET_CALL_ID = (
    sa.update(ATTEMPT)
    .where(ATTEMPT.c.token == sa.bindparam("call_token"), ATTEMPT.c.trunk_call_id.is_(None))
    .values(new_values("trunk_call_id"))
)
_EARLIER_STATES = (
    sa.select(MEMBER.c.state)
    .join(CampaignRun, col(CampaignRun.id) == MEMBER.c.run_id)
    .where(
        MEMBER.c.person_id == sa.bindparam("person_id"),
        MEMBER.c.id != sa.bindparam("member_id"),
        sa.or_(*(MEMBER.c.state == state for state in FINAL_STATES)),
    )
    .order_by(col(CampaignRun.week_start).desc(), MEMBER.c.id.desc())
)
_ADD_TASK = sa.insert(TASK).values(
    status=TaskStatus.OPEN,
    overdue=False,
    **new_values(
        "person_id",
        "run_id",
        "kind",
        "team",
        "created_at",
        "created_on",
        "weeks_without_ack",
        "answered_without_key",
        "risk_speech",
    ),
)
# Words of risk from someone whose call-back task is there already (an earlier answer this run): it goes to the top too.
_MARK_CALLBACK_RISK = (
    sa.update(TASK)
    .where(
        TASK.c.run_id == sa.bindparam("run_id"),
        TASK.c.person_id == sa.bindparam("person_id"),
        TASK.c.kind == TaskKind.CALLBACK,
        TASK.c.status == TaskStatus.OPEN,
    )
    .values(risk_speech=True)
)
_CLOSE_TASK_ANSWERED_LATE = (
    sa.update(TASK)
    .where(
        TASK.c.run_id == sa.bindparam("run_id"),
        TASK.c.person_id == sa.bindparam("person_id"),
        TASK.c.status == TaskStatus.OPEN,
    )
    .values(
        status=TaskStatus.CLOSED,
        outcome="acknowledged_late",
        recorded_by="safecall",
        **new_values("recorded_at", "recorded_real_at"),
    )
)

# The claim. FOR UPDATE names only the member table: person rows are read, not claimed.
_DUE_MEMBERS = (
    sa.select(
        MEMBER.c.id.label("member_id"),
        MEMBER.c.attempts_made,
        PERSON.c.id,
        PERSON.c.phone,
        PERSON.c.phone2,
        PERSON.c.call_window,
        sa.and_(*dialable_clause(sa.bindparam("today", type_=sa.Date))).label("dialable"),
    )
    .join(PERSON, PERSON.c.id == MEMBER.c.person_id)
    .where(
        MEMBER.c.run_id == sa.bindparam("run_id"),
        MEMBER.c.state == MemberState.PENDING,
        MEMBER.c.next_attempt_at <= sa.bindparam("now", type_=MEMBER.c.next_attempt_at.type),
    )
    .order_by(MEMBER.c.next_attempt_at, MEMBER.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True, of=MEMBER)
)
_POSTPONE_MEMBER = (
    sa.update(MEMBER).where(MEMBER.c.id == sa.bindparam("member_id")).values(new_values("next_attempt_at"))
)
_CALL_MEMBER = (
    sa.update(MEMBER)
    .where(MEMBER.c.id == sa.bindparam("member_id"))
    .values(state=MemberState.IN_CALL, next_attempt_at=None, **new_values("attempts_made"))
)
_INSERT_ATTEMPT = (
    sa.insert(ATTEMPT)
    .values(
        status=AttemptStatus.PLACING,
        risk_speech=False,
        **new_values("run_id", "member_id", "person_id", "number", "phone", "token", "placed_at", "worker", "inbound"),
    )
    .returning(ATTEMPT.c.id)
)
# A call-back: the person's member in an open run that is waiting for a call (not one in a call right now).
_PENDING_MEMBER_OF_CALLER = (
    sa.select(MEMBER.c.id.label("member_id"), MEMBER.c.run_id, MEMBER.c.attempts_made, PERSON.c.id, RUN.c.rules_version)
    .join(PERSON, PERSON.c.id == MEMBER.c.person_id)
    .join(RUN, RUN.c.id == MEMBER.c.run_id)
    .where(
        sa.or_(PERSON.c.phone == sa.bindparam("caller"), PERSON.c.phone2 == sa.bindparam("caller")),
        RUN.c.status == RunState.OPEN,
        MEMBER.c.state == MemberState.PENDING,
    )
    .order_by(RUN.c.week_start, MEMBER.c.id)
    .limit(1)
    .with_for_update(of=MEMBER)
)
# A one-tap check-in: the member it was sent for, while no answer is recorded (waiting, in a call, or owed a visit).
_TAPPABLE_MEMBER = (
    sa.select(
        MEMBER.c.id.label("member_id"), MEMBER.c.run_id, MEMBER.c.attempts_made, MEMBER.c.state, MEMBER.c.person_id
    )
    .where(
        MEMBER.c.id == sa.bindparam("member_id"),
        sa.or_(
            *(MEMBER.c.state == state for state in (MemberState.PENDING, MemberState.IN_CALL, MemberState.UNREACHABLE))
        ),
    )
    .with_for_update(of=MEMBER)
)
_CLOSE_TAP = (
    sa.update(ATTEMPT)
    .where(ATTEMPT.c.token == sa.bindparam("call_token"))
    .values(
        status=AttemptStatus.DONE,
        digit=CHECKIN_DIGIT,
        **new_values("disposition", "keyed_at", "ended_at", "answered_at", "ivr_started_at"),
    )
    .returning(*_ATTEMPT_SUMMARY)
)
# Only a member not called yet, and never earlier than planned.
_HOLD_FIRST_CALL = (
    sa.update(MEMBER)
    .where(
        MEMBER.c.id == sa.bindparam("member_id"),
        MEMBER.c.state == MemberState.PENDING,
        MEMBER.c.attempts_made == 0,
        MEMBER.c.next_attempt_at < sa.bindparam("hold_until", type_=MEMBER.c.next_attempt_at.type),
    )
    .values(new_values("next_attempt_at"))
)
NEXT_DUE = sa.select(sa.func.min(MEMBER.c.next_attempt_at)).where(
    MEMBER.c.run_id == sa.bindparam("run_id"), MEMBER.c.state == MemberState.PENDING
)
_OPEN_MEMBERS = (
    sa.select(sa.func.count())
    .select_from(MEMBER)
    .where(
        MEMBER.c.run_id == sa.bindparam("run_id"),
        sa.or_(MEMBER.c.state == MemberState.PENDING, MEMBER.c.state == MemberState.IN_CALL),
    )
)
_CLOSE_RUN = (
    sa.update(RUN)
    .where(RUN.c.id == sa.bindparam("run_id"), RUN.c.status != RunState.CLOSED)
    .values(status=RunState.CLOSED, **new_values("closed_at"))
)


@dataclass
class Claimed:
    """An attempt as written by the claim: what placing its call needs."""

    id: int
    run_id: int
    token: str
    phone: str
    number: int
    placed_at: datetime


class CallLifecycle:
    """Every write to run members, attempts and tasks; also the CallSink of every trunk."""

    def __init__(self, db: Database, book: RunRulesBook):
        self.db = db
        self.book = book

    def rules_of_run(
        self, run_id: int, connection: DriverConnection | None = None, version: int | None = None
    ) -> CampaignRules:
        """The rules the run keeps: read from the database only the first time, or when `version` is not the one read.

        Without `version`, the rules read last: a dialer asks for each of its runs' versions every half minute
        (Dialer._follow_rules), so a `campaign apply` reaches its calls without a query per call.
        """
        rules = self.book.known(run_id, version)
        if rules is not None:
            return rules
        if connection is None:
            with self.db.statements() as own:
                return self._read_rules(own, run_id)
        return self._read_rules(connection, run_id)

    def rules_versions(self, run_ids: list[int]) -> dict[int, int]:
        """The version of each run's rules: a dialer asks every half minute, not at every call."""
        with self.db.statements() as connection:
            return {
                run_id: self.db.prepared(_RULES_VERSION).scalar(connection, {"run_id": run_id}) for run_id in run_ids
            }

    def _read_rules(self, connection: DriverConnection, run_id: int) -> CampaignRules:
        run = self.db.prepared(_RUN_RULES).first(connection, {"run_id": run_id})
        if run.rules is None:  # launched without them and not taken by a dialer yet (keep_rules): the files' for now
            return self.book.parse(self.book.current(run.campaign))
        return self.book.keep(run_id, run.rules_version, run.rules)

    def keep_rules(self, run_id: int, campaign: str) -> None:
        """A run launched without its rules (before schema 11) keeps the files' from now on: a dialer taking it
        writes them, so no report on a call ever waits for a write to learn its rules."""
        with self.db.statements() as connection:
            self.db.prepared(_KEEP_RULES).execute(
                connection, {"run_id": run_id, "new_rules": self.book.current(campaign)}
            )

    # ---- CallSink ----

    def live_call(self, token: str) -> LiveCall | None:
        with self.db.statements() as connection:
            row = self.db.prepared(_LIVE_CALL).first(connection, {"call_token": token})
            if row is None:
                return None
            flow = self.rules_of_run(row.run_id, connection, row.rules_version).flow
        return LiveCall(
            token=token,
            attempt_id=row.id,
            flow=flow,
            call_id=row.trunk_call_id,
            ivr_started=row.ivr_started_at is not None,
            voice_style=row.voice_style,
        )

    def start_ivr(self, token: str, at: datetime) -> bool:
        with self.db.statements() as connection:
            return (
                self.db.prepared(_START_IVR).execute(connection, {"call_token": token, "new_ivr_started_at": at}) == 1
            )

    def note_call_id(self, token: str, call_id: str) -> None:
        with self.db.statements() as connection:
            self.db.prepared(_SET_CALL_ID).execute(connection, {"call_token": token, "new_trunk_call_id": call_id})

    def record_keypress(
        self,
        token: str,
        digit: str,
        outcome: str,
        at: datetime,
        speech: tuple[str, float] | None = None,
        risk: bool = False,
    ) -> bool:
        """Record the answer of call `token`; `risk`: the spoken answer had words of suicide or an emergency
        (safecall.speech): kept with the attempt, it puts the call-back task made when the call ends at the top
        of the officer's list as 위험 발언."""
        if outcome not in ANSWERED:
            return False
        with self.db.statements() as connection:
            key = {"call_token": token, "new_digit": digit, "new_keyed_at": at, "new_disposition": outcome}
            if speech:
                statement, key = (
                    _RECORD_SPOKEN,
                    {**key, "new_speech_text": speech[0], "new_speech_confidence": speech[1], "new_risk_speech": risk},
                )
            else:
                statement = _RECORD_KEY
            attempt = self.db.prepared(statement).first(connection, key)
            if attempt is None:  # no such call, or its key was recorded before (kept: the first key counts)
                attempt = self.db.prepared(_ATTEMPT_BY_TOKEN).first(connection, {"call_token": token})
                if attempt is None:
                    return False
            if attempt.status == AttemptStatus.DONE:
                # A keypress reported after the call was closed (late or out-of-order callback): it still counts.
                self.db.prepared(_CLOSE_TASK_ANSWERED_LATE).execute(
                    connection,
                    {
                        "run_id": attempt.run_id,
                        "person_id": attempt.person_id,
                        "new_recorded_at": at,
                        "new_recorded_real_at": real_now(),
                    },
                )  # `at` may be a drill's time; this never is
                self._settle(connection, attempt, at)
        return True

    def note_speech(self, token: str, text: str, confidence: float) -> None:
        with self.db.statements() as connection:
            self.db.prepared(_NOTE_SPEECH).execute(
                connection, {"call_token": token, "new_speech_text": text, "new_speech_confidence": confidence}
            )

    def record_events(self, events: list[CallEvent]) -> None:
        self.apply(events)

    def record_transfer(self, token: str, result: str, at: datetime, connected_seconds: float | None = None) -> bool:
        return helpline.record_transfer(self.db, token, result, at, connected_seconds)

    def record_message(self, token: str, ref: str, seconds: float, at: datetime) -> bool:
        return helpline.record_message(self.db, token, ref, seconds, at)

    # ---- call ends ----

    def apply(
        self,
        events: list[CallEvent],
        connection: DriverConnection | None = None,
        placed: Sequence[tuple[int, datetime]] = (),
    ) -> list:
        """Record what the trunk reported, in one transaction (the caller's, if given);
        returns the attempts that closed.

        `placed`: (attempt id, the moment its call was really placed) where that differs from the planned moment.
        An unknown token, or a report on a call already closed, changes nothing.
        """
        if not events and not placed:
            return []
        if connection is None:
            with self.db.statements() as connection:
                return self.apply(events, connection, placed)
        for attempt_id, at in placed:
            self.db.prepared(_CORRECT_PLACED_AT).execute(connection, {"attempt_id": attempt_id, "new_placed_at": at})
        closed = []
        answered_at = {event.token: event.at for event in reversed(events) if event.kind == "answered"}
        for event in events:
            if event.kind != "ended":
                continue
            attempt = self.db.prepared(_END_CALL).first(
                connection,
                {
                    "call_token": event.token,
                    "new_ended_at": event.at,
                    "new_answered_at": answered_at.pop(event.token, None),
                    "line_disposition": LINE_TO_DISPOSITION.get(event.result, Disposition.UNKNOWN),
                },
            )
            if attempt is not None:
                self._settle(connection, attempt, event.at)
                closed.append(attempt)
        for token, at in answered_at.items():  # answered, not yet ended
            self.db.prepared(_NOTE_ANSWER).execute(connection, {"call_token": token, "new_answered_at": at})
        return closed

    def _settle_risk(self, connection: DriverConnection, attempt) -> None:
        """Words of risk on a recorded answer: its call-back task is marked (made now, or there from earlier)."""
        self.db.prepared(_MARK_CALLBACK_RISK).execute(
            connection, {"run_id": attempt.run_id, "person_id": attempt.person_id}
        )

    def _settle(self, connection: DriverConnection, attempt, at: datetime) -> None:
        """Carry out next_step for `attempt` (already written)."""
        campaign = self.rules_of_run(attempt.run_id, connection)
        change = {"member_id": attempt.member_id, "new_next_attempt_at": None, "new_final_at": at}
        if attempt.disposition in ANSWERED:
            # The common case is one statement: it holds only for a person not already answered.
            step = next_step(
                disposition=attempt.disposition,
                member_state=MemberState.PENDING,
                retries_used=0,
                max_retries=0,
                retry_on=[],
                numbers_left=False,
                spacing=[],
                ended_at=at,
                calendar=campaign.calendar,
            )
            assert isinstance(step, Final)  # an answer for a member not yet answered is final (next_step's first cases)
            settled = self.db.prepared(_SETTLE_UNANSWERED_MEMBER).execute(
                connection, {**change, "new_state": step.state}
            )
            if not settled and step.state == MemberState.HELP_REQUESTED:
                settled = self.db.prepared(_RAISE_TO_HELP).execute(connection, {**change, "new_state": step.state})
            if settled and step.task:
                self._add_task(connection, attempt, step.task, at)
            elif attempt.risk_speech:
                self._settle_risk(connection, attempt)
            return
        member = self.db.prepared(_MEMBER).first(connection, {"member_id": attempt.member_id})
        person = self.db.prepared(_PERSON).first(connection, {"person_id": attempt.person_id})
        attempts = self.db.prepared(MEMBER_ATTEMPTS).all(connection, {"member_id": attempt.member_id})
        retry = campaign.definition.retry
        step = next_step(
            disposition=attempt.disposition,
            member_state=member.state,
            retries_used=member.attempts_made - 1,
            max_retries=retry.max_retries,
            retry_on=retry.retry_on,
            numbers_left=bool(usable_numbers(person, attempts)),
            spacing=retry.spacing,
            ended_at=at,
            calendar=campaign.calendar,
        )
        if (
            attempt.disposition == Disposition.INVALID_NUMBER
            and sum(a.disposition == Disposition.INVALID_NUMBER for a in attempts) == 1
        ):
            # A number that does not exist is the officer's to fix (once a run), whatever the person's calls come to.
            self._add_task(connection, attempt, TaskKind.NUMBER, at, attempts, team=person.team)
        if isinstance(step, Unchanged):
            return
        if isinstance(step, Retry):
            change.update(new_state=MemberState.PENDING, new_final_at=None, new_next_attempt_at=step.at)
        else:
            change["new_state"] = step.state
            assert step.task is not None  # not an answer: the final step is unreachable, with its visit (next_step)
            self._add_task(connection, attempt, step.task, at, attempts, team=person.team)
        self.db.prepared(SETTLE_MEMBER).execute(connection, change)

    def _add_task(
        self, connection: DriverConnection, attempt, kind: str, at: datetime, attempts=(), team: str | None = None
    ) -> None:
        if team is None:
            team = self.db.prepared(_PERSON).first(connection, {"person_id": attempt.person_id}).team
        weeks = 1 + (self._unreached_weeks_before(connection, attempt) if kind == TaskKind.VISIT else 0)
        tz = self.rules_of_run(attempt.run_id, connection).calendar.tz
        self.db.prepared(_ADD_TASK).execute(
            connection,
            {
                "new_person_id": attempt.person_id,
                "new_run_id": attempt.run_id,
                "new_kind": kind,
                "new_team": team,
                "new_created_at": at,
                "new_created_on": at.astimezone(tz).date(),
                "new_weeks_without_ack": weeks,
                "new_answered_without_key": any(a.disposition == Disposition.ANSWERED_NO_KEY for a in attempts),
                "new_risk_speech": bool(attempt.risk_speech) and kind == TaskKind.CALLBACK,
            },
        )

    def _unreached_weeks_before(self, connection: DriverConnection, attempt) -> int:
        """How many weeks straight before this one the person ended unreachable."""
        count = 0
        for (state,) in self.db.prepared(_EARLIER_STATES).all(
            connection, {"person_id": attempt.person_id, "member_id": attempt.member_id}
        ):
            if state != MemberState.UNREACHABLE:
                break
            count += 1
        return count

    # ---- claiming ----

    def claim(
        self,
        connection: DriverConnection,
        *,
        run_id: int,
        limit: int,
        now: datetime,
        today: date,
        planned: Callable[[int], datetime],
        worker: str | None,
    ) -> list[Claimed]:
        """Take up to `limit` due people of a run and write their attempts, in the caller's transaction.

        Once committed, these attempts exist and are never placed again. `planned(i)`: when the i-th claimed
        call of this transaction is to be placed. SKIP LOCKED lets workers sharing PostgreSQL claim side by
        side; SQLite ignores it (one writer at a time).
        """
        claimed: list[Claimed] = []
        rows = self.db.prepared(_DUE_MEMBERS).all(
            connection, {"run_id": run_id, "now": now, "today": today, "limit": limit}
        )
        for person in rows:
            if not person.dialable:  # consent withdrawn or paused since the run began
                self.db.prepared(SETTLE_MEMBER).execute(
                    connection,
                    {
                        "member_id": person.member_id,
                        "new_state": MemberState.WITHDRAWN,
                        "new_final_at": now,
                        "new_next_attempt_at": None,
                    },
                )
                continue
            if person.call_window:  # their own hours, inside the campaign's: outside them, the call waits for them
                hours = narrowed(self.rules_of_run(run_id, connection).calendar, person.call_window)
                if not hours.is_open(now):
                    self.db.prepared(_POSTPONE_MEMBER).execute(
                        connection, {"member_id": person.member_id, "new_next_attempt_at": hours.next_open(now)}
                    )
                    continue
            earlier = (
                self.db.prepared(MEMBER_ATTEMPTS).all(connection, {"member_id": person.member_id})
                if person.attempts_made
                else []
            )
            number = person.attempts_made + 1
            token = secrets.token_urlsafe(18)
            phone = number_for_attempt(person, earlier, number)
            # A retry is planned only while a number is left (next_step), and an attempt's phone is NOT NULL.
            assert phone is not None
            placed_at = planned(len(claimed))
            attempt_id = self._write_attempt(
                connection,
                run_id=run_id,
                member_id=person.member_id,
                person_id=person.id,
                number=number,
                phone=phone,
                token=token,
                at=placed_at,
                worker=worker,
                inbound=False,
            )
            claimed.append(Claimed(attempt_id, run_id, token, phone, number, placed_at))
        return claimed

    def _write_attempt(
        self,
        connection: DriverConnection,
        *,
        run_id: int,
        member_id: int,
        person_id: int,
        number: int,
        phone: str | None,
        token: str,
        at: datetime,
        worker: str | None,
        inbound: bool,
    ) -> int:
        self.db.prepared(_CALL_MEMBER).execute(connection, {"member_id": member_id, "new_attempts_made": number})
        return (
            self.db.prepared(_INSERT_ATTEMPT)
            .first(
                connection,
                {
                    "new_run_id": run_id,
                    "new_member_id": member_id,
                    "new_person_id": person_id,
                    "new_number": number,
                    "new_phone": phone,
                    "new_token": token,
                    "new_placed_at": at,
                    "new_worker": worker,
                    "new_inbound": inbound,
                },
            )
            .id
        )

    def open_inbound_call(self, caller: str, at: datetime) -> LiveCall | None:
        """A call-back from `caller` (E.164): an inbound attempt for the person's member that waits for a call.

        None for a caller who is nobody's number, or whose person is not waiting for a call (already answered,
        finished, or being called right now). The attempt's IVR session is this call: it is started already.
        Caller ID can be forged, so reports show call-back acknowledgements apart (attempt.inbound).
        The IVR side ends the attempt with record_events when the call ends.
        """
        token = secrets.token_urlsafe(18)
        with self.db.statements() as connection:
            member = self.db.prepared(_PENDING_MEMBER_OF_CALLER).first(connection, {"caller": caller})
            if member is None:
                return None
            attempt_id = self._write_attempt(
                connection,
                run_id=member.run_id,
                member_id=member.member_id,
                person_id=member.id,
                number=member.attempts_made + 1,
                phone=caller,
                token=token,
                at=at,
                worker=None,
                inbound=True,
            )
            self.db.prepared(_START_IVR).execute(connection, {"call_token": token, "new_ivr_started_at": at})
            campaign = self.rules_of_run(member.run_id, connection, member.rules_version)
        return LiveCall(token=token, attempt_id=attempt_id, flow=campaign.flow, call_id=None, ivr_started=True)

    def record_checkin(self, connection: DriverConnection, *, member_id: int, outcome: str, at: datetime) -> bool:
        """A one-tap check-in (safecall/checkin.py), in the caller's transaction: an attempt with digit "tap" and no
        phone, answered with `outcome`, settled like a keypress. A person owed a visit is answered late (their
        open task closed, as for a late keypress). False, and nothing written, for a member already answered
        or withdrawn. A call in progress for the member is left to end: its report changes nothing after this."""
        if outcome not in ANSWERED:
            return False
        member = self.db.prepared(_TAPPABLE_MEMBER).first(connection, {"member_id": member_id})
        if member is None:
            return False
        token = secrets.token_urlsafe(18)
        self._write_attempt(
            connection,
            run_id=member.run_id,
            member_id=member_id,
            person_id=member.person_id,
            number=member.attempts_made + 1,
            phone="",
            token=token,
            at=at,
            worker=None,
            inbound=False,
        )
        attempt = self.db.prepared(_CLOSE_TAP).first(
            connection,
            {
                "call_token": token,
                "new_disposition": outcome,
                "new_keyed_at": at,
                "new_ended_at": at,
                "new_answered_at": at,
                "new_ivr_started_at": at,
            },
        )
        if member.state == MemberState.UNREACHABLE:
            self.db.prepared(_CLOSE_TASK_ANSWERED_LATE).execute(
                connection,
                {
                    "run_id": member.run_id,
                    "person_id": member.person_id,
                    "new_recorded_at": at,
                    "new_recorded_real_at": real_now(),
                },
            )
        self._settle(connection, attempt, at)
        return True

    def hold_first_call(self, connection: DriverConnection, *, member_id: int, run_id: int, until: datetime) -> bool:
        """Hold a person's first call until `until` (or the campaign's next open moment after it): a one-tap link
        sent first gets time to be tapped. True if the call was held; a call made or planned later stays as it is."""
        at = self.rules_of_run(run_id, connection).calendar.next_open_within(until, timedelta(days=3))
        if at is None:
            return False
        return (
            self.db.prepared(_HOLD_FIRST_CALL).execute(
                connection, {"member_id": member_id, "hold_until": at, "new_next_attempt_at": at}
            )
            == 1
        )

    def next_due(self, connection: DriverConnection, run_id: int) -> datetime | None:
        return self.db.prepared(NEXT_DUE).scalar(connection, {"run_id": run_id})

    def close_run_if_done(self, run_id: int, now: datetime) -> bool:
        """Close the run if nobody in it is pending or in a call; True if it is closed now."""
        with self.db.statements() as connection:
            if self.db.prepared(_OPEN_MEMBERS).scalar(connection, {"run_id": run_id}):
                return False
            self.db.prepared(_CLOSE_RUN).execute(connection, {"run_id": run_id, "new_closed_at": now})
            return True


# ---- the visit side: enrolment, and what a visit or a day without one comes to ----


def enrol(session: Session, *, run_id: int, first_call: datetime, where: list) -> int:
    """Put the people `where` selects into the run, all due at `first_call`, in person order, in one
    INSERT ... SELECT: the roster is never loaded into memory, whatever its size. Returns how many."""
    candidates = (
        sa.select(
            sa.literal(run_id),
            col(Person.id),
            sa.literal(MemberState.PENDING),
            sa.literal(0),
            sa.literal(first_call, type_=MEMBER.c.next_attempt_at.type),
        )
        .where(*where)
        .order_by(col(Person.id))
    )
    return (
        session.connection()
        .execute(
            sa.insert(MEMBER).from_select(
                [MEMBER.c.run_id, MEMBER.c.person_id, MEMBER.c.state, MEMBER.c.attempts_made, MEMBER.c.next_attempt_at],
                candidates,
            )
        )
        .rowcount
    )


def record_task_outcome(
    task: VisitTask, *, outcome: str, line: str, now: datetime, actor: str, close: bool, revisit_on: date | None = None
) -> None:
    """What a visit or an officer's call-back found, on its task (the caller's session writes it): the outcome,
    a dated line added to the task's notes, who and when (the real time beside `now`, which a drill moves), and
    whether the task stays open (`revisit_on`: back on that day's list)."""
    task.note = "\n".join(n for n in (task.note, line) if n)
    task.outcome, task.recorded_at, task.recorded_by, task.recorded_real_at = outcome, now, actor, real_now()
    if revisit_on is not None:
        task.revisit_on = revisit_on
    if close:
        task.status = TaskStatus.CLOSED


def flag_task_overdue(task: VisitTask) -> None:
    """No outcome in time: the task goes to the top of the next list (the caller's session writes it)."""
    task.overdue = True
