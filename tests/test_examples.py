"""The shipped sample roster: what examples/make_roster.py writes, and importable as the README says."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from openpyxl import load_workbook
from sqlmodel import select

from safecall.store import Person

REPO = Path(__file__).parent.parent
EXAMPLE = REPO / "examples" / "roster.xlsx"


def cell_values(path: Path) -> dict[str, list[tuple]]:
    workbook = load_workbook(path)
    return {sheet.title: [tuple(row) for row in sheet.iter_rows(values_only=True)] for sheet in workbook.worksheets}


def test_the_committed_example_is_what_its_script_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_roster", REPO / "examples" / "make_roster.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert cell_values(script.build(tmp_path / "roster.xlsx")) == cell_values(EXAMPLE)


def test_the_readme_imports_the_example_roster_as_written(cli, monkeypatch):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    using = readme[readme.index("## Using it") : readme.index("## Databases")]
    commands = [line.split("#")[0].split() for line in using.splitlines() if "recipients import" in line]
    assert [c[1:] for c in commands] == [
        ["recipients", "import", "examples/roster.xlsx", "--dry-run"],
        ["recipients", "import", "examples/roster.xlsx"],
    ]
    monkeypatch.chdir(REPO)  # as from a fresh clone
    dry = cli(*commands[0][1:])
    assert "Would import 9 rows from examples/roster.xlsx: 9 added" in dry.output
    done = cli(*commands[1][1:])
    assert "Imported 9 rows" in done.output and "1 without consent" in done.output and "한금자" in done.output
    with cli.db().session() as session:
        people = list(session.exec(select(Person).order_by(Person.id)))
    assert len(people) == 9 and {p.team for p in people} == {"1팀", "2팀", "3팀"}
    assert next(p for p in people if p.name == "박영철").phone2 == "+827001236002"
