"""Benchmark 1c: importing a 100,000-row roster, as CSV and as XLSX, into a new SQLite instance.

    python benchmarks/import_roster.py --rows 100000 --rounds 3 [--baseline DIR]

Each import runs `safecall recipients import` in a fresh process, timed from start to exit, so the figure is what a
welfare officer waits for. CSV and XLSX alternate round by round (and with the checkout in DIR, e.g. a worktree of
an older commit, when given), so a drift of the machine's speed falls on both. Memory is the whole process tree's
peak (the importer checks rows in a process pool): the sum of proportional set sizes (PSS, shared pages divided
among the processes sharing them), and of resident sizes (which count shared pages in each), sampled every 50 ms.
CPU is the whole tree's (the importer and its pool); the importer's own CPU, where reading the file happens, is
sampled with the memory from /proc (so it can be up to 50 ms short).

The same rows are written as two workbooks: by openpyxl, which writes every text inline in the sheet (58 MB of XML
for 100,000 rows), and by XlsxWriter, which keeps each text once in the shared strings as Excel and LibreOffice do
(a 32 MB sheet and 9 MB of strings). The machine's load average is kept with every import.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
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


def write_xlsx_shared_strings(path: Path, rows: int) -> Path:
    """The same rows as Excel saves them: each text once in xl/sharedStrings.xml, cells refer to it by number."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet("명단")
    sheet.write_row(0, 0, HEADER)
    for number, row in enumerate(synthetic_people(rows, DONGS), start=1):
        sheet.write_row(number, 0, row)
    book.close()
    return path


def process_tree(pid: int) -> list[int]:
    tree, index = [pid], 0
    while index < len(tree):
        try:
            for task in Path(f"/proc/{tree[index]}/task").iterdir():
                tree += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
        index += 1
    return tree


def process_cpu_seconds(pid: int) -> float | None:
    """User and system CPU of one process so far, from /proc/PID/stat (None once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_memory_kib(pid: int) -> tuple[int, int]:
    """(PSS, RSS) summed over `pid` and its descendants, in KiB."""
    pss = rss = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            pass
    return pss, rss


def timed_import(checkout: Path, roster: Path, workdir: Path) -> dict:
    instance = Path(tempfile.mkdtemp(prefix=f"office-{roster.suffix[1:]}-", dir=workdir))
    # The checkout's own code: tests/clocked_cli.py puts its repository first on the path.
    cli = [
        sys.executable,
        str(checkout / "tests" / "clocked_cli.py"),
        "--at",
        "2026-11-23T08:00+09:00",
        "--",
        "--config",
        str(instance),
    ]
    subprocess.run([*cli, "init", str(instance)], check=True, stdout=subprocess.DEVNULL)
    load_before = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        [*cli, "recipients", "import", str(roster)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak = [0, 0]
    importer_cpu = [0.0]

    def sample() -> None:
        while process.poll() is None:
            pss, rss = tree_memory_kib(process.pid)
            peak[0], peak[1] = max(peak[0], pss), max(peak[1], rss)
            importer_cpu[0] = process_cpu_seconds(process.pid) or importer_cpu[0]
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()[0]
    if process.returncode:
        raise SystemExit(f"import of {roster} failed ({process.returncode}): {err[-2000:]}")
    return {
        "seconds": round(seconds, 2),
        "cpu_seconds": round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 2),
        "importer_cpu_seconds": round(importer_cpu[0], 2),
        "tree_peak_pss_mb": round(peak[0] / 1024),
        "tree_peak_rss_mb": round(peak[1] / 1024),
        "largest_process_peak_rss_mb": round(after.ru_maxrss / 1024),
        "load_average_1min": [round(load_before, 1), round(load_after, 1)],
        "output": out.strip().splitlines()[0],
    }


def spread(values: list[float]) -> dict:
    return {"min": min(values), "median": round(statistics.median(values), 3), "max": max(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--baseline", type=Path, help="another checkout (e.g. a worktree of an older commit) to alternate with"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="safecall-import-"))
    csv_file = write_roster(workdir / "roster.csv", args.rows, DONGS)
    xlsx_file = write_xlsx(workdir / "roster.xlsx", args.rows)
    shared_file = write_xlsx_shared_strings(workdir / "roster-shared-strings.xlsx", args.rows)
    sides = {"this": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
    rounds = []
    for number in range(1, args.rounds + 1):
        for side, checkout in sides.items():
            csv_run = timed_import(checkout, csv_file, workdir)
            xlsx_run = timed_import(checkout, xlsx_file, workdir)
            shared_run = timed_import(checkout, shared_file, workdir)
            rounds.append(
                {
                    "round": number,
                    "code": side,
                    "csv": csv_run,
                    "xlsx": xlsx_run,
                    "xlsx_shared_strings": shared_run,
                    "xlsx_over_csv_seconds": round(xlsx_run["seconds"] / csv_run["seconds"], 3),
                    "xlsx_over_csv_cpu": round(xlsx_run["cpu_seconds"] / csv_run["cpu_seconds"], 3),
                    "shared_strings_over_csv_seconds": round(shared_run["seconds"] / csv_run["seconds"], 3),
                    "shared_strings_over_csv_cpu": round(shared_run["cpu_seconds"] / csv_run["cpu_seconds"], 3),
                    "xlsx_over_csv_importer_cpu": round(
                        xlsx_run["importer_cpu_seconds"] / csv_run["importer_cpu_seconds"], 3
                    ),
                    "shared_strings_over_csv_importer_cpu": round(
                        shared_run["importer_cpu_seconds"] / csv_run["importer_cpu_seconds"], 3
                    ),
                }
            )
            print(
                f"round {number} {side}: "
                + ", ".join(
                    f"{kind} {run['seconds']} s / {run['cpu_seconds']} s CPU (importer {run['importer_cpu_seconds']} s)"
                    f" / {run['tree_peak_pss_mb']} MB PSS "
                    f"(load {run['load_average_1min'][0]}-{run['load_average_1min'][1]})"
                    for kind, run in (("csv", csv_run), ("xlsx", xlsx_run), ("xlsx shared strings", shared_run))
                ),
                file=sys.stderr,
                flush=True,
            )
    results = {
        "rows": args.rows,
        "machine": machine(),
        "command": " ".join(sys.argv),
        "rounds": rounds,
        "summary": {
            side: {
                key: spread([r[key] for r in rounds if r["code"] == side])
                for key in (
                    "xlsx_over_csv_seconds",
                    "xlsx_over_csv_cpu",
                    "shared_strings_over_csv_seconds",
                    "shared_strings_over_csv_cpu",
                    "xlsx_over_csv_importer_cpu",
                    "shared_strings_over_csv_importer_cpu",
                )
            }
            for side in sides
        },
    }
    report(results, args.json)


if __name__ == "__main__":
    main()
