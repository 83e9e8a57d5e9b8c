"""`safecall --help` loads no heavy library (issue 29: start-up is imports). A behaviour test, nothing is timed:
which modules a fresh process imported, read from `python -X importtime` or from sys.modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from safecall.cli import GROUPS

ROOT = Path(__file__).resolve().parents[1]
# The store and its ORM, migrations, the web stack, telephony clients, charts, spreadsheets, the Korean analyser,
# password hashing, holidays and phone numbers: each is imported by the commands that use it. (Not pydantic: Typer
# itself imports it to show a command's help.)
HEAVY = (
    "sqlalchemy",
    "sqlmodel",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "twilio",
    "matplotlib",
    "openpyxl",
    "python_calamine",
    "kiwipiepy",
    "argon2",
    "holidays",
    "phonenumbers",
)


def imported_by(args: list[str], cwd: Path) -> set[str]:
    """Every module `python -X importtime -m safecall ARGS` imported (importtime names each on stderr)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "safecall", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "SAFECALL_LANG": "en", "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Usage:" in done.stdout  # the help itself was printed
    return {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def heavy(modules: set[str]) -> list[str]:
    return sorted(name for name in modules if name.split(".")[0] in HEAVY)


def test_the_root_help_imports_no_heavy_module(tmp_path):
    modules = imported_by(["--help"], tmp_path)
    assert "safecall.cli.campaign" in modules  # the check reads the real import list
    assert heavy(modules) == []
    assert "safecall.settings" not in modules and "pydantic" not in modules  # the language is read without the models


def test_a_group_help_imports_no_heavy_module(tmp_path):
    assert heavy(imported_by(["campaign", "--help"], tmp_path)) == []


def test_every_command_help_imports_no_heavy_module(tmp_path):
    # One process shows every group's and every command's help; whatever one of them imported stays in sys.modules.
    script = (
        "import sys\n"
        "from safecall.cli import create_app\n"
        "app = create_app(environ={'SAFECALL_LANG': 'en'})\n"
        "import typer.main\n"
        "root = typer.main.get_command(app)\n"
        "paths = [[]] + [[name] for name in root.commands] + [\n"
        "    [group, name] for group, command in root.commands.items() for name in getattr(command, 'commands', {})\n"
        "]\n"
        "for path in paths:\n"
        "    try:\n"
        "        create_app(environ={'SAFECALL_LANG': 'en'})([*path, '--help'], prog_name='safecall')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, (path, exc.code)\n"
        "print('MODULES', len(paths), ' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "COLUMNS": "120"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES "))
    _, count, *modules = line.split()
    assert int(count) > len(GROUPS) * 2  # the root, every group and the commands under them
    assert heavy(set(modules)) == []
