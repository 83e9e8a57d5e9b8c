"""Drills: a campaign's week played in virtual time on a throwaway copy of the instance's data.

A drill never touches the real database: the SQLite file is copied (opened read-only, through SQLite's backup
API) into a private folder with the instance's settings, campaigns and IVR flows, and everything the drill
writes (its run, attempts, tasks, a simulated trunk's placed-call log) goes there. So a drill can never create,
close or consume a real run, and the real launch afterwards works as if no drill had happened.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url

from safecall.campaign import load_campaign
from safecall.clock import VirtualClock
from safecall.errors import ConfigError
from safecall.runrules import apply_rules
from safecall.runs import RunStatus, launch_run, run_status
from safecall.safety_clock import ClockSummary, clocks, summarise
from safecall.services import Services
from safecall.settings import DATABASE_URL_ENV, INSTANCE_FOLDERS, Instance, load_instance
from safecall.store import Database, stored_id
from safecall.store.db import copy_sqlite

DRILL_DATABASE = Path("data") / "safecall.db"


@dataclass
class DrillResult:
    status: RunStatus
    folder: Path
    kept: bool  # False: the folder and its copy of the data were deleted
    # The safety clock of the run's visit and call-back tasks at the drill's end: nobody records outcomes in a
    # drill, so it is how long each person would have waited by then for a human.
    clock: ClockSummary | None = None


def check_drill(instance: Instance, campaign_name: str, trunk_name: str | None = None) -> Path:
    """Why a drill cannot run, before anything is created; else the SQLite file it copies."""
    campaign = load_campaign(instance, campaign_name)
    name = trunk_name or campaign.trunk or instance.trunks.default
    if instance.trunk(name).type != "simulated":
        raise ConfigError(
            f"a drill dials through a simulated trunk only, and trunk {name!r} places real calls; "
            f"add a simulated trunk to config/trunks.toml and name it with --trunk"
        )
    url = make_url(instance.database_url())
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise ConfigError(
            f"a drill copies the instance's SQLite database, and this instance uses {url.render_as_string()}; "
            f"drill on a SQLite instance (e.g. one made with 'safecall init' and the same roster imported)"
        )
    return Path(url.database)


def copy_instance(instance: Instance, source_db: Path, target: Path) -> None:
    """Settings, campaigns and IVR flows, and a consistent copy of the database (or none, if it does not exist yet)."""
    for folder in INSTANCE_FOLDERS:
        shutil.copytree(instance.root / folder, target / folder, dirs_exist_ok=True)  # symlinks become files
    if source_db.exists():
        copy_sqlite(source_db, target / DRILL_DATABASE)  # opened read-only: the drill cannot change the real file


def drill_instance(instance: Instance, folder: Path) -> Instance:
    """The instance as seen from a drill folder: its own files and database."""
    return load_instance(
        folder, {**instance.environ, DATABASE_URL_ENV: f"sqlite:///{(folder / DRILL_DATABASE).absolute()}"}
    )


def run_drill(
    instance: Instance,
    campaign_name: str,
    *,
    start: datetime,
    folder: Path | None = None,
    trunk_name: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_ready: Callable[[Path], None] | None = None,
) -> DrillResult:
    """Play the campaign's week from `start` in virtual time, on a copy of the data.

    `folder` None: a new temporary folder, deleted afterwards. A folder given is kept; one that already holds a
    drill is resumed (e.g. after the drill was interrupted), not copied again.
    """
    source_db = check_drill(instance, campaign_name, trunk_name)
    kept = folder is not None
    folder = folder or Path(tempfile.mkdtemp(prefix="safecall-drill-"))
    try:
        if not (folder / "config" / "safecall.toml").exists():
            copy_instance(instance, source_db, folder)
        drill = drill_instance(instance, folder)
        copied = Database(drill.database_url())
        try:
            copied.upgrade()  # a copy of an older database is brought up to date; the real one is not
        finally:
            copied.dispose()
        if on_ready:
            on_ready(folder)
        services = Services.open(drill, VirtualClock(start))
        try:
            campaign = services.campaign(campaign_name)
            rules = services.rules_snapshot(campaign_name)
            run, _ = launch_run(services.db, campaign, campaign.calendar(drill), now=services.now(), rules=rules)
            # A drill rehearses the files as they are now, also on the copy of a run launched before an edit.
            apply_rules(services.db, campaign_name, rules, now=services.now())
            run_id = stored_id(run)
            services.dialer(campaign, trunk_name=trunk_name).run(
                run_id, on_progress=on_progress
            )  # closed with the services
            clock = summarise(clocks(services.db, drill.settings, now=services.now(), run_id=run_id))
            return DrillResult(status=run_status(services.db, run_id), folder=folder, kept=kept, clock=clock)
        finally:
            services.close()
    finally:
        if not kept:
            shutil.rmtree(folder, ignore_errors=True)
