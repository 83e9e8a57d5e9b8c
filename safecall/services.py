"""The one place that builds dependencies: database, clock, the call lifecycle, trunks, dialers. Nothing here is global.

A trunk is a long-lived resource: one per configured name in a process (one AMI link, one FastAGI or
webhook server, one channel and calls-per-second budget), shared by every open run on it, started on first
use and stopped once, by `close`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime

from safecall.campaign import CampaignDef, check_campaign, list_campaigns, load_campaign
from safecall.clock import Clock
from safecall.dialer import Dialer
from safecall.history import FirstCallOrder
from safecall.ivr import load_flow
from safecall.lifecycle import CallLifecycle, CampaignRules, RunRulesBook
from safecall.runrules import files_snapshot, files_snapshot_if_valid, parse_snapshot
from safecall.settings import Instance
from safecall.store import Database
from safecall.telephony.base import Check, Trunk, TrunkKind


@dataclass
class Services:
    instance: Instance
    db: Database
    clock: Clock
    trunks: dict[str, Trunk] = field(default_factory=dict)
    _lifecycle: CallLifecycle | None = None
    _trunks_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(cls, instance: Instance, clock: Clock, check_schema: bool = True) -> Services:
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

    def campaign_rules(self, name: str) -> CampaignRules:
        """The campaign's rules as its files say now; a run dials and settles by its own (`lifecycle.rules_of_run`)."""
        definition = self.campaign(name)
        return CampaignRules(
            definition, definition.calendar(self.instance), load_flow(self.instance.ivr_dir, definition.ivr_flow)
        )

    def rules_snapshot(self, name: str) -> str:
        """The campaign's rules as a run launched now keeps them (validated: an invalid campaign is an InputError)."""
        return files_snapshot(self.instance, name)

    def rules_snapshot_if_valid(self, name: str) -> str | None:
        return files_snapshot_if_valid(self.instance, name)

    def rules_of_snapshot(self, text: str) -> CampaignRules:
        definition, flow = parse_snapshot(text)
        return CampaignRules(definition, definition.calendar(self.instance), flow)

    @property
    def lifecycle(self) -> CallLifecycle:
        """The sink every trunk reports to and the writer of every call's consequences."""
        if self._lifecycle is None:
            self._lifecycle = CallLifecycle(self.db, RunRulesBook(self.rules_of_snapshot, self.rules_snapshot))
        return self._lifecycle

    def build_trunk(self, name: str | None = None, clock: Clock | None = None) -> Trunk:
        """A new, started trunk; the caller closes it. Most callers want `trunk`, the shared one."""
        config = self.instance.trunk(name)
        return trunk_kind(config.type).build(
            config,
            clock=clock or self.clock,
            sink=self.lifecycle,
            environ=self.instance.environ,
            root=self.instance.root,
        )

    def trunk(self, name: str | None = None) -> Trunk:
        """This process's one started trunk of that name (default: the default trunk), shared by every run."""
        name = name or self.instance.trunks.default
        with self._trunks_lock:
            if name not in self.trunks:
                self.trunks[name] = self.build_trunk(name)
            return self.trunks[name]

    def dialer(
        self,
        campaign: CampaignDef | None = None,
        clock: Clock | None = None,
        trunk_name: str | None = None,
        worker: str | None = None,
    ) -> Dialer:
        """The dialer on a trunk: `trunk_name`, else the campaign's, else the default.

        With `clock` (virtual time for a drill on the simulated trunk) the dialer gets a trunk of its own on
        that clock, which the caller closes; otherwise it shares this process's trunk.
        """
        name = trunk_name or (campaign.trunk if campaign else None) or self.instance.trunks.default
        trunk = self.build_trunk(name, clock) if clock is not None else self.trunk(name)
        return Dialer(self.db, trunk, clock or self.clock, self.lifecycle, worker=worker)

    def first_call_order(
        self, campaign: CampaignDef, every_trunk: bool = False, campaigns: Iterable[CampaignDef] | None = None
    ) -> FirstCallOrder | None:
        """How a new run of `campaign` orders its first calls (None: due-time order),
        paced at its share of the channels."""
        if campaign.schedule.first_calls != "history":
            return None
        return FirstCallOrder.for_channels(self.campaign_channels(campaign, every_trunk, campaigns))

    def campaign_channels(
        self, campaign: CampaignDef, every_trunk: bool = False, campaigns: Iterable[CampaignDef] | None = None
    ) -> float:
        """The campaign's share of the channels: its trunk's, shared with the other campaigns on it.

        `every_trunk`: dialled by workers on every trunk (scheduler --no-dial), shared by every campaign.
        `campaigns`: the valid campaigns, if the caller has them (else they are read and checked here).
        """
        definitions = list(campaigns) if campaigns is not None else self._definitions()
        trunks = self.instance.trunks
        if every_trunk:
            return sum(trunk.channels for trunk in trunks.trunks.values()) / max(1, len(definitions))
        name = campaign.trunk or trunks.default
        sharing = sum((definition.trunk or trunks.default) == name for definition in definitions)
        return trunks.trunks[name].channels / max(1, sharing)

    def _definitions(self) -> list[CampaignDef]:
        return [
            definition
            for name in list_campaigns(self.instance)
            for definition, problems in [check_campaign(self.instance, name)]
            if definition and not problems
        ]

    def check_trunk(self, name: str | None, flow_name: str = "safe-call", wait_seconds: float = 10) -> list[Check]:
        config = self.instance.trunk(name)
        return trunk_kind(config.type).check(
            config,
            environ=self.instance.environ,
            flow=load_flow(self.instance.ivr_dir, flow_name),
            wait_seconds=wait_seconds,
        )

    def close_trunks(self) -> None:
        with self._trunks_lock:
            trunks, self.trunks = list(self.trunks.values()), {}
        for trunk in trunks:
            trunk.close()

    def close(self) -> None:
        self.close_trunks()
        self.db.dispose()


def trunk_kind(type_name: str) -> TrunkKind:
    """The kind of trunk a [trunks.NAME] table's type names; imported when first built (each pulls in its SDK)."""
    if type_name == "asterisk":
        from safecall.telephony import asterisk

        return asterisk.KIND
    if type_name == "twilio":
        from safecall.telephony import twilio

        return twilio.KIND
    from safecall.telephony import simulated  # parse_trunk admits no other type

    return simulated.KIND
