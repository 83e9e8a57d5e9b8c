"""Benchmark 1c: importing a 100,000-row roster, as CSV and as XLSX, into a new SQLite instance.

    python benchmarks/import_roster.py --rows 100000

Each import runs `safecall recipients import` in a fresh process, timed from
start to exit, so the figure is what a welfare officer waits for.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from openpyxl import Workbook

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402

from safecall.synthetic import HEADER, synthetic_people, write_roster  # noqa: E402

DONGS = ["청운효자동", "사직동", "삼청동", "부암동", "평창동", "무악동", "교남동", "가회동", "이화동"]


def write_xlsx(path: Path, rows: int) -> Path:
    book = Workbook(write_only=True)
    sheet = book.create_sheet("명단")
    sheet.append(HEADER)
    for row in synthetic_people(rows, DONGS):
        sheet.append(row)
    book.save(path)
    return path


def timed_import(roster: Path, workdir: Path) -> dict:
    instance = workdir / f"office-{roster.suffix[1:]}"
    subprocess.run([sys.executable, "-m", "safecall", "init", str(instance)], check=True, stdout=subprocess.DEVNULL)
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, str(ROOT / "tests" / "clocked_cli.py"), "--at", "2026-11-23T08:00+09:00", "--", "--config", str(instance),
                           "recipients", "import", str(roster)], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"seconds": round(seconds, 1), "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1),
            "peak_memory_mb": round(after.ru_maxrss / 1024), "output": done.stdout.strip().splitlines()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="safecall-import-"))
    csv_file = write_roster(workdir / "roster.csv", args.rows, DONGS)
    xlsx_file = write_xlsx(workdir / "roster.xlsx", args.rows)
    results = {
        "rows": args.rows,
        "machine": machine(),
        "csv": timed_import(csv_file, workdir),
        "xlsx": timed_import(xlsx_file, workdir),
    }
    report(results, args.json)


if __name__ == "__main__":
    main()
