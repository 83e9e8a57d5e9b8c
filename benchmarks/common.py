"""What every benchmark reports alongside its figures."""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def safecall_command() -> list[str]:
    """The safecall command run from this checkout, before and after the CLI moved into the package."""
    if (ROOT / "safecall" / "__main__.py").exists():
        return [sys.executable, "-m", "safecall"]
    return [sys.executable, str(ROOT / "cli.py")]


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(results: dict, path: Path | None) -> None:
    """Print the results as JSON, and keep them in `path` (benchmarks/results/) if given."""
    text = json.dumps(results, ensure_ascii=False, indent=2)
    print(text, flush=True)
    if path:
        path.write_text(text + "\n", encoding="utf-8")
