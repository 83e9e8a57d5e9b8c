"""Dialling efficiency of a finished run, from its stored attempts.

A person is *due* from the moment their next call may be placed (the run's
first call time, then the retry time the policy gives after each attempt)
until it is placed, and only while the calling window is open. Over the time
when someone is due:

    utilisation = busy channel-seconds / (channels x seconds)

The makespan counts the time when someone is due or a call is in flight; the
waits that retry spacing and closed hours force on every dialer are left out.
Its lower bound is total call-seconds / channels. Over the makespan every
channel-second is busy or idle, so

    makespan / lower bound = 1 + idle while someone was due / call-seconds
                               + idle while nobody was due / call-seconds

The first idle share is the pacer's (it left a channel free with work
waiting); the second is the workload's (fewer people were due than channels,
e.g. while a retry round trickles in at the pace its spacing sets).
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import sqlalchemy as sa

from safecall.policy import retry_at
from safecall.store import Attempt, CampaignRun


def calendar_edges(calendar, start: datetime, end: datetime) -> list[tuple[datetime, bool]]:
    """(moment, opens?) for every opening and closing of the window between start and end."""
    edges, moment = [], calendar.next_open(start)
    while moment < end:
        local = calendar.local(moment)
        closing = datetime.combine(local.date(), calendar.end, tzinfo=calendar.tz)
        edges += [(moment, True), (closing, False)]
        moment = calendar.next_day_opening(moment)
    return edges


def measure_efficiency(db, run_id: int, channels: int, calendar, campaign) -> dict:
    spacing = campaign.retry.spacing
    events: list[tuple[float, int, int]] = []  # (time, kind, delta): kind 0 = waiting, 1 = busy, 2 = window
    total_call_seconds = 0.0
    with db.engine.connect() as connection:
        first_call = connection.execute(sa.select(CampaignRun.first_call_at).where(CampaignRun.id == run_id)).scalar()
        rows = connection.execution_options(yield_per=10_000).execute(
            sa.select(Attempt.member_id, Attempt.number, Attempt.placed_at, Attempt.ended_at)
            .where(Attempt.run_id == run_id)
            .order_by(Attempt.member_id, Attempt.number)
        )
        previous_member, previous_end = None, None
        for member_id, number, placed_at, ended_at in rows:
            due = first_call if member_id != previous_member else retry_at(spacing, number - 1, previous_end, calendar)
            events += [
                (due.timestamp(), 0, +1),
                (placed_at.timestamp(), 0, -1),
                (placed_at.timestamp(), 1, +1),
                (ended_at.timestamp(), 1, -1),
            ]
            total_call_seconds += (ended_at - placed_at).total_seconds()
            previous_member, previous_end = member_id, ended_at
    if not events:
        return {}
    start = datetime.fromtimestamp(min(e[0] for e in events)).astimezone(calendar.tz)
    end = datetime.fromtimestamp(max(e[0] for e in events)).astimezone(calendar.tz) + timedelta(days=1)
    events += [
        (moment.timestamp(), 2, +1 if opens else -1)
        for moment, opens in calendar_edges(calendar, start - timedelta(days=1), end)
    ]
    events.sort()
    waiting = busy = open_window = 0
    due_seconds = busy_due = active_seconds = idle_due = idle_starved = 0.0
    starved_by_hour: Counter[str] = Counter()  # local weekday and hour: where the workload's share falls
    last = events[0][0]
    for moment, kind, delta in events:
        span = moment - last
        if span > 0:
            if waiting > 0 and open_window > 0:
                due_seconds += span
                busy_due += busy * span
                idle_due += max(0, channels - busy) * span
            elif busy > 0:
                idle_starved += max(0, channels - busy) * span
                starved_by_hour[datetime.fromtimestamp(last).astimezone(calendar.tz).strftime("%a %H:00")] += (
                    max(0, channels - busy) * span
                )
            if busy > 0 or (waiting > 0 and open_window > 0):
                active_seconds += span
            last = moment
        if kind == 0:
            waiting += delta
        elif kind == 1:
            busy += delta
        else:
            open_window += delta
    lower_bound = total_call_seconds / channels
    return {
        "attempts": len([e for e in events if e[1] == 1]) // 2,
        "call_hours": round(total_call_seconds / 3600, 1),
        "utilisation_while_due": round(busy_due / (channels * due_seconds), 4) if due_seconds else None,
        "makespan_hours": round(active_seconds / 3600, 2),
        "lower_bound_hours": round(lower_bound / 3600, 2),
        "makespan_over_lower_bound": round(active_seconds / lower_bound, 3),
        "excess_from_idle_while_due": round(idle_due / total_call_seconds, 4),
        "excess_from_idle_while_nobody_due": round(idle_starved / total_call_seconds, 4),
        "idle_channel_hours_while_nobody_due_by_hour": {
            hour: round(seconds / 3600, 1) for hour, seconds in starved_by_hour.most_common(5)
        },
    }
