"""`safecall worker run`: one of several dialers sharing a PostgreSQL database, each on its own trunk or PBX.

The scheduler (run with --no-dial) launches the weekly runs and publishes the
lists; workers dial every open run side by side. See docs/scaling.md.
"""

from __future__ import annotations

import logging
import threading

from safecall.dialer import Dialer
from safecall.errors import SafeCallError
from safecall.events import log_event
from safecall.runs import list_runs
from safecall.scheduler import valid_campaigns
from safecall.services import Services

log = logging.getLogger("safecall.worker")


class DialerWorker:
    def __init__(self, services: Services, trunk_name: str, name: str | None = None):
        services.instance.trunk(trunk_name)  # an unknown trunk is a ConfigError now, not at the first run
        self.services, self.trunk_name, self.name = services, trunk_name, name or trunk_name
        self.stop = threading.Event()
        self._dialers: dict[int, Dialer] = {}

    def run(self, interval_seconds: float = 5) -> None:
        """Until `stop` is set: dial whatever is due in every open run, then look again after the interval."""
        log_event(log, "worker_started", worker=self.name, trunk=self.trunk_name)
        try:
            while not self.stop.is_set():
                self.dial_open_runs()
                self.stop.wait(interval_seconds)
        finally:
            for dialer in self._dialers.values():
                dialer.trunk.close()
            log_event(log, "worker_stopped", worker=self.name)

    def dial_open_runs(self) -> None:
        campaigns = valid_campaigns(self.services)
        for run in list_runs(self.services.db):
            if run.status != "open" or run.campaign not in campaigns or self.stop.is_set():
                continue
            dialer = self._dialers.get(run.id)
            if dialer is None:
                dialer = self._dialers[run.id] = self.services.dialer(
                    campaigns[run.campaign], trunk_name=self.trunk_name, worker=self.name)
            try:
                finished = dialer.run(run.id, stop_requested=self.stop.is_set, return_when_idle=True)
            except SafeCallError as exc:
                log_event(log, "dialer_error", level=logging.ERROR, worker=self.name, run=run.id, error=str(exc))
                continue
            if finished.status == "closed":
                self._dialers.pop(run.id).trunk.close()
