"""History-aware first-call order (issue 21): the pure decision, the times it gives, and the engine finishing earlier."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from conftest import SEOUL, Cli, person_row, scripted_trunks, write_csv
from safecall.clock import VirtualClock
from safecall.history import FirstCallOrder
from safecall.ordering import (
    ANSWERS_FIRST_CALL, LATE_ANSWER, NO_HISTORY, RETRIED, UNREACHED_BEFORE, UNREACHED_LAST_WEEK, WeekOutcome, call_class,
    first_call_times, plan_first_calls,
)
from safecall.policy import CallingCalendar
from safecall.runs import launch_run
from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import load_instance
from safecall.store import Attempt, MemberState, Person, RunMember, VisitTask

ACK, HELP, UNREACHED, WITHDRAWN = MemberState.ACKNOWLEDGED, MemberState.HELP_REQUESTED, MemberState.UNREACHABLE, MemberState.WITHDRAWN
CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)


def weeks(*outcomes):
    return [WeekOutcome(state, attempts) for state, attempts in outcomes]


@pytest.mark.parametrize("history, expected", [
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
])
def test_call_class_decision_table(history, expected):
    assert call_class(history) == expected


def test_classes_are_called_unreached_first_answerers_last():
    assert UNREACHED_LAST_WEEK < UNREACHED_BEFORE < LATE_ANSWER < NO_HISTORY < RETRIED < ANSWERS_FIRST_CALL


def test_first_call_times_pace_and_never_pass_the_first_calling_day():
    per_call = timedelta(seconds=10)
    times = list(first_call_times(MONDAY_10, CALENDAR, per_call, count=10_000))
    assert times[0] == MONDAY_10 and times[1] - times[0] == per_call  # one per call time from the first slot
    assert all(later > earlier for earlier, later in zip(times, times[1:]))  # strictly in order: the dialer keeps it
    closing = datetime(2026, 11, 23, 18, 0, tzinfo=SEOUL)
    assert max(times) < closing - timedelta(seconds=59)  # none beyond the first day (8 h hold 2,880 at this pace)
    assert sum(t > closing - timedelta(minutes=1, seconds=1) for t in times) == 10_000 - 2_874
    # Launched on a Tuesday one minute before closing: everyone inside that minute, in order.
    late = datetime(2026, 11, 24, 17, 59, tzinfo=SEOUL)
    later = list(first_call_times(late, CALENDAR, per_call, 50))
    assert later == sorted(later) and all(late <= t < datetime(2026, 11, 24, 18, 0, tzinfo=SEOUL) for t in later)


def test_first_call_times_over_two_days_continue_at_the_next_opening():
    per_call = timedelta(seconds=10)
    times = list(first_call_times(MONDAY_10, CALENDAR, per_call, count=10_000, days=2))
    tuesday_9 = datetime(2026, 11, 24, 9, 0, tzinfo=SEOUL)
    assert times[2_879] == datetime(2026, 11, 23, 17, 59, 50, tzinfo=SEOUL) and times[2_880] == tuesday_9
    assert times[2_881] - times[2_880] == per_call and times == sorted(times)
    assert max(times) < datetime(2026, 11, 24, 17, 59, tzinfo=SEOUL)  # 9 more hours hold 3,240; the rest share the last minute


def test_plan_orders_by_class_then_member_id_and_keeps_everyone():
    members = [(1, weeks((ACK, 1))), (2, []), (3, weeks((UNREACHED, 4))), (4, weeks((ACK, 3))),
               (5, weeks((ACK, 1), (UNREACHED, 4))), (6, weeks((UNREACHED, 2))), (7, weeks((ACK, 2)))]
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
    cli("recipients", "import", str(write_csv(root.parent / f"{root.name}.csv", [
        person_row(f"사람{i}", number, born=f"19{40 + i % 50}-02-{1 + i % 28:02d}") for i, number in enumerate(numbers)])))
    for week, week_order in enumerate([None, order]):
        clock = VirtualClock(datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL) + timedelta(weeks=week))
        services = Services.open(load_instance(root, {}), clock)
        campaign = services.campaign("weekly-safe-call")
        run, _ = launch_run(services.db, campaign, campaign.calendar(services.instance), now=clock.now(), order=week_order)
        services.dialer(campaign, clock=clock).run(run.id)
        with services.db.session() as session:
            tasks = list(session.exec(select(VisitTask).where(VisitTask.run_id == run.id, VisitTask.kind == "visit")))
            attempts = list(session.exec(select(Attempt).where(Attempt.run_id == run.id).order_by(Attempt.member_id, Attempt.number)))
        services.close()
        assert {attempt.phone for attempt in attempts if attempt.number == 4} == set(silent) and len(tasks) == NEVER_ANSWER
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
            for earlier, later, gap in zip(chain, chain[1:], [timedelta(hours=1), timedelta(hours=3), None]):
                if gap is None:
                    assert later.placed_at.astimezone(SEOUL).date() > earlier.ended_at.astimezone(SEOUL).date()
                else:
                    assert later.placed_at - earlier.ended_at >= gap
    # Nobody's first call is later for it than the first day, and the answerers are no worse off than that.
    assert max(a.placed_at for a in history if a.number == 1) <= datetime(2026, 11, 30, 18, 0, tzinfo=SEOUL)


@pytest.mark.both_databases
def test_launch_gives_first_calls_their_times_by_history(cli, tmp_path, clock):
    # Week 1: two of six never answer. Week 2, launched with the order: those two first, the rest paced behind.
    silent = {"+821001270004": ["no_answer"], "+821001270001": ["no_answer"]}
    cli.set_trunks(scripted_trunks(silent, channels=2, cps=5))
    cli("recipients", "import", str(write_csv(tmp_path / "six.csv", [
        person_row(f"여섯{i}", f"010-0127-{i:04d}", born=f"195{i}-04-01") for i in range(6)])))
    services = Services.open(load_instance(cli.root, cli.environ), clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(services.instance)
    week1, _ = launch_run(services.db, campaign, calendar, now=clock.now(), order=FirstCallOrder.for_channels(2))
    services.dialer(campaign).run(week1.id)
    next_monday = datetime(2026, 11, 30, 8, 0, tzinfo=SEOUL)
    week2, _ = launch_run(services.db, campaign, calendar, now=next_monday, order=FirstCallOrder.for_channels(2))
    with services.db.session() as session:
        members = list(session.exec(select(RunMember).where(RunMember.run_id == week2.id).order_by(RunMember.next_attempt_at)))
        phones = [session.get(Person, m.person_id).phone for m in members]
    services.close()
    first = datetime(2026, 11, 30, 10, 0, tzinfo=SEOUL)
    assert sorted(phones[:2]) == sorted(silent) and len(members) == 6
    assert [m.next_attempt_at for m in members] == [first + timedelta(seconds=12 * rank) for rank in range(6)]


def test_the_scheduler_launches_weekly_runs_in_history_order(cli, tmp_path):
    # The shipped campaign says first_calls = "history": the scheduler's launch paces the first calls at the
    # campaign's share of its trunk (4 channels, one campaign: 24 s / 4 = 6 s apart).
    cli.set_trunks(scripted_trunks({}, channels=4, cps=5))
    cli("recipients", "import", str(write_csv(tmp_path / "three.csv", [
        person_row(f"셋{i}", f"010-0128-{i:04d}", born=f"196{i}-05-01") for i in range(3)])))
    cli.clock.sleep_until(datetime(2026, 11, 23, 10, 0, 30, tzinfo=SEOUL))
    services = Services.open(load_instance(cli.root, cli.environ), cli.clock)
    Scheduler(services, None, None, threaded=False, dial=False).tick()
    with services.db.session() as session:
        times = sorted(m.next_attempt_at for m in session.exec(select(RunMember)))
    services.close()
    first = datetime(2026, 11, 23, 10, 0, 30, tzinfo=SEOUL)
    assert times == [first, first + timedelta(seconds=6), first + timedelta(seconds=12)]
