"""`safecall scheduler run`: the long-running process. Built on `schedule` for its cadence; every decision
comes from the database and the clock, so a restart resumes where it stopped and nothing happens twice.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

import schedule

from safecall.campaign import CampaignDef, check_campaign, list_campaigns
from safecall.delivery import publish_day, send_due_deliveries
from safecall.dialer import Dialer
from safecall.errors import InputError, SafeCallError
from safecall.escalation import mark_overdue, queue_escalations, send_notifications
from safecall.events import log_event
from safecall.notify import Mailer, SmsSender
from safecall.policy import parse_clock_time, week_start, weekly_slot
from safecall.runs import launch_run, list_runs
from safecall.services import Services

log = logging.getLogger("safecall.scheduler")


def valid_campaigns(services: Services) -> dict[str, CampaignDef]:
    """Campaigns that pass validation; an invalid one is logged and left alone, never half-run."""
    valid = {}
    for name in list_campaigns(services.instance):
        definition, problems = check_campaign(services.instance, name)
        if problems:
            log_event(log, "campaign_invalid", level=logging.ERROR, campaign=name, problems=problems)
        else:
            valid[name] = definition
    return valid


class Scheduler:
    def __init__(self, services: Services, mailer: Mailer | None, sms: SmsSender | None, *, threaded: bool = True,
                 dial: bool = True):
        """`dial` False: launching, lists and escalation only, the dialling left to `safecall worker run` processes."""
        self.services, self.mailer, self.sms = services, mailer, sms
        self.threaded = threaded
        self.dial = dial
        self.stop = threading.Event()
        self._dialers: dict[int, Dialer] = {}
        self._workers: dict[int, threading.Thread] = {}

    def campaigns(self) -> dict[str, CampaignDef]:
        return valid_campaigns(self.services)

    def tick(self) -> None:
        """Everything that is due now. Safe to call at any moment, any number of times."""
        now = self.services.now()
        campaigns = self.campaigns()
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
        for run in list_runs(self.services.db):
            if run.status != "open" or run.campaign not in campaigns:
                continue
            worker = self._workers.get(run.id)
            if worker and worker.is_alive():
                continue
            if run.id not in self._dialers:
                self._dialers[run.id] = self.services.dialer(campaigns[run.campaign])
            if self.threaded:
                worker = threading.Thread(target=self._dial, args=(run.id,), name=f"dialer-{run.id}", daemon=True)
                self._workers[run.id] = worker
                worker.start()
            else:
                self._dial(run.id)

    def _dial(self, run_id: int) -> None:
        dialer = self._dialers[run_id]
        try:
            run = dialer.run(run_id, stop_requested=self.stop.is_set, return_when_idle=True)
        except SafeCallError as exc:
            log_event(log, "dialer_error", level=logging.ERROR, run=run_id, error=str(exc))
            return
        if run.status == "closed":
            log_event(log, "run_closed", run=run_id, campaign=run.campaign)
            self._dialers.pop(run_id).trunk.close()

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
        for worker in self._workers.values():
            worker.join()
        for dialer in self._dialers.values():
            dialer.trunk.close()
        self._dialers.clear()
        log_event(log, "scheduler_stopped")
