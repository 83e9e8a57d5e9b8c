"""What-if for benchmark 1a: would placing due retries before first calls shorten the makespan?

A simplified model of the 100k week, no database and no engine: 60 channels,
one call every 0.1 s at most, Mon-Fri 09:00-18:00, retries after 1 h, 3 h and
the next day, 82 % of calls acknowledged (20-40 s), 5 % answered without a key,
8 % unanswered (30 s ring), the rest busy or failed. The same makespan measure as
efficiency.py (time when someone is due or a call is in flight) over call-seconds
/ channels, for two orders of the due queue:

- due time (what SafeCall does: ORDER BY next_attempt_at, so this week's first
  calls, all due at the first slot, go before retries that came due later);
- retries first (any due retry before any first call).

    python benchmarks/retry_order.py [--people 100000]
"""

from __future__ import annotations

import argparse
import heapq
import json
import random

PEOPLE, CHANNELS, SPACING = 100_000, 60, 0.1
DAY, OPENS, CLOSES = 86_400, 9 * 3600, 18 * 3600
RETRY_GAPS = [3600, 3 * 3600, None]  # None: the next day's opening


def is_open(t: float) -> bool:
    day, second = divmod(t, DAY)
    return day % 7 < 5 and OPENS <= second < CLOSES


def next_open(t: float) -> float:
    while True:
        day, second = divmod(t, DAY)
        if day % 7 >= 5 or second >= CLOSES:
            t = (day + 1) * DAY + OPENS
        elif second < OPENS:
            return day * DAY + OPENS
        else:
            return t


def call(rng: random.Random) -> tuple[float, bool]:
    """(seconds, acknowledged)."""
    r = rng.random()
    if r < 0.82:
        return rng.uniform(20, 40), True
    if r < 0.87:
        return rng.uniform(30, 50), False
    if r < 0.95:
        return 30.0, False
    return rng.uniform(2, 6), False


def week(retries_first: bool, people: int = PEOPLE) -> dict:
    rng = random.Random(5)

    def key(due: float, person: int, number: int) -> tuple:
        return ((0 if number > 1 else 1), due, person) if retries_first else (due, person)

    due_now = [(key(OPENS, p, 1), OPENS, p, 1) for p in range(people)]
    heapq.heapify(due_now)
    later: list[tuple[float, int, int]] = []
    ends: list[float] = []
    marks: list[tuple[float, int, int]] = []  # (moment, 0 waiting / 1 busy, +1/-1)
    t, call_seconds = float(OPENS), 0.0
    while due_now or later or ends:
        while later and later[0][0] <= t:
            due, person, number = heapq.heappop(later)
            heapq.heappush(due_now, (key(due, person, number), due, person, number))
        while ends and ends[0] <= t:
            heapq.heappop(ends)
        if due_now and len(ends) < CHANNELS and is_open(t):
            _, due, person, number = heapq.heappop(due_now)
            seconds, acknowledged = call(rng)
            call_seconds += seconds
            marks += [(due, 0, 1), (t, 0, -1), (t, 1, 1), (t + seconds, 1, -1)]
            heapq.heappush(ends, t + seconds)
            if not acknowledged and number < 4:
                gap = RETRY_GAPS[number - 1]
                retry = next_open((t + seconds) // DAY * DAY + DAY) if gap is None else next_open(t + seconds + gap)
                heapq.heappush(later, (retry, person, number + 1))
            t += SPACING
            continue
        moments = [ends[0]] if ends else []
        moments += [later[0][0]] if later else []
        if due_now and len(ends) < CHANNELS:
            moments.append(t + SPACING if is_open(t) else next_open(t))
        if not moments:
            break
        t = max(t, min(moments))
    marks.sort()
    waiting = busy = 0
    last, active = marks[0][0], 0.0
    for moment, kind, delta in marks:
        if moment > last:
            if busy > 0 or (waiting > 0 and is_open(last)):
                active += moment - last
            last = moment
        if kind == 0:
            waiting += delta
        else:
            busy += delta
    return {
        "makespan_hours": round(active / 3600, 2),
        "lower_bound_hours": round(call_seconds / CHANNELS / 3600, 2),
        "makespan_over_lower_bound": round(active / (call_seconds / CHANNELS), 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=PEOPLE)
    people = parser.parse_args().people
    print(json.dumps({"due_time_order": week(False, people), "retries_first": week(True, people)}, indent=2))
