"""Dialling every open run that one trunk serves: the scheduler's way and the scale-out workers' way, one code path.

`safecall scheduler run` keeps one TrunkDialing per trunk its campaigns use. `safecall worker run --trunk NAME`
is one TrunkDialing on its own trunk (a PBX of its own) that dials every open run side by side with other
workers sharing a PostgreSQL database; the scheduler (run with --no-dial) then launches and publishes only.
See docs/scaling.md.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from safecall.campaign import CampaignDef, check_campaign, list_campaigns
from safecall.dialer import Dialer
from safecall.errors import SafeCallError
from safecall.events import log_event
from safecall.phones import mask_text
from safecall.runs import open_run_campaigns
from safecall.services import Services

log = logging.getLogger("safecall.worker")


def valid_campaigns(services: Services) -> dict[str, CampaignDef]:
    """Campaigns that pass validation; an invalid one is logged and left alone, never half-run."""
    valid, invalid = checked_campaigns(services)
    for name, problems in invalid.items():
        log_event(log, "campaign_invalid", level=logging.ERROR, campaign=name, problems=problems)
    return valid


def checked_campaigns(services: Services) -> tuple[dict[str, CampaignDef], dict[str, list[str]]]:
    """The valid campaigns, and every invalid one with its problems."""
    valid: dict[str, CampaignDef] = {}
    invalid: dict[str, list[str]] = {}
    for name in list_campaigns(services.instance):
        definition, problems = check_campaign(services.instance, name)
        if problems:
            invalid[name] = problems
        else:
            assert definition is not None  # check_campaign gives one whenever it finds no problem
            valid[name] = definition
    return valid, invalid


class ValidCampaigns:
    """valid_campaigns, read again only when a file under campaigns/ or ivr/ changes: a dialer asks at every wake-up."""

    def __init__(self, services: Services):
        self.services = services
        self._seen: tuple | None = None
        self._valid: dict[str, CampaignDef] = {}

    def __call__(self) -> dict[str, CampaignDef]:
        files = self._files()
        if files != self._seen:
            self._valid, self._seen = valid_campaigns(self.services), files
        return self._valid

    def _files(self) -> tuple:
        instance = self.services.instance
        listed = []
        for directory in (instance.campaigns_dir, instance.ivr_dir):  # campaigns and flows are *.toml at the top
            with os.scandir(directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".toml"):
                        stat = entry.stat()
                        listed.append((entry.path, stat.st_mtime_ns, stat.st_size, stat.st_ino))
        return tuple(sorted(listed))


class TrunkDialing:
    """One trunk's dialer over the open runs it serves: the campaigns on that trunk, or (a worker) every run."""

    def __init__(
        self,
        services: Services,
        trunk_name: str,
        worker: str | None = None,
        campaigns: Callable[[], dict[str, CampaignDef]] | None = None,
    ):
        services.instance.trunk(trunk_name)  # an unknown trunk is a ConfigError now, not at the first run
        self.services, self.trunk_name, self.worker = services, trunk_name, worker
        self.campaigns = campaigns or ValidCampaigns(services)
        self._dialer: Dialer | None = None

    def open_runs(self) -> list[int]:
        campaigns, default = self.campaigns(), self.services.instance.trunks.default
        return [
            run_id
            for run_id, campaign in open_run_campaigns(self.services.db)
            if campaign in campaigns
            and (self.worker is not None or (campaigns[campaign].trunk or default) == self.trunk_name)
        ]

    def dial_until_idle(self, stop: threading.Event) -> None:
        """Dial what is due in every open run until nothing is in flight or due; errors are logged, never raised."""
        try:
            if self._dialer is None:
                self._dialer = self.services.dialer(trunk_name=self.trunk_name, worker=self.worker)
            self._dialer.dial(self.open_runs, stop_requested=stop.is_set, return_when_idle=True)
        except SafeCallError as exc:
            log_event(
                log,
                "dialer_error",
                level=logging.ERROR,
                trunk=self.trunk_name,
                worker=self.worker,
                error=mask_text(str(exc)),
            )


class DialerWorker:
    """`safecall worker run`: dial every open run through one trunk until stopped."""

    def __init__(self, services: Services, trunk_name: str, name: str | None = None):
        self.name = name or trunk_name
        self.dialing = TrunkDialing(services, trunk_name, worker=self.name)
        self.stop = threading.Event()

    def run(self, interval_seconds: float = 5) -> None:
        """Until `stop` is set: dial whatever is due in every open run, then look again after the interval."""
        log_event(log, "worker_started", worker=self.name, trunk=self.dialing.trunk_name)
        try:
            while not self.stop.is_set():
                self.dialing.dial_until_idle(self.stop)
                self.stop.wait(interval_seconds)
        finally:
            self.dialing.services.close_trunks()
            log_event(log, "worker_stopped", worker=self.name)
