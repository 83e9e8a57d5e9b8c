"""`campaign plan` against a naive guess (issue 29): who is likely to be a visit, the call lengths by call, and
when the list reads as complete."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from conftest import SEOUL, person_row, scripted_trunks, write_csv

from safecall.ordering import ANSWERS_FIRST_CALL, LATE_ANSWER, NO_HISTORY, UNREACHED_LAST_WEEK
from safecall.planning import (
    DEFAULT_CLASS_CHAINS,
    DEFAULT_CLASS_CHAINS_BY_ORDER,
    OUT_OF_SERVICE_LAST_WEEK,
    Chains,
    Mix,
    _complete,
    _open_hours_from,
    _shrunk,
    estimate_week,
    mix_from_history,
    simulate,
    simulate_with_ranges,
)
from safecall.policy import CallingCalendar
from safecall.runs import launch_run
from safecall.services import Services
from safecall.settings import load_instance

CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)
SPACING = ["1h", "3h", "next_day"]
NEVER = Chains(answered=(0, 0, 0, 0), unreachable=(0, 0, 0, 1.0))


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SEOUL)


def test_the_list_is_complete_at_the_median_of_its_last_person_joining():
    # 60 people join on Wednesday morning; after them a sliver is still expected on Thursday. With 0.6 of a person
    # left the chance that nobody joins on Thursday is exp(-0.6) = 0.55: the median is Wednesday. With 0.8 it is
    # 0.45: Thursday. (A cut at half a person, as before, put both on Thursday.)
    wednesday, thursday = at(25, 9, 10), at(26, 9, 0)
    assert _complete([[(wednesday, 60.0), (thursday, 0.6)]]) == wednesday
    assert _complete([[(wednesday, 60.0), (thursday, 0.8)]]) == thursday
    # Small pieces add up: 0.25 on each of three later days is 0.75 expected from Thursday on (the median is
    # Thursday, after which 0.5 are left); 0.2 on each is 0.6 in all (Wednesday).
    assert _complete([[(wednesday, 60.0), *[(thursday + timedelta(days=day), 0.25) for day in range(3)]]]) == thursday
    assert _complete([[(wednesday, 60.0), *[(thursday + timedelta(days=day), 0.2) for day in range(3)]]]) == wednesday
    # Plays of the week at other paces: one play expecting 1.5 people on Thursday and two expecting nobody then
    # have nobody on Thursday with a chance of (0.22 + 1 + 1) / 3 = 0.74: Wednesday. All three at 1.5: Thursday.
    fast = [(wednesday, 61.5)]
    assert _complete([[(wednesday, 60.0), (thursday, 1.5)], fast, fast]) == wednesday
    assert _complete([[(wednesday, 60.0), (thursday, 1.5)]] * 3) == thursday


def test_first_calls_take_their_own_length_not_the_mean_of_all_calls():
    # 1,000 people who never answer, 2 channels. First calls of 20 s end Monday 12:47 (1,000 x 20 s / 2 channels =
    # 2 h 47 min); at the mean of 26 s they would end after 13:36. The retries, 40 s each, come after.
    by_call = Mix({NO_HISTORY: 1000}, {NO_HISTORY: NEVER}, call_seconds=26, seconds_by_call=(20.0, 40.0))
    flat = Mix({NO_HISTORY: 1000}, {NO_HISTORY: NEVER}, call_seconds=26)
    first_by_call, _, _ = simulate(by_call, 2, MONDAY_10, CALENDAR, SPACING, 3, by_history=False)
    first_flat, _, _ = simulate(flat, 2, MONDAY_10, CALENDAR, SPACING, 3, by_history=False)
    assert first_by_call.astimezone(SEOUL).strftime("%H:%M") == "12:47"
    assert first_flat.astimezone(SEOUL).strftime("%H:%M") == "13:37"
    assert by_call.seconds(1) == 20 and by_call.seconds(2) == by_call.seconds(4) == 40 and flat.seconds(3) == 26


def test_a_small_class_measured_once_is_shrunk_towards_its_default():
    prior = DEFAULT_CLASS_CHAINS[UNREACHED_LAST_WEEK]
    # Nothing measured: the default itself.
    assert _shrunk(Counter(), prior) == prior
    # 50 people measured, all unreachable after 4 calls, weigh as much as the default's 50: halfway.
    half = _shrunk(Counter({("unreachable", 4): 50}), prior)
    assert abs(sum(half.unreachable) - (1 + sum(prior.unreachable)) / 2) < 1e-9
    assert abs(sum(half.answered) + sum(half.unreachable) - 1) < 1e-9
    # 5,000 measured: the measure, nearly.
    many = _shrunk(Counter({("answered", 1): 4000, ("unreachable", 4): 1000}), prior)
    assert abs(sum(many.unreachable) - 0.2) < 0.005 and abs(many.answered[0] - 0.8) < 0.01


def test_next_weeks_visits_weigh_each_person_by_how_their_week_ended(cli, tmp_path):
    # Week 1 of 40 people: 2 numbers are out of service, 3 people never answer, 1 answers only the third call, the
    # other 34 answer the first. Week 2's estimate is not last week's 5 people: the out-of-service numbers count
    # whole, the 3 unreached at their chance of being unreached again, and everyone else at their own small chance.
    numbers = [f"010-0129-{i:04d}" for i in range(40)]
    scripts = {
        **{f"+82100129{i:04d}": ["invalid"] for i in range(2)},
        **{f"+82100129{i:04d}": ["no_answer"] for i in range(2, 5)},
        "+821001290005": ["no_answer", "no_answer", "ack"],
    }
    cli.set_trunks(scripted_trunks(scripts, channels=2, cps=5))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "forty.csv",
                [person_row(f"사람{i}", number, born=f"19{40 + i}-05-01") for i, number in enumerate(numbers)],
            )
        ),
    )
    services = Services.open(load_instance(cli.root, cli.environ), cli.clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(services.instance)
    week1, _ = launch_run(services.db, campaign, calendar, now=cli.clock.now())
    services.dialer(campaign, clock=cli.clock).run(week1.id)
    next_monday = datetime(2026, 11, 30, 8, 0, tzinfo=SEOUL)
    mix = mix_from_history(services.db, campaign, 40, False, next_monday.date(), SEOUL)
    assert mix.source_week == week1.week_start
    assert {klass: round(count) for klass, count in mix.people.items()} == {
        OUT_OF_SERVICE_LAST_WEEK: 2,
        UNREACHED_LAST_WEEK: 3,
        LATE_ANSWER: 1,
        ANSWERS_FIRST_CALL: 34,
    }
    # One week measured says nothing of how classes go on: each class plans with its default chain.
    assert all(mix.chains[klass] == DEFAULT_CLASS_CHAINS[klass] for klass in mix.people)
    # In history order each person is called at the hour they answered last time: the defaults of that order, in
    # which more of who answered late last week answer the first call (fewer retries, first calls end sooner).
    by_history = mix_from_history(services.db, campaign, 40, True, next_monday.date(), SEOUL)
    history_defaults = DEFAULT_CLASS_CHAINS_BY_ORDER["history"]
    assert all(by_history.chains[klass] == history_defaults[klass] for klass in by_history.people)
    assert history_defaults[LATE_ANSWER].answered[0] > DEFAULT_CLASS_CHAINS[LATE_ANSWER].answered[0] + 0.1
    assert len(mix.seconds_by_call) == 4 and mix.seconds_by_call[0] < mix.seconds_by_call[3]  # a no-answer rings out
    expected = sum(count * sum(DEFAULT_CLASS_CHAINS[klass].unreachable) for klass, count in mix.people.items())
    estimate = estimate_week(
        services.db, campaign, calendar, now=next_monday, channels=2, first_call=next_monday.replace(hour=10), mix=mix
    )
    assert (
        abs(estimate.visits_expected - expected) < 1e-3 and 3 < estimate.visits_expected < 4.5
    )  # defaults to 4 places
    services.close()
    cli.clock.set(next_monday)
    plan = cli("campaign", "plan", "weekly-safe-call").output
    assert "(from the run of the week of 2026-11-23)" in plan
    assert f"(about {expected:,.0f} visits)" in plan and "(about 5 visits)" not in plan
    # The list is never read as complete before the first calls end.
    first_end = plan.split("first calls end: ")[1].split("\n")[0]
    complete = plan.split("visit list complete: ")[1].split(" (about")[0]
    assert complete >= first_end
    # It states its error: where 8 weeks in 10 fall, as times with open-window hours, and as visits.
    ranges = [line for line in plan.splitlines() if line.startswith("    8 weeks in 10 between ")]
    assert len(ranges) == 2 and all(line.endswith(" open hours)") for line in ranges)
    low, high = plan.split("    visits: 8 weeks in 10 between ")[1].split(" (")[0].split(" and ")
    assert int(low) <= expected <= int(high) and int(high) - int(low) >= 2
    # In Korean, in the words of a 주민센터.
    cli.use_locale("C.UTF-8")
    korean = cli("campaign", "plan", "weekly-safe-call").output
    assert (
        korean.count("10주 중 8주는 ") == 3
        and "통화 시간대 기준 " in korean
        and f"방문: 10주 중 8주는 {low}~{high}건 사이" in korean
    )


def test_the_plan_states_where_8_weeks_in_10_fall_in_hours_and_visits():
    # 1,000 people of whom 1 in 10 is unreachable after four calls (the others answer the first): 100 visits, give
    # or take chance. Each person joins by chance, so the list's length spreads by sqrt(1,000 x 0.1 x 0.9) = 9.5,
    # and 8 weeks in 10 fall within 1.28 of that: 87 to 113.
    chain = Chains(answered=(0.9, 0, 0, 0), unreachable=(0, 0, 0, 0.1))
    measured = Mix(
        {ANSWERS_FIRST_CALL: 1000}, {ANSWERS_FIRST_CALL: chain}, call_seconds=26, source_week=at(16, 0).date()
    )
    first_end, complete, visits, ranges = simulate_with_ranges(measured, 4, MONDAY_10, CALENDAR, SPACING, 3, False)
    assert round(visits) == 100 and ranges.visits == (87, 113)
    # With no week of its own yet the share itself is a guess from elsewhere (DEFAULT_SHARE_SPREAD of the people):
    # sqrt(90 + 5 x 5) = 10.7, so 86 to 114.
    guessed = Mix({ANSWERS_FIRST_CALL: 1000}, {ANSWERS_FIRST_CALL: chain}, call_seconds=26)
    assert simulate_with_ranges(guessed, 4, MONDAY_10, CALENDAR, SPACING, 3, False)[3].visits == (86, 114)
    # The times: the plays at each pace bound the first calls' end; the list's range holds its median.
    early, late = ranges.first_calls_end
    assert early < first_end < late and ranges.first_calls_hours[0] < 0 < ranges.first_calls_hours[1]
    low, high = ranges.list_complete
    assert low <= complete <= high and ranges.list_complete_hours[0] <= 0 <= ranges.list_complete_hours[1]
    # In open hours: Tuesday 17:50 to Wednesday 09:10 is 20 minutes of open window, not 15 hours.
    assert _open_hours_from(CALENDAR, at(24, 17, 50), (at(24, 17, 20), at(25, 9, 10))) == (-0.5, 1 / 3)


def test_the_list_completion_range_is_its_10th_and_90th_percentile():
    # 0.6 of a person expected on Thursday: nobody then with a chance of 0.55. The median and the 10th percentile
    # are Wednesday; by the 90th Thursday's sliver has joined.
    wednesday, thursday = at(25, 9, 10), at(26, 9, 0)
    play = [(wednesday, 60.0), (thursday, 0.6)]
    assert _complete([play], 0.1) == _complete([play]) == wednesday and _complete([play], 0.9) == thursday


def test_a_class_is_measured_over_the_campaigns_last_weeks_not_one(cli, tmp_path):
    # 30 people: 3 never answer, the rest answer the first call. After three weeks, "unreached last week" has been
    # measured twice (weeks 2 and 3, each of the same 3 people): its chain counts 6 people unreachable again, not
    # only last week's 3; one week's chance is most of a small class's error.
    numbers = [f"010-0229-{i:04d}" for i in range(30)]
    cli.set_trunks(scripted_trunks({f"+82100229{i:04d}": ["no_answer"] for i in range(3)}, channels=2, cps=5))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "thirty.csv",
                [person_row(f"사람{i}", number, born=f"19{40 + i}-05-01") for i, number in enumerate(numbers)],
            )
        ),
    )
    services = Services.open(load_instance(cli.root, cli.environ), cli.clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(services.instance)
    for week in range(3):
        monday = datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL) + timedelta(weeks=week)
        cli.clock.set(monday)
        run, _ = launch_run(services.db, campaign, calendar, now=monday)
        services.dialer(campaign, clock=cli.clock).run(run.id)
    fourth = datetime(2026, 12, 14, 8, 0, tzinfo=SEOUL)
    mix = mix_from_history(services.db, campaign, 30, False, fourth.date(), SEOUL)
    services.close()
    assert {klass: round(count) for klass, count in mix.people.items()} == {
        UNREACHED_LAST_WEEK: 3,
        ANSWERS_FIRST_CALL: 27,
    }
    prior = DEFAULT_CLASS_CHAINS[UNREACHED_LAST_WEEK]
    assert mix.chains[UNREACHED_LAST_WEEK] == _shrunk(Counter({("unreachable", 4): 6}), prior)
    assert mix.chains[ANSWERS_FIRST_CALL] == _shrunk(
        Counter({("answered", 1): 54}), DEFAULT_CLASS_CHAINS[ANSWERS_FIRST_CALL]
    )
