"""When the visit list of a finished run is complete, against the spacing-aware bound, from its stored rows.

The list is complete when the run's last visit task is written (its last final
non-responder). No dialer can complete it before

    bound = max(call-seconds / channels, chain bound)

counted in open-window hours from the run's first call time: the channels
must place every call of the week, and each eventual non-responder's own
chain of calls (first call, then each retry at its spacing after the previous
call ended, the same call lengths) must run its course even if that person is
called at the very first moment. Also the weekday and hour of each, and how
long each person on the list waited from their first call to their visit
task (wall-clock hours: nights and weekends count, as they do for the person).
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta

import sqlalchemy as sa

from safecall.policy import CallingCalendar, retry_at
from safecall.store import Attempt, CampaignRun, MemberState, RunMember, VisitTask


def open_seconds(calendar: CallingCalendar, start: datetime, end: datetime) -> float:
    """Seconds inside the calling window between `start` and `end`."""
    total, moment = 0.0, calendar.next_open(start)
    while moment < end:
        closing = datetime.combine(calendar.local(moment).date(), calendar.end, tzinfo=calendar.tz)
        total += (min(closing, end) - moment).total_seconds()
        moment = calendar.next_day_opening(moment)
    return total


def after_open_seconds(calendar: CallingCalendar, start: datetime, seconds: float) -> datetime:
    """The moment `seconds` of open window after `start`."""
    moment = calendar.next_open(start)
    while True:
        closing = datetime.combine(calendar.local(moment).date(), calendar.end, tzinfo=calendar.tz)
        room = (closing - moment).total_seconds()
        if seconds <= room:
            return moment + timedelta(seconds=seconds)
        seconds -= room
        moment = calendar.next_day_opening(moment)


def chain_end(
    first_call: datetime, lengths: list[timedelta], spacing: list[str], calendar: CallingCalendar
) -> datetime:
    """When a chain of calls of these lengths ends if its first
    call is placed at `first_call` and every retry on time."""
    placed = first_call
    for number, length in enumerate(lengths, start=1):
        ended = placed + length
        if number < len(lengths):
            placed = retry_at(spacing, number, ended, calendar)
    return ended


def percentile(values: list, share: float):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def local_label(calendar: CallingCalendar, moment: datetime) -> str:
    return calendar.local(moment).strftime("%a %H:%M")


def measure_finish(db, run_id: int, channels: int, calendar: CallingCalendar, campaign) -> dict:
    with db.engine.connect() as connection:
        first_call = connection.execute(sa.select(CampaignRun.first_call_at).where(CampaignRun.id == run_id)).scalar()
        tasks = connection.execute(
            sa.select(VisitTask.person_id, VisitTask.created_at).where(
                VisitTask.run_id == run_id, VisitTask.kind == "visit"
            )
        ).all()
        first_placed = dict(
            connection.execute(
                sa.select(Attempt.person_id, sa.func.min(Attempt.placed_at))
                .where(Attempt.run_id == run_id)
                .group_by(Attempt.person_id)
            ).all()
        )
        call_seconds = 0.0
        for placed_at, ended_at in connection.execute(
            sa.select(Attempt.placed_at, Attempt.ended_at)
            .where(Attempt.run_id == run_id)
            .execution_options(yield_per=20_000)
        ):
            call_seconds += (ended_at - placed_at).total_seconds()
        chains: dict[int, list[timedelta]] = {}
        for member_id, placed_at, ended_at in connection.execute(
            sa.select(Attempt.member_id, Attempt.placed_at, Attempt.ended_at)
            .join(RunMember, RunMember.id == Attempt.member_id)
            .where(Attempt.run_id == run_id, RunMember.state == MemberState.UNREACHABLE)
            .order_by(Attempt.member_id, Attempt.number)
        ):
            chains.setdefault(member_id, []).append(ended_at - placed_at)
    if not tasks:
        return {"visit_tasks": 0}
    complete = max(created for _, created in tasks)
    complete_hours = open_seconds(calendar, first_call, complete) / 3600
    capacity_hours = call_seconds / channels / 3600
    chain_hours = (
        max(
            open_seconds(calendar, first_call, chain_end(first_call, lengths, campaign.retry.spacing, calendar))
            for lengths in chains.values()
        )
        / 3600
    )
    bound_hours = max(capacity_hours, chain_hours)
    waits = [(created - first_placed[person]).total_seconds() / 3600 for person, created in tasks]
    return {
        "visit_tasks": len(tasks),
        "list_complete_at": local_label(calendar, complete),
        "list_complete_open_hours": round(complete_hours, 2),
        "bound_open_hours": round(bound_hours, 2),
        "bound_at": local_label(calendar, after_open_seconds(calendar, first_call, bound_hours * 3600)),
        "capacity_bound_open_hours": round(capacity_hours, 2),
        "chain_bound_open_hours": round(chain_hours, 2),
        "list_complete_over_bound": round(complete_hours / bound_hours, 3),
        "first_call_to_task_hours_median": round(statistics.median(waits), 1),
        "first_call_to_task_hours_p95": round(percentile(waits, 0.95), 1),
        "first_calls_done_at": local_label(calendar, max(first_placed.values())),
        "first_calls_done_open_hours": round(open_seconds(calendar, first_call, max(first_placed.values())) / 3600, 2),
        # How much of the list a late few hold back: when 95 % and 99 % of its people were on it.
        "list_95_percent_at": local_label(calendar, percentile([created for _, created in tasks], 0.95)),
        "list_99_percent_at": local_label(calendar, percentile([created for _, created in tasks], 0.99)),
    }
