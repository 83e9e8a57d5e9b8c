"""The layers of the house, read from the code's own imports (docs/architecture.md is the map)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "safecall"


def imported_modules(path: Path) -> set[str]:
    """Every safecall module a file imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "safecall" or name.startswith("safecall.")}


def test_the_domain_floor_imports_nothing_from_the_project():
    assert imported_modules(PACKAGE / "domain.py") == set()


def test_the_store_does_not_import_settings_or_anything_above_it():
    above = ("safecall.settings", "safecall.services", "safecall.lifecycle", "safecall.cli", "safecall.web", "safecall.telephony")
    for path in sorted((PACKAGE / "store").rglob("*.py")):
        offending = {name for name in imported_modules(path) if name.startswith(above)}
        assert not offending, f"{path.relative_to(PACKAGE.parent)} imports {sorted(offending)}"


def test_pure_rules_do_not_import_the_database():
    for name in ("ordering.py", "campaign.py", "policy.py", "domain.py", "dburl.py", "conversation.py"):
        store = {m for m in imported_modules(PACKAGE / name) if m.startswith("safecall.store")}
        assert not store, f"safecall/{name} imports {sorted(store)}"
