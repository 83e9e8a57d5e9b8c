"""`safecall scheduler run`: the long-running process. Built on `schedule` for its cadence; every decision
comes from the database and the clock, so a restart resumes where it stopped and nothing happens twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import schedule

from safecall.campaign import CampaignDef
from safecall.delivery import publish_day, send_due_deliveries
from safecall.errors import InputError, SafeCallError
from safecall.escalation import mark_overdue, queue_escalations, send_notifications
from safecall.events import log_event
from safecall.notify import Mailer, SmsSender
from safecall.policy import parse_clock_time, week_start, weekly_slot
from safecall.runs import launch_run
from safecall.services import Services
from safecall.workers import TrunkDialing, valid_campaigns

log = logging.getLogger("safecall.scheduler")


class Scheduler:
    def __init__(self, services: Services, mailer: Mailer | None, sms: SmsSender | None, *, threaded: bool = True,
                 dial: bool = True):
        """`dial` False: launching, lists and escalation only, the dialling left to `safecall worker run` processes."""
        self.services, self.mailer, self.sms = services, mailer, sms
        self.threaded = threaded
        self.dial = dial
        self.stop = threading.Event()
        self._campaigns: dict[str, CampaignDef] = {}
        self._dialing: dict[str, TrunkDialing] = {}  # one per trunk, over every open run on it
        self._threads: dict[str, threading.Thread] = {}

    def campaigns(self) -> dict[str, CampaignDef]:
        return valid_campaigns(self.services)

    def tick(self) -> None:
        """Everything that is due now. Safe to call at any moment, any number of times."""
        now = self.services.now()
        campaigns = self._campaigns = self.campaigns()
        for definition in campaigns.values():
            self.launch_if_due(definition, now)
        if self.dial:
            self.dial_open_runs(campaigns)
        self.publish_if_due(now)
        settings, db = self.services.instance.settings, self.services.db
        mark_overdue(db, settings, now=now)
        queue_escalations(db, settings, campaigns, now=now)
        send_notifications(db, settings, self.mailer, self.sms, now=now)
        send_due_deliveries(db, self.services.instance, self.mailer, now=now)

    def launch_if_due(self, definition: CampaignDef, now: datetime) -> None:
        tz = self.services.instance.tz
        slot = weekly_slot(week_start(now, tz), definition.schedule.weekday, definition.schedule.start, tz)
        if now < slot:
            return
        try:
            run, created = launch_run(self.services.db, definition, definition.calendar(self.services.instance), now=now)
        except InputError as exc:  # the week's window is over: a missed slot is not launched late into next week
            log_event(log, "slot_missed", level=logging.WARNING, campaign=definition.name, reason=exc.summary)
            return
        if created:
            log_event(log, "run_launched", campaign=definition.name, run=run.id, week=run.week_start,
                      late=(now - slot).total_seconds() > 120)

    def dial_open_runs(self, campaigns: dict[str, CampaignDef]) -> None:
        """One dialer per trunk the valid campaigns use, each over every open run on it (in its own thread)."""
        for trunk_name in sorted({definition.trunk or self.services.instance.trunks.default for definition in campaigns.values()}):
            thread = self._threads.get(trunk_name)
            if thread and thread.is_alive():
                continue
            if trunk_name not in self._dialing:
                self._dialing[trunk_name] = TrunkDialing(self.services, trunk_name, campaigns=lambda: self._campaigns)
            dialing = self._dialing[trunk_name]
            if self.threaded:
                thread = threading.Thread(target=dialing.dial_until_idle, args=(self.stop,), name=f"dialer-{trunk_name}", daemon=True)
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
        cadence.every(interval_seconds).seconds.do(self._safe_tick)
        log_event(log, "scheduler_started", instance=str(self.services.instance.root))
        self._safe_tick()
        while not self.stop.is_set():
            cadence.run_pending()
            self.stop.wait(max(0.1, min(1.0, cadence.idle_seconds or 1.0)))
        self.shutdown()

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
