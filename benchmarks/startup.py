"""Start-up: `safecall --help` and `safecall campaign status` against a minimal Typer app, side by side in one run.

Each command runs as a fresh process, the sides alternated round by round so a drift of the machine's speed falls on
all of them; CPU time (user + system, from the kernel's accounting of the child) is the steadier figure on a shared
machine, wall time is what a person waits.

    python benchmarks/startup.py --rounds 7 [--baseline DIR] [--from-source]     # DIR: a checkout of another commit

Each checkout's `safecall` package is compiled to bytecode first, as an installed release is (pip compiles a wheel's
modules): otherwise, with PYTHONDONTWRITEBYTECODE set (as here), every run compiles every module it imports from
source, a cost that grows with the modules imported and that no installed SafeCall pays. `--from-source` measures
that way instead (the checkouts' bytecode caches are removed first).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from safecall.synthetic import write_roster  # noqa: E402

MINIMAL_APP = '''
import typer
app = typer.Typer(add_completion=False)

@app.command()
def hello(name: str = "world"):
    """Say hello."""
    print(f"hello {name}")

@app.command()
def bye():
    """Say goodbye."""

app()
'''


def timed(command: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def commit(checkout: Path) -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True, text=True)
    changed = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"], cwd=checkout, capture_output=True, text=True
    )
    return (
        done.stdout.strip() + (" with uncommitted changes" if changed.stdout.strip() else "")
        if done.returncode == 0
        else "unknown"
    )


def prepare_bytecode(checkout: Path, from_source: bool) -> None:
    """Compiled as an installed release is, or no bytecode at all (--from-source)."""
    if from_source:
        for cache in (checkout / "safecall").rglob("__pycache__"):
            shutil.rmtree(cache)
    else:  # compileall rewrites only what is missing or stale
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", "safecall"], cwd=checkout, check=True, stdout=subprocess.DEVNULL
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="another checkout to run beside this one")
    parser.add_argument(
        "--from-source", action="store_true", help="no bytecode: each run compiles the modules it imports"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="safecall-startup-"))
    (work / "minimal.py").write_text(MINIMAL_APP, encoding="utf-8")
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    checkouts = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    for checkout in checkouts.values():
        prepare_bytecode(checkout, args.from_source)
    instances = {}
    for side, checkout in checkouts.items():  # an initialised instance with its database at the newest revision
        instances[side] = work / f"office-{side}"
        subprocess.run(
            [sys.executable, "-m", "safecall", "init", str(instances[side])],
            cwd=checkout,
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        roster = write_roster(
            work / "roster.csv", 200, ["사직동"]
        )  # a run to show: 200 people, launched without dialling
        for command in (["recipients", "import", str(roster)], ["campaign", "launch", "weekly-safe-call", "--no-dial"]):
            subprocess.run(
                [sys.executable, "-m", "safecall", "--config", str(instances[side]), *command],
                cwd=checkout,
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        timed([sys.executable, "-m", "safecall", "--config", str(instances[side]), "campaign", "status"], checkout, env)
    cases = {"minimal typer --help": ([sys.executable, str(work / "minimal.py"), "--help"], work)}
    for side, checkout in checkouts.items():
        cases[f"{side}: safecall --help"] = ([sys.executable, "-m", "safecall", "--help"], checkout)
        cases[f"{side}: safecall campaign status"] = (
            [sys.executable, "-m", "safecall", "--config", str(instances[side]), "campaign", "status"],
            checkout,
        )
    rounds = {name: [] for name in cases}
    for number in range(args.rounds):
        for name, (command, cwd) in cases.items():
            wall, cpu = timed(command, cwd, env)
            rounds[name].append({"round": number + 1, "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3)})
    summary = {
        name: {
            key: {
                "min": min(r[key] for r in runs),
                "median": round(statistics.median(r[key] for r in runs), 3),
                "max": max(r[key] for r in runs),
            }
            for key in ("wall_seconds", "cpu_seconds")
        }
        for name, runs in rounds.items()
    }
    minimal = summary["minimal typer --help"]["cpu_seconds"]["median"]
    for name in summary:
        summary[name]["cpu_over_minimal_help"] = round(summary[name]["cpu_seconds"]["median"] / minimal, 2)
    report(
        {
            "command": " ".join(sys.argv),
            "commits": {side: commit(checkout) for side, checkout in checkouts.items()},
            "bytecode": "none: compiled from source at each run" if args.from_source else "compiled before the runs",
            "machine": machine(),
            "load_average_before": os.getloadavg(),
            "rounds": rounds,
            "summary": summary,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
