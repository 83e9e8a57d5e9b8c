"""Simulated people with habits: the simulated trunk's `people = "persistent"` model.

The default simulated trunk draws every call afresh from one answer mix, so a
person who missed all four calls last week is no likelier to miss this week.
Real people have habits: the same person is at the senior centre (경로당) every
weekday morning, the same person is hard of hearing and never answers before
the sixth ring, the same number has been disconnected for weeks. Here each
person (number) has a stable profile, drawn from (seed, number), that drifts
slowly from week to week; each call's course is then drawn from (seed, number,
week, attempt) as before, so a call takes the same course after a restart.

Profiles (shares of people; every figure is an assumption unless a source is
named):

| kind | share | picks up | usual hours | rings (s) | presses a key | a new absence all week |
|---|---|---|---|---|---|---|
| steady | 66 % | 93 % | 09-18 | 4-14 | 97 % | 0.25 % |
| out mornings (경로당, hospital visits) | 14 % | 90 % (25 % before 12:00) | 12-18 | 5-15 | 95 % | 0.5 % |
| slow to answer, hard of hearing | 9 % | 85 % | 09-18 | 14-32 | 80 % | 0.5 % |
| hard to reach | 8 % | 60 % | 09-18; half of them out one weekday | 6-24 | 85 % | 3 % |
| away for weeks (hospital stay, with family) | 2 % | 90 % | 09-18 | 5-15 | 95 % | 35 % |
| number no longer in service | 1 % | - | - | - | - | - |

On every call, independently of the profile: 2 % of calls find the line busy,
0.5 % fail in the network; 15 % of unanswered calls reach a voicemail; 3 % of
keypresses are 2 (help) rather than 1, and 1 % of answered calls are hung up
during the greeting.

Where the figures come from. The one published rate these are checked
against is Naver CLOVA CareCall's 96 % response rate counting follow-up calls
(weekly AI calls to people living alone in 128 districts; see the project's
field guide): with the spacing of the shipped campaign (retries after 1 h, 3 h
and the next day), this model leaves 4-5 % of people unreached after four
calls (measured: `benchmarks/finish_weeks.py`, BENCHMARKS.md). The split into
kinds, the hours, the ring times and the weekly absences are assumptions,
chosen to give the habits the field describes (regular daytime outings to
senior centres and clinics, hearing loss, hospital stays, numbers that lapse),
not measured; the per-call line figures (busy, congestion, voicemail) are
assumptions of the same order as the default mix's. Korea keeps one offset
all year (no daylight saving), so local hours are UTC+9.

An absence lasts into the next week half of the time, so a person away last
week is likelier to be away this week. Drift: each person's chance of picking up and the start of their usual hours
move by up to +-0.08 and +-1 h, interpolated between anchors eight weeks
apart, so consecutive weeks differ a little and a season differs more. Kinds
do not change: a number that is out of service stays so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

KOREA = timezone(timedelta(hours=9))
EPOCH = date(2026, 1, 5)  # a Monday: week numbers for the drift count from here
DRIFT_PERIOD = 8  # weeks between drift anchors

# (kind, share %, pick-up chance, off-hours pick-up, usual start hour, ring low/high s, key chance, away-week chance)
KINDS = [
    ("steady", 66, 0.93, 0.93, 9, (4, 14), 0.97, 0.0025),
    ("out_mornings", 14, 0.90, 0.25, 12, (5, 15), 0.95, 0.005),
    ("slow", 9, 0.85, 0.85, 9, (14, 32), 0.80, 0.005),
    ("hard_to_reach", 8, 0.60, 0.60, 9, (6, 24), 0.85, 0.03),
    ("away_for_weeks", 2, 0.90, 0.90, 9, (5, 15), 0.95, 0.35),
    ("out_of_service", 1, 0.0, 0.0, 9, (0, 0), 0.0, 0.0),
]
BUSY, CONGESTION, VOICEMAIL, HELP, HANGUP = 0.02, 0.005, 0.15, 0.03, 0.01
STAYS_ON = 0.5  # chance an absence (hospital stay, a visit to family) lasts into the next week


@dataclass(frozen=True)
class Profile:
    """One person's habits in one week."""

    kind: str
    pick_up: float  # chance of answering within their usual hours, when at home
    off_hours_pick_up: float
    usual_start: float  # local hour from which they are usually reachable (until 18:00)
    ring_low: float
    ring_high: float
    presses_key: float
    away_days: frozenset[int]  # weekdays (0 = Monday) they are usually out all day
    away_this_week: bool


class PersistentPeople:
    """Profiles and per-call behaviour; `draws(*parts)` gives the trunk's fixed uniform draws."""

    def __init__(self, seed: int, draws):
        self.seed = seed
        self.draws = draws
        total = sum(kind[1] for kind in KINDS)
        self._kinds, running = [], 0.0
        for kind in KINDS:
            running += kind[1] / total
            self._kinds.append((running, kind))
        self.profile = lru_cache(maxsize=4096)(self._profile)  # a call asks twice (behaviour, ring)

    def _kind(self, number: str) -> tuple:
        point = self.draws(self.seed, number, "kind").random()
        return next((kind for running, kind in self._kinds if point < running), self._kinds[-1][1])

    def _drift(self, number: str, week_index: int, what: str) -> float:
        """A value in [-1, 1] that moves slowly: anchors every DRIFT_PERIOD weeks, straight lines between."""
        block, step = divmod(week_index, DRIFT_PERIOD)
        here = self.draws(self.seed, number, what, block).random() * 2 - 1
        there = self.draws(self.seed, number, what, block + 1).random() * 2 - 1
        return here + (there - here) * step / DRIFT_PERIOD

    def _profile(self, number: str, week: date) -> Profile:
        name, _, pick_up, off_hours, start, (ring_low, ring_high), key, away_week = self._kind(number)
        week_index = (week - EPOCH).days // 7
        fixed = self.draws(self.seed, number, "habits")
        away_days: set[int] = set()
        if name == "hard_to_reach":
            if fixed.random() < 0.5:  # e.g. a weekly clinic day
                away_days.add(int(fixed.random() * 5))
        drift = 0.08 * self._drift(number, week_index, "pick_up")
        return Profile(
            kind=name,
            pick_up=min(1.0, max(0.0, pick_up + drift)) if pick_up else 0.0,
            off_hours_pick_up=min(1.0, max(0.0, off_hours + drift)) if off_hours else 0.0,
            usual_start=start + self._drift(number, week_index, "hours"),
            ring_low=ring_low,
            ring_high=ring_high,
            presses_key=key,
            away_days=frozenset(away_days),
            away_this_week=self._away(number, week, away_week),
        )

    def _away(self, number: str, week: date, chance: float, weeks_back: int = 4) -> bool:
        """Away all week: a new absence with `chance`, or one from last week that goes on (half of them do)."""
        if self.draws(self.seed, number, week, "away").random() < chance:
            return True
        return (
            weeks_back > 0
            and self.draws(self.seed, number, week, "stays").random() < STAYS_ON
            and self._away(number, week - timedelta(days=7), chance, weeks_back - 1)
        )

    def behaviour(self, number: str, week: date, placed_at: datetime, draws) -> str:
        """What the person does on a call placed at `placed_at`; `draws`: the call's own."""
        profile = self.profile(number, week)
        if profile.kind == "out_of_service":
            return "invalid"
        local = placed_at.astimezone(KOREA)
        line = draws.random()
        if line < BUSY:
            return "busy"
        if line < BUSY + CONGESTION:
            return "congestion"
        at_home = not profile.away_this_week and local.weekday() not in profile.away_days
        in_hours = local.hour + local.minute / 60 >= profile.usual_start
        chance = (profile.pick_up if in_hours else profile.off_hours_pick_up) if at_home else 0.0
        if draws.random() >= chance:
            return "machine" if draws.random() < VOICEMAIL else "no_answer"
        reaction = draws.random()
        if reaction < HANGUP:
            return "hangup"
        if draws.random() >= profile.presses_key:
            return "no_key"
        return "help" if draws.random() < HELP else "ack"

    def ring_seconds(self, number: str, week: date, draws) -> float:
        """How long the phone rings before this person picks up (the trunk's ring timeout may come first)."""
        profile = self.profile(number, week)
        return draws.uniform(profile.ring_low, profile.ring_high)


class DecliningPeople(PersistentPeople):
    """Persistent people, some of whom decline from `from_week` on (for the drift watch's tests and benchmarks):
    over `weeks_to_worst` weeks their phone rings 12 s longer before they pick up, they press a key half as
    often and pick up 0.3 less often. Everyone else is exactly as in PersistentPeople."""

    def __init__(self, seed: int, draws, declining: set[str], from_week: date, weeks_to_worst: int = 3):
        self.declining, self.from_week, self.weeks_to_worst = declining, from_week, weeks_to_worst
        super().__init__(seed, draws)

    def _profile(self, number: str, week: date) -> Profile:
        profile = super()._profile(number, week)
        if number not in self.declining or week < self.from_week or profile.kind == "out_of_service":
            return profile
        step = min(1.0, ((week - self.from_week).days // 7 + 1) / self.weeks_to_worst)
        return replace(
            profile,
            ring_low=profile.ring_low + 12 * step,
            ring_high=profile.ring_high + 12 * step,
            presses_key=profile.presses_key * (1 - 0.5 * step),
            pick_up=max(0.0, profile.pick_up - 0.3 * step),
        )
