"""The safety clock: how long a person on a visit or call-back list waits for a human.

For each task the clock starts at the person's last unanswered call of that run (a visit task) or at their request
for help (a call-back task), and stops when a human records an outcome. While it runs, an escalation ladder with
set thresholds ([safety_clock] in config/safecall.toml) tells, once each: the guardian (the campaign's text), the
officer, the team lead, and finally recommends that a person ask 119 or 112 for a safety check (안전 확인).
SafeCall never asks them itself: a human decides.
"""

from __future__ import annotations

import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import col, select

from safecall.campaign import CampaignDef
from safecall.domain import ANSWERED, Channel, Disposition, TaskKind, TaskStatus
from safecall.events import log_event
from safecall.settings import Settings
from safecall.store import Attempt, AuditEvent, CampaignRun, Database, Person, RunMember, VisitTask, audit, stored_id

log = logging.getLogger("safecall.safety_clock")


# The rungs of the ladder, in order; each one's threshold is a setting (SafetyClockSettings).
class Rung(StrEnum):
    """The ladder's rungs, in order; a rung taken is audited as safety_clock.RUNG."""

    GUARDIAN = "guardian"
    OFFICER = "officer"
    TEAM_LEAD = "team_lead"
    SAFETY_CHECK = "safety_check"


RUNGS = tuple(Rung)
RUNG_KOREAN: dict[str | None, str] = {  # Waiting.rung is a Rung's value
    None: "",
    Rung.GUARDIAN: "보호자 문자",
    Rung.OFFICER: "담당 공무원",
    Rung.TEAM_LEAD: "팀장",
    Rung.SAFETY_CHECK: "119/112 안전 확인 요청 검토",
}


@dataclass(frozen=True)
class Waiting:
    """One task's clock."""

    task_id: int
    person_id: int
    name: str
    team: str
    kind: str
    started_at: datetime  # the last unanswered call, or the request for help
    stopped_at: datetime | None  # the outcome a human recorded; None: still waiting
    elapsed: timedelta  # to the outcome, or to now
    rung: str | None  # the highest rung of the ladder reached (RUNGS), None below the first


@dataclass(frozen=True)
class ClockSummary:
    count: int
    waiting: int  # of them, still without an outcome
    median: timedelta | None
    p95: timedelta | None
    longest: list[Waiting]  # still waiting, longest first


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value at or above `share` of the values (never an interpolated one)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # ceil without floats creeping in
    return ordered[int(rank) - 1]


def reached_rung(elapsed: timedelta, settings: Settings) -> str | None:
    hours = elapsed.total_seconds() / 3600
    reached = None
    for rung in RUNGS:
        if hours >= getattr(settings.safety_clock, f"{rung}_after_hours"):
            reached = rung
    return reached


def clocks(
    db: Database,
    settings: Settings,
    *,
    now: datetime,
    since: datetime | None = None,
    run_id: int | None = None,
    open_only: bool = False,
) -> list[Waiting]:
    """Every open task's clock, and the closed ones' created since `since` (all of them when None); or a run's."""
    with db.session() as session:
        query = select(VisitTask, Person).join(Person, col(Person.id) == VisitTask.person_id)
        if run_id is not None:
            query = query.where(VisitTask.run_id == run_id)
        if open_only:
            query = query.where(VisitTask.status == TaskStatus.OPEN)
        elif since is not None:
            query = query.where((VisitTask.status == TaskStatus.OPEN) | (VisitTask.created_at >= since))
        tasks = list(session.exec(query))
        starts = _starts(session, tasks)
    result = []
    for task, person in tasks:
        started = min(starts.get(stored_id(task), task.created_at), task.created_at)
        stopped = task.recorded_at if task.status == TaskStatus.CLOSED else None
        elapsed = max(timedelta(0), (stopped or now) - started)
        result.append(
            Waiting(
                stored_id(task),
                stored_id(person),
                person.name,
                task.team,
                task.kind,
                started,
                stopped,
                elapsed,
                reached_rung(elapsed, settings),
            )
        )
    return result


def _starts(session, tasks: list[tuple[VisitTask, Person]]) -> dict[int, datetime]:
    """Task id -> when its clock started: the last unanswered call of its run, or the request for help."""
    if not tasks:
        return {}
    by_member = {(t.run_id, t.person_id): t for t, _ in tasks}
    # Only the attempts of people with a task (a few hundred of a week's thousands), read in chunks of task ids.
    ids = sorted(stored_id(t) for t, _ in tasks)
    rows = [
        row
        for first in range(0, len(ids), 500)
        for row in session.exec(
            select(Attempt, RunMember.person_id)
            .join(RunMember, col(RunMember.id) == Attempt.member_id)
            .join(
                VisitTask,
                (col(VisitTask.run_id) == Attempt.run_id) & (col(VisitTask.person_id) == RunMember.person_id),
            )
            .where(col(VisitTask.id).in_(ids[first : first + 500]))
        )
    ]
    starts: dict[int, datetime] = {}
    for attempt, person_id in rows:
        task = by_member.get((attempt.run_id, person_id))
        if task is None:
            continue
        if task.kind == TaskKind.CALLBACK:
            if attempt.disposition != Disposition.HELP_REQUESTED:
                continue
            moment = attempt.keyed_at or attempt.ended_at or attempt.placed_at
        else:
            if attempt.disposition in ANSWERED:
                continue
            moment = attempt.ended_at or attempt.placed_at
        task_id = stored_id(task)
        if task_id not in starts or moment > starts[task_id]:
            starts[task_id] = moment
    return starts


def summarise(waits: list[Waiting], longest: int = 10) -> ClockSummary:
    seconds = [w.elapsed.total_seconds() for w in waits]
    still = sorted((w for w in waits if w.stopped_at is None), key=lambda w: w.elapsed, reverse=True)
    return ClockSummary(
        count=len(waits),
        waiting=len(still),
        median=timedelta(seconds=statistics.median(seconds)) if seconds else None,
        p95=timedelta(seconds=percentile(seconds, 0.95)) if seconds else None,
        longest=still[:longest],
    )


def hours_text(value: timedelta | None) -> str:
    """1일 3시간 20분, as an officer reads a wait."""
    if value is None:
        return "-"
    minutes = int(value.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(
        part for part in (f"{days}일" if days else "", f"{hours}시간" if hours or days else "", f"{minutes}분") if part
    )


def escalate(
    db: Database, settings: Settings, campaigns: dict[str, CampaignDef], *, now: datetime
) -> list[tuple[int, str]]:
    """The ladder: each rung a still-waiting task has reached is taken once. Its audit row (safety_clock.RUNG on
    "task N") is the record that it was, so a restart never repeats one. Returns the (task, rung) pairs taken now."""
    from safecall.escalation import queue_guardian_text, queue_officer_alert

    if not settings.safety_clock.enabled:
        return []
    teams = {t.name: t for t in settings.teams}
    waits = [w for w in clocks(db, settings, now=now, open_only=True) if w.rung]
    done: list[tuple[int, str]] = []
    with db.transaction() as session:
        taken = (
            set(
                session.exec(
                    select(AuditEvent.action, AuditEvent.subject).where(
                        col(AuditEvent.action).in_([f"safety_clock.{r}" for r in RUNGS]),
                        col(AuditEvent.subject).in_([f"task {w.task_id}" for w in waits]),
                    )
                ).all()
            )
            if waits
            else set()
        )
        for wait in waits:
            # Tasks, people and runs are never deleted: the clock's task and its person and run are there.
            task, person = session.get_one(VisitTask, wait.task_id), session.get_one(Person, wait.person_id)
            run = session.get_one(CampaignRun, task.run_id)
            team = teams.get(task.team)
            officer = team and (team.officer_email or team.email)
            lead = (team and team.lead_email) or officer
            page = f"{settings.web.base_url}/task/{task.id}"
            waited = hours_text(wait.elapsed)
            for rung in RUNGS[: RUNGS.index(wait.rung) + 1]:
                if (f"safety_clock.{rung}", f"task {task.id}") in taken:
                    continue
                key = f"safety-clock:{rung}:task:{task.id}"
                # No name or number in a message: the task number and its page behind the login.
                if rung == Rung.GUARDIAN:
                    campaign = campaigns.get(run.campaign)
                    sent = campaign is not None and queue_guardian_text(
                        session, campaign, person, task, run, settings, now
                    )
                    detail = (
                        "guardian text queued"
                        if sent
                        else "no guardian text (none on file, or the campaign sends none)"
                    )
                elif rung in (Rung.OFFICER, Rung.TEAM_LEAD):
                    recipient = officer if rung == Rung.OFFICER else lead
                    if recipient:
                        queue_officer_alert(
                            session,
                            key,
                            Channel.EMAIL,
                            recipient,
                            f"[안심콜] 확인 대기 시간 {waited}: "
                            f"과제 {task.id} ({task.team}) 결과가 아직 기록되지 않았습니다. "
                            f"{'팀장님께 알립니다. ' if rung == Rung.TEAM_LEAD else ''}바로 확인해 주세요.\n{page}",
                            now,
                        )
                    detail = f"e-mail to {recipient}" if recipient else "no e-mail address for the team"
                else:
                    recipients = sorted({r for r in (officer, lead) if r})
                    for recipient in recipients:
                        queue_officer_alert(
                            session,
                            f"{key}:{recipient}",
                            Channel.EMAIL,
                            recipient,
                            "[안심콜] 119/112 안전 확인 요청 검토: "
                            f"과제 {task.id} ({task.team}), 확인 대기 시간 {waited}. "
                            f"아직 아무도 이분의 안전을 확인하지 못했습니다. 119 또는 112에 안전 확인을 요청할지 "
                            f"담당자가 판단해 주세요. 안심콜은 직접 요청하지 않습니다.\n{page}",
                            now,
                        )
                    detail = "recommended to " + (", ".join(recipients) or "nobody: no e-mail address for the team")
                audit(
                    session,
                    at=now,
                    action=f"safety_clock.{rung}",
                    subject=f"task {task.id}",
                    actor="safecall",
                    detail=f"waited={int(wait.elapsed.total_seconds())}s; {detail}",
                )
                log_event(
                    log, "safety_clock_rung", task=task.id, rung=rung, waited_seconds=int(wait.elapsed.total_seconds())
                )
                done.append((wait.task_id, rung))
    return done
