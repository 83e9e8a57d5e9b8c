"""The engine: due attempts go to the trunk within its limits; outcomes decide the next step.

Every attempt is written (and committed) before its call is placed, and is
never placed again: after a crash the trunk is asked what became of it, and an
attempt nobody can account for ends as 'unknown' and is retried as a new one.
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Iterator

import sqlalchemy as sa

from sqlmodel import func, select

from safecall import phones
from safecall.campaign import MIN_RETRIES, CampaignDef
from safecall.clock import Clock
from safecall.events import log_event
from safecall.errors import RunLockedError, SafeCallError, TrunkError, TrunkFatalError
from safecall.ivr import IvrFlow
from safecall.policy import CallingCalendar
from safecall.runs import (
    ATTEMPT, MEMBER, MEMBER_ATTEMPTS, PERSON, RUN, SETTLE_MEMBER, Outcomes, acquire_run_lock, dialable_clause, get_run,
    lock_owner_id, number_for_attempt, release_run_lock, renew_run_lock,
)
from safecall.store import Attempt, CampaignRun, Database, MemberState, RunMember
from safecall.store.prepared import new_values
from safecall.telephony.base import CallEvent, CallRequest, LineResult, Trunk

log = logging.getLogger("safecall.dialer")
LOCK_TTL = timedelta(minutes=2)
MAX_WAIT = timedelta(seconds=5)  # wake at least this often to renew the lock and notice a stop
GRACE = timedelta(seconds=60)  # beyond ring + max call length before an unreported call is written off
NOT_READY_WAIT = timedelta(seconds=1)  # how soon a trunk that is down is looked at again
PROGRESS_EVERY = 0.2  # seconds of real time between progress reports: counting a big run is not free


@dataclass
class _InFlight:
    token: str
    deadline: datetime
    attempt_id: int
    answered: CallEvent | None = None  # written together with the call's end: one transaction per call, not two


@dataclass
class _Claimed:
    """An attempt as written by the claim: what placing its call needs."""

    id: int | None  # given when written
    token: str
    phone: str | None
    number: int
    placed_at: datetime


# The claim: every call passes through these, so they run prepared (store/prepared.py).
# Due people with what deciding about their call needs. FOR UPDATE names only the member table: the person rows
# are read, not claimed (other runs' workers may be reading them too).
_DUE_MEMBERS = (
    sa.select(MEMBER.c.id.label("member_id"), MEMBER.c.attempts_made, PERSON.c.id, PERSON.c.phone, PERSON.c.phone2,
              sa.and_(*dialable_clause(sa.bindparam("today", type_=sa.Date))).label("dialable"))
    .join(PERSON, PERSON.c.id == MEMBER.c.person_id)
    .where(MEMBER.c.run_id == sa.bindparam("run_id"), MEMBER.c.state == MemberState.PENDING,
           MEMBER.c.next_attempt_at <= sa.bindparam("now", type_=MEMBER.c.next_attempt_at.type))
    .order_by(MEMBER.c.next_attempt_at, MEMBER.c.id).limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True, of=MEMBER)
)
_CALL_MEMBER = sa.update(MEMBER).where(MEMBER.c.id == sa.bindparam("member_id")).values(
    state=MemberState.IN_CALL, next_attempt_at=None, **new_values("attempts_made"))
_INSERT_ATTEMPT = sa.insert(ATTEMPT).values(
    status="placing", inbound=False, **new_values("run_id", "member_id", "person_id", "number", "phone", "token", "placed_at", "worker"),
).returning(ATTEMPT.c.id)
# Once per wake-up or per run.
_NEXT_DUE = sa.select(sa.func.min(MEMBER.c.next_attempt_at)).where(
    MEMBER.c.run_id == sa.bindparam("run_id"), MEMBER.c.state == MemberState.PENDING)
_OPEN_MEMBERS = sa.select(sa.func.count()).select_from(MEMBER).where(
    MEMBER.c.run_id == sa.bindparam("run_id"), sa.or_(MEMBER.c.state == MemberState.PENDING, MEMBER.c.state == MemberState.IN_CALL))
_CLOSE_RUN = sa.update(RUN).where(RUN.c.id == sa.bindparam("run_id"), RUN.c.status != "closed").values(
    status="closed", **new_values("closed_at"))


class _Throttle:
    """True at most once per `seconds` of real (monotonic) time, and on the first call."""

    def __init__(self, seconds: float):
        self.seconds, self.last = seconds, -math.inf

    def due(self) -> bool:
        now = time.monotonic()
        if now - self.last < self.seconds:
            return False
        self.last = now
        return True


class Dialer:
    def __init__(self, db: Database, trunk: Trunk, clock: Clock, campaign: CampaignDef, flow: IvrFlow,
                 calendar: CallingCalendar, outcomes: Outcomes, owner: str | None = None, worker: str | None = None):
        """`worker` names one of several dialers sharing a PostgreSQL database (one per trunk or PBX).

        Without it, one process dials a run at a time (a lease on the run). With it, workers dial the same
        run side by side: each claims due people with SELECT ... FOR UPDATE SKIP LOCKED, places them on its
        own trunk within its own channel limit, and after a crash recovers only the calls it placed.
        """
        if campaign.retry.max_retries < MIN_RETRIES:
            raise SafeCallError(f"campaign {campaign.name!r}: refusing to run with fewer than {MIN_RETRIES} retries")
        if worker is not None and db.engine.dialect.name != "postgresql":
            raise SafeCallError("named dialer workers share a PostgreSQL database; on SQLite run one dialer per run")
        self.db, self.trunk, self.clock = db, trunk, clock
        self.campaign, self.flow, self.calendar, self.outcomes = campaign, flow, calendar, outcomes
        self.owner = owner or lock_owner_id()
        self.worker = worker
        self.in_flight: dict[str, _InFlight] = {}
        self.unrecorded: list[CallEvent] = []  # reported by the trunk, not yet written
        self.next_placement = clock.now()
        self.lease_renew_at = clock.now()

    def run(self, run_id: int, on_progress: Callable[[int, int], None] | None = None,
            stop_requested: Callable[[], bool] = lambda: False, return_when_idle: bool = False) -> CampaignRun:
        """Dial until every member is final (the run closes) or a stop is asked for (calls in flight finish first).

        With `return_when_idle`, also return when no call is in flight and none is due yet (the scheduler comes back).
        """
        with self._exclusive(run_id):
            with self.db.session() as session:
                run = get_run(session, run_id)
            if run.status == "closed":
                return run
            self._recover(run)
            try:
                with self.db.holding_a_connection():
                    self._dial(run, on_progress, stop_requested, return_when_idle)
            finally:
                self._record_outcomes()  # what the trunk reported before a failure is still written
            if on_progress:
                on_progress(*self._progress(run_id))
        with self.db.session() as session:
            return get_run(session, run_id)

    def _dial(self, run: CampaignRun, on_progress: Callable[[int, int], None] | None,
              stop_requested: Callable[[], bool], return_when_idle: bool) -> None:
        run_id = run.id
        progress = _Throttle(PROGRESS_EVERY)
        next_abandoned_check = self.clock.now()
        while True:
            stopping = stop_requested()
            if not stopping:
                self._place_due(run)
            self._record_outcomes()  # call ends no claim took along
            if on_progress and progress.due():
                on_progress(*self._progress(run_id))
            if not self.in_flight and (stopping or self._close_if_done(run_id)):
                break
            wake = self._wake_time(run_id, stopping)
            if return_when_idle and not self.in_flight and wake > self.clock.now():
                break
            self._handle(self.trunk.wait_events(wake))
            self._write_off_overdue(run)
            self._renew_lease(run_id)
            if self.worker is not None and self.clock.now() >= next_abandoned_check:
                self._write_off_abandoned(run)
                next_abandoned_check = self.clock.now() + LOCK_TTL

    @contextmanager
    def _exclusive(self, run_id: int) -> Iterator[None]:
        """The single dialer holds a lease on the run; a named worker holds a lock on its own name instead."""
        if self.worker is not None:
            with self._worker_lock(self.worker) as held:
                if not held:
                    raise RunLockedError(f"dialer worker {self.worker!r} is already running elsewhere")
                yield
            return
        acquire_run_lock(self.db, run_id, self.owner, now=self.clock.now(), ttl=LOCK_TTL)
        self.lease_renew_at = self.clock.now() + LOCK_TTL / 2
        try:
            yield
        finally:
            release_run_lock(self.db, run_id, self.owner)

    @contextmanager
    def _worker_lock(self, worker: str) -> Iterator[bool]:
        """Try the advisory lock a live worker holds on its name; True if taken here (then that worker is not running).

        Session-level: held while the connection lives, so PostgreSQL releases it when the process dies.
        """
        lock = {"name": f"safecall-worker:{worker}"}
        with self.db.engine.connect() as connection:
            held = connection.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"), lock).scalar()
            try:
                yield held
            finally:
                if held:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:name))"), lock)

    def _renew_lease(self, run_id: int) -> None:
        if self.worker is None and self.clock.now() >= self.lease_renew_at:
            renew_run_lock(self.db, run_id, self.owner, now=self.clock.now(), ttl=LOCK_TTL)
            self.lease_renew_at = self.clock.now() + LOCK_TTL / 2

    def _request(self, run: CampaignRun, attempt: Attempt | _Claimed) -> CallRequest:
        return CallRequest(
            token=attempt.token, number=attempt.phone, attempt_number=attempt.number, week=run.week_start,
            placed_at=attempt.placed_at, ring_timeout=self.campaign.call.ring_timeout_seconds,
            max_call_seconds=self.campaign.call.max_call_seconds, flow=self.flow,
        )

    def _longest_call(self) -> timedelta:
        """Ring, the longest call, and grace: past this, a call nobody reported on is written off."""
        call = self.campaign.call
        return timedelta(seconds=call.ring_timeout_seconds + call.max_call_seconds) + GRACE

    def _deadline(self, placed_at: datetime) -> datetime:
        return placed_at + self._longest_call()

    def _recover(self, run: CampaignRun) -> None:
        """Attempts written by an earlier process and never closed: ask the trunk, never dial them again."""
        with self.db.session() as session:
            query = select(Attempt).where(Attempt.run_id == run.id, Attempt.status == "placing")
            if self.worker is not None:
                query = query.where(Attempt.worker == self.worker)  # other workers' calls are on other trunks
            orphans = list(session.exec(query.order_by(Attempt.placed_at, Attempt.id)))  # in flight in placing order
        for attempt in orphans:
            log_event(log, "attempt_recovering", attempt=attempt.id, phone=phones.mask(attempt.phone))
            self.in_flight[attempt.token] = _InFlight(attempt.token, self._deadline(attempt.placed_at), attempt.id)
            self._handle(self.trunk.recover(self._request(run, attempt), attempt.trunk_call_id))

    def _place_due(self, run: CampaignRun) -> None:
        free = self.trunk.capacity.channels - len(self.in_flight)
        if free <= 0:
            return
        if not self.calendar.is_open(self.clock.now()) or not self.trunk.ready():
            return
        # A batch is what the trunk may place within about a second: claimed together, placed at the trunk's pace.
        spacing = timedelta(seconds=1 / self.trunk.capacity.calls_per_second)
        start = max(self.clock.now(), self.next_placement)
        batch = max(1, min(free, math.ceil(self.trunk.capacity.calls_per_second)))
        for attempt in self._claim(run, batch, start, spacing):
            if attempt.placed_at > self.clock.now():
                self._handle(self.trunk.wait_events(attempt.placed_at))
            self._originate(run, attempt)
            self.next_placement = attempt.placed_at + spacing

    def _claim(self, run: CampaignRun, limit: int, start: datetime, spacing: timedelta) -> list[_Claimed]:
        """Take up to `limit` due people and write their attempts, committed before any call is placed.

        SKIP LOCKED lets workers sharing PostgreSQL claim side by side without waiting on, or taking, each
        other's people; SQLite ignores it (one writer at a time, and one dialer per run there).
        """
        now = self.clock.now()
        today = now.astimezone(self.calendar.tz).date()
        claimed = []
        with self.db.statements() as connection:
            # The calls that ended and freed these channels are written in the same transaction.
            ended = self.outcomes.apply(self.unrecorded, connection)
            for person in self.db.prepared(_DUE_MEMBERS).all(connection, {"run_id": run.id, "now": now, "today": today, "limit": limit}):
                if not person.dialable:  # consent withdrawn or paused since the run began
                    self.db.prepared(SETTLE_MEMBER).execute(connection, {
                        "member_id": person.member_id, "new_state": MemberState.WITHDRAWN, "new_final_at": now, "new_next_attempt_at": None})
                    continue
                earlier = self.db.prepared(MEMBER_ATTEMPTS).all(connection, {"member_id": person.member_id}) if person.attempts_made else []
                number = person.attempts_made + 1
                attempt = _Claimed(None, secrets.token_urlsafe(18), number_for_attempt(person, earlier, number), number,
                                   start + spacing * len(claimed))
                self.db.prepared(_CALL_MEMBER).execute(connection, {"member_id": person.member_id, "new_attempts_made": number})
                attempt.id = self.db.prepared(_INSERT_ATTEMPT).first(connection, {
                    "new_run_id": run.id, "new_member_id": person.member_id, "new_person_id": person.id, "new_number": number,
                    "new_phone": attempt.phone, "new_token": attempt.token, "new_placed_at": attempt.placed_at,
                    "new_worker": self.worker}).id
                claimed.append(attempt)
        # Committed: from here on these attempts exist and will never be placed again.
        self._recorded(ended)
        return claimed

    def _originate(self, run: CampaignRun, attempt: _Claimed) -> None:
        log_event(log, "attempt_placing", attempt=attempt.id, number=attempt.number, phone=phones.mask(attempt.phone))
        self.in_flight[attempt.token] = _InFlight(attempt.token, self._deadline(attempt.placed_at), attempt.id)
        try:
            self.trunk.originate(self._request(run, attempt))
        except TrunkError as exc:
            log_event(log, "attempt_not_placed", level=logging.WARNING, attempt=attempt.id, error=str(exc))
            self._handle([CallEvent(attempt.token, "ended", self.clock.now(), exc.result, str(exc))])
            if isinstance(exc, TrunkFatalError):
                raise

    def _handle(self, events: list[CallEvent]) -> None:
        """Take in what the trunk reported; the ends are written with the next claim (one transaction) or soon after."""
        for event in events:
            flight = self.in_flight.get(event.token)
            if flight is not None and event.kind == "answered":
                flight.answered = flight.answered or event
                continue
            if flight is not None and event.kind == "ended":
                self.in_flight.pop(event.token)
                if flight.answered:
                    self.unrecorded.append(flight.answered)
            self.unrecorded.append(event)

    def _record_outcomes(self) -> None:
        self._recorded(self.outcomes.apply(self.unrecorded))

    def _recorded(self, ended: list) -> None:
        """The reports taken in are committed (`ended`: the attempts they closed)."""
        for attempt in ended:
            log_event(log, "attempt_ended", attempt=attempt.id, disposition=attempt.disposition)
        self.unrecorded = []

    def _write_off_overdue(self, run: CampaignRun) -> None:
        """A call past its longest possible length with no final report: ask the trunk, else count it as unknown."""
        now = self.clock.now()
        for token, flight in self._overdue(now):
            with self.db.session() as session:
                attempt = session.get(Attempt, flight.attempt_id)
            try:
                events = self.trunk.reconcile(self._request(run, attempt), attempt.trunk_call_id)
            except TrunkError as exc:
                log_event(log, "reconcile_failed", level=logging.WARNING, attempt=attempt.id, error=str(exc))
                events = []
            self._handle(events)
            if token in self.in_flight:
                log_event(log, "attempt_written_off", level=logging.WARNING, attempt=attempt.id, reason="no report past the longest call")
                self._handle([CallEvent(token, "ended", now, LineResult.UNKNOWN)])

    def _overdue(self, now: datetime) -> list[tuple[str, _InFlight]]:
        """Calls in flight past their deadline. Calls go in flight in the order they were placed (recovered ones
        first), so their deadlines are in the dict's order: the scan stops at the first that is not due."""
        overdue = []
        for token, flight in self.in_flight.items():
            if flight.deadline > now:
                break
            overdue.append((token, flight))
        return overdue

    def _write_off_abandoned(self, run: CampaignRun) -> None:
        """Calls placed by a worker that is gone for good (its lock is free), past their longest length: unknown.

        A worker that restarts recovers its own calls; this is for one that does not come back, so the run
        can still close. An acknowledgement its IVR recorded before it died still counts.
        """
        cutoff = self.clock.now() - self._longest_call()
        with self.db.session() as session:
            stale = list(session.exec(select(Attempt.token, Attempt.worker).where(
                Attempt.run_id == run.id, Attempt.status == "placing", Attempt.worker != self.worker, Attempt.placed_at < cutoff)))
        by_worker: dict[str, list[str]] = defaultdict(list)
        for token, worker in stale:
            by_worker[worker].append(token)
        for worker, tokens in by_worker.items():
            with self._worker_lock(worker) as gone:
                if not gone:
                    continue  # that worker is alive and will settle its own calls
                log_event(log, "abandoned_calls_written_off", level=logging.WARNING, worker=worker, attempts=len(tokens))
                self.outcomes.apply([CallEvent(token, "ended", self.clock.now(), LineResult.UNKNOWN) for token in tokens])

    def _wake_time(self, run_id: int, stopping: bool) -> datetime:
        now = self.clock.now()
        # The first call in flight has the earliest deadline (see _overdue).
        candidates = [now + MAX_WAIT, next(iter(self.in_flight.values())).deadline] if self.in_flight else []
        if not stopping and len(self.in_flight) < self.trunk.capacity.channels:
            with self.db.statements() as connection:
                next_due = self.db.prepared(_NEXT_DUE).scalar(connection, {"run_id": run_id})
            if next_due is not None:
                due = self.calendar.next_open(max(next_due, self.next_placement, now))
                # A trunk that is down (e.g. AMI reconnecting) is looked at again shortly; no attempt is spent on it.
                candidates.append(due if self.trunk.ready() else max(due, now + NOT_READY_WAIT))
        return max(now, min(candidates)) if candidates else now

    def _progress(self, run_id: int) -> tuple[int, int]:
        with self.db.session() as session:
            rows = dict(session.exec(
                select(RunMember.state, func.count()).where(RunMember.run_id == run_id).group_by(RunMember.state)
            ).all())
        done = sum(count for state, count in rows.items() if state in MemberState.FINAL)
        return done, sum(rows.values())

    def _close_if_done(self, run_id: int) -> bool:
        with self.db.statements() as connection:
            if self.db.prepared(_OPEN_MEMBERS).scalar(connection, {"run_id": run_id}):
                return False
            self.db.prepared(_CLOSE_RUN).execute(connection, {"run_id": run_id, "new_closed_at": self.clock.now()})
            return True
