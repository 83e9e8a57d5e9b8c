"""What every benchmark reports alongside its figures."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def report(results: dict, path: Path | None) -> None:
    """Print the results as JSON, and keep them in `path` (benchmarks/results/) if given."""
    text = json.dumps(results, ensure_ascii=False, indent=2)
    print(text, flush=True)
    if path:
        path.write_text(text + "\n", encoding="utf-8")
