"""The engine: one dialer loop per trunk places the due calls of every open run on it, within the trunk's limits.

Every attempt is written (and committed) before its call is placed, and is never placed again: after a crash
the trunk is asked what became of it, and an attempt nobody can account for ends as 'unknown' and is retried
as a new one. What follows each call is lifecycle.py's decision; the dialer only calls it.

Runs share the trunk's channels and calls per second. Each batch of claims goes round the runs that have
someone due, starting one further each time, so a district's retries never wait behind another run's backlog.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import Enum, auto
from typing import Final

import sqlalchemy as sa
from sqlmodel import col, func, select

from safecall import phones
from safecall.campaign import MIN_RETRIES
from safecall.clock import Clock
from safecall.errors import RunLockedError, SafeCallError, TrunkError, TrunkFatalError
from safecall.events import log_event
from safecall.lifecycle import CallLifecycle, CampaignRules, Claimed
from safecall.runlocks import acquire_run_lock, get_run, lock_owner_id, release_run_lock, renew_run_lock
from safecall.store import (
    FINAL_STATES,
    Attempt,
    AttemptStatus,
    CampaignRun,
    Database,
    RunMember,
    RunState,
    stored_id,
)
from safecall.telephony.base import CallEvent, CallRequest, LineResult, Trunk, TrunkBusy

log = logging.getLogger("safecall.dialer")
LOCK_TTL = timedelta(minutes=2)
MAX_WAIT = timedelta(seconds=5)  # wake at least this often to renew leases, look for new runs and notice a stop
GRACE = timedelta(seconds=60)  # beyond ring + max call length before an unreported call is written off
FOLLOW_RULES_EVERY = timedelta(seconds=30)  # how soon a `campaign apply` reaches the runs being dialled
NOT_READY_WAIT = timedelta(seconds=1)  # how soon a trunk that is down is looked at again
# A trunk that cannot take a call now (TrunkBusy) gets the same attempt again later; the dialer never waits for it.
DEFER_FIRST = timedelta(seconds=0.5)  # when the trunk did not say how long: then twice as long each time
MAX_DEFER = timedelta(seconds=60)  # the longest one placement waits (a longer Retry-After is cut to this)
MAX_DEFERRALS = 6  # then the attempt ends as failed, and the person is retried as the campaign's rules say
PROGRESS_EVERY = 0.2  # seconds of real time between progress reports: counting a big run is not free


class _Unknown(Enum):
    """The sentinel of a run's next due moment that must be read again."""

    UNKNOWN = auto()


_UNKNOWN: Final = _Unknown.UNKNOWN


@dataclass
class _InFlight:
    token: str
    deadline: datetime
    attempt_id: int
    run_id: int
    answered: CallEvent | None = None  # written together with the call's end: one transaction per call, not two


@dataclass
class _Run:
    """An open run this dialer dials: its campaign's rules and what is known of its next due person."""

    id: int
    week: date
    rules: CampaignRules  # the run's own (its snapshot), at rules_version
    rules_version: int
    next_due: datetime | None | _Unknown = _UNKNOWN  # None: nobody pending
    in_flight: int = 0  # its calls placed and not ended, and those waiting for the trunk (deferred)
    busy_until: datetime | None = None  # the trunk refused its last call: no new claims before this
    leased: bool = False
    lease_renew_at: datetime | None = None


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


@dataclass
class _Pending:
    """Reports taken in and not yet written; they go with the next claim's transaction, or soon after."""

    events: list[CallEvent] = field(default_factory=list)
    placed: list[tuple[int, datetime]] = field(default_factory=list)  # attempt id, when its call really went out
    runs: set[int] = field(default_factory=set)  # runs whose calls ended: once written, a retry may be due

    def take(self) -> tuple[list[CallEvent], list[tuple[int, datetime]], set[int]]:
        taken = (self.events, self.placed, self.runs)
        self.events, self.placed, self.runs = [], [], set()
        return taken


class Dialer:
    def __init__(
        self,
        db: Database,
        trunk: Trunk,
        clock: Clock,
        lifecycle: CallLifecycle,
        owner: str | None = None,
        worker: str | None = None,
    ):
        """`worker` names one of several dialers sharing a PostgreSQL database (one per trunk or PBX).

        Without it, one process dials a run at a time (a lease on each run). With it, workers dial the same
        runs side by side: each claims due people with SELECT ... FOR UPDATE SKIP LOCKED, places them on its
        own trunk within its own channel limit, and after a crash recovers only the calls it placed.
        """
        if worker is not None and db.engine.dialect.name != "postgresql":
            raise SafeCallError("named dialer workers share a PostgreSQL database; on SQLite run one dialer per trunk")
        self.db, self.trunk, self.clock, self.lifecycle = db, trunk, clock, lifecycle
        self.owner = owner or lock_owner_id()
        self.worker = worker
        self.in_flight: dict[str, _InFlight] = {}
        self._deadlines: list[tuple[datetime, str]] = []  # a heap over in_flight; entries of ended calls are skipped
        self.runs: dict[int, _Run] = {}
        # Claimed attempts the trunk could not take yet: (when to try again, order, run id, attempt, deferrals so far).
        self._deferred: list[tuple[datetime, int, int, Claimed, int]] = []
        self._deferral_order = itertools.count()
        self._last_runs: list[int] = []
        self._polling = True  # look for new runs while idle (see dial)
        self.pending = _Pending()
        self.next_placement = clock.now()
        self._turn = 0  # which run's turn it is to be claimed from first

    # ---- entry points ----

    def run(
        self,
        run_id: int,
        on_progress: Callable[[int, int], None] | None = None,
        stop_requested: Callable[[], bool] = lambda: False,
        return_when_idle: bool = False,
    ) -> CampaignRun:
        """Dial one run until every member is final (it closes) or a stop is asked for (calls in flight finish first).

        With `return_when_idle`, also return when no call is in flight and none is due yet.
        """
        with self.db.session() as session:
            run = get_run(session, run_id)
        if run.status != RunState.CLOSED:
            self.dial(lambda: [run_id], stop_requested, return_when_idle, on_progress=on_progress, strict=True)
        with self.db.session() as session:
            return get_run(session, run_id)

    def dial(
        self,
        open_runs: Callable[[], Iterable[int]],
        stop_requested: Callable[[], bool] = lambda: False,
        return_when_idle: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        strict: bool = False,
    ) -> None:
        """Dial every run `open_runs()` names (asked again at each wake-up) until none is left open, or a stop.

        `strict`: a run another process holds is an error (one run asked for by name), not one to skip, and the
        set of runs is fixed (no need to look for new ones while idle).
        """
        self._polling = not strict
        with self._worker_lock_held():
            try:
                with self.db.holding_a_connection():
                    self._loop(open_runs, stop_requested, return_when_idle, on_progress, strict)
            finally:
                self._end_deferred("not placed: dialling stopped while the trunk was busy")
                self._record_outcomes()  # what the trunk reported before a failure is still written
                self._release_runs()
        if on_progress:
            for run in self._last_runs:
                on_progress(*self._progress(run))

    def _loop(self, open_runs, stop_requested, return_when_idle, on_progress, strict) -> None:
        progress = _Throttle(PROGRESS_EVERY)
        next_abandoned_check = self.clock.now()
        self._take_runs(open_runs(), strict)
        next_runs_check = (
            self.clock.now() + MAX_WAIT
        )  # new runs are rare (a launch a week): not looked for at every call end
        next_rules_check = self.clock.now() + FOLLOW_RULES_EVERY
        while True:
            stopping = stop_requested()
            if stopping:
                self._end_deferred("not placed: dialling stopped while the trunk was busy")
            else:
                self._place_due()
            self._record_outcomes()  # call ends no claim took along
            if on_progress and progress.due():
                for run_id in self.runs:
                    on_progress(*self._progress(run_id))
            self._close_finished()
            if not self.in_flight and not self._deferred and (stopping or not self.runs):
                return
            wake = self._wake_time(stopping)
            if return_when_idle and not self.in_flight and not self._deferred and wake > self.clock.now():
                return
            self._handle(self.trunk.wait_events(wake))
            self._write_off_overdue()
            self._renew_leases()
            if not stopping and self.clock.now() >= next_runs_check:
                self._take_runs(open_runs(), strict)
                next_runs_check = self.clock.now() + MAX_WAIT
            if not stopping and self.clock.now() >= next_rules_check:
                self._follow_rules()
                next_rules_check = self.clock.now() + FOLLOW_RULES_EVERY
            if self.worker is not None and self.clock.now() >= next_abandoned_check:
                self._write_off_abandoned()
                next_abandoned_check = self.clock.now() + LOCK_TTL

    # ---- the runs dialled ----

    def _take_runs(self, run_ids: Iterable[int], strict: bool) -> None:
        """Start dialling runs not yet taken: a lease on each (single dialer), then its calls from before a restart."""
        for run_id in run_ids:
            if run_id in self.runs:
                continue
            with self.db.session() as session:
                run = get_run(session, run_id)
            if run.status == RunState.CLOSED:
                continue
            if run.rules is None:
                self.lifecycle.keep_rules(run_id, run.campaign)
            rules = self._checked(self.lifecycle.rules_of_run(run_id, version=run.rules_version))
            entry = _Run(run_id, run.week_start, rules, run.rules_version)
            if self.worker is None:
                try:
                    acquire_run_lock(self.db, run_id, self.owner, now=self.clock.now(), ttl=LOCK_TTL)
                except RunLockedError as exc:
                    if strict:
                        raise
                    log_event(log, "run_held_elsewhere", run=run_id, reason=str(exc))
                    continue
                entry.leased, entry.lease_renew_at = True, self.clock.now() + LOCK_TTL / 2
            self.runs[run_id] = entry
            self._last_runs.append(run_id)
            self._recover(entry)

    @staticmethod
    def _checked(rules: CampaignRules) -> CampaignRules:
        if rules.definition.retry.max_retries < MIN_RETRIES:
            raise SafeCallError(
                f"campaign {rules.definition.name!r}: refusing to run with fewer than {MIN_RETRIES} retries"
            )
        return rules

    def _follow_rules(self) -> None:
        """Runs moved to new rules (`safecall campaign apply`) since they were read: their next calls follow those."""
        if not self.runs:
            return
        for run_id, version in self.lifecycle.rules_versions(list(self.runs)).items():
            entry = self.runs.get(run_id)
            if entry is not None and version != entry.rules_version:
                entry.rules = self._checked(self.lifecycle.rules_of_run(run_id, version=version))
                entry.rules_version, entry.next_due = version, _UNKNOWN
                log_event(log, "run_rules_followed", run=run_id, campaign=entry.rules.definition.name, version=version)

    def _release_runs(self) -> None:
        for entry in self.runs.values():
            if entry.leased:
                release_run_lock(self.db, entry.id, self.owner)
        self.runs.clear()

    def _renew_leases(self) -> None:
        now = self.clock.now()
        for entry in self.runs.values():
            if not entry.leased:
                continue
            assert entry.lease_renew_at is not None  # set with `leased`, when the lease was taken
            if now >= entry.lease_renew_at:
                renew_run_lock(self.db, entry.id, self.owner, now=now, ttl=LOCK_TTL)
                entry.lease_renew_at = now + LOCK_TTL / 2

    def _close_finished(self) -> None:
        """Close the runs with nobody left to call and no call of theirs in flight."""
        for entry in list(self.runs.values()):
            if entry.in_flight:
                continue
            if self._next_due(entry) is None and self.lifecycle.close_run_if_done(entry.id, self.clock.now()):
                log_event(log, "run_closed", run=entry.id, campaign=entry.rules.definition.name)
                if entry.leased:
                    release_run_lock(self.db, entry.id, self.owner)
                del self.runs[entry.id]

    @contextmanager
    def _worker_lock_held(self) -> Iterator[None]:
        if self.worker is None:
            yield
            return
        with self._worker_lock(self.worker) as held:
            if not held:
                raise RunLockedError(f"dialer worker {self.worker!r} is already running elsewhere")
            yield

    @contextmanager
    def _worker_lock(self, worker: str) -> Iterator[bool]:
        """Try the advisory lock a live worker holds on its name; True if taken here (then that worker is not running).

        Session-level: held while the connection lives, so PostgreSQL releases it when the process dies.
        """
        lock = {"name": f"safecall-worker:{worker}"}
        with self.db.engine.connect() as connection:
            held = bool(connection.execute(sa.text("SELECT pg_try_advisory_lock(hashtext(:name))"), lock).scalar())
            try:
                yield held
            finally:
                if held:
                    connection.execute(sa.text("SELECT pg_advisory_unlock(hashtext(:name))"), lock)

    # ---- calls ----

    def _request(self, entry: _Run, attempt: Attempt | Claimed) -> CallRequest:
        call = entry.rules.definition.call
        return CallRequest(
            token=attempt.token,
            number=attempt.phone,
            attempt_number=attempt.number,
            week=entry.week,
            placed_at=attempt.placed_at,
            ring_timeout=call.ring_timeout_seconds,
            max_call_seconds=call.max_call_seconds,
            flow=entry.rules.flow,
        )

    @staticmethod
    def _longest_call(entry: _Run) -> timedelta:
        """Ring, the longest call, and grace: past this, a call nobody reported on is written off."""
        call = entry.rules.definition.call
        return timedelta(seconds=call.ring_timeout_seconds + call.max_call_seconds) + GRACE

    def _fly(self, entry: _Run, token: str, attempt_id: int, placed_at: datetime) -> None:
        deadline = placed_at + self._longest_call(entry)
        self.in_flight[token] = _InFlight(token, deadline, attempt_id, entry.id)
        heapq.heappush(self._deadlines, (deadline, token))
        entry.in_flight += 1

    def _recover(self, entry: _Run) -> None:
        """Attempts written by an earlier process and never closed: ask the trunk, never dial them again."""
        with self.db.session() as session:
            query = select(Attempt).where(Attempt.run_id == entry.id, Attempt.status == AttemptStatus.PLACING)
            if self.worker is not None:
                query = query.where(Attempt.worker == self.worker)  # other workers' calls are on other trunks
            # In flight, in placing order.
            orphans = list(session.exec(query.order_by(col(Attempt.placed_at), col(Attempt.id))))
        # A call-back is ended by the IVR side that took it; one left open past the longest call never will be.
        cutoff = self.clock.now() - self._longest_call(entry)
        self.lifecycle.apply(
            [
                CallEvent(a.token, "ended", self.clock.now(), LineResult.UNKNOWN, "call-back never ended")
                for a in orphans
                if a.inbound and a.placed_at < cutoff
            ]
        )
        for attempt in (a for a in orphans if not a.inbound):
            log_event(log, "attempt_recovering", attempt=attempt.id, phone=phones.mask(attempt.phone))
            self._fly(entry, attempt.token, stored_id(attempt), attempt.placed_at)
            try:
                events = self.trunk.recover(self._request(entry, attempt), attempt.trunk_call_id)
            except TrunkError as exc:  # left in flight: written off as unknown at its deadline, never freezing the run
                log_event(
                    log, "recover_failed", level=logging.WARNING, attempt=attempt.id, error=phones.mask_text(str(exc))
                )
                events = []
            self._handle(events)

    def _due_runs(self, now: datetime) -> list[_Run]:
        """Runs that may have someone due now inside their own calling window, in turn order."""
        due = []
        for entry in self.runs.values():
            # A run whose next due moment is not known is tried: its claim finds out at the same cost as asking.
            maybe_due = entry.next_due is _UNKNOWN or (entry.next_due is not None and entry.next_due <= now)
            busy = entry.busy_until is not None and entry.busy_until > now
            if maybe_due and not busy and entry.rules.calendar.is_open(now):
                due.append(entry)
        if len(due) > 1:
            turn = self._turn % len(due)
            due = due[turn:] + due[:turn]
            self._turn += 1
        return due

    def _place_due(self) -> None:
        free = self.trunk.capacity.channels - len(self.in_flight)
        if free <= 0 or not self.runs:
            return
        now = self.clock.now()
        spacing = timedelta(seconds=1 / self.trunk.capacity.calls_per_second)
        if self._deferred and self._deferred[0][0] <= now and self.trunk.ready():
            # Claimed before anyone due now: placed first, at the trunk's pace.
            while free > 0 and self._deferred and self._deferred[0][0] <= now:
                _at, _order, run_id, attempt, deferrals = heapq.heappop(self._deferred)
                entry = self.runs[run_id]
                entry.in_flight -= 1  # counted again as a call in flight (or again as deferred) by _place
                if entry.rules.calendar.is_open(self.clock.now()):
                    self._place(entry, attempt, spacing, deferrals)
                    free -= 1
                else:  # the calling window closed meanwhile: no call now; the rules say when the person is retried
                    self._not_placed(
                        attempt, TrunkError("not placed: the calling window closed while the trunk was busy")
                    )
            free = self.trunk.capacity.channels - len(self.in_flight)
            if free <= 0:
                return
            now = self.clock.now()
        due = self._due_runs(now)
        if not due or not self.trunk.ready():
            return
        # A batch is what the trunk may place within about a second: claimed together, placed at the trunk's pace.
        start = max(now, self.next_placement)
        batch = max(1, min(free, math.ceil(self.trunk.capacity.calls_per_second)))
        for entry, attempt in self._claim(due, batch, now, start, spacing):
            if entry.busy_until is not None and entry.busy_until > self.clock.now():
                entry.in_flight += 1  # counted while it waits, as a deferred call is
                self._push_deferred(
                    entry.busy_until, entry, attempt, 0
                )  # the trunk just refused this run's call: no use asking now
            else:
                self._place(entry, attempt, spacing)

    def _place(self, entry: _Run, attempt: Claimed, spacing: timedelta, deferrals: int = 0) -> None:
        # Not before the moment planned, nor within `spacing` of the last call really placed: events that come
        # meanwhile are taken in, never a reason to go early.
        moment = max(attempt.placed_at, self.next_placement)
        while self.clock.now() < moment:
            self._handle(self.trunk.wait_events(moment))
        self.next_placement = self._originate(entry, attempt, deferrals) + spacing

    def _claim(
        self, due: list[_Run], batch: int, now: datetime, start: datetime, spacing: timedelta
    ) -> list[tuple[_Run, Claimed]]:
        """Up to `batch` due people, round the due runs, written (committed) with the reports taken in so far."""
        today = now.astimezone(due[0].rules.calendar.tz).date()
        claimed: list[tuple[_Run, Claimed]] = []
        events, placed, settled = self.pending.take()
        with self.db.statements() as connection:
            # The calls that ended and freed these channels are written in the same transaction.
            ended = self.lifecycle.apply(events, connection, placed)
            share = max(1, math.ceil(batch / len(due)))
            hungry = list(due)
            while hungry and len(claimed) < batch:
                for entry in list(hungry):
                    limit = min(share, batch - len(claimed))
                    if limit <= 0:
                        break

                    def planned(i: int, base: int = len(claimed)) -> datetime:
                        return start + spacing * (base + i)

                    got = self.lifecycle.claim(
                        connection,
                        run_id=entry.id,
                        limit=limit,
                        now=now,
                        today=today,
                        planned=planned,
                        worker=self.worker,
                    )
                    claimed.extend((entry, attempt) for attempt in got)
                    if len(got) < limit:
                        hungry.remove(entry)
                        entry.next_due = _UNKNOWN
        # Committed: from here on these attempts exist and will never be placed again.
        self._recorded(ended, settled)
        return claimed

    def _originate(self, entry: _Run, attempt: Claimed, deferrals: int = 0) -> datetime:
        """Place the call; returns the moment it was placed (written over the planned one where they differ).

        A trunk that cannot take it now (TrunkBusy) gets it again later: `deferrals` times so far.
        """
        log_event(log, "attempt_placing", attempt=attempt.id, number=attempt.number, phone=phones.mask(attempt.phone))
        placed_at = self.clock.now()
        if placed_at != attempt.placed_at:
            attempt.placed_at = placed_at
            self.pending.placed.append((attempt.id, placed_at))
        self._fly(entry, attempt.token, attempt.id, placed_at)
        try:
            self.trunk.originate(self._request(entry, attempt))
        except TrunkBusy as exc:
            if deferrals < MAX_DEFERRALS:
                self._defer(entry, attempt, deferrals + 1, exc)
            else:
                self._not_placed(attempt, exc)
        except TrunkError as exc:
            self._not_placed(attempt, exc)
            if isinstance(exc, TrunkFatalError):
                raise
        return placed_at

    def _not_placed(self, attempt: Claimed, exc: TrunkError) -> None:
        """The attempt ends with no call (its result: exc.result, e.g. failed), settled as any call's end is."""
        log_event(
            log, "attempt_not_placed", level=logging.WARNING, attempt=attempt.id, error=phones.mask_text(str(exc))
        )
        if attempt.token not in self.in_flight:  # deferred: it waited with no flight of its own
            self._fly(self.runs[attempt.run_id], attempt.token, attempt.id, self.clock.now())
        self._handle([CallEvent(attempt.token, "ended", self.clock.now(), exc.result, phones.mask_text(str(exc)))])

    def _defer(self, entry: _Run, attempt: Claimed, deferrals: int, exc: TrunkBusy) -> None:
        """The trunk made no call: the attempt (written, never placed) is placed again after the trunk's wait.

        It holds no channel and has no deadline meanwhile, but its run counts it (entry.in_flight), so the run does
        not close; the run's next claims wait too, while other runs' calls, deadlines and leases go on.
        """
        self.in_flight.pop(attempt.token)
        said = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else timedelta(0)
        wait = min(MAX_DEFER, max(said, DEFER_FIRST * 2 ** (deferrals - 1)))
        at = self.clock.now() + wait
        entry.busy_until = at
        self._push_deferred(at, entry, attempt, deferrals)
        log_event(
            log,
            "attempt_deferred",
            attempt=attempt.id,
            seconds=wait.total_seconds(),
            deferrals=deferrals,
            reason=phones.mask_text(str(exc)),
        )

    def _push_deferred(self, at: datetime, entry: _Run, attempt: Claimed, deferrals: int) -> None:
        heapq.heappush(self._deferred, (at, next(self._deferral_order), entry.id, attempt, deferrals))

    def _end_deferred(self, why: str) -> None:
        """Stopping: attempts still waiting for the trunk end as not placed, and are retried as the rules say."""
        while self._deferred:
            _at, _order, run_id, attempt, _deferrals = heapq.heappop(self._deferred)
            self.runs[run_id].in_flight -= 1
            self._not_placed(attempt, TrunkError(why))

    def _handle(self, events: list[CallEvent]) -> None:
        """Take in what the trunk reported; the ends are written with the next claim (one transaction) or soon after."""
        for event in events:
            flight = self.in_flight.get(event.token)
            if flight is not None and event.kind == "answered":
                flight.answered = flight.answered or event
                continue
            if flight is not None and event.kind == "ended":
                self.in_flight.pop(event.token)
                entry = self.runs.get(flight.run_id)
                if entry is not None:
                    entry.in_flight -= 1
                self.pending.runs.add(flight.run_id)
                if flight.answered:
                    self.pending.events.append(flight.answered)
            self.pending.events.append(event)

    def _record_outcomes(self) -> None:
        events, placed, settled = self.pending.take()
        self._recorded(self.lifecycle.apply(events, placed=placed), settled)

    def _recorded(self, ended: list, settled: set[int]) -> None:
        """The reports taken in are written: the runs they settled may have a retry due sooner than known."""
        for run_id in settled:
            if run_id in self.runs:
                self.runs[run_id].next_due = _UNKNOWN
        for attempt in ended:
            log_event(log, "attempt_ended", attempt=attempt.id, disposition=attempt.disposition)

    def _write_off_overdue(self) -> None:
        """A call past its longest possible length with no final report: ask the trunk, else count it as unknown."""
        now = self.clock.now()
        for token, flight in self._overdue(now):
            with self.db.session() as session:
                attempt = session.get_one(Attempt, flight.attempt_id)  # written before its call was placed
            entry = self.runs.get(flight.run_id)
            events = []
            if entry is not None:
                try:
                    events = self.trunk.reconcile(self._request(entry, attempt), attempt.trunk_call_id)
                except TrunkError as exc:
                    log_event(
                        log,
                        "reconcile_failed",
                        level=logging.WARNING,
                        attempt=attempt.id,
                        error=phones.mask_text(str(exc)),
                    )
            self._handle(events)
            if token in self.in_flight:
                log_event(
                    log,
                    "attempt_written_off",
                    level=logging.WARNING,
                    attempt=attempt.id,
                    reason="no report past the longest call",
                )
                self._handle([CallEvent(token, "ended", now, LineResult.UNKNOWN)])

    def _first_deadline(self) -> datetime | None:
        while self._deadlines:
            deadline, token = self._deadlines[0]
            flight = self.in_flight.get(token)
            if flight is not None and flight.deadline == deadline:
                return deadline
            heapq.heappop(self._deadlines)  # that call ended, or was deferred and placed again (a later deadline)
        return None

    def _overdue(self, now: datetime) -> list[tuple[str, _InFlight]]:
        """Calls in flight past their deadline, earliest first; the heap stops at the first that is not due."""
        overdue = []
        while (deadline := self._first_deadline()) is not None and deadline <= now:
            token = heapq.heappop(self._deadlines)[1]
            overdue.append((token, self.in_flight[token]))
        return overdue

    def _write_off_abandoned(self) -> None:
        """Calls placed by a worker that is gone for good (its lock is free), past their longest length: unknown.

        A worker that restarts recovers its own calls; this is for one that does not come back, so the run
        can still close. An acknowledgement its IVR recorded before it died still counts.
        """
        by_worker: dict[str, list[str]] = defaultdict(list)
        now = self.clock.now()
        # One query for every run: only calls in flight are PLACING, a few hundred at most.
        with self.db.session() as session:
            placing = session.exec(
                select(Attempt.token, Attempt.worker, Attempt.run_id, Attempt.placed_at).where(
                    col(Attempt.run_id).in_(list(self.runs)),
                    Attempt.status == AttemptStatus.PLACING,
                    Attempt.worker != self.worker,
                )
            )
            for token, worker, run_id, placed_at in placing:
                assert worker is not None  # `worker != ...` is never true of NULL
                if placed_at < now - self._longest_call(self.runs[run_id]):
                    by_worker[worker].append(token)
        for worker, tokens in by_worker.items():
            with self._worker_lock(worker) as gone:
                if not gone:
                    continue  # that worker is alive and will settle its own calls
                log_event(
                    log, "abandoned_calls_written_off", level=logging.WARNING, worker=worker, attempts=len(tokens)
                )
                self.lifecycle.apply(
                    [CallEvent(token, "ended", self.clock.now(), LineResult.UNKNOWN) for token in tokens]
                )

    # ---- when to wake ----

    def _next_due(self, entry: _Run) -> datetime | None:
        """The run's next due moment, read again when not known."""
        if entry.next_due is _UNKNOWN:
            with self.db.statements() as connection:
                entry.next_due = self.lifecycle.next_due(connection, entry.id)
        return entry.next_due

    def _wake_time(self, stopping: bool) -> datetime:
        now = self.clock.now()
        # While calls are up, at least every MAX_WAIT (leases, a stop). Idle, a dialer over a changing set of runs
        # looks for new ones as often; one dialling a single run sleeps until its next due person.
        candidates = [now + MAX_WAIT] if self.in_flight or self._polling else []
        if self.in_flight and (deadline := self._first_deadline()) is not None:  # a call in flight has its deadline
            candidates.append(deadline)
        if self._deferred and not stopping:
            candidates += [now + MAX_WAIT, self._deferred[0][0]]
        if not stopping and len(self.in_flight) < self.trunk.capacity.channels:
            for entry in self.runs.values():
                if (next_due := self._next_due(entry)) is not None:
                    due = entry.rules.calendar.next_open(
                        max(next_due, self.next_placement, now, entry.busy_until or now)
                    )
                    # A trunk that is down (e.g. AMI reconnecting) is looked at again shortly;
                    # no attempt is spent on it.
                    candidates.append(due if self.trunk.ready() else max(due, now + NOT_READY_WAIT))
        return max(now, min(candidates)) if candidates else now

    def _progress(self, run_id: int) -> tuple[int, int]:
        with self.db.session() as session:
            rows = dict(
                session.exec(
                    select(RunMember.state, func.count()).where(RunMember.run_id == run_id).group_by(RunMember.state)
                ).all()
            )
        done = sum(count for state, count in rows.items() if state in FINAL_STATES)
        return done, sum(rows.values())
