"""`campaign plan`'s estimate against a naive guess, on simulated weeks of several sizes, seeds, orders and channels.

Each configuration plays consecutive weeks (`--weeks`, 4 by default) of persistent simulated people through the
real engine (benchmarks/finish_weeks.py, one process each; `--jobs` at a time). Before each week the estimate
(safecall/planning.py) is asked, as `campaign plan` asks it; week 1 has no history (the default mix), later weeks
plan from the weeks before. The naive guess, per week:

- the first calls end at the close of the first calling day;
- the list is complete at the close of the calling day on which one chain of calls placed at the first call (each
  retry at its spacing, calls of the mean length) ends: the spacing alone, no capacity;
- the visits are last week's count (week 1: the default mix's share of the people enrolled, as the estimate's).

Errors are in open-window hours (estimate minus measured) and in people on the visit list. A configuration is
scored over its weeks: for each figure, the sum of the absolute errors of the estimate against the naive guess's;
the estimate beats the guess when its sum is smaller (equal is a tie, not a win).

The configurations on seeds 1 and 2 are the issue's; the same shapes on seeds 3 and 4 are held out: nothing in
planning.py was looked at or tuned on them (its defaults come from benchmarks/plan_defaults.py's seeds 101-104).

    python benchmarks/plan_vs_naive.py --jobs 2 --json benchmarks/results/plan-vs-naive.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from safecall.planning import DEFAULT_CHAINS  # noqa: E402

# people, channels, order, seed: 3 sizes x 2 seeds, due and history order, 2 channel counts (1 per 1,500 and 1 per 750).
CONFIGURATIONS = [
    (1500, 1, "due", 1),
    (1500, 2, "history", 2),
    (3000, 2, "history", 1),
    (3000, 4, "due", 2),
    (6000, 4, "due", 1),
    (6000, 8, "history", 2),
]
# The same shapes on seeds nothing was tuned on.
HELD_OUT = [(people, channels, order, seed + 2) for people, channels, order, seed in CONFIGURATIONS]
FIGURES = ("error_list_complete_hours", "error_first_calls_end_hours", "error_visits")


def play(people: int, channels: int, order: str, seed: int, weeks: int) -> dict:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "finish_weeks.py"),
        "--people",
        str(people),
        "--channels",
        str(channels),
        "--order",
        order,
        "--seed",
        str(seed),
        "--weeks",
        str(weeks),
        "--json",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-3000:]}")
    return json.loads(out.read_text(encoding="utf-8"))


def compare(config: tuple, played: dict) -> list[dict]:
    people, channels, order, seed = config
    rows, last_visits = [], None
    for number, week in enumerate(played["weeks"], start=1):
        estimate, naive = week["estimate"], week["naive"]
        if not week["visit_tasks"]:  # nobody on the list (a smoke run's few people): nothing to compare
            last_visits = 0
            continue
        enrolled = estimate["people"]
        naive_visits = last_visits if last_visits is not None else round(enrolled * sum(DEFAULT_CHAINS.unreachable))
        row = {
            "people": people,
            "enrolled": enrolled,
            "channels": channels,
            "order": order,
            "seed": seed,
            "week": number,
            "plan_from": estimate["source"],
            "measured": {
                "list_complete_at": week["list_complete_at"],
                "list_complete_open_hours": week["list_complete_open_hours"],
                "first_calls_done_at": week["first_calls_done_at"],
                "first_calls_done_open_hours": week["first_calls_done_open_hours"],
                "visits": week["visit_tasks"],
            },
            "plan": {
                "list_complete_at": estimate["list_complete_at"],
                "first_calls_end": estimate["first_calls_end"],
                "visits": estimate["visits_expected"],
                "visits_unrounded": estimate["visits_unrounded"],
            },
            "naive": {"list_complete_at": naive["list_complete_at"], "visits": naive_visits},
        }
        for name, guess in (
            (
                "plan",
                (
                    estimate["list_complete_open_hours"],
                    estimate["first_calls_end_open_hours"],
                    estimate["visits_expected"],
                ),
            ),
            ("naive", (naive["list_complete_open_hours"], naive["first_calls_end_open_hours"], naive_visits)),
        ):
            row[name]["error_list_complete_hours"] = round(guess[0] - week["list_complete_open_hours"], 2)
            row[name]["error_first_calls_end_hours"] = round(guess[1] - week["first_calls_done_open_hours"], 2)
            row[name]["error_visits"] = guess[2] - week["visit_tasks"]
            row[name]["error_visits_share"] = round(guess[2] / week["visit_tasks"] - 1, 3)
        row["plan_closer"] = {
            key: abs(row["plan"][key]) < abs(row["naive"][key])
            if abs(row["plan"][key]) != abs(row["naive"][key])
            else "tie"
            for key in FIGURES
        }
        rows.append(row)
        last_visits = week["visit_tasks"]
    return rows


def score(config: tuple, rows: list[dict]) -> dict:
    """Per configuration, over its weeks: each figure's summed absolute error, the estimate's and the naive guess's."""
    people, channels, order, seed = config
    mine = [row for row in rows if (row["people"], row["channels"], row["order"], row["seed"]) == config]
    result = {"people": people, "channels": channels, "order": order, "seed": seed, "weeks": len(mine)}
    for key in FIGURES:
        plan = round(sum(abs(row["plan"][key]) for row in mine), 2)
        naive = round(sum(abs(row["naive"][key]) for row in mine), 2)
        result[key] = {"plan": plan, "naive": naive, "plan_beats_naive": plan < naive if plan != naive else "tie"}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scale", type=float, default=1.0, help="multiply every configuration's people (a smoke run: 0.02)"
    )
    parser.add_argument("--weeks", type=int, default=4)
    parser.add_argument(
        "--seeds",
        choices=["issue", "held-out", "all"],
        default="all",
        help="the issue's configurations (seeds 1, 2), the held-out ones (seeds 3, 4), or both",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    chosen = {"issue": CONFIGURATIONS, "held-out": HELD_OUT, "all": CONFIGURATIONS + HELD_OUT}[args.seeds]
    configs = [(max(20, round(people * args.scale)), channels, order, seed) for people, channels, order, seed in chosen]
    with ThreadPoolExecutor(args.jobs) as pool:
        played = list(pool.map(lambda config: play(*config, args.weeks), configs))
    rows = [row for config, week in zip(configs, played, strict=True) for row in compare(config, week)]
    scores = [score(config, rows) for config in configs]
    report({"command": " ".join(sys.argv), "machine": machine(), "scores": scores, "weeks": rows}, args.json)


if __name__ == "__main__":
    main()
