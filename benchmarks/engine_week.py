"""Benchmarks 1a and 1b: one weekly run of N people on the simulated trunk in accelerated (virtual) time.

Reports the engine's cost (wall time, peak memory) and its dialling efficiency:
channel utilisation while calls are due, and makespan against the lower bound
total call-seconds / channels. `--pacer fixed --calls-per-minute R` runs the
same workload under a fixed-rate pacer (Newfies-Dialer's "frequency").

    python benchmarks/engine_week.py --people 100000 --channels 60
    python benchmarks/engine_week.py --people 100000 --channels 60 --pacer fixed --calls-per-minute 100

The roster is imported by the CLI in a separate process first, so the peak
memory reported is the engine's (launch and dialling) alone.

`--time-sqlite` also times SQLite's own work (each statement and each commit,
on the driver's connection) and reports it by statement: the part of the
engine's time no change above the database can remove. The timers cost
time themselves: the engine's week runs about a quarter longer in that mode.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.common import machine, report  # noqa: E402
from benchmarks.efficiency import measure_efficiency  # noqa: E402
from benchmarks.fixed_rate import FixedRateDialer  # noqa: E402
from safecall.clock import VirtualClock  # noqa: E402
from safecall.policy import week_start  # noqa: E402
from safecall.runs import launch_run  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance, scaffold_instance  # noqa: E402
from safecall.synthetic import write_roster  # noqa: E402

TRUNKS = """default = "simulated"
[trunks.simulated]
type = "simulated"
channels = {channels}
calls_per_second = {cps}
seed = 2026
away_percent = 3
invalid_percent = 1
[trunks.simulated.mix]
ack = 80
help = 2
no_key = 5
no_answer = 8
busy = 2
machine = 1
hangup = 1
congestion = 1
"""


def prepare(
    directory: Path, people: int, channels: int, cps: float, database_url: str | None, trunks: str = TRUNKS
) -> dict:
    scaffold_instance(directory)
    (directory / "config" / "trunks.toml").write_text(trunks.format(channels=channels, cps=cps), encoding="utf-8")
    environ = {"SAFECALL_DATABASE_URL": database_url} if database_url else {}
    instance = load_instance(directory, environ)
    roster = write_roster(
        directory / "roster.csv",
        people,
        [dong for team in instance.settings.teams for dong in team.dongs] or ["사직동"],
    )
    started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "clocked_cli.py"),
            "--at",
            "2026-11-23T08:00+09:00",
            "--",
            "--config",
            str(directory),
            "recipients",
            "import",
            str(roster),
        ],
        check=True,
        env={**os.environ, **environ},
        stdout=subprocess.DEVNULL,
    )
    return {"import_seconds": round(time.perf_counter() - started, 1), "environ": environ}


class SqliteTimes:
    """SQLite's own time by statement: a connection factory for sqlite3 whose cursors and commits are timed."""

    def __init__(self):
        self.by_statement: dict[str, list] = defaultdict(lambda: [0, 0.0])
        self.timing = True  # off once the engine is done: the efficiency queries are not its cost

    def add(self, sql: str, seconds: float, count: int = 1) -> None:
        if self.timing:
            entry = self.by_statement[re.sub(r"\s+", " ", sql).strip()[:60]]
            entry[0] += count
            entry[1] += seconds

    def connection_factory(self) -> type[sqlite3.Connection]:
        times = self

        class TimedCursor(sqlite3.Cursor):
            def execute(self, sql, parameters=()):
                self.sql, started = sql, time.perf_counter()
                try:
                    return super().execute(sql, parameters)
                finally:
                    times.add(sql, time.perf_counter() - started)

            def fetchall(self):  # a statement's later steps (rows after the first, RETURNING's end) run here
                started = time.perf_counter()
                try:
                    return super().fetchall()
                finally:
                    times.add(self.sql, time.perf_counter() - started, count=0)

        class TimedConnection(sqlite3.Connection):
            def cursor(self, factory=TimedCursor):
                return super().cursor(factory)

            def commit(self):
                if not self.in_transaction:  # nothing written: SQLite is not called
                    return super().commit()
                started = time.perf_counter()
                try:
                    return super().commit()
                finally:
                    times.add("COMMIT", time.perf_counter() - started)

        return TimedConnection

    def attach(self, engine: sa.Engine) -> None:
        sa.event.listen(
            engine,
            "do_connect",
            lambda dialect, record, cargs, cparams: cparams.update(factory=self.connection_factory()),
        )
        engine.dispose()  # connections opened before this point are not timed: replace them

    def summary(self, attempts: int, engine_seconds: float) -> dict:
        total = sum(seconds for _, seconds in self.by_statement.values())
        rows = sorted(self.by_statement.items(), key=lambda item: -item[1][1])
        return {
            "sqlite_seconds": round(total, 1),
            "sqlite_share_of_engine": round(total / engine_seconds, 3),
            "sqlite_us_per_attempt": round(total / attempts * 1e6),
            "sqlite_by_statement": [
                {
                    "statement": sql,
                    "count": count,
                    "per_attempt": round(count / attempts, 2),
                    "us_each": round(seconds / count * 1e6, 1),
                    "seconds": round(seconds, 2),
                }
                for sql, (count, seconds) in rows
                if seconds >= 0.005 * total
            ],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--channels", type=int, default=60)
    parser.add_argument("--cps", type=float, default=10, help="the trunk's calls-per-second limit")
    parser.add_argument("--pacer", choices=["engine", "fixed"], default="engine")
    parser.add_argument("--calls-per-minute", type=float, default=100, help="fixed pacer's rate")
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--keep", type=Path, help="build the instance here and keep it")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--time-sqlite", action="store_true", help="also time SQLite's own work, by statement")
    args = parser.parse_args()

    directory = args.keep or Path(tempfile.mkdtemp(prefix="safecall-bench-"))
    prepared = prepare(directory, args.people, args.channels, args.cps, args.database_url)
    instance = load_instance(directory, prepared["environ"])
    monday = week_start(datetime.fromisoformat("2026-11-23T08:00+09:00"), instance.tz)
    clock = VirtualClock(datetime.combine(monday, datetime.min.time(), tzinfo=instance.tz) + timedelta(hours=8))
    services = Services.open(instance, clock)
    campaign = services.campaign("weekly-safe-call")
    calendar = campaign.calendar(instance)
    sqlite_times = SqliteTimes() if args.time_sqlite else None
    if sqlite_times:
        if services.db.engine.dialect.name != "sqlite":
            parser.error("--time-sqlite times SQLite only")
        sqlite_times.attach(services.db.engine)

    started = time.perf_counter()
    run, _ = launch_run(services.db, campaign, calendar, now=clock.now())
    launched = time.perf_counter()
    dialer = services.dialer(campaign)
    if args.pacer == "fixed":
        dialer = FixedRateDialer.like(dialer, calls_per_minute=args.calls_per_minute)
    dialer.run(run.id)
    finished = time.perf_counter()
    if sqlite_times:
        sqlite_times.timing = False
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    results = {
        "people": args.people,
        "channels": args.channels,
        "pacer": args.pacer,
        "calls_per_minute": args.calls_per_minute if args.pacer == "fixed" else None,
        "database": services.db.engine.dialect.name,
        "import_seconds": prepared["import_seconds"],
        "launch_seconds": round(launched - started, 1),
        "dial_seconds": round(finished - launched, 1),
        "engine_seconds": round(finished - started, 1),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_memory_mb": round(peak_mb),
        "machine": machine(),
    }
    results.update(measure_efficiency(services.db, run.id, args.channels, calendar, campaign))
    if sqlite_times:
        results.update(sqlite_times.summary(results["attempts"], finished - started))
    with services.db.engine.connect() as connection:
        results["members_by_state"] = dict(
            connection.execute(
                sa.text("SELECT state, count(*) FROM runmember WHERE run_id = :run GROUP BY state"), {"run": run.id}
            ).all()
        )
    services.close()
    report(results, args.json)


if __name__ == "__main__":
    main()
