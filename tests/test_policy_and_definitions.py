"""Calling window, holidays and retry spacing (pure), campaign validation and the IVR flow (issue 2, points 4 and 6)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta

import holidays
import pytest
import sqlalchemy as sa
from conftest import SEOUL
from hypothesis import given, settings
from hypothesis import strategies as st

from safecall.campaign import CampaignDef
from safecall.policy import WEEKDAYS, CallingCalendar, first_call_of_week, retry_at, week_start, weekly_slot
from safecall.runs import launch_run
from safecall.store import CampaignRun, Database, MemberState, Person, RunMember

CAL = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SEOUL)


def test_window_hours_weekends_and_korean_holidays():
    assert CAL.next_open(at("2026-11-23 10:30")) == at("2026-11-23 10:30")
    assert CAL.next_open(at("2026-11-23 07:00")) == at("2026-11-23 09:00")
    assert CAL.next_open(at("2026-11-23 18:00")) == at("2026-11-24 09:00")
    assert CAL.next_open(at("2026-11-27 19:00")) == at("2026-11-30 09:00")  # Friday evening -> Monday
    assert "Christmas" in holidays.country_holidays("KR", language="en_US").get("2026-12-25")
    assert CAL.next_open(at("2026-12-24 18:30")) == at("2026-12-28 09:00")  # skips Christmas and the weekend
    # Seollal 2027 (6-9 Feb, a substitute day included) is skipped entirely.
    assert CAL.next_day_opening(at("2027-02-05 12:00")) == at("2027-02-10 09:00")
    plain = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], None)
    assert plain.next_open(at("2026-12-25 10:00")) == at("2026-12-25 10:00")


def test_retry_spacing_then_next_calling_day():
    spacing = ["1h", "3h", "next_day"]
    assert retry_at(spacing, 1, at("2026-11-23 10:01"), CAL) == at("2026-11-23 11:01")
    assert retry_at(spacing, 2, at("2026-11-23 11:02"), CAL) == at("2026-11-23 14:02")
    assert retry_at(spacing, 3, at("2026-11-23 14:03"), CAL) == at("2026-11-24 09:00")
    assert retry_at(spacing, 5, at("2026-11-24 09:01"), CAL) == at("2026-11-25 09:00")  # the last entry repeats
    # A gap that runs past closing time moves to the next opening.
    assert retry_at(spacing, 2, at("2026-11-23 16:00"), CAL) == at("2026-11-24 09:00")
    assert retry_at(["90m"], 1, at("2026-12-24 17:00"), CAL) == at("2026-12-28 09:00")


def test_weekly_slot_and_week():
    assert week_start(at("2026-11-29 23:59"), SEOUL).isoformat() == "2026-11-23"
    # 00:30 Monday in Seoul is still Sunday in UTC: the week is Seoul's.
    assert week_start(at("2026-11-30 00:30"), SEOUL).isoformat() == "2026-11-30"
    assert weekly_slot(week_start(at("2026-11-25 12:00"), SEOUL), "mon", "10:00", SEOUL) == at("2026-11-23 10:00")


def test_a_holiday_slot_moves_to_the_next_calling_day_even_into_next_week():
    # Christmas (Fri) then the weekend: Monday. New Year's Day the week after: Monday again. Chuseok (Thu-Sat): Monday.
    assert first_call_of_week(CAL, date(2026, 12, 21), "fri", "10:00", now=at("2026-12-25 10:00")) == at(
        "2026-12-28 09:00"
    )
    assert first_call_of_week(CAL, date(2026, 12, 28), "fri", "10:00", now=at("2027-01-01 10:00")) == at(
        "2027-01-04 09:00"
    )
    assert first_call_of_week(CAL, date(2026, 9, 21), "thu", "10:00", now=at("2026-09-24 10:00")) == at(
        "2026-09-28 09:00"
    )
    # Launched after the week's window is over (Friday evening): the next calling morning.
    assert first_call_of_week(CAL, date(2026, 11, 23), "mon", "10:00", now=at("2026-11-27 19:00")) == at(
        "2026-11-30 09:00"
    )
    # Before the slot, and on an ordinary day: the slot itself.
    assert first_call_of_week(CAL, date(2026, 11, 23), "mon", "10:00", now=at("2026-11-23 08:00")) == at(
        "2026-11-23 10:00"
    )
    # A window shut for weeks: no first call, which the scheduler reports to the officer.
    shut = holidays.HolidayBase()
    shut.update({date(2026, 11, 23) + timedelta(days=n): "shut" for n in range(40)})
    shut_calendar = CallingCalendar(SEOUL, CAL.start, CAL.end, CAL.weekdays, shut)
    assert first_call_of_week(shut_calendar, date(2026, 11, 23), "mon", "10:00", now=at("2026-11-23 10:00")) is None


@pytest.fixture(scope="module")
def roster_db(tmp_path_factory) -> Database:
    """A real SQLite store with three people, shared by the examples (each uses its own campaign name)."""
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('calendar') / 'safecall.db'}")
    db.create_schema()
    with db.transaction() as session:
        for n in range(3):
            session.add(
                Person(
                    person_key=f"p{n}",
                    name=f"사람{n}",
                    phone=f"+82100000000{n}",
                    dong="사직동",
                    team="1팀",
                    birth_date=date(1945, 1, 1),
                    consent_date=date(2025, 1, 1),
                    created_at=at("2025-01-01 09:00"),
                    updated_at=at("2025-01-01 09:00"),
                )
            )
    yield db
    db.dispose()


WEEKS_2026_2027 = [date(2025, 12, 29) + timedelta(weeks=n) for n in range(105)]  # every week touching 2026 or 2027
CAMPAIGN_NAMES = itertools.count()


@settings(max_examples=12, deadline=None)
@given(weekday=st.sampled_from(WEEKDAYS[:5]), hour=st.integers(9, 17), minute=st.integers(0, 59))
def test_no_week_of_2026_and_2027_goes_without_first_calls(roster_db, weekday, hour, minute):
    """Launched at its slot each week (as the scheduler does), every week's run gets first calls for everyone on the
    next calling day, before the next week's slot, whatever the weekday and time and the Korean holidays."""
    start = f"{hour:02d}:{minute:02d}"
    campaign = CampaignDef.model_validate(
        {"name": f"property-{next(CAMPAIGN_NAMES)}", "schedule": {"weekday": weekday, "start": start}}
    )
    for week in WEEKS_2026_2027:
        slot = weekly_slot(week, weekday, start, SEOUL)
        run, created = launch_run(roster_db, campaign, CAL, now=slot, week=week)
        assert created and run.week_start == week
        first = run.first_call_at.astimezone(SEOUL)
        assert first >= slot and CAL.is_open(first)
        # The next calling day: none lies between the slot's day and the first calls' day, and on the slot's own
        # (calling) day the calls start at the slot.
        between = [slot.date() + timedelta(days=n) for n in range(1, (first.date() - slot.date()).days)]
        assert not any(CAL.is_calling_day(day) for day in between), (week, first)
        assert first == slot if CAL.is_calling_day(slot.date()) else first.time() == CAL.start
        assert first < weekly_slot(week + timedelta(weeks=1), weekday, start, SEOUL)
        with roster_db.transaction() as session:
            members = session.exec(sa.select(RunMember.next_attempt_at).where(RunMember.run_id == run.id)).all()
            assert [at_ for (at_,) in members] == [run.first_call_at] * 3
            # The week is done before the next one's slot (what the dialer would do).
            session.execute(
                sa.update(RunMember).where(RunMember.run_id == run.id).values(state=MemberState.ACKNOWLEDGED)
            )
            session.execute(sa.update(CampaignRun).where(CampaignRun.id == run.id).values(status="closed"))


def test_campaign_validate_accepts_the_default(cli):
    assert "is valid" in cli("campaign", "validate", "weekly-safe-call").output


def test_campaign_validate_reports_every_error_plainly(cli):
    cli.edit_campaign("max_retries = 3", "max_retries = 2")
    cli.edit_campaign('weekday = "mon"', 'weekday = "sun"')
    cli.edit_campaign('spacing = ["1h", "3h", "next_day"]', 'spacing = ["1h", "soon"]')
    cli.edit_campaign('end = "18:00"', 'end = "08:00"')
    cli.edit_campaign("teams = []", 'teams = ["9팀"]')
    cli.edit_campaign('ivr_flow = "safe-call"', 'ivr_flow = "nope"\ntrunk = "pbx"')
    output = cli("campaign", "validate", "weekly-safe-call", ok=False).output
    assert "key 'retry.max_retries': 2 retries is fewer than the 3 every non-responder is owed" in output
    assert "key 'retry.spacing': 'soon' is not a spacing" in output
    assert "key 'window': start 09:00 is not before end 08:00" in output
    cli.edit_campaign('spacing = ["1h", "soon"]', 'spacing = ["1h"]')
    cli.edit_campaign('end = "08:00"', 'end = "18:00"')
    cli.edit_campaign("max_retries = 2", "max_retries = 3")
    output = cli("campaign", "validate", "weekly-safe-call", ok=False).output
    assert "key 'trunk': " in output and "no trunk named 'pbx'" in output
    assert "key 'ivr_flow': " in output and "no IVR flow named 'nope'" in output
    assert "key 'targets.teams': no team '9팀'" in output
    assert "key 'schedule.weekday': sun is not a calling weekday" in output
    assert "no campaign named 'other'" in cli("campaign", "validate", "other", ok=False).output


def test_retrying_acknowledged_is_refused(cli):
    cli.edit_campaign('retry_on = ["answered_no_key"', 'retry_on = ["acknowledged", "answered_no_key"')
    output = cli("campaign", "validate", "weekly-safe-call", ok=False).output
    assert "key 'retry.retry_on': 'acknowledged' cannot be retried" in output


def test_bad_ivr_flow_is_reported_with_file_and_key(cli):
    path = cli.root / "ivr" / "safe-call.toml"
    path.write_text(
        path.read_text(encoding="utf-8").replace(
            '1 = { outcome = "acknowledged", closing = "thanks_well" }',
            '1 = { outcome = "acknowledged", closing = "bye" }',
        ),
        encoding="utf-8",
    )
    output = cli("campaign", "validate", "weekly-safe-call", ok=False).output
    assert "safe-call.toml" in output and "no closing message named 'bye'" in output


def test_campaign_plan_shows_which_weeks_move_past_a_holiday(cli):
    cli.edit_campaign('weekday = "mon"', 'weekday = "fri"')
    output = cli("campaign", "plan", "weekly-safe-call", "--now", "2026-12-16T09:00+09:00", "--weeks", "4").output

    def row(slot):
        return next(line for line in output.splitlines() if slot in line)

    assert "2026-12-18 Fri 10:00" in row("2026-12-14 ") and row("2026-12-14 ").count("2026-12-18 Fri 10:00") == 2
    assert "2026-12-28 Mon 09:00" in row("2026-12-25 Fri") and "Christmas Day" in row("2026-12-25 Fri")
    assert "2027-01-04 Mon 09:00" in row("2027-01-01 Fri") and "New Year's Day" in row("2027-01-01 Fri")
    assert row("2027-01-08 Fri").count("2027-01-08 Fri 10:00") == 2
    assert not (cli.root / "data").exists()  # planning reads the calendar only, never the database


def test_a_week_planned_after_its_slot_starts_when_launched_or_on_the_next_calling_day():
    from safecall.policy import plan_weeks

    calendar = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
    friday_evening = datetime(2026, 11, 27, 20, 0, tzinfo=SEOUL)
    this_week, next_week = plan_weeks(calendar, "mon", "10:00", date(2026, 11, 23), 2, now=friday_evening)
    assert this_week.first_call == datetime(2026, 11, 30, 9, 0, tzinfo=SEOUL)
    assert this_week.why_moved == "launched after the slot"
    assert next_week.first_call == next_week.slot and next_week.why_moved is None
    wednesday_noon = datetime(2026, 11, 25, 12, 0, tzinfo=SEOUL)
    assert (
        plan_weeks(calendar, "mon", "10:00", date(2026, 11, 23), 1, now=wednesday_noon)[0].first_call == wednesday_noon
    )
