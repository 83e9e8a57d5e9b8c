"""History-aware order of a week's first calls: likely non-responders early, likely answerers later.

Why: a person who will not answer needs their whole chain of calls (first
call, then the retries at their spacing, the last one on another day) before
they reach a visit list. Called late in the week's first pass, their chain
spills into the next days; called first, it is done while the answerers are
still being called. Last weeks' outcomes say who is likely not to answer.

How it reaches the dialer without changing it: the dialer places due people
in the order (next_attempt_at, member id). At launch every member's first
call is given a time, paced at about the trunk's rate from the first slot, so
the likely non-responders go first and the retries that come due later in the
day go between first calls instead of waiting for the whole first pass. No
first call is given a time after the first calling day's close (past the
pace, the rest share the last minute of that day, in this order), and nothing
here touches a retry's time, so the retry spacing holds as before.

The hour that worked last time: a person who answered at 15:40 last week
(a key pressed) is likelier to be at home at 15:00 than at 10:00, e.g. one who
spends the mornings at a senior centre. Such a person's first call goes to the
earliest free paced slot at or after that hour on the first calling day (the
slots of each hour are taken in class order); when every slot from that hour
on is taken, the earliest free one. People without a known hour take the
earliest free slot in their turn. `by_hour` says which classes are timed so:
every class by default, the people unreached last week at the hour of an
earlier week's answer too (measured against leaving them out and against no
hours at all in BENCHMARKS.md, issue 21).

Everything here is pure: the rows come in, times go out.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import chain

from safecall.domain import MemberState
from safecall.policy import CallingCalendar

# Call classes, called in this order.
UNREACHED_LAST_WEEK, UNREACHED_BEFORE, LATE_ANSWER, NO_HISTORY, RETRIED, ANSWERS_FIRST_CALL = range(6)
CLASS_NAMES = (
    "unreached last week",
    "unreached in an earlier week",
    "answered only after 2+ retries",
    "no history",
    "answered after one retry",
    "answers the first call",
)
EVERY_CLASS = frozenset(range(len(CLASS_NAMES)))
LAST_MINUTE = timedelta(minutes=1)
TICK = timedelta(microseconds=1)
NO_HOUR = -1  # in the plan's arrays: no known hour


@dataclass(frozen=True)
class WeekOutcome:
    """How one earlier week's run ended for a person."""

    state: str  # a final MemberState
    attempts: int  # calls made that week
    hour: int | None = None  # local hour of the call the person answered (a key pressed); None: none answered


def call_class(history: Sequence[WeekOutcome]) -> int:
    """The class of a person from their last weeks, newest first (lower classes are called earlier).

    Unreached (a visit was owed) last week comes first, then unreached in any earlier week looked at, then
    people who answered only late in the chain; people with no history sit in the middle; people who
    answered the first call every week come last. Withdrawn weeks say nothing about answering.
    """
    weeks = [week for week in history if week.state != MemberState.WITHDRAWN]
    if not weeks:
        return NO_HISTORY
    if weeks[0].state == MemberState.UNREACHABLE:
        return UNREACHED_LAST_WEEK
    if any(week.state == MemberState.UNREACHABLE for week in weeks):
        return UNREACHED_BEFORE
    most = max(week.attempts for week in weeks)
    if most >= 3:
        return LATE_ANSWER
    if most == 2:
        return RETRIED
    return ANSWERS_FIRST_CALL


def answer_hour(history: Sequence[WeekOutcome]) -> int | None:
    """The local hour of the newest answered call in the person's last weeks (newest first), or None."""
    return next((week.hour for week in history if week.hour is not None), None)


def hour_slots(
    first_call: datetime, calendar: CallingCalendar, per_call: timedelta, count: int, days: int = 1
) -> tuple[list[datetime], list[int], datetime]:
    """The paced slots for `count` first calls, as the start and the number of slots of each stretch: from
    `first_call` and from each whole hour after it to the close, over `days` calling days, one every `per_call`
    from each start; and the start of the last minute of the last day, for the calls past the pace.
    """
    starts, room = [], []
    opening = first_call
    for day in range(days):
        closing = datetime.combine(calendar.local(opening).date(), calendar.end, tzinfo=calendar.tz)
        if day == days - 1:
            closing -= LAST_MINUTE + TICK * count
        moment = opening
        while moment < closing:
            ends = min(closing, calendar.local(moment).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
            starts.append(moment)
            room.append(-(-(ends - moment) // per_call))  # slots that start before `ends`
            moment = ends
        opening = calendar.next_day_opening(opening)
    return starts, room, max(first_call, closing)


def plan_first_calls(
    members: Iterable[tuple[int, Sequence[WeekOutcome]]],
    first_call: datetime,
    calendar: CallingCalendar,
    per_call: timedelta,
    days: int = 1,
    by_hour: frozenset[int] = frozenset(),
) -> Iterator[tuple[int, datetime]]:
    """(member id, first-call time) for every member, in calling order, the times strictly increasing.

    People are placed by class, then by member id: each in the earliest free slot, or, in a class of `by_hour`
    with a known hour, the earliest free slot at or after that hour on the first calling day (if all from there
    on are taken, the earliest free one). One every `per_call` (the trunk's time per call, i.e. mean call length
    / channels), counted from `first_call` and from each whole hour, over `days` calling days (1: the first
    calling day only), and none later than the last minute of the last of them: those the pace has no slot for
    share that minute, a microsecond apart, so the dialer still takes them in this order. There they go by
    their hour (those without one first): the dialer reaches them the next morning, the afternoon people last.

    `members`: (member id, history newest first), in member id order. Memory: about 17 bytes a member.
    """
    ids, hours = [array("q") for _ in CLASS_NAMES], [array("b") for _ in CLASS_NAMES]
    for member_id, history in members:
        klass = call_class(history)
        hour = answer_hour(history) if klass in by_hour else None
        ids[klass].append(member_id)
        hours[klass].append(NO_HOUR if hour is None else hour)
    starts, room, last_minute = hour_slots(first_call, calendar, per_call, sum(map(len, ids)), days)
    first_day = calendar.local(first_call).date()
    stretch_at = [
        bisect_left(starts, datetime.combine(first_day, time(hour), tzinfo=calendar.tz)) for hour in range(24)
    ]
    placed = [array("q") for _ in starts]
    past_the_pace = [array("q") for _ in range(25)]  # by hour, NO_HOUR first
    earliest = 0  # the earliest stretch with a free slot
    for member_id, hour in zip(chain.from_iterable(ids), chain.from_iterable(hours), strict=True):
        stretch = earliest if hour == NO_HOUR else max(earliest, stretch_at[hour])
        while stretch < len(starts) and not room[stretch]:
            stretch += 1
        if stretch == len(starts):  # nothing free at or after the hour
            stretch = earliest
        if stretch == len(starts):
            past_the_pace[hour + 1].append(member_id)
            continue
        room[stretch] -= 1
        placed[stretch].append(member_id)
        while earliest < len(starts) and not room[earliest]:
            earliest += 1
    for start, here in zip(starts, placed, strict=True):
        for rank, member_id in enumerate(here):
            yield member_id, start + per_call * rank
    for rank, member_id in enumerate(chain.from_iterable(past_the_pace)):
        yield member_id, last_minute + TICK * rank
