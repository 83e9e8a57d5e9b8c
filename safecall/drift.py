"""Drift watch: a person who still answers every week, but later, more slowly and less clearly.

Per person and weekly run, four measures from their attempts: seconds of ringing before they answered, seconds
from answering to their key, calls needed (attempts placed), and whether the week's answer was unclear or a
request for help (answered without a key, or pressed 2). Over the last WINDOW weekly runs, the last RECENT weeks
are compared with the weeks before (the baseline): a measure has changed when its recent mean is worse than the
baseline mean by at least its floor (FLOORS) and by at least SPREAD baseline standard deviations. Only a change
for the worse is flagged; a person flagged shows "변화 감지" with the measures that changed. The false-flag rate
on steady simulated people is in docs/operations.md (measured by tests/test_drift.py).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date

from sqlmodel import col, select

from safecall.domain import Disposition, PersonStatus, RunState
from safecall.store import Attempt, CampaignRun, Database, Person, RunMember

WINDOW, RECENT, MIN_BASELINE = 8, 3, 4  # weeks: looked at, compared, needed before them
SPREAD = 2.0
# The smallest change worth a human's look, per measure (and the floor of its spread, so a perfectly regular
# person is not flagged for a second's difference).
FLOORS = {"ring_seconds": 6.0, "key_seconds": 4.0, "calls": 1.5, "unclear": 0.5}
MEASURE_KOREAN = {
    "ring_seconds": "받기까지 벨 울린 시간",
    "key_seconds": "버튼 누르기까지 걸린 시간",
    "calls": "필요한 통화 수",
    "unclear": "불분명하거나 도움 요청한 답",
}


@dataclass(frozen=True)
class WeekMeasures:
    week: date
    ring_seconds: float | None  # None: not answered that week
    key_seconds: float | None  # None: no key pressed
    calls: float | None  # None: not answered that week
    unclear: float  # 1.0 the week's answer was unclear or a help request, else 0.0


@dataclass(frozen=True)
class Change:
    measure: str
    baseline: float
    recent: float


@dataclass(frozen=True)
class DriftFlag:
    person_id: int
    name: str
    team: str
    weeks: int
    changes: list[Change]

    def korean(self) -> str:
        return ", ".join(MEASURE_KOREAN[c.measure] for c in self.changes)


def changes(weeks: list[WeekMeasures]) -> list[Change]:
    """The measures that clearly got worse in the last RECENT of these weeks (oldest first); none with too few weeks."""
    weeks = weeks[-WINDOW:]
    if len(weeks) < RECENT + MIN_BASELINE:
        return []
    baseline, recent = weeks[:-RECENT], weeks[-RECENT:]
    found = []
    for measure, floor in FLOORS.items():
        before = [v for v in (getattr(w, measure) for w in baseline) if v is not None]
        after = [v for v in (getattr(w, measure) for w in recent) if v is not None]
        if len(before) < MIN_BASELINE - 1 or len(after) < RECENT - 1:
            continue
        spread = max(statistics.pstdev(before), floor / SPREAD)
        mean_before, mean_after = statistics.fmean(before), statistics.fmean(after)
        if mean_after - mean_before >= max(floor, SPREAD * spread):
            found.append(Change(measure, round(mean_before, 1), round(mean_after, 1)))
    return found


def weekly_measures(db: Database, person_ids: list[int] | None = None) -> dict[int, list[WeekMeasures]]:
    """Each person's measures per closed weekly run, oldest first (ad-hoc signal or weather runs are left out:
    they call at other hours)."""
    with db.session() as session:
        query = (
            select(Attempt, col(RunMember.person_id), col(CampaignRun.week_start))
            .join(RunMember, col(RunMember.id) == Attempt.member_id)
            .join(CampaignRun, col(CampaignRun.id) == Attempt.run_id)
            .where(
                CampaignRun.label == "weekly",
                CampaignRun.status == RunState.CLOSED,
                Attempt.inbound == False,  # noqa: E712 (an SQL expression, not a Python truth test)
            )
        )
        if person_ids is not None:
            query = query.where(col(RunMember.person_id).in_(person_ids))
        rows = list(session.exec(query))
    grouped: dict[tuple[int, date], list[Attempt]] = {}
    for attempt, person_id, week in rows:
        grouped.setdefault((person_id, week), []).append(attempt)
    result: dict[int, list[WeekMeasures]] = {}
    for (person_id, week), attempts in sorted(grouped.items(), key=lambda item: (item[0][0], item[0][1])):
        result.setdefault(person_id, []).append(measures_of(week, attempts))
    return result


def measures_of(week: date, attempts: list[Attempt]) -> WeekMeasures:
    attempts = sorted(attempts, key=lambda a: a.number)
    answered = next(
        (
            a
            for a in attempts
            if a.answered_at is not None
            and a.disposition in (Disposition.ACKNOWLEDGED, Disposition.HELP_REQUESTED, Disposition.ANSWERED_NO_KEY)
        ),
        None,
    )
    answered_at = answered.answered_at if answered else None  # never None for the attempt chosen
    ring = (answered_at - answered.placed_at).total_seconds() if answered and answered_at else None
    key = (answered.keyed_at - answered_at).total_seconds() if answered and answered_at and answered.keyed_at else None
    # A week nobody answered is a visit's matter, not a drift: it counts for no measure.
    calls = float(answered.number) if answered else None
    unclear = (
        1.0 if answered and answered.disposition in (Disposition.HELP_REQUESTED, Disposition.ANSWERED_NO_KEY) else 0.0
    )
    return WeekMeasures(week, ring, key, calls, unclear)


def drift_flags(db: Database, person_ids: list[int] | None = None) -> list[DriftFlag]:
    """The active people whose measures clearly changed, by team and name."""
    series = weekly_measures(db, person_ids)
    flags = []
    with db.session() as session:
        for person_id, weeks in series.items():
            found = changes(weeks)
            person = session.get(Person, person_id) if found else None
            if person is not None and person.status == PersonStatus.ACTIVE:
                flags.append(DriftFlag(person_id, person.name, person.team, min(len(weeks), WINDOW), found))
    return sorted(flags, key=lambda f: (f.team, f.name, f.person_id))
