"""Measure the default chains of `campaign plan` (safecall/planning.py) on simulated weeks of training seeds.

Plays `--weeks` weeks of persistent simulated people through the real engine (benchmarks/finish_weeks.py) for each
training configuration, then pools how the people of each planning class (their class by the week before the run)
ended each run after the first, how everyone ended the first (the default mix, nobody has history yet), and the mean
length of the n-th call over every run. The seeds here are kept apart from those benchmarks/plan_vs_naive.py
measures the plan on.

    python benchmarks/plan_defaults.py --jobs 2 --json benchmarks/results/plan-defaults-by-order.json
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from benchmarks.common import commit, machine, play_finish_weeks, report  # noqa: E402
from benchmarks.finish_weeks import FIRST_MONDAY  # noqa: E402
from safecall.clock import VirtualClock  # noqa: E402
from safecall.history import member_histories  # noqa: E402
from safecall.planning import _chains, _seconds_by_call, planning_class  # noqa: E402
from safecall.services import Services  # noqa: E402
from safecall.settings import load_instance  # noqa: E402
from safecall.store import CampaignRun, MemberState, RunMember  # noqa: E402

# people, channels, order, seed: training only (plan_vs_naive.py measures seeds 1-4).
FIRST_WEEK = "first week"
TRAINING = [
    (3000, 2, "history", 101),
    (3000, 4, "due", 102),
    (1500, 1, "due", 103),
    (1500, 2, "history", 104),
    (3000, 2, "history", 105),
    (6000, 8, "history", 106),
]


def play(people: int, channels: int, order: str, seed: int, weeks: int) -> Path:
    keep = Path(tempfile.mkdtemp(prefix="safecall-plan-defaults-"))
    play_finish_weeks(people, channels, order, seed, weeks, keep / "weeks.json", "--keep", str(keep))
    return keep


def measure(keep: Path, outcomes: dict, seconds: dict) -> None:
    services = Services.open(load_instance(keep, {}), VirtualClock(FIRST_MONDAY))
    tz = services.campaign("weekly-safe-call").calendar(services.instance).tz
    with services.db.engine.connect() as connection:
        runs = connection.execute(sa.select(CampaignRun).order_by(CampaignRun.week_start)).all()
        for number, run in enumerate(runs):
            for call, mean, count in _seconds_by_call(connection, run.id):
                seconds[call][0] += mean * count
                seconds[call][1] += count
            members = connection.execute(
                sa.select(RunMember.id, RunMember.state, RunMember.attempts_made)
                .where(RunMember.run_id == run.id)
                .order_by(RunMember.id)
            ).all()
            for (_, state, attempts), (_, history) in zip(
                members, member_histories(connection, run.id, run.campaign, run.week_start, 4, tz), strict=True
            ):
                if state == MemberState.WITHDRAWN or attempts == 0:
                    continue
                # The first week (nobody has history): the default mix; later weeks: by planning class.
                klass = FIRST_WEEK if number == 0 else planning_class(history)
                outcomes[klass][("unreachable" if state == MemberState.UNREACHABLE else "answered", attempts)] += 1
    services.close()


def described(outcomes: dict) -> dict:
    classes = {}
    for klass, counts in sorted(outcomes.items(), key=lambda item: str(item[0])):
        chains = _chains(counts)
        classes[klass] = {
            "people": sum(counts.values()),
            "answered": [round(x, 4) for x in chains.answered],
            "unreachable": [round(x, 4) for x in chains.unreachable],
            "unreachable_share": round(sum(chains.unreachable), 4),
        }
    return classes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every configuration's people (a smoke run: 0.02)"
    )
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with ThreadPoolExecutor(args.jobs) as pool:
        kept = list(
            pool.map(lambda config: play(max(20, round(config[0] * args.scale)), *config[1:], args.weeks), TRAINING)
        )
    outcomes: dict[int, Counter] = defaultdict(Counter)
    by_order: dict[str, dict[int, Counter]] = {"history": defaultdict(Counter), "due": defaultdict(Counter)}
    seconds: dict[int, list] = defaultdict(lambda: [0.0, 0])
    for keep, config in zip(kept, TRAINING, strict=True):
        mine: dict[int, Counter] = defaultdict(Counter)
        measure(keep, mine, seconds)
        for klass, counts in mine.items():
            outcomes[klass] += counts
            by_order[config[2]][klass] += counts
        shutil.rmtree(keep)  # the weeks' instance, only needed for this measure
    classes = described(outcomes)
    classes_by_order = {order: described(counts) for order, counts in by_order.items()}
    report(
        {
            "command": " ".join(sys.argv),
            "commit": commit(),
            "machine": machine(),
            "training": TRAINING,
            "weeks": args.weeks,
            "classes": classes,
            # In history order the dialer calls people at the hour they answered last time: the chains differ.
            "classes_by_order": classes_by_order,
            "seconds_by_call": [round(total / count, 1) for _, (total, count) in sorted(seconds.items())],
        },
        args.json,
    )


if __name__ == "__main__":
    main()
