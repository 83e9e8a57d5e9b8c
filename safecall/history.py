"""Reading last weeks' outcomes from the store, and writing a run's first-call order (safecall/ordering.py).

Streams the members and their history, so a roster of a million costs a few
integers a member, never the people themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from itertools import groupby

import sqlalchemy as sa
from sqlmodel import col

from safecall.domain import ANSWERED
from safecall.ordering import EVERY_CLASS, WeekOutcome, plan_first_calls
from safecall.policy import CallingCalendar
from safecall.store import FINAL_STATES, Attempt, CampaignRun, RunMember, stored_id, table_of

WEEKS_LOOKED_AT = 4
# The length of an average call of the shipped IVR flow, ring included (26 s on the simulated trunk, see
# BENCHMARKS.md). Kept on the short side: a pace a little too fast only leaves a queue, too slow leaves channels idle.
MEAN_CALL_SECONDS = 24.0
# A week's calls per person, the first and the retries (1.35 for the persistent simulated people: 26,989 calls
# for 20,000). The first calls are paced so that the retries falling due between them fit too, and each first
# call is placed near the time it was given, the hour that worked for the person kept. Paced at one call per
# person, the queue was 2 hours long by 15:00 and the day's last first calls went to the next morning
# (BENCHMARKS.md, issue 21).
CALLS_PER_PERSON = 1.35
_CHUNK = 5_000


@dataclass(frozen=True)
class FirstCallOrder:
    """Order a new run's first calls by history,
    paced at `per_call` (mean call length x calls per person / channels)."""

    per_call: timedelta
    weeks: int = WEEKS_LOOKED_AT
    # Calling days the pace may run through. 1 (the rule): nobody's first call is given a time past the first
    # calling day. More is a what-if for the benchmarks (BENCHMARKS.md, issue 21).
    days: int = 1
    # The classes (safecall/ordering.py) whose first calls go at the hour they answered in last time.
    by_hour: frozenset[int] = EVERY_CLASS

    @classmethod
    def for_channels(
        cls,
        channels: float,
        mean_call_seconds: float = MEAN_CALL_SECONDS,
        days: int = 1,
        by_hour: frozenset[int] = EVERY_CLASS,
        calls_per_person: float = CALLS_PER_PERSON,
    ) -> FirstCallOrder:
        seconds = mean_call_seconds * calls_per_person / max(channels, 1e-9)
        return cls(per_call=timedelta(seconds=seconds), days=days, by_hour=by_hour)


def member_histories(
    connection: sa.Connection, run_id: int, campaign: str, week: date, weeks: int, tz: tzinfo
) -> Iterator[tuple[int, list[WeekOutcome]]]:
    """(member id, the person's outcomes in the campaign's `weeks` weekly runs before `week`, newest first),
    by member id.

    Each week's hour is the local hour (in `tz`) of the last call the person answered that week.
    """
    member, earlier = sa.orm.aliased(RunMember), sa.orm.aliased(RunMember)
    earlier_run = sa.orm.aliased(CampaignRun)
    # One index lookup an earlier week, on attempt (member_id, number): a correlated subquery keeps this one
    # streamed statement, a row a member and week.
    answered = (
        sa.select(sa.func.max(col(Attempt.placed_at)))
        .where(col(Attempt.member_id) == earlier.id, col(Attempt.disposition).in_(ANSWERED))
        .scalar_subquery()
    )
    # Streamed (yield_per on the statement, not the connection: the connection goes on to write the times).
    rows = connection.execute(
        sa.select(col(member.id), col(earlier.state), col(earlier.attempts_made), answered)
        .select_from(member)
        .outerjoin(
            earlier,
            sa.and_(
                col(earlier.person_id) == member.person_id,
                col(earlier.run_id) != member.run_id,
                col(earlier.run_id).in_(
                    sa.select(col(earlier_run.id)).where(
                        col(earlier_run.campaign) == campaign,
                        col(earlier_run.label) == "weekly",
                        col(earlier_run.week_start) < week,
                        col(earlier_run.week_start) >= week - timedelta(weeks=weeks),
                    )
                ),
            ),
        )
        .outerjoin(earlier_run, col(earlier_run.id) == earlier.run_id)
        .where(col(member.run_id) == run_id)
        .order_by(col(member.id), col(earlier_run.week_start).desc())
        .execution_options(yield_per=_CHUNK)
    )
    for member_id, group in groupby(rows, key=lambda row: row[0]):
        yield (
            member_id,
            [
                WeekOutcome(state, attempts, None if at is None else at.astimezone(tz).hour)
                for _, state, attempts, at in group
                if state in FINAL_STATES
            ],
        )


def order_first_calls(
    connection: sa.Connection, run: CampaignRun, first_call: datetime, calendar: CallingCalendar, order: FirstCallOrder
) -> None:
    """Give every member of the new `run` their first-call time by history (safecall/ordering.py)."""
    histories = member_histories(connection, stored_id(run), run.campaign, run.week_start, order.weeks, calendar.tz)
    plan = plan_first_calls(histories, first_call, calendar, order.per_call, order.days, order.by_hour)
    members = table_of(RunMember)
    update = (
        sa.update(members)
        .where(members.c.id == sa.bindparam("member"))
        .values(next_attempt_at=sa.bindparam("at", type_=members.c.next_attempt_at.type))
    )
    chunk = []
    for member_id, at in plan:
        chunk.append({"member": member_id, "at": at})
        if len(chunk) == _CHUNK:
            connection.execute(update, chunk)
            chunk = []
    if chunk:
        connection.execute(update, chunk)
