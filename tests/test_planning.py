"""Capacity planning (issue 21): the week played as a flow, `campaign plan`, and the warnings on start-up."""

from __future__ import annotations

import logging
from datetime import datetime

from conftest import SEOUL, person_row, scripted_trunks, write_csv

from safecall.ordering import NO_HISTORY, UNREACHED_LAST_WEEK
from safecall.planning import DEFAULT_CHAINS, Chains, Mix, simulate
from safecall.policy import CallingCalendar
from safecall.scheduler import Scheduler
from safecall.services import Services
from safecall.settings import load_instance

CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
MONDAY_10 = datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL)
SPACING = ["1h", "3h", "next_day"]
NEVER = Chains(answered=(0, 0, 0, 0), unreachable=(0, 0, 0, 1.0))


def local(moment):
    return moment.astimezone(SEOUL).strftime("%a %H:%M")


def test_a_small_week_follows_the_spacing():
    # 100 people who never answer, 10 channels of 26 s calls: first calls by 10:05, retries 1 h and 3 h after
    # (Monday 11:05, 14:06), the third at Tuesday's opening: the list is complete a few minutes after 09:00.
    mix = Mix({NO_HISTORY: 100}, {NO_HISTORY: NEVER}, call_seconds=26)
    first_end, complete, visits = simulate(mix, 10, MONDAY_10, CALENDAR, SPACING, 3, by_history=False)
    assert local(first_end) == "Mon 10:05" and local(complete) == "Tue 09:04" and round(visits) == 100
    # Everyone answers the first call: nobody joins the list.
    answer = Mix({NO_HISTORY: 100}, {NO_HISTORY: Chains((1.0,), (0.0,))})
    assert simulate(answer, 10, MONDAY_10, CALENDAR, SPACING, 3, by_history=False)[1:] == (None, 0)


def test_history_order_plans_the_known_non_responders_first():
    # 20,000 people, 12 channels: in due-time order the non-responders are spread through a first pass that runs
    # into Tuesday afternoon, and their third retries fall on Thursday. Called first, they are done on Tuesday (the last
    # to join the list are numbers out of service, final after one call, at the end of the first pass).
    due = Mix({NO_HISTORY: 20_000}, {NO_HISTORY: DEFAULT_CHAINS})
    answer_at_last = DEFAULT_CHAINS.answered[3] + DEFAULT_CHAINS.unreachable[3]  # all others answer
    history = Mix(
        {UNREACHED_LAST_WEEK: 626, NO_HISTORY: 19_374},
        {
            UNREACHED_LAST_WEEK: NEVER,
            NO_HISTORY: Chains(
                answered=(*DEFAULT_CHAINS.answered[:3], answer_at_last),
                unreachable=(DEFAULT_CHAINS.unreachable[0], 0, 0, 0),
            ),
        },
    )
    _, due_complete, due_visits = simulate(due, 12, MONDAY_10, CALENDAR, SPACING, 3, by_history=False)
    _, history_complete, _ = simulate(history, 12, MONDAY_10, CALENDAR, SPACING, 3, by_history=True)
    assert local(due_complete).startswith("Thu") and local(history_complete).startswith("Tue")
    assert 700 < due_visits < 750  # 3.57 % of 20,000


def short_week(cli, tmp_path, people=600):
    """Two short calling days (Mon and Tue 09:00-11:00), retries 30 min apart, one channel: 600 people do not fit."""
    cli.set_trunks(scripted_trunks({}, channels=1, cps=1))
    cli.edit_campaign('spacing = ["1h", "3h", "next_day"]', 'spacing = ["30m"]')
    cli.edit_campaign('end = "18:00"', 'end = "11:00"')
    cli.edit_campaign('weekdays = ["mon", "tue", "wed", "thu", "fri"]', 'weekdays = ["mon", "tue"]')
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "people.csv",
                [
                    person_row(f"사람{i}", f"010-0126-{i:04d}", born=f"19{40 + i % 50}-03-{1 + i % 28:02d}")
                    for i in range(people)
                ],
            )
        ),
    )


def test_campaign_plan_validate_and_the_scheduler_warn_when_the_week_spills(cli, tmp_path, caplog):
    short_week(cli, tmp_path)
    plan = cli("campaign", "plan", "weekly-safe-call")
    assert "Estimate of the run from 2026-11-23 Mon 10:00 (from the default mix: no closed run yet):" in plan.output
    assert "people: 600, channels: 1, first calls in history order" in plan.output
    # 3 h hold about 400 calls: the first calls and the list spill into the next week
    assert "first calls end: 2026-11-30 Mon" in plan.output and "visit list complete: 2026-12-01 Tue" in plan.output
    assert "warning: campaign 'weekly-safe-call' cannot finish within its week: with 1 channel(s)" in plan.output
    needed = int(plan.output.split("channels to complete it by 2026-11-24: ")[1].split()[0])
    assert 2 <= needed <= 6
    # The number it names is enough, and one fewer is not.
    assert "warning" not in cli("campaign", "plan", "weekly-safe-call", "--channels", str(needed)).output
    assert "warning" in cli("campaign", "plan", "weekly-safe-call", "--channels", str(needed - 1)).output
    # Another day to finish by: a later day needs no more channels.
    later = cli("campaign", "plan", "weekly-safe-call", "--by", "2026-11-30").output
    assert "channels to complete it by 2026-11-30: " in later
    assert int(later.split("2026-11-30: ")[1].split()[0]) <= needed
    validate = cli("campaign", "validate", "weekly-safe-call")
    assert (
        "campaign 'weekly-safe-call' is valid" in validate.output and "cannot finish within its week" in validate.output
    )
    bad_day = cli("campaign", "plan", "weekly-safe-call", "--by", "next friday", ok=False)
    assert bad_day.exit_code != 0 and "--by" in bad_day.output
    services = Services.open(load_instance(cli.root, {}), cli.clock)
    with caplog.at_level(logging.WARNING, logger="safecall.scheduler"):
        Scheduler(services, None, None, threaded=False).warn_capacity()
    assert "campaign_cannot_finish_in_week" in caplog.text and "weekly-safe-call" in caplog.text
    services.close()


def test_no_warning_when_the_week_fits(cli, tmp_path, caplog):
    short_week(cli, tmp_path, people=20)
    assert "warning" not in cli("campaign", "validate", "weekly-safe-call").output
    plan = cli("campaign", "plan", "weekly-safe-call").output
    assert "first calls end: 2026-11-23 Mon 10:" in plan and "channels to complete it by 2026-11-24: 1" in plan
    services = Services.open(load_instance(cli.root, {}), cli.clock)
    with caplog.at_level(logging.WARNING, logger="safecall.scheduler"):
        Scheduler(services, None, None, threaded=False).warn_capacity()
    assert "campaign_cannot_finish_in_week" not in caplog.text
    services.close()


def test_validate_and_plan_create_no_database_before_there_is_a_roster(cli):
    assert "is valid" in cli("campaign", "validate", "weekly-safe-call").output
    output = cli("campaign", "plan", "weekly-safe-call", "--now", "2026-11-23T08:00+09:00", "--weeks", "1").output
    assert "No database yet: import the roster for the estimate of the week's calls." in output
    assert not (cli.root / "data").exists()
