"""Numbers that agree and checks that say what to do (issue 27): `campaign plan` never has the visit list complete
before the first calls end."""

from __future__ import annotations

from datetime import datetime

from conftest import SEOUL

from safecall.ordering import NO_HISTORY, UNREACHED_LAST_WEEK
from safecall.planning import Chains, Mix, simulate
from safecall.policy import CallingCalendar

CALENDAR = CallingCalendar.build(SEOUL, "09:00", "18:00", ["mon", "tue", "wed", "thu", "fri"], "KR")
MONDAY_09 = datetime(2026, 11, 23, 9, 0, tzinfo=SEOUL)


def test_the_list_is_never_complete_before_the_first_calls_end():
    # Last week's 5 non-responders are called first and are final at once (no retries); the 1,000 others answer
    # but for 0.4 of a person in all: under ln 2 people (the median rule) join the list after 09:00,
    # while first calls go on.
    mix = Mix(
        {UNREACHED_LAST_WEEK: 5, NO_HISTORY: 1000},
        {UNREACHED_LAST_WEEK: Chains((0.0,), (1.0,)), NO_HISTORY: Chains((0.9996,), (0.0004,))},
        call_seconds=26,
    )
    first_end, complete, visits = simulate(mix, 10, MONDAY_09, CALENDAR, ["1h"], 0, by_history=True)
    assert first_end is not None and complete is not None and round(visits) == 5
    assert complete >= first_end, (complete, first_end)
    assert first_end.astimezone(SEOUL).hour >= 9 and first_end > MONDAY_09.replace(minute=30)  # a real pass, not a stub


def test_trunk_check_says_in_korean_what_to_do_next_and_where_the_docs_are(cli):
    from test_asterisk import configure_pbx, free_port

    configure_pbx(cli, free_port(), free_port())  # nothing listens on the AMI port
    cli.use_locale("C.UTF-8")  # the instance's language: Korean
    cli.environ["TEST_AMI_SECRET"] = "safecall-test-secret"
    closed = cli("trunk", "check", "pbx", "--wait", "1", ok=False).output
    assert "AMI 로그인" in closed, closed
    assert "AMI에 연결할 수 없습니다" in closed and "cannot reach" not in closed
    assert "다음 단계: config/trunks.toml의 ami_host와 ami_port" in closed and "docs/asterisk.md 1, 3, 7절" in closed
    assert "AMI reader stopped" not in closed
    cli.environ.pop("TEST_AMI_SECRET", None)
    unset = cli("trunk", "check", "pbx", "--wait", "1", ok=False).output
    assert "환경 변수 TEST_AMI_SECRET" in unset and "is not set" not in unset
    assert "다음 단계:" in unset and "docs/asterisk.md 3절" in unset


def test_help_chrome_is_korean_under_a_korean_instance(cli):
    cli.use_locale("C.UTF-8")
    out = cli("visits", "list", "--help").output
    assert "사용법: " in out and "[옵션]" in out and "옵션" in out and "[기본값: " in out
    assert "<글자>" in out and "<경로>" in out and "<str>" not in out and "<bool>" not in out  # options' type labels
    assert not {"Usage", "Options", "OPTIONS", "default:"} & set(out.replace("[", " ").replace("]", " ").split()), out
    required = cli("users", "add", "--help").output
    assert "인수" in required and "[필수]" in required and "Arguments" not in required and "[required]" not in required
    cli.use_locale("en_US.UTF-8")
    assert "Usage: " in cli("visits", "list", "--help").output  # English users keep English help


def test_users_speak_korean_and_take_roles_in_either_language(cli, clock):
    cli.use_locale("C.UTF-8")
    added = cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "kim", "--role", "방문팀원", "--team", "1팀", "--password-stdin"],
        input="correct horse battery\n",
    )
    assert added.exit_code == 0 and "방문팀원" in added.output, added.output
    refused = cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "lee", "--role", "방문팀원", "--team", "9팀", "--password-stdin"],
        input="correct horse battery\n",
    ).output
    assert "config/safecall.toml에 '9팀' 팀이 없습니다" in refused and "no team" not in refused
    short = cli.runner.invoke(
        cli.app,
        ["--config", str(cli.root), "users", "add", "lee", "--role", "담당 공무원", "--password-stdin"],
        input="short\n",
    ).output
    assert "비밀번호는 10자 이상이어야 합니다" in short
    unknown = cli("users", "add", "park", "--role", "반장", ok=False).output
    assert "알 수 없는 역할 '반장'" in unknown and "방문팀원 (team)" in unknown
    # kim was made at Monday 08:00 in Seoul, Sunday 23:00 UTC: the list shows the local day.
    assert clock.now().astimezone(SEOUL).date().isoformat() == "2026-11-23"
    listing = cli("users", "list").output
    assert "방문팀원" in listing and "2026-11-23" in listing and "2026-11-22" not in listing


def test_the_audit_trail_reads_in_korean(cli, tmp_path):
    from conftest import person_row, scripted_trunks, write_csv

    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("부재분", "010-0123-0001")])))
    cli("campaign", "launch", "weekly-safe-call")
    cli("visits", "list", "--date", "2026-11-24")
    task = cli("visits", "list", "--date", "2026-11-24", "--format", "json").output.split('"task": ')[1].split(",")[0]
    cli("visits", "record", task, "--outcome", "not_home")
    cli.use_locale("C.UTF-8")
    trail = cli("audit", "--format", "table").output
    assert f"과제 {task}" in trail and "결과=부재(재방문)" in trail and "방문 명단 모든 팀" in trail
    assert "outcome=" not in trail and "visit list" not in trail
    assert f'"subject": "task {task}"' in cli("audit", "--format", "json").output  # programs read the stored English


def test_the_report_sheet_has_a_korean_name(tmp_path):
    from openpyxl import load_workbook

    from safecall.reports import report_xlsx

    report_xlsx([], tmp_path / "r.xlsx")
    assert load_workbook(tmp_path / "r.xlsx").sheetnames == ["주간 보고"]
