"""`safecall demo`: a throwaway instance, a synthetic roster and one weekly campaign in accelerated time."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from safecall.clock import Clock, VirtualClock
from safecall.policy import week_start
from safecall.roster import ImportReport, import_roster
from safecall.runs import RunStatus, launch_run, run_status
from safecall.services import Services
from safecall.settings import defaults_root, load_instance, scaffold_instance
from safecall.store import stored_id
from safecall.visits import export_lists, open_task_rows

DEMO_CAMPAIGN = "weekly-safe-call"


@dataclass
class DemoResult:
    instance_dir: Path
    roster: ImportReport
    status: RunStatus
    files: list[Path]


def run_demo(target: Path, clock: Clock, on_progress: Callable[[int, int], None] | None = None) -> DemoResult:
    scaffold_instance(target)
    instance = load_instance(target)
    # The week is played in virtual time, from this week's Monday morning.
    monday = week_start(clock.now(), instance.tz)
    virtual = VirtualClock(datetime.combine(monday, datetime.min.time(), tzinfo=instance.tz) + timedelta(hours=8))
    services = Services.open(instance, virtual)
    try:
        roster = import_roster(
            services.db,
            defaults_root() / "demo" / "roster.csv",
            instance.settings,
            now=virtual.now(),
            today=services.today(),
        )
        campaign = services.campaign(DEMO_CAMPAIGN)
        run, _ = launch_run(
            services.db,
            campaign,
            campaign.calendar(instance),
            now=virtual.now(),
            rules=services.rules_snapshot(DEMO_CAMPAIGN),
        )
        services.dialer(campaign).run(stored_id(run), on_progress=on_progress)
        status = run_status(services.db, stored_id(run))
        files = []
        day = services.today()
        team_names = [team.name for team in instance.settings.teams]
        for kind in ("visit", "callback"):
            lists = open_task_rows(services.db, instance.tz, on=day, kind=kind, teams=team_names)
            for fmt in ("csv", "xlsx"):
                files += export_lists(lists, output=instance.outbox / day.isoformat(), fmt=fmt, on=day, kind=kind)
        return DemoResult(instance_dir=instance.root, roster=roster, status=status, files=files)
    finally:
        services.close()
