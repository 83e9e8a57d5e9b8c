"""Numbers that agree and checks that say what to do (issue 27): `campaign plan` never has the visit list complete
before the first calls end."""

from __future__ import annotations

from datetime import datetime

from conftest import SEOUL
from safecall.ordering import NO_HISTORY, UNREACHED_LAST_WEEK
from safecall.planning import Chains, Mix, simulate
from safecall.policy import CallingCalendar

CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
MONDAY_09 = datetime(2026, 11, 23, 9, 0, tzinfo=SEOUL)


def test_the_list_is_never_complete_before_the_first_calls_end():
    # Last week's 5 non-responders are called first and are final at once (no retries); the 1,000 others answer
    # but for 0.4 of a person in all: under half a person joins the list after 09:00, while first calls go on.
    mix = Mix({UNREACHED_LAST_WEEK: 5, NO_HISTORY: 1000},
              {UNREACHED_LAST_WEEK: Chains((0.0,), (1.0,)), NO_HISTORY: Chains((0.9996,), (0.0004,))}, call_seconds=26)
    first_end, complete, visits = simulate(mix, 10, MONDAY_09, CALENDAR, ["1h"], 0, by_history=True)
    assert first_end is not None and complete is not None and round(visits) == 5
    assert complete >= first_end, (complete, first_end)
    assert first_end.astimezone(SEOUL).hour >= 9 and first_end > MONDAY_09.replace(minute=30)  # a real pass, not a stub
