from __future__ import annotations

import csv
import os
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from solapi_fake import FakeSolapi
from typer.testing import CliRunner

from safecall.cli import create_app
from safecall.clock import VirtualClock
from safecall.settings import load_instance
from safecall.store import Database

SEOUL = ZoneInfo("Asia/Seoul")
# Monday 23 November 2026, 08:00 in Seoul: before the weekly slot (Monday 10:00).
MONDAY_MORNING = datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL)
NEXT_MONDAY_MORNING = datetime(2026, 11, 30, 8, 0, tzinfo=SEOUL)

HEADER = [
    "성명",
    "전화번호",
    "보조연락처",
    "주소",
    "행정동",
    "생년월일",
    "보호자 성명",
    "보호자 연락처",
    "동의일자",
    "위험도",
]


def person_row(
    name: str,
    phone: str,
    dong: str = "사직동",
    born: str = "1945-03-01",
    consent: str = "2025-01-10",
    risk: str = "중",
    phone2: str = "",
    guardian: str = "",
    guardian_phone: str = "",
) -> list[str]:
    return [name, phone, phone2, f"서울특별시 종로구 {dong} 1-1", dong, born, guardian, guardian_phone, consent, risk]


def write_csv(path: Path, rows: list[list[str]], header: list[str] = HEADER, encoding: str = "utf-8-sig") -> Path:
    with path.open("w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


class Cli:
    """Runs the real Typer app against one instance, with a clock the test moves."""

    def __init__(self, root: Path, clock: VirtualClock, environ: dict | None = None):
        self.root = root
        self.clock = clock
        # English messages, which most tests read; tests/test_cli_locale.py covers Korean, the default.
        self.environ = {"SAFECALL_LANG": "en", **(environ or {})}
        self.runner = CliRunner()
        self.app = create_app(make_clock=lambda: clock, environ=self.environ)

    def __call__(self, *args: str, ok: bool = True):
        result = self.runner.invoke(self.app, ["--config", str(self.root), *args])
        if ok and result.exit_code != 0:
            raise AssertionError(
                f"safecall {' '.join(args)} failed ({result.exit_code}):\n{result.output}\n{result.exception!r}"
            )
        return result

    def use_locale(self, lang: str) -> None:
        """Messages as a user with LANG=`lang` sees them (SAFECALL_LANG, which the tests set, would win)."""
        self.environ.pop("SAFECALL_LANG", None)
        self.environ["LANG"] = lang

    def db(self) -> Database:
        database = Database(load_instance(self.root, self.environ).database_url())
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
def solapi():
    """A local fake of SOLAPI's REST API, on 127.0.0.1."""
    fake = FakeSolapi().start()
    yield fake
    fake.stop()


@pytest.fixture
def clock(request) -> VirtualClock:
    """Monday morning, or the start a test gives with indirect parametrization."""
    return VirtualClock(getattr(request, "param", MONDAY_MORNING))


# Store and engine tests run on SQLite and, where a server is given (.ci/run starts one), on PostgreSQL.
POSTGRES_URL = os.environ.get("SAFECALL_TEST_POSTGRES_URL")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("both_databases") and "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_backend", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def database_backend(request) -> str:
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def postgres_template() -> str:
    """A database migrated to the newest schema once; each test gets a copy of it (fast)."""
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"safecall_template_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    template = Database(sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    template.create_schema()
    template.dispose()
    yield name
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def database_url(request, database_backend: str, tmp_path: Path) -> str | None:
    """None: the instance's own SQLite file. Otherwise a fresh PostgreSQL database, dropped afterwards."""
    if database_backend == "sqlite":
        yield None
        return
    if not POSTGRES_URL:
        pytest.skip('no PostgreSQL server: start one with `eval "$(.ci/postgres start)"`')
    template = request.getfixturevalue("postgres_template")
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"safecall_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def cli(tmp_path: Path, clock: VirtualClock, database_url: str | None) -> Cli:
    root = tmp_path / "office"
    runner = Cli(root, clock, {"SAFECALL_DATABASE_URL": database_url} if database_url else {})
    result = runner.runner.invoke(runner.app, ["init", str(root)])
    assert result.exit_code == 0, result.output
    return runner


def scripted_trunks(scripts: dict[str, list[str]], channels: int = 4, cps: float = 2) -> str:
    lines = [
        'default = "simulated"',
        "[trunks.simulated]",
        'type = "simulated"',
        f"channels = {channels}",
        f"calls_per_second = {cps}",
        "seed = 1",
        "away_percent = 0",
        "invalid_percent = 0",
        "[trunks.simulated.mix]",
        "ack = 1",
        "[trunks.simulated.scripts]",
    ]
    lines += [f'"{number}" = {steps!r}'.replace("'", '"') for number, steps in scripts.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def wide_terminal(monkeypatch):
    # Rich wraps table cells at 80 columns; tests read whole cells.
    monkeypatch.setenv("COLUMNS", "250")


# The spoken-answer corpus's figures (tests/test_speech.py), shown in every run's summary, -q or not. They travel
# in the test's report (user_properties), which reaches the summary from xdist's workers as well.
SPEECH_FIGURES = "speech_figures"


def pytest_terminal_summary(terminalreporter, config):
    figures = [
        line
        for kind in ("passed", "failed")
        for report in terminalreporter.stats.get(kind, [])
        if getattr(report, "when", None) == "call"
        for name, lines in report.user_properties
        if name == SPEECH_FIGURES
        for line in lines
    ]
    if figures:
        terminalreporter.write_sep("-", "spoken-answer judge on tests/fixtures/speech/")
        for line in figures:
            terminalreporter.write_line(line)
