from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from cli import create_app
from safecall.clock import VirtualClock
from safecall.settings import load_instance
from safecall.store import Database

SEOUL = ZoneInfo("Asia/Seoul")
# Monday 23 November 2026, 08:00 in Seoul: before the weekly slot (Monday 10:00).
MONDAY_MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL)

HEADER = ["성명", "전화번호", "보조연락처", "주소", "행정동", "생년월일", "보호자 성명", "보호자 연락처", "동의일자", "위험도"]


def person_row(name: str, phone: str, dong: str = "사직동", born: str = "1945-03-01", consent: str = "2025-01-10",
               risk: str = "중", phone2: str = "", guardian: str = "", guardian_phone: str = "") -> list[str]:
    return [name, phone, phone2, f"서울특별시 종로구 {dong} 1-1", dong, born, guardian, guardian_phone, consent, risk]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


class Cli:
    """Runs the real Typer app against one instance, with a clock the test moves."""

    def __init__(self, root: Path, clock: VirtualClock):
        self.root = root
        self.clock = clock
        self.runner = CliRunner()
        self.app = create_app(make_clock=lambda: clock, environ={})

    def __call__(self, *args: str, ok: bool = True):
        result = self.runner.invoke(self.app, ["--config", str(self.root), *args])
        if ok and result.exit_code != 0:
            raise AssertionError(f"safecall {' '.join(args)} failed ({result.exit_code}):\n{result.output}\n{result.exception!r}")
        return result

    def db(self) -> Database:
        database = Database(load_instance(self.root, {}).database_url())
        database.create_schema()
        return database

    def set_trunks(self, text: str) -> None:
        (self.root / "config" / "trunks.toml").write_text(text, encoding="utf-8")

    def edit_campaign(self, old: str, new: str, name: str = "weekly-safe-call") -> None:
        path = self.root / "campaigns" / f"{name}.toml"
        text = path.read_text(encoding="utf-8")
        assert old in text, old
        path.write_text(text.replace(old, new), encoding="utf-8")


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(MONDAY_MORNING)


@pytest.fixture
def cli(tmp_path: Path, clock: VirtualClock) -> Cli:
    root = tmp_path / "office"
    runner = Cli(root, clock)
    result = runner.runner.invoke(runner.app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    return runner


def scripted_trunks(scripts: dict[str, list[str]], channels: int = 4, cps: float = 2) -> str:
    lines = [
        'default = "simulated"', "[trunks.simulated]", 'type = "simulated"', f"channels = {channels}",
        f"calls_per_second = {cps}", "seed = 1", "away_percent = 0", "invalid_percent = 0",
        "[trunks.simulated.mix]", "ack = 1", "[trunks.simulated.scripts]",
    ]
    lines += [f'"{number}" = {steps!r}'.replace("'", '"') for number, steps in scripts.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    # Rich wraps table cells at 80 columns; tests read whole cells.
    monkeypatch.setenv("COLUMNS", "250")
