"""What every benchmark reports alongside its figures."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def commit() -> str:
    """The checkout's commit, with "+changes" when its files differ from it (figures from a tree not in history)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def report(results: dict, path: Path | None) -> None:
    """Print the results as JSON, and keep them in `path` (benchmarks/results/) if given."""
    text = json.dumps(results, ensure_ascii=False, indent=2)
    print(text, flush=True)
    if path:
        path.write_text(text + "\n", encoding="utf-8")


def play_finish_weeks(people: int, channels: int, order: str, seed: int, weeks: int, out: Path, *extra: str) -> None:
    """benchmarks/finish_weeks.py in a process of its own, its figures written to `out` (JSON); `extra`: more of
    its options (e.g. --keep DIR). Exits naming the command when it fails."""
    command = [
        sys.executable,
        str(Path(__file__).resolve().parent / "finish_weeks.py"),
        *("--people", str(people), "--channels", str(channels), "--order", order),
        *("--seed", str(seed), "--weeks", str(weeks), "--json", str(out)),
        *extra,
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr[-3000:]}")
