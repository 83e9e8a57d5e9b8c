"""Part 3: throughput of 1, 2 and 4 dialer workers sharing one PostgreSQL database.

Each worker is a `safecall worker run` process with its own simulated trunk
(same channels each), all on one accelerated clock. The run is N people in an
always-open window with immediate retries; throughput is attempts settled per
real second, from the first placement until the run closes.

    eval "$(.ci/postgres start)"
    python benchmarks/scaleout.py --people 3000 --channels 10 --speed 50             # channel-bound
    python benchmarks/scaleout.py --people 3000 --channels 400 --speed 200            # CPU-bound

What it measures depends on which runs out first. With 10 channels a worker at x50, a worker's channels can settle
at most channels x speed / (mean call seconds) attempts a (real) second: throughput then grows with workers because
each brings its channels, whatever the CPU does (channel-bound). With channels to spare (hundreds a worker, calls
settling faster than the engine can place them), throughput is what the workers' CPU and the database give
(CPU-bound): on two cores, more than two workers cannot add CPU. Each run reports the channels' capacity, the share
of it used, and the CPU seconds the workers used (from the kernel's accounting of the children).
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from safecall.settings import scaffold_instance  # noqa: E402
from safecall.store import Attempt, CampaignRun, Database  # noqa: E402
from safecall.synthetic import ALWAYS_OPEN_CAMPAIGN, allow_fast_retries, simulated_pbxs_toml, write_roster  # noqa: E402

CLOCKED_CLI = str(ROOT / "tests" / "clocked_cli.py")  # the safecall command on a clock set from outside
NOW = "2026-11-23T10:00+09:00"


def instance(directory: Path, workers: int, channels: int) -> Path:
    scaffold_instance(directory)
    (directory / "config" / "trunks.toml").write_text(simulated_pbxs_toml(workers, channels, 20), encoding="utf-8")
    campaign = directory / "campaigns" / "weekly-safe-call.toml"
    text = campaign.read_text(encoding="utf-8")
    for old, new in ALWAYS_OPEN_CAMPAIGN.items():
        text = text.replace(old, new)
    campaign.write_text(text, encoding="utf-8")
    allow_fast_retries(directory / "config" / "safecall.toml")
    return directory


def measure(admin_url: str, workers: int, people: int, channels: int, speed: float) -> dict:
    name = f"safecall_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    env = {**os.environ, "SAFECALL_DATABASE_URL": url}
    root = instance(Path(tempfile.mkdtemp(prefix="safecall-scale-")) / "office", workers, channels)
    at = [sys.executable, CLOCKED_CLI, "--at", NOW]
    config = ["--", "--config", str(root)]
    roster = write_roster(root / "roster.csv", people, ["사직동"])
    subprocess.run(at + config + ["recipients", "import", str(roster)], env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        at + config + ["campaign", "launch", "weekly-safe-call", "--no-dial"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    db = Database(url)
    anchor = time.time()
    processes = [
        subprocess.Popen(
            at
            + ["--speed", str(speed), "--anchor", str(anchor)]
            + config
            + ["worker", "run", "--trunk", f"pbx{index}", "--interval", "0.2"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for index in range(1, workers + 1)
    ]
    started = time.perf_counter()
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        while True:
            with db.session() as session:
                if session.get(CampaignRun, 1).status == "closed":
                    break
            if time.perf_counter() - started > 1800:
                raise RuntimeError("the run did not close in 30 minutes")
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers_cpu = cpu_after.ru_utime + cpu_after.ru_stime - cpu_before.ru_utime - cpu_before.ru_stime
    with db.engine.connect() as connection:
        attempts = connection.execute(sa.select(sa.func.count()).select_from(Attempt)).scalar()
        doubled = connection.execute(
            sa.text("SELECT count(*) FROM (SELECT member_id, number FROM attempt GROUP BY 1, 2 HAVING count(*) > 1) d")
        ).scalar()
        call_seconds = connection.execute(
            sa.text("SELECT avg(EXTRACT(EPOCH FROM ended_at - placed_at)) FROM attempt WHERE ended_at IS NOT NULL")
        ).scalar()
    db.dispose()
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    # What the channels alone allow: each channel settles one call of the mean length every call_seconds / speed.
    capacity = workers * channels * speed / float(call_seconds) if call_seconds else None
    return {
        "workers": workers,
        "channels_total": workers * channels,
        "attempts": attempts,
        "seconds": round(seconds, 1),
        "attempts_per_second": round(attempts / seconds, 1),
        "attempts_dialled_twice": doubled,
        "mean_call_seconds": round(float(call_seconds or 0), 1),
        "channel_capacity_attempts_per_second": round(capacity, 1) if capacity else None,
        "share_of_channel_capacity": round(attempts / seconds / capacity, 3) if capacity else None,
        "workers_cpu_seconds": round(workers_cpu, 1),
        "workers_cpu_ms_per_attempt": round(1000 * workers_cpu / attempts, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=3000)
    parser.add_argument("--channels", type=int, default=10, help="per worker")
    parser.add_argument("--speed", type=float, default=50)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument(
        "--database-url", default=os.environ.get("SAFECALL_TEST_POSTGRES_URL"), help="a PostgreSQL server's admin URL"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if not args.database_url:
        parser.error("give --database-url or start .ci/postgres")
    results = {
        "command": " ".join(sys.argv),
        "people": args.people,
        "speed": args.speed,
        "channels_per_worker": args.channels,
        "machine": machine() + ", PostgreSQL on loopback",
        "runs": [
            measure(args.database_url, int(w), args.people, args.channels, args.speed) for w in args.workers.split(",")
        ],
    }
    report(results, args.json)


if __name__ == "__main__":
    main()
