"""Capacity planning: when a week's first calls end and when its visit list is complete, before it runs.

The estimate plays the week as a flow of people, minute by minute, through
the same calendar and retry spacing the dialer uses (policy.py): each minute
the channels place channels x 60 / (mean call seconds) calls, the due in
due-time order; after each call a share of the people called answer, a share
become final non-responders (a visit task) and the rest come due again at
their retry time. The shares are chains: of the people who reach their n-th
call, how many answer it, how many end on the list after it. They come from
the campaign's last closed weekly run (history), by class of history when the
first calls are ordered by it (safecall/ordering.py), or from a default mix.

The list is complete at the median of when its last person joins it: people
join independently, so the chance that nobody joins after a moment at which
m people are still expected is about exp(-m), and the median is where m falls
to ln 2. planning assumes the campaign gets `channels` to itself for the week.

Who ends on the list depends on the person: someone unreached last week is
far likelier to be unreached again than someone who answered the first call.
People are put in classes by their last weeks (ordering.call_class, with the
numbers out of service apart); each class's chain is what the campaign's runs
measured for people of that class, shrunk towards a default for the class
(measured on simulated weeks) as a small class's few weeks say little. A
plain share of last week's list would carry all of last week's chance into
this week.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import sqlalchemy as sa
from sqlmodel import col

from safecall.campaign import CampaignDef
from safecall.domain import RunState
from safecall.errors import NoCallingDayError
from safecall.history import FirstCallOrder, member_histories
from safecall.i18n import N_
from safecall.lifecycle import dialable_clause
from safecall.ordering import (
    ANSWERS_FIRST_CALL,
    LATE_ANSWER,
    NO_HISTORY,
    RETRIED,
    UNREACHED_LAST_WEEK,
    WeekOutcome,
    call_class,
)
from safecall.policy import CallingCalendar, first_call_of_week, open_seconds, retry_at, week_start
from safecall.runs import _target_filter
from safecall.store import Attempt, CampaignRun, Database, MemberState, Person, RunMember

STEP = timedelta(minutes=1)
HALF_A_MINUTE = timedelta(seconds=30)
HALF_A_PERSON = 0.5
# The flow's pace is known to a few percent only (its first calls' end is 0-8 % off the engine's in BENCHMARKS.md):
# the week is also played with calls this much longer and shorter, equally likely. Chosen, not fitted.
PACE_SPREAD = (0.97, 0.985, 1.0, 1.015, 1.03)
MAX_DAYS = 21
# The range `campaign plan` states: from the 10th to the 90th percentile (8 weeks in 10 fall inside it).
RANGE_CHANCES = (0.1, 0.9)
RANGE_Z = 1.2816  # the normal quantile of 0.9: the visits' range is the expected count +- this many spreads


@dataclass(frozen=True)
class Chains:
    """Of the people of one class: the share answering at their n-th call, and ending unreachable after it (n = 1..)."""

    answered: tuple[float, ...]
    unreachable: tuple[float, ...]

    def unreachable_share(self, max_retries: int) -> float:
        """The share of the class who end on the list, as the flow plays it (after the last call, all who go on)."""
        share, reaching = 0.0, 1.0
        for attempt in range(1, max_retries + 2):
            final, going_on = self.split(attempt)
            if attempt > max_retries:
                final, going_on = final + going_on, 0.0
            share += reaching * final
            reaching *= going_on
        return share

    def split(self, attempt: int) -> tuple[float, float]:
        """Of the people who reach call `attempt`:
        the share who become final non-responders, and the share who go on."""
        reaching = 1.0 - sum(self.answered[: attempt - 1]) - sum(self.unreachable[: attempt - 1])
        if reaching <= 1e-12:
            return 0.0, 0.0
        final = self.unreachable[attempt - 1] if attempt <= len(self.unreachable) else 0.0
        answered = self.answered[attempt - 1] if attempt <= len(self.answered) else 0.0
        return final / reaching, max(0.0, reaching - final - answered) / reaching


# Default: the first week of 3,000 persistent simulated people (safecall/telephony/simulated_people.py,
# 2,944 enrolled): 75.7 % answer the first call, 16.0 % the second, 3.6 % the third, 1.2 % the fourth;
# 0.4 % are off the list after one call (a number out of service, no other), 3.1 % after four.
DEFAULT_CHAINS = Chains(answered=(0.7568, 0.1596, 0.0360, 0.0119), unreachable=(0.0044, 0.0, 0.0, 0.0313))
# A planning class of its own: unreachable after a single call last week (the number was out of service), which
# stays so far more often than the rest of ordering's UNREACHED_LAST_WEEK; called with them, before everyone else.
OUT_OF_SERVICE_LAST_WEEK = -1
PRIOR_PEOPLE = 50.0  # a class's default chain counts as this many people measured in the class
POOLED_RUNS = 4  # a class's chain is measured over the campaign's last this many closed weekly runs

# By first-call order and planning class (last week's outcome), how people ended the next week: 18 simulated weeks
# (each after 1-3 others) of 1,500-6,000 persistent simulated people on 6 training seeds apart from the benchmark's
# (benchmarks/plan_defaults.py, benchmarks/results/plan-defaults-by-order.json; their first weeks gave 3.5 %
# unreachable, as DEFAULT_CHAINS). A number out of service last week is out of service again; a person unreached
# last week is unreached again 41 % of the time; one who answered the first call, 1.5 %. In history order the
# dialer calls each person at the hour they answered last time, so more answer the first call (who answered late
# last week: 62 % against 46 %): fewer retries, and first calls that end sooner.
DEFAULT_CLASS_CHAINS_BY_ORDER = {
    "history": {
        OUT_OF_SERVICE_LAST_WEEK: Chains(answered=(0.0,), unreachable=(1.0,)),
        UNREACHED_LAST_WEEK: Chains(answered=(0.364, 0.1181, 0.0577, 0.0525), unreachable=(0.0, 0.0, 0.0, 0.4077)),
        LATE_ANSWER: Chains(answered=(0.615, 0.198, 0.0768, 0.0479), unreachable=(0.0, 0.0, 0.0, 0.0623)),
        RETRIED: Chains(answered=(0.7243, 0.1856, 0.0482, 0.0158), unreachable=(0.0, 0.0, 0.0, 0.0261)),
        ANSWERS_FIRST_CALL: Chains(answered=(0.8088, 0.1387, 0.0291, 0.0088), unreachable=(0.0, 0.0, 0.0, 0.0147)),
    },
    "due": {
        OUT_OF_SERVICE_LAST_WEEK: Chains(answered=(0.0,), unreachable=(1.0,)),
        UNREACHED_LAST_WEEK: Chains(answered=(0.3517, 0.1435, 0.0622, 0.0287), unreachable=(0.0, 0.0, 0.0, 0.4139)),
        LATE_ANSWER: Chains(answered=(0.4643, 0.27, 0.1386, 0.0643), unreachable=(0.0, 0.0, 0.0, 0.0629)),
        RETRIED: Chains(answered=(0.6267, 0.2726, 0.0483, 0.0193), unreachable=(0.0, 0.0, 0.0, 0.0331)),
        ANSWERS_FIRST_CALL: Chains(answered=(0.8116, 0.1387, 0.0268, 0.008), unreachable=(0.0, 0.0, 0.0, 0.0149)),
    },
}
DEFAULT_CLASS_CHAINS = DEFAULT_CLASS_CHAINS_BY_ORDER["due"]
# How far a district's share on the list may be from DEFAULT_CHAINS' before it has a week of its own (a standard
# deviation, as a share of the people). Chosen, not fitted: the training seeds' first weeks (plan_defaults.py) differ
# by no more than chance (3.2-3.7 %), which says little about how real districts differ.
DEFAULT_SHARE_SPREAD = 0.005
# The mean length of the first, second, third and fourth call there, in seconds.
DEFAULT_SECONDS_BY_CALL = (25.0, 27.2, 29.8, 31.3)


@dataclass
class Mix:
    """People by class (calling order) with their chains, and the mean length of a call."""

    people: dict[int, float]
    chains: dict[int, Chains]
    call_seconds: float = 26.0
    source_week: date | None = None  # the week whose run the chains come from; None: the default mix
    # The mean length of the n-th call (n = 1..; the last figure for later calls): first calls are mostly answered
    # and short, retries ring out. Empty: every call is `call_seconds` long.
    seconds_by_call: tuple[float, ...] = ()

    def seconds(self, attempt: int) -> float:
        if not self.seconds_by_call:
            return self.call_seconds
        return self.seconds_by_call[min(attempt, len(self.seconds_by_call)) - 1]


@dataclass(frozen=True)
class Ranges:
    """Where 8 weeks in 10 fall (RANGE_CHANCES): the first calls' end over the plays at each pace, the list's
    completion over chance and pace, and the visits over chance (and, with no history, over districts)."""

    first_calls_end: tuple[datetime | None, datetime | None]
    list_complete: tuple[datetime | None, datetime | None]
    visits: tuple[int, int]
    # The same ranges as open-window hours (and people) from the estimate: (earliest, latest), e.g. (-0.2, +0.1).
    first_calls_hours: tuple[float, float] = (0.0, 0.0)
    list_complete_hours: tuple[float, float] = (0.0, 0.0)


@dataclass
class Estimate:
    people: int
    channels: float
    first_calls_end: datetime | None
    list_complete: datetime | None
    visits_expected: float
    last_calling_day: date
    source_week: date | None
    ranges: Ranges | None = None

    @property
    def spills(self) -> bool:
        return self.list_complete is None or self.list_complete.date() > self.last_calling_day


def simulate(
    mix: Mix,
    channels: float,
    first_call: datetime,
    calendar: CallingCalendar,
    spacing: list[str],
    max_retries: int,
    by_history: bool,
    per_call_seconds: float | None = None,
) -> tuple[datetime | None, datetime | None, float]:
    """(first calls end, list complete, people expected on the list) for one week played as a flow.

    The list's completion is the median over chance (who joins it, and when) and over the flow's own error in
    pace: the week is played again with calls PACE_SPREAD longer and shorter. Near a closing hour a few minutes
    decide whether the last retries fall today or tomorrow, and the flow cannot know its pace that closely."""
    first_calls_end, complete, visits, _ = simulate_with_ranges(
        mix, channels, first_call, calendar, spacing, max_retries, by_history, per_call_seconds
    )
    return first_calls_end, complete, visits


def simulate_with_ranges(
    mix: Mix,
    channels: float,
    first_call: datetime,
    calendar: CallingCalendar,
    spacing: list[str],
    max_retries: int,
    by_history: bool,
    per_call_seconds: float | None = None,
) -> tuple[datetime | None, datetime | None, float, Ranges]:
    """simulate's figures, and the ranges 8 weeks in 10 fall in (Ranges)."""
    played = {
        pace: _flow(mix, channels, first_call, calendar, spacing, max_retries, by_history, per_call_seconds, pace)
        for pace in sorted({1.0, *PACE_SPREAD})
    }
    first_calls_end, finals = played[1.0]
    plays = [finals for _, finals in played.values()]

    def not_before_first_calls(moment: datetime | None) -> datetime | None:
        # Few people are still expected after `moment`, but the list is not complete while first calls are
        # still being placed: it never reads as complete before the first calls end.
        if moment is not None and first_calls_end is not None and moment < first_calls_end:
            return first_calls_end
        return moment

    complete = not_before_first_calls(_complete(plays))
    visits = sum(mass for _, mass in finals)
    ends = [end for end, _ in played.values() if end is not None]
    low, high = RANGE_CHANCES
    spread = RANGE_Z * math.sqrt(_visits_variance(mix, max_retries))
    first_calls_range = (min(ends), max(ends)) if ends else (None, None)
    complete_range = (not_before_first_calls(_complete(plays, low)), not_before_first_calls(_complete(plays, high)))
    ranges = Ranges(
        first_calls_end=first_calls_range,
        list_complete=complete_range,
        visits=(max(0, math.floor(visits - spread)), math.ceil(visits + spread)),
        first_calls_hours=_open_hours_from(calendar, first_calls_end, first_calls_range),
        list_complete_hours=_open_hours_from(calendar, complete, complete_range),
    )
    return first_calls_end, complete, visits, ranges


def _open_hours_from(
    calendar: CallingCalendar, estimate: datetime | None, moments: tuple[datetime | None, datetime | None]
) -> tuple[float, float]:
    """Each of `moments` as open-window hours from `estimate` (negative: earlier)."""

    def hours(moment: datetime | None) -> float:
        if estimate is None or moment is None:
            return 0.0
        if moment < estimate:
            return -open_seconds(calendar, moment, estimate) / 3600
        return open_seconds(calendar, estimate, moment) / 3600

    return hours(moments[0]), hours(moments[1])


def _visits_variance(mix: Mix, max_retries: int) -> float:
    """The spread of the list's length, squared: each person joins it by chance (a sum of Bernoulli draws), and
    with no history the share itself is a guess from other places (DEFAULT_SHARE_SPREAD)."""
    variance, total = 0.0, 0.0
    for klass, count in mix.people.items():
        share = mix.chains[klass].unreachable_share(max_retries)
        variance += count * share * (1.0 - share)
        total += count
    if mix.source_week is None:
        variance += (DEFAULT_SHARE_SPREAD * total) ** 2
    return variance


def _flow(
    mix: Mix,
    channels: float,
    first_call: datetime,
    calendar: CallingCalendar,
    spacing: list[str],
    max_retries: int,
    by_history: bool,
    per_call_seconds: float | None = None,
    pace: float = 1.0,
) -> tuple[datetime | None, list[tuple[datetime, float]]]:
    """(first calls end, [(moment, people joining the list then)]) for one week played as a flow, with every call
    `pace` times its mean length."""
    per_minute = channels * 60.0  # channel-seconds each minute: calls of different lengths share them
    due: dict[datetime, dict[tuple[int, int], float]] = defaultdict(lambda: defaultdict(float))
    first_call_minute = _minute(first_call)
    total = sum(mix.people.values())
    if by_history:  # first calls paced in class order (ordering.plan_first_calls, hours aside), by the minute
        per_minute_slots = 60 / (per_call_seconds or FirstCallOrder.for_channels(channels).per_call.total_seconds())
        closing = _minute(datetime.combine(calendar.local(first_call).date(), calendar.end, tzinfo=calendar.tz) - STEP)
        slot, room = first_call_minute, per_minute_slots
        for klass in sorted(mix.people):
            left = mix.people[klass]
            while left > 1e-9:
                if slot >= closing:
                    due[closing][(klass, 1)] += left
                    break
                take = min(left, room)
                due[slot][(klass, 1)] += take
                left, room = left - take, room - take
                if room <= 1e-9:
                    slot, room = slot + STEP, per_minute_slots
    else:
        for klass, count in mix.people.items():
            due[first_call_minute][(klass, 1)] += count
    times = list(due)
    heapq.heapify(times)
    finals: list[tuple[datetime, float]] = []
    first_calls_done, first_calls_end = 0.0, None
    now = calendar.next_open(first_call_minute)
    limit = first_call + timedelta(days=MAX_DAYS)
    while times and now < limit:
        if not calendar.is_open(now):
            now = calendar.next_open(now)
            continue
        capacity = per_minute
        while times and times[0] <= now and capacity > 1e-9:
            moment = times[0]
            cohort = due[moment]
            waiting = sum(mass * mix.seconds(attempt) * pace for (_, attempt), mass in cohort.items())
            share = min(1.0, capacity / waiting) if waiting > 0 else 1.0
            for (klass, attempt), mass in list(cohort.items()):
                placed = mass * share
                # Placed through the minute: on average half a minute in.
                ended = now + HALF_A_MINUTE + timedelta(seconds=mix.seconds(attempt) * pace)
                cohort[(klass, attempt)] -= placed
                if attempt == 1:
                    first_calls_done += placed
                final, going_on = mix.chains[klass].split(attempt)
                if attempt > max_retries:  # no retry left: whoever did not answer is on the list
                    final, going_on = final + going_on, 0.0
                if final * placed > 0:
                    finals.append((ended, final * placed))
                if going_on * placed > 1e-9:
                    # The minute the retry falls due in (not the next whole minute): one due at 17:59:30 is
                    # placed before an 18:00 close, not the next day.
                    again = retry_at(spacing, attempt, ended, calendar).replace(second=0, microsecond=0)
                    if again not in due:
                        heapq.heappush(times, again)
                    due[again][(klass, attempt + 1)] += going_on * placed
            capacity -= waiting * share
            if share >= 1.0:
                heapq.heappop(times)
                del due[moment]
        if first_calls_end is None and first_calls_done >= total - HALF_A_PERSON:
            first_calls_end = now + STEP
        now += STEP
    return first_calls_end, finals


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0) + (STEP if moment.second or moment.microsecond else timedelta())


def _complete(plays: list[list[tuple[datetime, float]]], chance: float = 0.5) -> datetime | None:
    """The median of when the last person joins the list, over equally likely plays of the week: the first moment
    by which nobody is left to join with a chance of one half. In one play, with m people still expected after a
    moment, that chance is about exp(-m) (people join independently): one half when m falls to ln 2. Another
    `chance` gives another percentile (0.9: the moment by which the list is complete 9 weeks in 10)."""
    moments = sorted({moment for finals in plays for moment, _ in finals})
    if not moments:
        return None
    suffixes = []
    for finals in plays:  # per play: its moments, and the people expected after each
        ordered = sorted(finals)
        after, running = [0.0] * len(ordered), 0.0
        for index in range(len(ordered) - 1, -1, -1):
            after[index] = running
            running += ordered[index][1]
        suffixes.append(([moment for moment, _ in ordered], after, running))

    def none_after(moment: datetime) -> float:
        chance = 0.0
        for times, after, total in suffixes:
            index = bisect_right(times, moment) - 1
            chance += math.exp(-(after[index] if index >= 0 else total))
        return chance / len(suffixes)

    low, high = 0, len(moments) - 1  # the chance only grows with the moment: the first at or over one half
    while low < high:
        middle = (low + high) // 2
        if none_after(moments[middle]) >= chance:
            high = middle
        else:
            low = middle + 1
    return moments[low]


# ---- from the store ------------------------------------------------------------------------------------


def roster_size(db: Database, campaign: CampaignDef, today: date) -> int:
    with db.reading() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(Person).where(*_target_filter(campaign), *dialable_clause(today))
        ).scalar_one()


def planning_class(history: list[WeekOutcome]) -> int:
    """The class a person is planned in (newest week first): the calling class (ordering.call_class) of their last
    week only, with the people whose number was out of service (unreachable after a single call) apart.

    Only the last week: a class measured as it went on from one week to the next then means the same thing the next
    week. Classes of all the weeks looked at grow purer as history grows (who answered the first call four weeks
    running is steadier than who did once), so what a class did last week overstated what it does next."""
    last = [week for week in history if week.state != MemberState.WITHDRAWN][:1]
    klass = call_class(last)
    if klass == UNREACHED_LAST_WEEK and last[0].attempts == 1:
        return OUT_OF_SERVICE_LAST_WEEK
    return klass


def mix_from_history(db: Database, campaign: CampaignDef, people: int, by_history: bool, week: date, tz: tzinfo) -> Mix:
    """Chains measured in the campaign's last closed weekly runs before `week`, by class of the history before
    them, shrunk towards the default chain of each class in the campaign's first-call order (`by_history`: in
    history order more people answer the first call); else the default mix."""
    with db.reading() as connection:
        runs = connection.execute(
            sa.select(CampaignRun)
            .where(
                col(CampaignRun.campaign) == campaign.name,
                col(CampaignRun.label) == "weekly",
                col(CampaignRun.status) == RunState.CLOSED,
                col(CampaignRun.week_start) < week,
            )
            .order_by(col(CampaignRun.week_start).desc())
            .limit(POOLED_RUNS)
        ).all()
        if not runs:
            return Mix({NO_HISTORY: people}, {NO_HISTORY: DEFAULT_CHAINS}, seconds_by_call=DEFAULT_SECONDS_BY_CALL)
        last = runs[0]
        # Each member of each run: their class before it and how their week ended (pooled over the runs: one week's
        # chance is most of a class's error); of the last run, also their class now.
        outcomes: dict[int, Counter] = defaultdict(Counter)
        classes_now: Counter = Counter()
        for run in runs:
            members = connection.execute(
                sa.select(col(RunMember.id), col(RunMember.state), col(RunMember.attempts_made))
                .where(col(RunMember.run_id) == run.id)
                .order_by(col(RunMember.id))
            ).all()
            histories = member_histories(connection, run.id, campaign.name, run.week_start, 4, tz)
            for (_member_id, state, attempts), (_, history) in zip(members, histories, strict=True):
                if state == MemberState.WITHDRAWN or attempts == 0:
                    continue
                outcomes[planning_class(history)][
                    ("unreachable" if state == MemberState.UNREACHABLE else "answered", attempts)
                ] += 1
                if run is last:
                    classes_now[planning_class([WeekOutcome(state, attempts), *history])] += 1
        seconds = _seconds_by_call(connection, last.id)
    overall = _chains(sum(outcomes.values(), Counter()))
    defaults = DEFAULT_CLASS_CHAINS_BY_ORDER["history" if by_history else "due"]
    chains = {klass: _shrunk(outcomes.get(klass, Counter()), defaults.get(klass, overall)) for klass in classes_now}
    scale = people / max(1, sum(classes_now.values()))
    shares = {klass: count * scale for klass, count in classes_now.items()}
    by_call = tuple(float(mean) for _, mean, _ in seconds)
    calls = sum(count for _, _, count in seconds)
    mean = sum(mean * count for _, mean, count in seconds) / calls if calls else 26.0
    return Mix(
        shares,
        chains,
        call_seconds=mean,
        source_week=last.week_start,
        seconds_by_call=by_call or DEFAULT_SECONDS_BY_CALL,
    )


def _seconds_by_call(connection: sa.Connection, run_id: int) -> list[tuple[int, float, int]]:
    """(call number, mean seconds, calls) of a run's ended calls."""
    sums: dict[int, list[float]] = defaultdict(lambda: [0.0, 0])
    for number, start, end in connection.execute(
        sa.select(col(Attempt.number), col(Attempt.placed_at), col(Attempt.ended_at))
        .where(col(Attempt.run_id) == run_id, col(Attempt.ended_at).is_not(None))
        .execution_options(yield_per=20_000)
    ):
        assert end is not None  # the query chose ended calls
        sums[number][0] += (end - start).total_seconds()
        sums[number][1] += 1
    return [(number, total / count, int(count)) for number, (total, count) in sorted(sums.items())]


def _chains(counts: Counter) -> Chains:
    total = sum(counts.values()) or 1
    longest = max([attempts for _, attempts in counts] or [1])
    return Chains(
        tuple(counts[("answered", n)] / total for n in range(1, longest + 1)),
        tuple(counts[("unreachable", n)] / total for n in range(1, longest + 1)),
    )


def _shrunk(counts: Counter, prior: Chains, weight: float = PRIOR_PEOPLE) -> Chains:
    """The class's measured chain, with the prior counted as `weight` people of the class: a class of a few people
    measured in one week says little about next week (the shrinkage of a beta-binomial estimate)."""
    measured = sum(counts.values())
    if not measured:
        return prior
    longest = max([attempts for _, attempts in counts] + [len(prior.answered), len(prior.unreachable)])

    def at(values: tuple[float, ...], n: int) -> float:
        return values[n - 1] if n <= len(values) else 0.0

    total = measured + weight
    return Chains(
        tuple((counts[("answered", n)] + weight * at(prior.answered, n)) / total for n in range(1, longest + 1)),
        tuple((counts[("unreachable", n)] + weight * at(prior.unreachable, n)) / total for n in range(1, longest + 1)),
    )


def estimate_week(
    db: Database,
    campaign: CampaignDef,
    calendar: CallingCalendar,
    *,
    now: datetime,
    channels: float,
    first_call: datetime,
    people: int | None = None,
    mix: Mix | None = None,
) -> Estimate:
    """When this week's first calls end and the visit list is complete, for `channels` channels."""
    by_history = campaign.schedule.first_calls == "history"
    today = calendar.local(now).date()
    people = roster_size(db, campaign, today) if people is None else people
    mix = mix or mix_from_history(db, campaign, people, by_history, week_start(first_call, calendar.tz), calendar.tz)
    first_end, complete, visits, ranges = simulate_with_ranges(
        mix, channels, first_call, calendar, campaign.retry.spacing, campaign.retry.max_retries, by_history
    )
    return Estimate(
        people, channels, first_end, complete, visits, last_calling_day(calendar, first_call), mix.source_week, ranges
    )


def last_calling_day(calendar: CallingCalendar, first_call: datetime) -> date:
    monday = calendar.local(first_call).date() - timedelta(days=calendar.local(first_call).weekday())
    days = [
        monday + timedelta(days=offset)
        for offset in range(7)
        if calendar.is_calling_day(monday + timedelta(days=offset))
    ]
    return days[-1] if days else monday + timedelta(days=6)


def channels_to_finish_by(
    db: Database,
    campaign: CampaignDef,
    calendar: CallingCalendar,
    *,
    now: datetime,
    first_call: datetime,
    day: date,
    people: int | None = None,
    mix: Mix | None = None,
) -> int | None:
    """The fewest channels with which the list is expected complete by the close of `day` (None: not even 10,000)."""
    by_history = campaign.schedule.first_calls == "history"
    people = roster_size(db, campaign, calendar.local(now).date()) if people is None else people
    mix = mix or mix_from_history(db, campaign, people, by_history, week_start(first_call, calendar.tz), calendar.tz)
    deadline = datetime.combine(day, calendar.end, tzinfo=calendar.tz)

    def finishes(channels: int) -> bool:
        _, complete, _ = simulate(
            mix, channels, first_call, calendar, campaign.retry.spacing, campaign.retry.max_retries, by_history
        )
        return complete is not None and complete <= deadline

    def finishes_at_pace(channels: int) -> bool:  # one play, at the flow's own pace: cheap, for the bisection
        first_end, finals = _flow(
            mix, channels, first_call, calendar, campaign.retry.spacing, campaign.retry.max_retries, by_history
        )
        complete = _complete([finals])
        return complete is not None and max(complete, first_end or complete) <= deadline

    low, high = 1, 10_000
    if not finishes(high):
        return None
    while low < high:
        middle = (low + high) // 2
        if finishes_at_pace(middle):
            high = middle
        else:
            low = middle + 1
    # The plays at other paces move the answer by a channel or two at most: step to where `finishes` changes.
    while low < 10_000 and not finishes(low):
        low += 1
    while low > 1 and finishes(low - 1):
        low -= 1
    return low


def local_text(calendar: CallingCalendar, moment: datetime | None) -> str:
    return "-" if moment is None else calendar.local(moment).strftime("%Y-%m-%d %a %H:%M")


def next_first_call(db: Database, campaign: CampaignDef, calendar: CallingCalendar, now: datetime) -> datetime | None:
    """The first call of the campaign's next weekly run: this week's, unless it was launched already; then next week's.
    None: no calling day comes (policy.FIRST_CALL_HORIZON)."""
    week = week_start(now, calendar.tz)
    with db.reading() as connection:
        launched = connection.execute(
            sa.select(col(CampaignRun.id)).where(
                col(CampaignRun.campaign) == campaign.name,
                col(CampaignRun.label) == "weekly",
                col(CampaignRun.week_start) == week,
            )
        ).first()
    if launched:
        week += timedelta(weeks=1)
    return first_call_of_week(calendar, week, campaign.schedule.weekday, campaign.schedule.start, now=now)


@dataclass
class Plan:
    estimate: Estimate
    first_call: datetime
    by_day: date
    channels_needed: int | None  # to complete the list by the close of by_day


def plan_campaign(
    db: Database,
    campaign: CampaignDef,
    calendar: CallingCalendar,
    *,
    now: datetime,
    channels: float,
    by_day: date | None = None,
) -> Plan:
    """The estimate for the campaign's next run, and the channels that would complete its list by `by_day`
    (default: the week's last calling day)."""
    first_call = next_first_call(db, campaign, calendar, now)
    if first_call is None:
        raise NoCallingDayError(
            f"campaign {campaign.name!r}: no calling day comes; check its window in campaigns/{campaign.name}.toml"
        )
    people = roster_size(db, campaign, calendar.local(now).date())
    mix = mix_from_history(
        db,
        campaign,
        people,
        campaign.schedule.first_calls == "history",
        week_start(first_call, calendar.tz),
        calendar.tz,
    )
    estimate = estimate_week(
        db, campaign, calendar, now=now, channels=channels, first_call=first_call, people=people, mix=mix
    )
    by_day = by_day or estimate.last_calling_day
    needed = channels_to_finish_by(
        db, campaign, calendar, now=now, first_call=first_call, day=by_day, people=people, mix=mix
    )
    return Plan(estimate, first_call, by_day, needed)


# How a week's first calls are ordered (the campaign's schedule.first_calls), in words.
FIRST_CALL_ORDER = {"history": N_("history"), "due": N_("due")}


def _untranslated(message: str) -> str:
    return message


def plan_lines(
    campaign: CampaignDef, plan: Plan, when: Callable[[datetime | None], str], _: Callable[[str], str] = _untranslated
) -> list[str]:
    """The estimate, line by line, for `campaign plan`; `when` writes a local time, `_` translates."""
    estimate = plan.estimate
    source = (
        _("the run of the week of {week}").format(week=estimate.source_week)
        if estimate.source_week
        else _("the default mix: no closed run yet")
    )
    needed = str(plan.channels_needed) if plan.channels_needed else _("more than 10,000")
    return [
        _("Estimate of the run from {first} (from {source}):").format(first=when(plan.first_call), source=source),
        _("  people: {people:,}, channels: {channels:g}, first calls in {order} order").format(
            people=estimate.people, channels=estimate.channels, order=_(FIRST_CALL_ORDER[campaign.schedule.first_calls])
        ),
        _("  first calls end: {when}").format(when=when(estimate.first_calls_end)),
        *_range_lines(
            (estimate.ranges.first_calls_end, estimate.ranges.first_calls_hours) if estimate.ranges else None, when, _
        ),
        _("  visit list complete: {when} (about {visits:,.0f} visits)").format(
            when=when(estimate.list_complete), visits=estimate.visits_expected
        ),
        *_range_lines(
            (estimate.ranges.list_complete, estimate.ranges.list_complete_hours) if estimate.ranges else None, when, _
        ),
        *(
            [
                _("    visits: 8 weeks in 10 between {low:,} and {high:,} ({minus:+,} to {plus:+,})").format(
                    low=estimate.ranges.visits[0],
                    high=estimate.ranges.visits[1],
                    minus=estimate.ranges.visits[0] - round(estimate.visits_expected),
                    plus=estimate.ranges.visits[1] - round(estimate.visits_expected),
                )
            ]
            if estimate.ranges
            else []
        ),
        _("  channels to complete it by {day}: {needed}").format(day=plan.by_day, needed=needed),
    ]


def _range_lines(
    moments_and_hours: tuple[tuple[datetime | None, datetime | None], tuple[float, float]] | None,
    when: Callable[[datetime | None], str],
    _: Callable[[str], str],
) -> list[str]:
    """'8 weeks in 10 between ... and ...', with the open-window hours from the estimate: the error it states."""
    if not moments_and_hours:
        return []
    (low, high), (minus, plus) = moments_and_hours
    return [
        _("    8 weeks in 10 between {low} and {high} ({minus:+.1f} to {plus:+.1f} open hours)").format(
            low=when(low), high=when(high), minus=minus, plus=plus
        )
    ]


def spill_warning(
    campaign: CampaignDef, plan: Plan, when: Callable[[datetime | None], str], _: Callable[[str], str] = _untranslated
) -> str | None:
    """A warning when the list is expected complete after the week's last calling day, else None."""
    estimate = plan.estimate
    if not estimate.spills:
        return None
    more = (
        _("about {channels} channels would complete it by {day}").format(channels=plan.channels_needed, day=plan.by_day)
        if plan.channels_needed
        else _("no number of channels completes it that week (look at the window and spacing)")
    )
    return _(
        "campaign {name!r} cannot finish within its week: with {channels:g} channel(s), {people:,} people's visit "
        "list is expected complete {when}, after the last calling day {day}; next week's run would leave out "
        "the people still being called; {more}"
    ).format(
        name=campaign.name,
        channels=estimate.channels,
        people=estimate.people,
        when=when(estimate.list_complete),
        day=estimate.last_calling_day,
        more=more,
    )


def capacity_warning(
    db: Database, campaign: CampaignDef, calendar: CallingCalendar, *, now: datetime, channels: float
) -> str | None:
    """What `campaign validate` and `scheduler run` say on start-up when the campaign's next week would spill."""
    first_call = next_first_call(db, campaign, calendar, now)
    if first_call is None:  # the calendar has its own warning (no_calling_day)
        return None
    if not estimate_week(db, campaign, calendar, now=now, channels=channels, first_call=first_call).spills:
        return None
    return spill_warning(
        campaign,
        plan_campaign(db, campaign, calendar, now=now, channels=channels),
        lambda moment: local_text(calendar, moment),
    )
