"""Issue 21, national scale: one week of many district campaigns sharing dialer workers on PostgreSQL.

N people in D districts (one team, one dong and one weekly campaign each,
first calls ordered by history), W `safecall worker run` processes, each on
its own simulated PBX of C / W channels, all on one accelerated clock
(--speed). Only calling hours are played: the workers run each calling day
from its opening to just after its close, are stopped (SIGTERM: calls in
flight finish) and started again at the next opening, so nights and the
weekend cost no real time. The runs are launched in-process at Monday 10:00
with the campaign's share of every trunk's channels, as `scheduler run
--no-dial` would.

Reports, from the stored rows and the processes:
- each district's visit list complete (benchmarks/finish.py) against the
  bound, and the spread across districts (fairness);
- CPU per attempt (all worker processes), database commits per second
  (pg_stat_database), peak memory per worker.

    eval "$(.ci/postgres start)"
    python benchmarks/national.py --people 1000000 --districts 250 --workers 4 --channels 300 --speed 10
    python benchmarks/national.py --people 2000 --districts 5 --workers 2 --channels 10 --speed 60   # smoke size
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from itertools import islice
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from benchmarks.finish import measure_finish  # noqa: E402
from safecall.clock import VirtualClock  # noqa: E402
from safecall.runs import launch_run  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance, scaffold_instance  # noqa: E402
from safecall.store import CampaignRun, Database  # noqa: E402
from safecall.synthetic import HEADER, simulated_pbxs_toml, synthetic_people  # noqa: E402

CLOCKED_CLI = str(ROOT / "tests" / "clocked_cli.py")  # the safecall command on a clock set from outside
MONDAY = datetime.fromisoformat("2026-11-23T10:00+09:00")
ROSTER_FILE_PEOPLE = 100_000  # the importer takes at most 200,000 rows and 100 MiB a file


def district(index: int) -> str:
    return f"구역{index:03d}동"


def instance(directory: Path, districts: int, workers: int, channels_each: int) -> Path:
    scaffold_instance(directory)
    settings = directory / "config" / "safecall.toml"
    text = settings.read_text(encoding="utf-8")
    text = text[: text.index("[[teams]]")] + "".join(
        f'[[teams]]\nname = "{district(i)}팀"\ndongs = ["{district(i)}"]\n\n' for i in range(districts)
    )
    settings.write_text(text, encoding="utf-8")
    (directory / "config" / "trunks.toml").write_text(
        simulated_pbxs_toml(workers, channels_each, 20, 'people = "persistent"'), encoding="utf-8"
    )
    shipped = directory / "campaigns" / "weekly-safe-call.toml"
    template = shipped.read_text(encoding="utf-8")
    for i in range(districts):
        (directory / "campaigns" / f"d{i:03d}.toml").write_text(
            template.replace('name = "weekly-safe-call"', f'name = "d{i:03d}"').replace(
                "dongs = []", f'dongs = ["{district(i)}"]'
            ),
            encoding="utf-8",
        )
    shipped.unlink()
    return directory


def write_rosters(directory: Path, people: int, dongs: list[str]) -> list[Path]:
    """The synthetic roster in files of ROSTER_FILE_PEOPLE people."""
    rows, paths = synthetic_people(people, dongs), []
    for _ in range(0, people, ROSTER_FILE_PEOPLE):
        path = directory / f"roster-{len(paths) + 1}.csv"
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(HEADER)
            writer.writerows(islice(rows, ROSTER_FILE_PEOPLE))
        paths.append(path)
    return paths


def peak_memory_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else 0.0


def commits(connection) -> int:
    return connection.execute(
        sa.text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    ).scalar()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--districts", type=int, default=250)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--channels", type=int, default=300, help="in all, shared by the workers")
    parser.add_argument("--speed", type=float, default=20)
    parser.add_argument("--days", type=int, default=5, help="calling days to play at most")
    parser.add_argument(
        "--database-url", default=os.environ.get("SAFECALL_TEST_POSTGRES_URL"), help="a PostgreSQL server's admin URL"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or start .ci/postgres")

    name = f"safecall_national_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(args.database_url).set(database=name).render_as_string(hide_password=False)
    environ = {"SAFECALL_DATABASE_URL": url}
    env = {**os.environ, **environ}
    root = instance(
        Path(tempfile.mkdtemp(prefix="safecall-national-")) / "office",
        args.districts,
        args.workers,
        args.channels // args.workers,
    )
    config = ["--", "--config", str(root)]
    rosters = write_rosters(root, args.people, [district(i) for i in range(args.districts)])
    started = time.perf_counter()
    for roster in rosters:
        subprocess.run(
            [sys.executable, CLOCKED_CLI, "--at", MONDAY.isoformat()] + config + ["recipients", "import", str(roster)],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    imported = time.perf_counter() - started

    services = Services.open(load_instance(root, environ), VirtualClock(MONDAY))
    started = time.perf_counter()
    campaigns = [services.campaign(f"d{i:03d}") for i in range(args.districts)]
    for campaign in campaigns:
        launch_run(
            services.db,
            campaign,
            campaign.calendar(services.instance),
            now=MONDAY,
            order=services.first_call_order(campaign, every_trunk=True, campaigns=campaigns),
        )
    launched = time.perf_counter() - started
    calendar = services.campaign("d000").calendar(services.instance)
    db = Database(url)

    def open_runs() -> int:
        with db.engine.connect() as connection:
            return connection.execute(
                sa.select(sa.func.count()).select_from(CampaignRun).where(CampaignRun.status == "open")
            ).scalar()

    with db.engine.connect() as connection:
        commits_before = commits(connection)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # the import's process is not the engine's cost
    peak_mb: list[float] = []
    dialling, opening = 0.0, MONDAY
    for _ in range(args.days):
        if not open_runs():
            break
        closing = datetime.combine(calendar.local(opening).date(), calendar.end, tzinfo=calendar.tz) + timedelta(
            minutes=5
        )
        anchor = time.time()
        clock = [
            sys.executable,
            CLOCKED_CLI,
            "--at",
            opening.isoformat(),
            "--speed",
            str(args.speed),
            "--anchor",
            str(anchor),
        ]
        workers = [
            subprocess.Popen(
                clock + config + ["worker", "run", "--trunk", f"pbx{index}", "--interval", "0.2"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for index in range(1, args.workers + 1)
        ]
        day_started, peaks = time.perf_counter(), []
        try:
            while time.time() < anchor + (closing - opening).total_seconds() / args.speed and open_runs():
                peaks = [peak_memory_mb(worker.pid) for worker in workers]
                time.sleep(1)
        finally:
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(300)
        peak_mb += peaks
        dialling += time.perf_counter() - day_started
        opening = calendar.next_day_opening(opening)
    with db.engine.connect() as connection:
        commits_during = commits(connection) - commits_before
    children = resource.getrusage(resource.RUSAGE_CHILDREN)

    districts = []
    with db.engine.connect() as connection:
        runs = connection.execute(
            sa.select(CampaignRun.id, CampaignRun.campaign, CampaignRun.status).order_by(CampaignRun.id)
        ).all()
    for run_id, campaign_name, status in runs:
        campaign = services.campaign(campaign_name)
        finish = measure_finish(db, run_id, args.channels / args.districts, calendar, campaign)
        districts.append({"campaign": campaign_name, "status": status, **finish})
    with db.engine.connect() as connection:
        attempts = connection.execute(sa.text("SELECT count(*) FROM attempt")).scalar()
        doubled = connection.execute(
            sa.text("SELECT count(*) FROM (SELECT member_id, number FROM attempt GROUP BY 1, 2 HAVING count(*) > 1) d")
        ).scalar()
    completes = [d["list_complete_open_hours"] for d in districts if "list_complete_open_hours" in d]
    ratios = [d["list_complete_over_bound"] for d in districts if "list_complete_over_bound" in d]
    results = {
        "people": args.people,
        "districts": args.districts,
        "workers": args.workers,
        "channels": args.channels,
        "speed": args.speed,
        "machine": machine() + ", PostgreSQL on loopback",
        "import_seconds": round(imported, 1),
        "launch_seconds": round(launched, 1),
        "dialling_seconds": round(dialling, 1),
        "attempts": attempts,
        "attempts_dialled_twice": doubled,
        "runs_still_open": sum(d["status"] == "open" for d in districts),
        "worker_cpu_ms_per_attempt": round(
            (children.ru_utime + children.ru_stime - before.ru_utime - before.ru_stime) / max(1, attempts) * 1000, 2
        ),
        "database_commits_per_second": round(commits_during / max(dialling, 1e-9), 1),
        "worker_peak_memory_mb": round(max(peak_mb or [0]), 1),
        "list_complete_open_hours_by_district": {
            "min": min(completes or [0]),
            "median": statistics.median(completes or [0]),
            "max": max(completes or [0]),
        },
        "list_complete_over_bound_by_district": {
            "min": min(ratios or [0]),
            "median": statistics.median(ratios or [0]),
            "max": max(ratios or [0]),
        },
        "district_runs": districts,
    }
    services.close()
    db.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    report(results, args.json)


if __name__ == "__main__":
    main()
