"""When calls may be placed: the calling window, holidays and retry spacing, as pure functions of time."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from safecall.i18n import N_

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SPACING_PATTERN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")
NEXT_DAY = "next_day"


def parse_clock_time(text: str) -> time:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(f"{text!r} is not a time of day (use HH:MM, e.g. 09:30)")
    return time(int(match.group(1)), int(match.group(2)))


def parse_spacing(text: str) -> timedelta | None:
    """'1h', '90m', '1h30m' -> timedelta; 'next_day' -> None."""
    if text == NEXT_DAY:
        return None
    match = SPACING_PATTERN.fullmatch(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a spacing (use e.g. 30m, 1h, 1h30m or next_day)")
    return timedelta(hours=int(match.group(1) or 0), minutes=int(match.group(2) or 0))


@dataclass(frozen=True)
class CallingCalendar:
    """The calling window in local time: hours, weekdays, and public holidays skipped."""

    tz: ZoneInfo
    start: time
    end: time
    weekdays: frozenset[int]  # 0 = Monday
    holidays: holidays_lib.HolidayBase | None  # None: holidays are calling days
    # Dialers ask for every run at every placement; a holiday lookup is not free.
    _calling_days: dict[date, bool] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def build(
        cls, tz: ZoneInfo, start: str, end: str, weekdays: list[str], holiday_country: str | None
    ) -> CallingCalendar:
        return cls(
            tz=tz,
            start=parse_clock_time(start),
            end=parse_clock_time(end),
            weekdays=frozenset(WEEKDAYS.index(day) for day in weekdays),
            holidays=holidays_lib.country_holidays(holiday_country) if holiday_country else None,
        )

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def is_calling_day(self, day: date) -> bool:
        known = self._calling_days.get(day)
        if known is None:
            known = self._calling_days[day] = day.weekday() in self.weekdays and (
                self.holidays is None or day not in self.holidays
            )
        return known

    def opens_on(self, day: date) -> datetime:
        return datetime.combine(day, self.start, tzinfo=self.tz)

    def is_open(self, moment: datetime) -> bool:
        local = self.local(moment)
        return self.is_calling_day(local.date()) and self.start <= local.time() < self.end

    def next_open(self, moment: datetime) -> datetime:
        """The earliest instant at or after `moment` inside the window."""
        local = self.local(moment)
        if self.is_calling_day(local.date()):
            if local.time() < self.start:
                return self.opens_on(local.date())
            if local.time() < self.end:
                return moment
        return self.next_day_opening(moment)

    def next_open_within(self, moment: datetime, horizon: timedelta) -> datetime | None:
        """next_open, or None when the window stays shut for longer than `horizon` after `moment`."""
        try:
            opening = self.next_open(moment)
        except ValueError:
            return None
        return opening if opening - moment <= horizon else None

    def next_day_opening(self, moment: datetime) -> datetime:
        """The opening of the first calling day after `moment`'s local date."""
        day = self.local(moment).date()
        for _ in range(366):
            day += timedelta(days=1)
            if self.is_calling_day(day):
                return self.opens_on(day)
        raise ValueError("the calling window has no calling day within a year")


PERSONAL_WINDOW_WORDS = {
    "오전": "09:00-12:00",
    "morning": "09:00-12:00",
    "am": "09:00-12:00",
    "오후": "13:00-18:00",
    "afternoon": "13:00-18:00",
    "pm": "13:00-18:00",
}
_WINDOW_PATTERN = re.compile(r"^(\d{1,2}:\d{2})\s*[-~–—]\s*(\d{1,2}:\d{2})$")


def parse_personal_window(text: str) -> str | None:
    """A person's preferred call time (roster column 통화 희망 시간): 오전, 오후 or HH:MM-HH:MM, as 'HH:MM-HH:MM'."""
    text = text.strip().lower()
    if not text:
        return None
    text = PERSONAL_WINDOW_WORDS.get(text, text)
    match = _WINDOW_PATTERN.fullmatch(text)
    if not match:
        raise ValueError(f"{text!r} is not a call time (use 오전, 오후 or HH:MM-HH:MM, e.g. 10:00-12:00)")
    start, end = (parse_clock_time(part) for part in match.groups())
    if start >= end:
        raise ValueError(f"call time {text!r}: the start is not before the end")
    return f"{start:%H:%M}-{end:%H:%M}"


def narrowed(calendar: CallingCalendar, personal_window: str | None) -> CallingCalendar:
    """The campaign's calendar narrowed to a person's preferred hours; unchanged where the two do not overlap
    (the campaign's window wins: a week is never lost to a preference)."""
    if not personal_window:
        return calendar
    start, end = (parse_clock_time(part) for part in personal_window.split("-"))
    start, end = max(start, calendar.start), min(end, calendar.end)
    return replace(calendar, start=start, end=end) if start < end else calendar


def open_seconds(calendar: CallingCalendar, start: datetime, end: datetime) -> float:
    """Seconds inside the calling window between `start` and `end`."""
    total, moment = 0.0, calendar.next_open(start)
    while moment < end:
        closing = datetime.combine(calendar.local(moment).date(), calendar.end, tzinfo=calendar.tz)
        total += (min(closing, end) - moment).total_seconds()
        moment = calendar.next_day_opening(moment)
    return total


def retry_at(spacing: list[str], retry_number: int, ended_at: datetime, calendar: CallingCalendar) -> datetime:
    """When retry number `retry_number` (1 = first retry) may be placed after a call that ended at `ended_at`."""
    gap = parse_spacing(spacing[min(retry_number, len(spacing)) - 1])
    if gap is None:
        return calendar.next_day_opening(ended_at)
    return calendar.next_open(ended_at + gap)


def week_start(moment: datetime, tz: ZoneInfo) -> date:
    """The Monday of `moment`'s local week: one run per campaign per such week."""
    local_day = moment.astimezone(tz).date()
    return local_day - timedelta(days=local_day.weekday())


def weekly_slot(week: date, weekday: str, start: str, tz: ZoneInfo) -> datetime:
    day = week + timedelta(days=WEEKDAYS.index(weekday))
    return datetime.combine(day, parse_clock_time(start), tzinfo=tz)


# How far a week's first calls may move past its slot (holidays, a window already over). Korean holiday
# stretches are at most about a week; past four weeks the calendar itself is wrong and an officer must look.
FIRST_CALL_HORIZON = timedelta(weeks=4)


def first_call_of_week(
    calendar: CallingCalendar, week: date, weekday: str, start: str, *, now: datetime
) -> datetime | None:
    """When week `week`'s run places its first calls: the slot, or (slot on a holiday or a closed day, or launched
    after it) the next calling time, even when that falls in a later week; the run still belongs to `week`.

    None when the window stays shut for longer than FIRST_CALL_HORIZON.
    """
    slot = weekly_slot(week, weekday, start, calendar.tz)
    return calendar.next_open_within(max(slot, now), FIRST_CALL_HORIZON)


@dataclass(frozen=True)
class PlannedWeek:
    week: date
    slot: datetime
    first_call: datetime | None  # None: no calling day within FIRST_CALL_HORIZON
    why_moved: str | None  # e.g. the holiday on the slot's day; None when the calls start at the slot


def plan_weeks(
    calendar: CallingCalendar, weekday: str, start: str, first_week: date, weeks: int, now: datetime | None = None
) -> list[PlannedWeek]:
    """When each of `weeks` weeks from `first_week` places its first calls, and why a week's calls move.

    A week launched at `now`, after its slot (this week's, when the plan is made late), starts no earlier than `now`."""
    planned = []
    for n in range(weeks):
        week = first_week + timedelta(weeks=n)
        slot = weekly_slot(week, weekday, start, calendar.tz)
        launched = max(slot, now) if now is not None else slot
        first_call = first_call_of_week(calendar, week, weekday, start, now=launched)
        why = None
        if first_call != slot:
            day = launched.astimezone(calendar.tz).date()
            holiday = calendar.holidays.get(day) if calendar.holidays is not None else None
            why = (
                holiday
                or (
                    N_("not a calling weekday")
                    if day.weekday() not in calendar.weekdays
                    else N_("outside the calling hours")
                )
                if launched == slot
                else N_("launched after the slot")
            )
        planned.append(PlannedWeek(week, slot, first_call, why))
    return planned
