"""History-aware first-call order (issue 21):
the pure decision, the times it gives, and the engine finishing earlier."""

from __future__ import annotations

import random
import tracemalloc
from datetime import datetime, timedelta
from itertools import pairwise

import pytest
from conftest import HEADER, SEOUL, Cli, person_row, scripted_trunks, write_csv
from sqlmodel import select

from safecall.clock import VirtualClock
from safecall.history import FirstCallOrder, member_histories
from safecall.ordering import (
    ANSWERS_FIRST_CALL,
    EVERY_CLASS,
    LATE_ANSWER,
    NO_HISTORY,
    RETRIED,
    UNREACHED_BEFORE,
    UNREACHED_LAST_WEEK,
    WeekOutcome,
    answer_hour,
    call_class,
    plan_first_calls,
)
from safecall.policy import CallingCalendar
from safecall.runs import launch_run
from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, MemberState, Person, RunMember, VisitTask

ACK, HELP, UNREACHED, WITHDRAWN = (
    MemberState.ACKNOWLEDGED,
    MemberState.HELP_REQUESTED,
    MemberState.UNREACHABLE,
    MemberState.WITHDRAWN,
)
CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)


def weeks(*outcomes):
    """Week outcomes from (state, attempts) or (state, attempts, hour answered in)."""
    return [WeekOutcome(*outcome) for outcome in outcomes]


def at(hour, minute=0, second=0, day=23):
    return datetime(2026, 11, day, hour, minute, second, tzinfo=SEOUL)


def first_call_times(count, first_call=MONDAY_10, per_call=timedelta(seconds=10), days=1):
    """The times the plan gives `count` people without history, in calling order."""
    return [time for _, time in plan_first_calls(((i, []) for i in range(count)), first_call, CALENDAR, per_call, days)]


@pytest.mark.parametrize(
    "history, expected",
    [
        ([], NO_HISTORY),
        (weeks((WITHDRAWN, 0)), NO_HISTORY),  # a withdrawn week says nothing about answering
        (weeks((UNREACHED, 4)), UNREACHED_LAST_WEEK),
        (weeks((WITHDRAWN, 0), (UNREACHED, 4)), UNREACHED_LAST_WEEK),  # the last week that says something
        (weeks((ACK, 1), (UNREACHED, 4)), UNREACHED_BEFORE),
        (weeks((ACK, 1), (ACK, 1), (ACK, 1), (UNREACHED, 2)), UNREACHED_BEFORE),  # an invalid number ends after 2
        (weeks((ACK, 3)), LATE_ANSWER),
        (weeks((ACK, 1), (HELP, 4)), LATE_ANSWER),
        (weeks((ACK, 2)), RETRIED),
        (weeks((ACK, 1), (ACK, 2)), RETRIED),
        (weeks((ACK, 1)), ANSWERS_FIRST_CALL),
        (weeks((HELP, 1), (ACK, 1), (ACK, 1)), ANSWERS_FIRST_CALL),
    ],
)
def test_call_class_decision_table(history, expected):
    assert call_class(history) == expected


def test_classes_are_called_unreached_first_answerers_last():
    assert UNREACHED_LAST_WEEK < UNREACHED_BEFORE < LATE_ANSWER < NO_HISTORY < RETRIED < ANSWERS_FIRST_CALL


def test_first_call_times_pace_and_never_pass_the_first_calling_day():
    per_call = timedelta(seconds=10)
    times = first_call_times(10_000)
    assert times[0] == MONDAY_10 and times[1] - times[0] == per_call  # one per call time from the first slot
    assert all(later > earlier for earlier, later in pairwise(times))  # strictly in order: the dialer keeps it
    closing = datetime(2026, 11, 23, 18, 0, tzinfo=SEOUL)
    assert max(times) < closing - timedelta(seconds=59)  # none beyond the first day (8 h hold 2,880 at this pace)
    assert sum(t > closing - timedelta(minutes=1, seconds=1) for t in times) == 10_000 - 2_874
    # Launched on a Tuesday one minute before closing: everyone inside that minute, in order.
    late = datetime(2026, 11, 24, 17, 59, tzinfo=SEOUL)
    later = first_call_times(50, first_call=late)
    assert later == sorted(later) and all(late <= t < datetime(2026, 11, 24, 18, 0, tzinfo=SEOUL) for t in later)


def test_first_call_times_over_two_days_continue_at_the_next_opening():
    per_call = timedelta(seconds=10)
    times = first_call_times(10_000, days=2)
    tuesday_9 = datetime(2026, 11, 24, 9, 0, tzinfo=SEOUL)
    assert times[2_879] == datetime(2026, 11, 23, 17, 59, 50, tzinfo=SEOUL) and times[2_880] == tuesday_9
    assert times[2_881] - times[2_880] == per_call and times == sorted(times)
    assert max(times) < datetime(
        2026, 11, 24, 17, 59, tzinfo=SEOUL
    )  # 9 more hours hold 3,240; the rest share the last minute


def test_the_hour_that_worked_is_the_newest_answered_week():
    assert answer_hour([]) is None
    assert answer_hour(weeks((UNREACHED, 4), (WITHDRAWN, 0))) is None
    assert answer_hour(weeks((UNREACHED, 4), (ACK, 2, 15), (ACK, 1, 10))) == 15
    assert answer_hour(weeks((HELP, 1, 9), (ACK, 2, 15))) == 9


# Six people: who they are, and the hour they answered in last time.
SIX = [
    (1, weeks((ACK, 1, 14))),  # answers the first call, at 14
    (2, weeks((UNREACHED, 4), (ACK, 1, 15))),  # unreached last week; answered at 15 the week before
    (3, weeks((ACK, 2, 14))),  # needed one retry, answered at 14
    (4, []),  # new
    (5, weeks((ACK, 1, 9))),  # answered at 9, before this week's first slot
    (6, weeks((ACK, 1))),
]  # answered, hour not known


@pytest.mark.parametrize(
    "by_hour, expected",
    [
        # Hours aside: class order from the first slot, as before.
        (
            frozenset(),
            [(2, at(10)), (4, at(10, 0, 30)), (3, at(10, 1)), (1, at(10, 1, 30)), (5, at(10, 2)), (6, at(10, 2, 30))],
        ),
        # The answerers at their hour (3 before 1 at 14:00: class order), the unreached last week still first.
        (
            EVERY_CLASS - {UNREACHED_LAST_WEEK},
            [(2, at(10)), (4, at(10, 0, 30)), (5, at(10, 1)), (6, at(10, 1, 30)), (3, at(14)), (1, at(14, 0, 30))],
        ),
        # Everyone: the unreached last week at the hour of the week before.
        (EVERY_CLASS, [(4, at(10)), (5, at(10, 0, 30)), (6, at(10, 1)), (3, at(14)), (1, at(14, 0, 30)), (2, at(15))]),
    ],
)
def test_a_known_hour_gets_the_earliest_free_slot_at_or_after_it(by_hour, expected):
    assert list(plan_first_calls(iter(SIX), MONDAY_10, CALENDAR, timedelta(seconds=30), by_hour=by_hour)) == expected


def test_a_taken_hour_spills_into_the_next_then_to_the_earliest_free_slot_and_nobody_past_the_first_day():
    # Three slots an hour (one every 20 min), 24 on the day. Ten want 17:00, one 16:00, nineteen have no hour;
    # then two more, wanting 17:00 and 12:00, when the day is full.
    members = (
        [(i, weeks((ACK, 1, 17))) for i in range(1, 11)]
        + [(11, weeks((ACK, 1, 16)))]
        + [(i, weeks((ACK, 1))) for i in range(12, 31)]
        + [(31, weeks((ACK, 1, 17))), (32, weeks((ACK, 1, 12)))]
    )
    plan = list(plan_first_calls(iter(members), MONDAY_10, CALENDAR, timedelta(minutes=20), by_hour=EVERY_CLASS))
    when = dict(plan)
    assert [when[i] for i in (1, 2, 3)] == [at(17), at(17, 20), at(17, 40)]
    assert [when[i] for i in range(4, 11)] == [
        at(10 + k // 3, 20 * (k % 3)) for k in range(7)
    ]  # 17 is full: the earliest
    assert when[11] == at(16)
    assert [when[i] for i in range(12, 25)] == [at(12, 20), at(12, 40)] + [
        at(h, m) for h in (13, 14, 15) for m in (0, 20, 40)
    ] + [at(16, 20), at(16, 40)]
    # No slot left on the day: its last minute, those without an hour first, then by hour (the dialer reaches
    # them the next morning, the afternoon people last).
    assert [member for member, time in plan if time > at(17, 58, 59)] == [*range(25, 31), 32, 31]
    assert all(at(17, 58, 59) < time < at(17, 59) for member, time in plan[24:])
    assert sorted(when) == list(range(1, 33)) and len(plan) == 32  # everyone, once
    times = [time for _, time in plan]
    assert all(later > earlier for earlier, later in pairwise(times))


def test_by_hour_the_rules_hold_for_a_crowd():
    # 5,000 people of every class and hour, more than the day holds (2,874 slots at 10 s).
    chance = random.Random(21)
    histories = [
        [],
        weeks((UNREACHED, 4)),
        weeks((UNREACHED, 4), (ACK, 1, 13)),
        weeks((ACK, 1, 11), (UNREACHED, 4, 16)),
        weeks((ACK, 3, 17)),
        weeks((ACK, 2, 12)),
        weeks((ACK, 1, 9)),
        weeks((ACK, 1, 15)),
        weeks((HELP, 1, 16)),
    ]
    members = [(member_id, chance.choice(histories)) for member_id in range(1, 5_001)]
    plan = list(plan_first_calls(iter(members), MONDAY_10, CALENDAR, timedelta(seconds=10), by_hour=EVERY_CLASS))
    assert sorted(member for member, _ in plan) == list(range(1, 5_001))  # every member exactly one time
    times = [time for _, time in plan]
    assert all(later > earlier for earlier, later in pairwise(times))  # the dialer's order is the plan's
    assert MONDAY_10 <= times[0] and times[-1] < at(17, 59)  # none past the first calling day
    # Light enough (100 people, 360 slots an hour): everyone with an hour in it, in class order inside the hour.
    light = list(plan_first_calls(iter(members[:100]), MONDAY_10, CALENDAR, timedelta(seconds=10), by_hour=EVERY_CLASS))
    history = dict(members[:100])
    for member, time in light:
        hour = answer_hour(history[member])
        assert time.hour == max(hour or 10, 10), (member, time, hour)
    classes = [(time.hour, call_class(history[member])) for member, time in light]
    assert classes == sorted(classes)


def test_the_plan_keeps_a_few_integers_a_member_not_objects():
    count = 20_000
    members = ((member_id, weeks((ACK, 1 + member_id % 3, 9 + member_id % 9))) for member_id in range(count))
    tracemalloc.start()
    try:
        placed = sum(
            1 for _ in plan_first_calls(members, MONDAY_10, CALENDAR, timedelta(seconds=2), by_hour=EVERY_CLASS)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert placed == count and peak < 32 * count  # 17 bytes a member in arrays; a Python object each would be 50+


def test_plan_orders_by_class_then_member_id_and_keeps_everyone():
    members = [
        (1, weeks((ACK, 1))),
        (2, []),
        (3, weeks((UNREACHED, 4))),
        (4, weeks((ACK, 3))),
        (5, weeks((ACK, 1), (UNREACHED, 4))),
        (6, weeks((UNREACHED, 2))),
        (7, weeks((ACK, 2))),
    ]
    plan = list(plan_first_calls(iter(members), MONDAY_10, CALENDAR, timedelta(seconds=30)))
    assert [member for member, _ in plan] == [3, 6, 5, 4, 2, 7, 1]
    assert [at for _, at in plan] == [MONDAY_10 + timedelta(seconds=30 * rank) for rank in range(7)]


# ---- the engine: a small workload whose non-responders are known from last week ------------------------

PEOPLE, NEVER_ANSWER = 600, 6  # on one channel: about 4.3 h of first calls


def two_weeks(root, order) -> list[Attempt]:
    """A fresh instance; week 1 in due-time order gives the history, week 2 in `order`. Returns week 2's attempts."""
    cli = Cli(root, VirtualClock(datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL)))
    cli("init", str(root))
    numbers = [f"010-0125-{i:04d}" for i in range(PEOPLE)]
    silent = [f"+82100125{i:04d}" for i in range(PEOPLE - NEVER_ANSWER, PEOPLE)]  # enrolled last
    cli.set_trunks(scripted_trunks({number: ["no_answer"] for number in silent}, channels=1, cps=5))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                root.parent / f"{root.name}.csv",
                [
                    person_row(f"사람{i}", number, born=f"19{40 + i % 50}-02-{1 + i % 28:02d}")
                    for i, number in enumerate(numbers)
                ],
            )
        ),
    )
    for week, week_order in enumerate([None, order]):
        clock = VirtualClock(datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL) + timedelta(weeks=week))
        services = Services.open(load_instance(root, {}), clock)
        campaign = services.campaign("weekly-safe-call")
        run, _ = launch_run(
            services.db, campaign, campaign.calendar(services.instance), now=clock.now(), order=week_order
        )
        services.dialer(campaign, clock=clock).run(run.id)
        with services.db.session() as session:
            tasks = list(session.exec(select(VisitTask).where(VisitTask.run_id == run.id, VisitTask.kind == "visit")))
            attempts = list(
                session.exec(
                    select(Attempt).where(Attempt.run_id == run.id).order_by(Attempt.member_id, Attempt.number)
                )
            )
        services.close()
        assert {attempt.phone for attempt in attempts if attempt.number == 4} == set(silent) and len(
            tasks
        ) == NEVER_ANSWER
    return attempts


def test_history_order_completes_the_visit_list_earlier_than_due_time_order(tmp_path):
    due = two_weeks(tmp_path / "due", None)
    history = two_weeks(tmp_path / "history", FirstCallOrder.for_channels(1))

    def complete(attempts):
        return max(a.ended_at for a in attempts).astimezone(SEOUL)

    # Due-time order calls the six last (Monday about 14:20): second retry Tuesday, third Wednesday.
    # History calls them first: their third retry is Tuesday's first call, and the list is complete Tuesday morning.
    assert complete(due).strftime("%a") == "Wed" and complete(history).strftime("%a %H") == "Tue 09"
    for attempts in (due, history):
        firsts = [a for a in attempts if a.number == 1]
        assert len(firsts) == PEOPLE and max(a.placed_at for a in firsts).astimezone(SEOUL).strftime("%a") == "Mon"
        chains = {}
        for attempt in attempts:
            chains.setdefault(attempt.member_id, []).append(attempt)
        for chain in chains.values():  # the retry spacing holds: 1 h, 3 h, then the next calling day
            for earlier, later, gap in zip(
                chain, chain[1:], [timedelta(hours=1), timedelta(hours=3), None], strict=False
            ):
                if gap is None:
                    assert later.placed_at.astimezone(SEOUL).date() > earlier.ended_at.astimezone(SEOUL).date()
                else:
                    assert later.placed_at - earlier.ended_at >= gap
    # Nobody's first call is later for it than the first day, and the answerers are no worse off than that.
    assert max(a.placed_at for a in history if a.number == 1) <= datetime(2026, 11, 30, 18, 0, tzinfo=SEOUL)


@pytest.mark.both_databases
def test_launch_gives_first_calls_their_times_by_history_and_the_hour_that_worked(cli, tmp_path, clock):
    # Week 1: two of eight never answer, one answers the retry at 11:00, one (their own hours 오후) at 13:00.
    # Week 2, launched with the order: those two first, then the rest paced behind, each at the hour that worked.
    silent = {"+821001270004": ["no_answer"], "+821001270001": ["no_answer"]}
    cli.set_trunks(scripted_trunks({**silent, "+821001270006": ["no_answer", "ack"]}, channels=2, cps=5))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "eight.csv",
                [
                    person_row(f"여덟{i}", f"010-0127-{i:04d}", born=f"195{i}-04-01") + ["오후" if i == 7 else ""]
                    for i in range(8)
                ],
                header=HEADER + ["통화 희망 시간"],
            )
        ),
    )
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(services.instance)
    week1, _ = launch_run(services.db, campaign, calendar, now=clock.now(), order=FirstCallOrder.for_channels(2))
    services.dialer(campaign).run(week1.id)
    next_monday = datetime(2026, 11, 30, 8, 0, tzinfo=SEOUL)
    week2, _ = launch_run(services.db, campaign, calendar, now=next_monday, order=FirstCallOrder.for_channels(2))
    with services.db.session() as session:
        members = list(
            session.exec(select(RunMember).where(RunMember.run_id == week2.id).order_by(RunMember.next_attempt_at))
        )
        phone = {m.id: session.get(Person, m.person_id).phone for m in members}
    with services.db.engine.connect() as connection:
        hours = {
            phone[member]: [week.hour for week in history]
            for member, history in member_histories(connection, week2.id, campaign.name, week2.week_start, 4, SEOUL)
        }
    services.close()
    # The local hour of the answered call; none for the two who never answered.
    assert hours == {
        "+821001270000": [10],
        "+821001270001": [None],
        "+821001270002": [10],
        "+821001270003": [10],
        "+821001270004": [None],
        "+821001270005": [10],
        "+821001270006": [11],
        "+821001270007": [13],
    }
    first, pace = (
        datetime(2026, 11, 30, 10, 0, tzinfo=SEOUL),
        timedelta(seconds=24 * 1.35 / 2),
    )  # call length x calls a person / channels
    assert [(phone[m.id], m.next_attempt_at) for m in members] == [
        *zip(sorted(silent), [first, first + pace], strict=True),  # unreached last week: first
        *[(f"+82100127000{i}", first + pace * rank) for rank, i in enumerate([0, 2, 3, 5], start=2)],
        ("+821001270006", datetime(2026, 11, 30, 11, 0, tzinfo=SEOUL)),
        ("+821001270007", datetime(2026, 11, 30, 13, 0, tzinfo=SEOUL)),
    ]


def test_the_scheduler_launches_weekly_runs_in_history_order(cli, tmp_path):
    # The shipped campaign says first_calls = "history": the scheduler's launch paces the first calls at the
    # campaign's share of its trunk (4 channels, one campaign: 24 s x 1.35 calls a person / 4 = 8.1 s apart).
    cli.set_trunks(scripted_trunks({}, channels=4, cps=5))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "three.csv",
                [person_row(f"셋{i}", f"010-0128-{i:04d}", born=f"196{i}-05-01") for i in range(3)],
            )
        ),
    )
    cli.clock.sleep_until(datetime(2026, 11, 23, 10, 0, 30, tzinfo=SEOUL))
    services = Services.open(load_instance(cli.root, cli.environ), cli.clock)
    Scheduler(services, None, None, threaded=False, dial=False).tick()
    with services.db.session() as session:
        times = sorted(m.next_attempt_at for m in session.exec(select(RunMember)))
    services.close()
    first = datetime(2026, 11, 23, 10, 0, 30, tzinfo=SEOUL)
    assert times == [first, first + timedelta(seconds=8.1), first + timedelta(seconds=16.2)]
