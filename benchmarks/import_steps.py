"""Where the CPU of reading a roster goes, step by step, CSV against XLSX (issue 29), in one process.

    python benchmarks/import_steps.py --rows 100000 --repeat 5 [--checkout DIR] [--json FILE]

The same synthetic rows as benchmarks/import_roster.py, as CSV and as its two workbooks (openpyxl's inline
strings; XlsxWriter's shared strings, as Excel saves). Each step is timed with `time.process_time` (CPU of this
process, so other jobs on the machine count little); CSV and XLSX alternate, every repeat is kept. The steps after
the file is read (`_check_cells`, `_table`: the path both formats share) are timed too, to show what is left is
the parse. With --checkout, the steps are those of the code in DIR (e.g. a worktree of an older commit).
"""

from __future__ import annotations

import argparse
import importlib
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import machine, report  # noqa: E402
from benchmarks.import_roster import DONGS, write_xlsx, write_xlsx_shared_strings  # noqa: E402
from safecall.synthetic import write_roster  # noqa: E402

tables = None  # safecall.tables of the checkout measured, imported in main()


def timed(steps: dict, name: str, work):
    started = time.process_time()
    result = work()
    steps[name] = round(time.process_time() - started, 3)
    return result


def csv_steps(path: Path) -> dict:
    steps: dict = {}
    data = timed(steps, "read the file", lambda: tables._read_bytes(path, tables.LIMITS))
    records = timed(steps, "decode, line lengths, csv module", lambda: tables._read_csv(path, data, tables.LIMITS))
    shared_steps(steps, records)
    return steps


def xlsx_steps(path: Path) -> dict:
    from python_calamine import CalamineWorkbook

    steps: dict = {}
    data = timed(steps, "read the file", lambda: tables._read_bytes(path, tables.LIMITS))
    ((name, _),) = timed(
        steps,
        "bomb checks (zip directory, every part unpacked, cells and texts measured)",
        lambda: tables._xlsx_sheets(path, data, tables.LIMITS),
    )
    sheet = timed(
        steps,
        "calamine: open and parse the sheet",
        lambda: CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_name(name),
    )
    records = timed(steps, "calamine: cells to Python lists", lambda: sheet.to_python(skip_empty_area=False))
    shared_steps(steps, records)
    return steps


def shared_steps(steps: dict, records: list) -> None:
    timed(steps, "shared: cell limits", lambda: tables._check_cells("roster", records, tables.LIMITS))
    is_header = importlib.import_module("safecall.roster").is_roster_header
    timed(
        steps,
        "shared: header and rows",
        lambda: tables._table("roster", records, tables._find_header(records, is_header, 20)),
    )
    steps["total"] = round(sum(value for key, value in steps.items() if key != "total"), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", type=Path, help="another checkout whose safecall/ is measured")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    global tables
    if args.checkout:
        for name in [name for name in sys.modules if name == "safecall" or name.startswith("safecall.")]:
            del sys.modules[name]
        sys.path.insert(0, str(args.checkout.resolve()))
    tables = importlib.import_module("safecall.tables")
    workdir = Path(tempfile.mkdtemp(prefix="safecall-steps-"))
    csv_file = write_roster(workdir / "roster.csv", args.rows, DONGS)
    xlsx_file = write_xlsx(workdir / "roster.xlsx", args.rows)
    shared_file = write_xlsx_shared_strings(workdir / "roster-shared-strings.xlsx", args.rows)
    repeats = [
        {"csv": csv_steps(csv_file), "xlsx": xlsx_steps(xlsx_file), "xlsx_shared_strings": xlsx_steps(shared_file)}
        for _ in range(args.repeat)
    ]
    report(
        {
            "rows": args.rows,
            "machine": machine(),
            "command": " ".join(sys.argv),
            "code": str(Path(tables.__file__).parent.parent.name),
            "repeats": repeats,
        },
        args.json,
    )


if __name__ == "__main__":
    main()
