"""The one place that builds dependencies: database, clock, trunks, dialers. Nothing here is global."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from safecall.campaign import CampaignDef, load_campaign
from safecall.clock import Clock
from safecall.dialer import Dialer
from safecall.errors import ConfigError
from safecall.ivr import IvrFlow, load_flow
from safecall.runs import Outcomes
from safecall.settings import AsteriskTrunkConfig, Instance, SimulatedTrunkConfig, TwilioTrunkConfig
from safecall.store import Database
from safecall.telephony.base import Check, KeypressSink, Trunk


def build_trunk(config, clock: Clock, sink: KeypressSink, flow: IvrFlow, environ, root: Path) -> Trunk:
    if isinstance(config, SimulatedTrunkConfig):
        from safecall.telephony.simulated import SimulatedTrunk

        return SimulatedTrunk(config, clock, sink, placed_log=root / config.placed_log if config.placed_log else None)
    if isinstance(config, AsteriskTrunkConfig):
        from safecall.telephony.asterisk.trunk import AsteriskTrunk

        return AsteriskTrunk(config, clock, sink, flow, environ)
    if isinstance(config, TwilioTrunkConfig):
        from safecall.telephony.twilio.trunk import TwilioTrunk

        return TwilioTrunk(config, clock, sink, flow, environ)
    raise ConfigError(f"trunk type {config.type!r} is not supported by this version")


@dataclass
class Services:
    instance: Instance
    db: Database
    clock: Clock

    @classmethod
    def open(cls, instance: Instance, clock: Clock, check_schema: bool = True) -> "Services":
        """`check_schema` False for the commands that look at or upgrade an older database (doctor, db)."""
        db = Database(instance.database_url(), busy_timeout=instance.settings.sqlite_busy_timeout_seconds)
        if check_schema:
            db.create_schema()
        return cls(instance=instance, db=db, clock=clock)

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return self.clock.now().astimezone(self.instance.tz).date()

    def campaign(self, name: str) -> CampaignDef:
        return load_campaign(self.instance, name)

    def dialer(self, campaign: CampaignDef, clock: Clock | None = None, trunk_name: str | None = None,
               worker: str | None = None) -> Dialer:
        """A dialer on the campaign's trunk, or on `trunk_name` for a scale-out `worker`.

        `clock` overrides (e.g. virtual time for the simulated trunk).
        """
        clock = clock or self.clock
        calendar = campaign.calendar(self.instance)
        outcomes = Outcomes(self.db, campaign, calendar)
        flow = load_flow(self.instance.ivr_dir, campaign.ivr_flow)
        config = self.instance.trunk(trunk_name or campaign.trunk)
        trunk = build_trunk(config, clock, outcomes, flow, self.instance.environ, self.instance.root)
        return Dialer(self.db, trunk, clock, campaign, flow, calendar, outcomes, worker=worker)

    def check_trunk(self, name: str | None, flow_name: str = "safe-call", wait_seconds: float = 10) -> list[Check]:
        config = self.instance.trunk(name)
        if isinstance(config, AsteriskTrunkConfig):
            from safecall.telephony.asterisk.check import check_asterisk

            return check_asterisk(config, self.instance.environ, load_flow(self.instance.ivr_dir, flow_name), wait_seconds)
        if isinstance(config, TwilioTrunkConfig):
            from safecall.telephony.twilio.check import check_twilio

            return check_twilio(config, self.instance.environ)
        return [Check("simulated trunk", True, f"{config.channels} channels, {config.calls_per_second} calls/s; no outside system to reach")]

    def close(self) -> None:
        self.db.dispose()
