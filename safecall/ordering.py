"""History-aware order of a week's first calls: likely non-responders early, likely answerers later.

Why: a person who will not answer needs their whole chain of calls (first
call, then the retries at their spacing, the last one on another day) before
they reach a visit list. Called late in the week's first pass, their chain
spills into the next days; called first, it is done while the answerers are
still being called. Last weeks' outcomes say who is likely not to answer.

How it reaches the dialer without changing it: the dialer places due people
in the order (next_attempt_at, member id). At launch every member's first
call is given a time (`first_call_times`) in that order, paced at about the
trunk's rate from the first slot, so the likely non-responders go first and
the retries that come due later in the day go between first calls instead of
waiting for the whole first pass. No first call is given a time after the
first calling day's close (past the pace, the rest share the last minute of
that day, in this order), and nothing here touches a retry's time, so the
retry spacing holds as before.

Everything here is pure: the rows come in, times go out.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import chain
from typing import Iterable, Iterator, Sequence

from safecall.policy import CallingCalendar
from safecall.store import MemberState

# Call classes, called in this order.
UNREACHED_LAST_WEEK, UNREACHED_BEFORE, LATE_ANSWER, NO_HISTORY, RETRIED, ANSWERS_FIRST_CALL = range(6)
CLASS_NAMES = ("unreached last week", "unreached in an earlier week", "answered only after 2+ retries",
               "no history", "answered after one retry", "answers the first call")
LAST_MINUTE = timedelta(minutes=1)
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class WeekOutcome:
    """How one earlier week's run ended for a person."""

    state: str  # a final MemberState
    attempts: int  # calls made that week


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


def first_call_times(first_call: datetime, calendar: CallingCalendar, per_call: timedelta, count: int,
                     days: int = 1) -> Iterator[datetime]:
    """The first-call time of each of `count` people in calling order, strictly increasing.

    One every `per_call` (the trunk's time per call, i.e. mean call length / channels) from `first_call`,
    counted in calling-window time over `days` calling days (1: the first calling day only), and none
    later than the last minute of the last of them: those the pace would put later share that minute, a
    microsecond apart, so the dialer still takes them in this order.
    """
    windows, opening = [], first_call
    for _ in range(days):
        windows.append((opening, datetime.combine(calendar.local(opening).date(), calendar.end, tzinfo=calendar.tz)))
        opening = calendar.next_day_opening(opening)
    last = windows[-1][1] - LAST_MINUTE - TICK * count
    window, passed = 0, timedelta()  # the window the pace is in, and the calling time of the windows before it
    previous = first_call - TICK
    for rank in range(count):
        offset = per_call * rank - passed
        while window < len(windows) - 1 and windows[window][0] + offset >= windows[window][1]:
            passed += windows[window][1] - windows[window][0]
            offset = per_call * rank - passed
            window += 1
        moment = max(first_call, min(windows[window][0] + offset, last))
        previous = moment if moment > previous else previous + TICK
        yield previous


def plan_first_calls(members: Iterable[tuple[int, Sequence[WeekOutcome]]], first_call: datetime,
                     calendar: CallingCalendar, per_call: timedelta, days: int = 1) -> Iterator[tuple[int, datetime]]:
    """(member id, first-call time) for every member, in calling order: by class, then by member id.

    `members`: (member id, history newest first), in member id order. Memory: 8 bytes a member.
    """
    by_class = [array("q") for _ in CLASS_NAMES]
    for member_id, history in members:
        by_class[call_class(history)].append(member_id)
    count = sum(map(len, by_class))
    yield from zip(chain.from_iterable(by_class), first_call_times(first_call, calendar, per_call, count, days))
