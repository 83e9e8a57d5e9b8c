"""Build tests/fixtures/upgrade-from-previous/: an instance and its database as the previous release left them.

Run it with the previous release's code first on the path, e.g. from a checkout of that release:
    PYTHONPATH=<checkout of the previous release> python scripts/make_upgrade_fixture.py OUT_DIR
The office has guardian texts on (SOLAPI, sent to tests/solapi_fake.py), a few people, one week's run dialled to
its end in virtual time, visit tasks and guardian texts. Its settings hold what that release took by coercion
(quoted numbers and booleans), which this release refuses (CHANGELOG.md).
"""

from __future__ import annotations

import csv
import shutil
import sys
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(1, str(Path(__file__).resolve().parent.parent / "tests"))

from solapi_fake import API_KEY, API_SECRET, FakeSolapi  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from cli import create_app  # noqa: E402
from safecall.clock import VirtualClock  # noqa: E402

SEOUL = ZoneInfo("Asia/Seoul")
SETTINGS_TAIL = """
[web]
port = "8080"
secure_cookies = "no"

[sms]
provider = "solapi"
api_key = {{ env = "SAFECALL_SOLAPI_API_KEY" }}
api_secret = {{ env = "SAFECALL_SOLAPI_API_SECRET" }}
sender = "02-2148-1234"
callback_number = "02-2148-1234"
base_url = "{base_url}"
"""
PEOPLE = [  # name, phone, dong, guardian, guardian phone; the trunk's script decides each one's week
    ("김민수", "010-2000-0001", "사직동", "김하나", "010-3000-0001", ["ack"]),
    ("이영희", "010-2000-0002", "사직동", "이둘", "010-3000-0002", ["no_answer"] * 4),
    ("박철수", "010-2000-0003", "부암동", "", "", ["help"]),
    ("최순자", "010-2000-0004", "부암동", "최셋", "010-3000-0004", ["busy", "ack"]),
    ("정말순", "010-2000-0005", "교남동", "", "", ["no_key", "ack"]),
]
TRUNKS = """default = "simulated"
[trunks.simulated]
type = "simulated"
channels = 2
calls_per_second = 1
seed = 1
away_percent = 0
invalid_percent = 0
[trunks.simulated.mix]
ack = 1
[trunks.simulated.scripts]
"""


def main(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    solapi = FakeSolapi().start()
    clock = VirtualClock(datetime(2026, 11, 23, 8, 0, tzinfo=SEOUL))
    environ = {"SAFECALL_LANG": "en", "SAFECALL_SOLAPI_API_KEY": API_KEY, "SAFECALL_SOLAPI_API_SECRET": API_SECRET}
    app, runner = create_app(make_clock=lambda: clock, environ=environ), CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, ["--config", str(out), *args])
        assert result.exit_code == 0, (args, result.output, result.exception)
        return result.output

    try:
        cli("init", str(out))
        settings = out / "config" / "safecall.toml"
        settings.write_text(
            settings.read_text(encoding="utf-8") + SETTINGS_TAIL.format(base_url=solapi.base_url), encoding="utf-8"
        )
        (out / "config" / "trunks.toml").write_text(
            TRUNKS + "".join(f'"+8210{p[1][4:8]}{p[1][9:]}" = {p[5]!r}\n'.replace("'", '"') for p in PEOPLE),
            encoding="utf-8",
        )
        campaign = out / "campaigns" / "weekly-safe-call.toml"
        text = campaign.read_text(encoding="utf-8")
        campaign.write_text(
            text.replace("guardian_sms = false", "guardian_sms = true").replace("max_retries = 3", 'max_retries = "3"'),
            encoding="utf-8",
        )
        roster = out / "roster.csv"
        with roster.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(
                [
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
            )
            for name, phone, dong, guardian, guardian_phone, _ in PEOPLE:
                writer.writerow(
                    [
                        name,
                        phone,
                        "",
                        f"서울특별시 종로구 {dong} 1-1",
                        dong,
                        "1945-03-01",
                        guardian,
                        guardian_phone,
                        "2025-01-10",
                        "중",
                    ]
                )
        cli("recipients", "import", str(roster))
        roster.unlink()
        clock.set(datetime(2026, 11, 23, 10, 0, tzinfo=SEOUL))
        cli("campaign", "launch", "weekly-safe-call")
        clock.advance(timedelta(days=1))
        cli("scheduler", "run", "--seconds", "3", "--no-dial")  # guardian texts and officer notices go out
        print(cli("campaign", "status"))
    finally:
        solapi.stop()
    for leftover in (out / "outbox",):
        shutil.rmtree(leftover, ignore_errors=True)
    for wal in out.glob("data/*-wal"):
        print("left", wal)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
