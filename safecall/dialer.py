"""The engine: due attempts go to the trunk within its limits; outcomes decide the next step.

Every attempt is written (and committed) before its call is placed, and is
never placed again: after a crash the trunk is asked what became of it, and an
attempt nobody can account for ends as 'unknown' and is retried as a new one.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlmodel import func, select

from safecall import phones
from safecall.campaign import MIN_RETRIES, CampaignDef
from safecall.clock import Clock
from safecall.events import log_event
from safecall.errors import SafeCallError, TrunkError, TrunkFatalError
from safecall.ivr import IvrFlow
from safecall.policy import CallingCalendar
from safecall.runs import (
    Outcomes, acquire_run_lock, get_run, is_dialable, lock_owner_id, number_for_attempt, release_run_lock,
)
from safecall.store import Attempt, CampaignRun, Database, Disposition, MemberState, Person, RunMember
from safecall.telephony.base import CallEvent, CallRequest, Trunk

log = logging.getLogger("safecall.dialer")
LOCK_TTL = timedelta(minutes=2)
MAX_WAIT = timedelta(seconds=5)  # wake at least this often to renew the lock and notice a stop
GRACE = timedelta(seconds=60)
NOT_READY_WAIT = timedelta(seconds=1)  # beyond ring + max call length before an unreported call is written off


@dataclass
class _InFlight:
    token: str
    deadline: datetime
    attempt_id: int


class Dialer:
    def __init__(self, db: Database, trunk: Trunk, clock: Clock, campaign: CampaignDef, flow: IvrFlow,
                 calendar: CallingCalendar, outcomes: Outcomes, owner: str | None = None):
        if campaign.retry.max_retries < MIN_RETRIES:
            raise SafeCallError(f"campaign {campaign.name!r}: refusing to run with fewer than {MIN_RETRIES} retries")
        self.db, self.trunk, self.clock = db, trunk, clock
        self.campaign, self.flow, self.calendar, self.outcomes = campaign, flow, calendar, outcomes
        self.owner = owner or lock_owner_id()
        self.in_flight: dict[str, _InFlight] = {}
        self.next_placement = clock.now()

    def run(self, run_id: int, on_progress: Callable[[int, int], None] | None = None,
            stop_requested: Callable[[], bool] = lambda: False, return_when_idle: bool = False) -> CampaignRun:
        """Dial until every member is final (the run closes) or a stop is asked for (calls in flight finish first).

        With `return_when_idle`, also return when no call is in flight and none is due yet (the scheduler comes back).
        """
        acquire_run_lock(self.db, run_id, self.owner, now=self.clock.now(), ttl=LOCK_TTL)
        try:
            with self.db.session() as session:
                run = get_run(session, run_id)
            if run.status == "closed":
                return run
            self._recover(run)
            while True:
                stopping = stop_requested()
                if not stopping:
                    self._place_due(run)
                if on_progress:
                    on_progress(*self._progress(run_id))
                if not self.in_flight and (stopping or self._close_if_done(run_id)):
                    break
                wake = self._wake_time(run_id, stopping)
                if return_when_idle and not self.in_flight and wake > self.clock.now():
                    break
                self._handle(self.trunk.wait_events(wake))
                self._write_off_overdue(run)
                acquire_run_lock(self.db, run_id, self.owner, now=self.clock.now(), ttl=LOCK_TTL)
        finally:
            release_run_lock(self.db, run_id, self.owner)
        with self.db.session() as session:
            return get_run(session, run_id)

    def _request(self, run: CampaignRun, attempt: Attempt) -> CallRequest:
        return CallRequest(
            token=attempt.token, number=attempt.phone, attempt_number=attempt.number, week=run.week_start,
            placed_at=attempt.placed_at, ring_timeout=self.campaign.call.ring_timeout_seconds,
            max_call_seconds=self.campaign.call.max_call_seconds, flow=self.flow,
        )

    def _deadline(self, placed_at: datetime) -> datetime:
        call = self.campaign.call
        return placed_at + timedelta(seconds=call.ring_timeout_seconds + call.max_call_seconds) + GRACE

    def _recover(self, run: CampaignRun) -> None:
        """Attempts written by an earlier process and never closed: ask the trunk, never dial them again."""
        with self.db.session() as session:
            orphans = list(session.exec(select(Attempt).where(Attempt.run_id == run.id, Attempt.status == "placing")))
        for attempt in orphans:
            log_event(log, "attempt_recovering", attempt=attempt.id, phone=phones.mask(attempt.phone))
            self.in_flight[attempt.token] = _InFlight(attempt.token, self._deadline(attempt.placed_at), attempt.id)
            self._handle(self.trunk.recover(self._request(run, attempt), attempt.trunk_call_id))

    def _place_due(self, run: CampaignRun) -> None:
        free = self.trunk.capacity.channels - len(self.in_flight)
        if free <= 0:
            return
        now = self.clock.now()
        if not self.calendar.is_open(now) or not self.trunk.ready():
            return
        with self.db.session() as session:
            due = list(session.exec(
                select(RunMember.id).where(
                    RunMember.run_id == run.id, RunMember.state == MemberState.PENDING, RunMember.next_attempt_at <= now
                ).order_by(RunMember.next_attempt_at, RunMember.id).limit(free)
            ))
        for member_id in due:
            if self.next_placement > self.clock.now():
                self._handle(self.trunk.wait_events(self.next_placement))
            if len(self.in_flight) >= self.trunk.capacity.channels:
                return
            self._place(run, member_id)
            self.next_placement = max(self.clock.now(), self.next_placement) + timedelta(seconds=1 / self.trunk.capacity.calls_per_second)

    def _place(self, run: CampaignRun, member_id: int) -> None:
        now = self.clock.now()
        today = now.astimezone(self.calendar.tz).date()
        with self.db.transaction() as session:
            member = session.get(RunMember, member_id)
            if member.state != MemberState.PENDING:
                return
            person = session.get(Person, member.person_id)
            if not is_dialable(person, today):
                member.state, member.final_at, member.next_attempt_at = MemberState.WITHDRAWN, now, None
                session.add(member)
                return
            earlier = list(session.exec(select(Attempt).where(Attempt.member_id == member.id)))
            number = number_for_attempt(person, earlier, member.attempts_made + 1)
            member.attempts_made += 1
            member.state, member.next_attempt_at = MemberState.IN_CALL, None
            attempt = Attempt(run_id=run.id, member_id=member.id, person_id=person.id, number=member.attempts_made,
                              phone=number, token=secrets.token_urlsafe(18), placed_at=now)
            session.add_all([member, attempt])
        # Committed: from here on this attempt exists and will never be placed again.
        log_event(log, "attempt_placing", attempt=attempt.id, number=attempt.number, phone=phones.mask(number))
        self.in_flight[attempt.token] = _InFlight(attempt.token, self._deadline(now), attempt.id)
        try:
            self.trunk.originate(self._request(run, attempt))
        except TrunkError as exc:
            log_event(log, "attempt_not_placed", level=logging.WARNING, attempt=attempt.id, error=str(exc))
            self._handle([CallEvent(attempt.token, "ended", self.clock.now(), exc.result, str(exc))])
            if isinstance(exc, TrunkFatalError):
                raise

    def _handle(self, events: list[CallEvent]) -> None:
        for event in events:
            if event.kind == "answered":
                self.outcomes.call_answered(event.token, event.at)
            elif event.kind == "ended":
                self.in_flight.pop(event.token, None)
                attempt = self.outcomes.call_ended(event.token, event.result, event.at)
                if attempt:
                    log_event(log, "attempt_ended", attempt=attempt.id, disposition=attempt.disposition)

    def _write_off_overdue(self, run: CampaignRun) -> None:
        """A call past its longest possible length with no final report: ask the trunk, else count it as unknown."""
        now = self.clock.now()
        for token, flight in list(self.in_flight.items()):
            if flight.deadline > now:
                continue
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
                self.in_flight.pop(token)
                self.outcomes.call_ended(token, Disposition.UNKNOWN, now)

    def _wake_time(self, run_id: int, stopping: bool) -> datetime:
        now = self.clock.now()
        candidates = [now + MAX_WAIT] if self.in_flight else []
        candidates += [flight.deadline for flight in self.in_flight.values()]
        if not stopping and len(self.in_flight) < self.trunk.capacity.channels:
            with self.db.session() as session:
                next_due = session.exec(
                    select(func.min(RunMember.next_attempt_at)).where(RunMember.run_id == run_id, RunMember.state == MemberState.PENDING)
                ).one()
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
        with self.db.transaction() as session:
            open_members = session.exec(
                select(func.count()).where(RunMember.run_id == run_id, RunMember.state.in_([MemberState.PENDING, MemberState.IN_CALL]))
            ).one()
            if open_members:
                return False
            run = get_run(session, run_id)
            if run.status != "closed":
                run.status, run.closed_at = "closed", self.clock.now()
                session.add(run)
            return True
