"""`safecall scheduler run`: the long-running process. Built on `schedule` for its cadence; every decision
comes from the database and the clock, so a restart resumes where it stopped and nothing happens twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import schedule
from sqlmodel import select

from safecall import checkin, safety_clock
from safecall.backup import daily_backup
from safecall.campaign import CampaignDef, campaign_path
from safecall.delivery import publish_day, send_due_deliveries
from safecall.domain import RunState
from safecall.errors import NoCallingDayError, SafeCallError, translated
from safecall.escalation import mark_overdue, notify_officers, queue_escalations, send_notifications
from safecall.events import log_event
from safecall.i18n import korean
from safecall.instancefiles import read_toml
from safecall.notify import Mailer, SmsSender
from safecall.planning import capacity_warning
from safecall.policy import FIRST_CALL_HORIZON, parse_clock_time, week_start, weekly_slot
from safecall.runs import launch_run
from safecall.services import Services
from safecall.store import CampaignRun, Database, OutboxMessage
from safecall.weather import WeatherSource, build_weather, check_weather
from safecall.workers import TrunkDialing, checked_campaigns

log = logging.getLogger("safecall.scheduler")


class Scheduler:
    def __init__(
        self,
        services: Services,
        mailer: Mailer | None,
        sms: SmsSender | None,
        *,
        threaded: bool = True,
        dial: bool = True,
        weather: WeatherSource | None = None,
    ):
        """`dial` False: launching, lists and escalation only, the dialling left to `safecall worker run` processes.
        `weather`: the advisories' source (default: the KMA client when [weather] is enabled)."""
        self.services, self.mailer, self.sms = services, mailer, sms
        self.weather = weather
        self._weather_polled_at: datetime | None = None
        self.threaded = threaded
        self.dial = dial
        self.stop = threading.Event()
        self._campaigns: dict[str, CampaignDef] = {}
        self._dialing: dict[str, TrunkDialing] = {}  # one per trunk, over every open run on it
        self._threads: dict[str, threading.Thread] = {}
        self._no_calling_day: set[tuple[str, date]] = set()  # (campaign, week) already reported
        self._invalid_logged: dict[str, list[str]] = {}  # campaign -> the problems last logged

    def campaigns(self) -> dict[str, CampaignDef]:
        valid, invalid = checked_campaigns(self.services)
        for name, problems in invalid.items():  # logged when they change, not on every tick
            if self._invalid_logged.get(name) != problems:
                log_event(log, "campaign_invalid", level=logging.ERROR, campaign=name, problems=problems)
        self._invalid_logged = invalid
        return valid

    def tick(self) -> None:
        """Everything that is due now. Safe to call at any moment, any number of times."""
        now = self.services.now()
        campaigns = self._campaigns = self.campaigns()
        for name, problems in self._invalid_logged.items():
            self.alert_if_cannot_run(name, problems, now)
        for definition in campaigns.values():
            self.launch_if_due(definition, now, campaigns)
        if self.dial:
            self.dial_open_runs(campaigns)
        self.publish_if_due(now)
        settings, db = self.services.instance.settings, self.services.db
        mark_overdue(db, settings, now=now)
        queue_escalations(db, settings, campaigns, now=now)
        checkin.queue_due(db, self.services.instance, now=now, lifecycle=self.services.lifecycle)
        safety_clock.escalate(db, settings, campaigns, now=now)
        self.poll_weather(now)
        send_notifications(db, settings, self.mailer, self.sms, now=now)
        send_due_deliveries(db, self.services.instance, self.mailer, now=now)
        self.backup_if_due(now)

    def backup_if_due(self, now: datetime) -> None:
        """The daily backup ([backup] daily), once a day after its time; the newest `keep` stay."""
        instance = self.services.instance
        backup = instance.settings.backup
        if not backup.daily:
            return
        due = now.astimezone(instance.tz).time() >= parse_clock_time(backup.at)
        taken = daily_backup(self.services.db, instance.backup_dir, keep=backup.keep, now=now, due=due)
        if taken:
            log_event(log, "backup_taken", path=str(taken))

    def alert_if_cannot_run(self, name: str, problems: list[str], now: datetime) -> None:
        """An invalid campaign whose slot has come this week (or whose open run it leaves undialled): the officers get
        one e-mail and one text for the week, saying why, and the log one `campaign_cannot_run` line."""
        tz = self.services.instance.tz
        week = week_start(now, tz)
        raw = self._raw_campaign(name)
        schedule = found if isinstance(found := raw.get("schedule"), dict) else {}
        try:
            slot_come = now >= weekly_slot(week, schedule["weekday"], schedule["start"], tz)
        except (KeyError, ValueError, TypeError, AttributeError):
            slot_come = True  # no readable slot: it cannot run at any
        with self.services.db.session() as session:
            open_run = session.exec(
                select(CampaignRun.id).where(CampaignRun.campaign == name, CampaignRun.status == RunState.OPEN)
            ).first()
            key = f"officer-campaign-cannot-run:{name}:{week}"
            told = session.exec(select(OutboxMessage.id).where(OutboxMessage.key.startswith(key + ":"))).first()
        if told or not (slot_come or open_run):
            return
        targets = found if isinstance(found := raw.get("targets"), dict) else {}
        teams = (
            [t for t in targets.get("teams", []) if isinstance(t, str)]
            if isinstance(targets.get("teams"), list)
            else []
        )
        gettext = korean().gettext
        why = "\n".join(f"- {translated(problem, gettext)}" for problem in problems)
        officers = notify_officers(
            self.services.db,
            self.services.instance.settings,
            teams,
            key=key,
            now=now,
            body=f"[안심콜] 캠페인 {name}의 {week} 주간 통화를 시작하지 못했습니다. "
            "캠페인 설정이 이번 판에서 유효하지 않습니다"
            f"{' (진행 중인 회차도 전화를 걸지 않고 있습니다)' if open_run else ''}.\n\n이유:\n{why}\n\n"
            f"campaigns/{name}.toml을 고친 뒤 `safecall upgrade check`로 확인해 주세요. "
            "고치면 다음 확인 때 바로 시작합니다.",
            text=f"[안심콜] 캠페인 {name} 설정 오류로 이번 주 안심콜이 시작되지 않았습니다. "
            "전자우편의 이유를 확인해 주세요.",
        )
        log_event(
            log,
            "campaign_cannot_run",
            level=logging.ERROR,
            campaign=name,
            week=week,
            open_run=open_run,
            problems=problems,
            officers_told=officers,
        )

    def _raw_campaign(self, name: str) -> dict:
        try:
            return read_toml(campaign_path(self.services.instance, name))
        except SafeCallError:
            return {}

    def poll_weather(self, now: datetime) -> None:
        """Every [weather] poll_minutes: new advisories for the office's regions launch their checks (weather.py)."""
        settings = self.services.instance.settings.weather
        if not settings.enabled or (
            self._weather_polled_at and now - self._weather_polled_at < timedelta(minutes=settings.poll_minutes)
        ):
            return
        self._weather_polled_at = now
        try:
            self.weather = self.weather or build_weather(self.services.instance)
            assert self.weather is not None  # [weather] is enabled: build_weather gives None only when it is off
            check_weather(self.services, self.weather)
        except SafeCallError as exc:  # the next poll tries again; the week's calls go on
            log_event(log, "weather_poll_failed", level=logging.ERROR, error=str(exc))

    def launch_if_due(
        self, definition: CampaignDef, now: datetime, campaigns: dict[str, CampaignDef] | None = None
    ) -> None:
        calendar = definition.calendar(self.services.instance)
        for week in weeks_due(self.services.db, definition, calendar.tz, now):
            try:
                run, created = launch_run(
                    self.services.db,
                    definition,
                    calendar,
                    now=now,
                    week=week,
                    order=self.services.first_call_order(
                        definition, not self.dial, campaigns.values() if campaigns else None
                    ),
                    rules=self.services.rules_snapshot(definition.name),
                )
            except NoCallingDayError as exc:
                self._report_no_calling_day(definition, week, exc, now)
                continue
            if created:
                slot = weekly_slot(week, definition.schedule.weekday, definition.schedule.start, calendar.tz)
                log_event(
                    log,
                    "run_launched",
                    campaign=definition.name,
                    run=run.id,
                    week=run.week_start,
                    first_call=run.first_call_at,
                    late=(now - slot).total_seconds() > 120,
                )

    def _report_no_calling_day(
        self, definition: CampaignDef, week: date, exc: NoCallingDayError, now: datetime
    ) -> None:
        """The officers are told once (a notification keyed by campaign and week), and the log says it once per
        process, not on every tick."""
        if (definition.name, week) in self._no_calling_day:
            return
        self._no_calling_day.add((definition.name, week))
        officers = notify_officers(
            self.services.db,
            self.services.instance.settings,
            definition.targets.teams,
            key=f"officer-no-calling-day:{definition.name}:{week}",
            now=now,
            body=f"[안심콜] 캠페인 {definition.name}의 {week} 주간 통화를 시작하지 못했습니다. 통화할 수 있는 날이 "
            f"{FIRST_CALL_HORIZON.days}일 안에 없습니다. "
            f"campaigns/{definition.name}.toml의 통화 시간대(window: 요일, 시간)와 "
            f"공휴일 설정(skip_holidays)을 확인해 주세요. 고치면 다음 확인 때 바로 시작합니다.",
        )
        log_event(
            log,
            "no_calling_day",
            level=logging.ERROR,
            campaign=definition.name,
            week=week,
            reason=exc.summary,
            officers_told=officers,
        )

    def dial_open_runs(self, campaigns: dict[str, CampaignDef]) -> None:
        """One dialer per trunk the valid campaigns use, each over every open run on it (in its own thread)."""
        for trunk_name in sorted(
            {definition.trunk or self.services.instance.trunks.default for definition in campaigns.values()}
        ):
            thread = self._threads.get(trunk_name)
            if thread and thread.is_alive():
                continue
            if trunk_name not in self._dialing:
                self._dialing[trunk_name] = TrunkDialing(self.services, trunk_name, campaigns=lambda: self._campaigns)
            dialing = self._dialing[trunk_name]
            if self.threaded:
                thread = threading.Thread(
                    target=dialing.dial_until_idle, args=(self.stop,), name=f"dialer-{trunk_name}", daemon=True
                )
                self._threads[trunk_name] = thread
                thread.start()
            else:
                dialing.dial_until_idle(self.stop)

    def publish_if_due(self, now: datetime) -> None:
        local = now.astimezone(self.services.instance.tz)
        if local.time() >= parse_clock_time(self.services.instance.settings.delivery.publish_at):
            publish_day(self.services.db, self.services.instance, self.mailer, local.date(), now=now)

    def run(self, interval_seconds: float = 30) -> None:
        """Until `stop` is set (SIGTERM/SIGINT): tick at start, to catch up on what was missed, then every interval."""
        cadence = schedule.Scheduler()
        # schedule takes seconds as a float too (they make a timedelta); its annotation says int
        cadence.every(interval_seconds).seconds.do(self._safe_tick)  # type: ignore[arg-type]
        log_event(log, "scheduler_started", instance=str(self.services.instance.root))
        self.warn_capacity()
        self._safe_tick()
        while not self.stop.is_set():
            cadence.run_pending()
            self.stop.wait(max(0.1, min(1.0, cadence.idle_seconds or 1.0)))
        self.shutdown()

    def warn_capacity(self) -> None:
        """Say on start-up which campaigns cannot complete their visit list within their week (planning.py)."""
        campaigns = self.campaigns()
        for definition in campaigns.values():
            channels = self.services.campaign_channels(definition, not self.dial, campaigns.values())
            warning = capacity_warning(
                self.services.db,
                definition,
                definition.calendar(self.services.instance),
                now=self.services.now(),
                channels=channels,
            )
            if warning:
                log_event(
                    log,
                    "campaign_cannot_finish_in_week",
                    level=logging.WARNING,
                    campaign=definition.name,
                    detail=warning,
                )

    def _safe_tick(self) -> None:
        try:
            self.tick()
        except SafeCallError as exc:
            log_event(log, "tick_failed", level=logging.ERROR, error=str(exc))

    def shutdown(self) -> None:
        """Dialers stop placing calls and finish the bookkeeping of those in flight."""
        self.stop.set()
        for thread in self._threads.values():
            thread.join()
        self.services.close_trunks()
        log_event(log, "scheduler_stopped")


def weeks_due(db: Database, definition: CampaignDef, tz: ZoneInfo, now: datetime) -> list[date]:
    """The weeks whose run should exist by `now`: this week's once its slot has come; and, before then, last week's
    if the scheduler was down through all of it, so a week is never skipped. Last week is caught up only for a
    campaign that was already running (an earlier run exists): a new campaign does not start with last week.
    Once this week's slot has come, this week's run stands for both: the two would call everyone at once."""
    this_week = week_start(now, tz)
    if now >= weekly_slot(this_week, definition.schedule.weekday, definition.schedule.start, tz):
        return [this_week]
    last_week = this_week - timedelta(weeks=1)
    weekly = select(CampaignRun.id).where(CampaignRun.campaign == definition.name, CampaignRun.label == "weekly")
    with db.session() as session:
        if session.exec(weekly.where(CampaignRun.week_start == last_week)).first():
            return []
        was_running = session.exec(weekly.where(CampaignRun.week_start < last_week)).first()
    return [last_week] if was_running else []
