"""Korean first (issue 19): messages, help, keywords and risk follow the locale, from a complete, compiled catalogue;
the report and chart are Korean; an unexpected failure is a short message, never a traceback."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import person_row, scripted_trunks, write_csv
from sqlmodel import select
from typer.main import get_command

from safecall import reports
from safecall.i18n import CALLBACK_OUTCOME, CLOSE_REASON, OUTCOME, Texts, language, translations
from safecall.store import Person, VisitTask

ROOT = Path(__file__).parents[1]


def load_catalogue_tool():
    spec = importlib.util.spec_from_file_location("catalogue", ROOT / "scripts" / "catalogue.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_catalogue_translates_every_message_and_its_mo_is_compiled_from_the_po():
    assert load_catalogue_tool().problems() == []


def test_the_language_comes_from_safecall_lang_then_the_locale_then_the_instance_with_korean_by_default():
    assert language({}) == "ko" and language({}, "en") == "en"
    assert language({"LANG": "ko_KR.UTF-8"}) == "ko" and language({"LANG": "ko_KR.UTF-8"}, "en") == "ko"
    assert language({"LANG": "en_US.UTF-8"}) == "en" and language({"LANG": "en_GB"}, "ko") == "en"
    # C and POSIX name no language (C.UTF-8 is a server's usual default): the instance's setting decides.
    for neutral in ("C.UTF-8", "C", "POSIX", ""):
        assert language({"LANG": neutral}) == "ko" and language({"LANG": neutral}, "ko") == "ko"
        assert language({"LANG": neutral}, "en") == "en"
    assert language({"LANG": "C.UTF-8", "LC_ALL": "ko_KR.UTF-8"}, "en") == "ko"  # LC_ALL wins, as in POSIX
    assert language({"LANG": "en_US.UTF-8", "LC_ALL": "C.UTF-8"}, "ko") == "ko"  # LC_ALL=C hides LANG, says nothing
    assert language({"LANG": "ko_KR.UTF-8", "LC_MESSAGES": "en_US.UTF-8"}) == "en"
    assert language({"LANG": "en_US.UTF-8", "SAFECALL_LANG": "ko"}) == "ko"
    assert language({"LANG": "ko_KR.UTF-8", "SAFECALL_LANG": "en"}, "ko") == "en"


def roster(cli, tmp_path) -> Path:
    return write_csv(
        tmp_path / "r.csv",
        [person_row("김영희", "010-0123-4567", risk="상"), person_row("이철수", "010-0123-4568", risk="하")],
    )


@pytest.mark.parametrize("lang", ["ko_KR.UTF-8", "C.UTF-8", ""])
def test_messages_are_korean_under_a_korean_c_or_no_locale(cli, tmp_path, lang):
    cli.use_locale(lang)
    assert (
        "r.csv에서 2행을 가져왔습니다: 추가 2, 갱신 0, 변경 없음 0."
        in cli("recipients", "import", str(roster(cli, tmp_path))).output
    )
    assert (
        "김영희(번호 1) 님의 전화를 2026-12-31까지 멈췄습니다."
        in cli("recipients", "pause", "1", "--until", "2026-12-31").output
    )
    listing = cli("recipients", "list").output
    assert "성명" in listing and "전화번호" in listing and "위험도" in listing and "2명" in listing
    assert "일시 중지 (2026-12-31까지)" in listing and "안심콜 이용 중" in listing
    error = cli("recipients", "pause", "1", "--until", "tomorrow", ok=False).output
    assert error == "오류: --until: 'tomorrow'는 날짜가 아닙니다 (YYYY-MM-DD로 쓰세요)\n"
    assert "오류: 이름이 '없음'인 대상자가 없습니다" in cli("recipients", "show", "없음", ok=False).output
    assert "캠페인 'weekly-safe-call'에 문제가 없습니다" in cli("campaign", "validate", "weekly-safe-call").output


@pytest.mark.parametrize("environ", [{"LANG": "en_US.UTF-8"}, {"LANG": "ko_KR.UTF-8", "SAFECALL_LANG": "en"}])
def test_messages_are_english_under_an_english_locale_or_safecall_lang_en(cli, tmp_path, environ):
    cli.environ.pop("SAFECALL_LANG")
    cli.environ.update(environ)
    assert "Imported 2 rows from" in cli("recipients", "import", str(roster(cli, tmp_path))).output
    assert "Paused 김영희 (id 1) until 2026-12-31." in cli("recipients", "pause", "1", "--until", "2026-12-31").output
    listing = cli("recipients", "list").output
    assert "name" in listing and "phone" in listing and "paused until 2026-12-31" in listing and "2 people" in listing
    assert cli("recipients", "pause", "1", "--until", "tomorrow", ok=False).output.startswith("error: ")


def risk_column(output: str) -> list[str]:
    return [line.split("│")[6].strip() for line in output.splitlines() if line.startswith("│")]


def test_risk_shows_as_entered(cli, tmp_path):
    cli("recipients", "import", str(roster(cli, tmp_path)))
    assert risk_column(cli("recipients", "list").output) == ["high", "low"]
    cli.use_locale("ko_KR.UTF-8")
    assert risk_column(cli("recipients", "list").output) == ["상", "하"]
    assert "위험도: 상" in cli("recipients", "show", "1").output
    assert [p["risk"] for p in json.loads(cli("recipients", "list", "--format", "json").output)] == [3, 1]


def test_close_reasons_and_statuses_are_accepted_in_korean_and_english(cli, tmp_path):
    cli("recipients", "import", str(roster(cli, tmp_path)))
    cli.use_locale("ko_KR.UTF-8")
    assert (
        "김영희(번호 1) 님의 안심콜을 종료했습니다: 이사." in cli("recipients", "close", "1", "--reason", "이사").output
    )
    assert (
        "이철수(번호 2) 님의 안심콜을 종료했습니다: 입원."
        in cli("recipients", "close", "2", "--reason", "hospitalised").output
    )
    db = cli.db()
    with db.session() as session:
        assert [(p.status, p.closed_reason) for p in session.exec(select(Person).order_by(Person.id))] == [
            ("closed", "moved"),
            ("closed", "hospitalised"),
        ]
    db.dispose()
    assert "종료 (이사)" in cli("recipients", "list", "--status", "종료").output
    assert "2명" in cli("recipients", "list", "--status", "closed").output
    resumed = cli("recipients", "pause", "1", "--until", "2026-12-31", ok=False).output
    assert "종료되었습니다 (이사)" in resumed and "moved" not in resumed, resumed
    refused = cli("recipients", "close", "1", "--reason", "지루함", ok=False)
    assert refused.exit_code == 1
    assert "--reason: 알 수 없는 사유 '지루함' (사용 가능: 입원 (hospitalised), 이사 (moved)" in refused.output


def visit_week(cli, tmp_path) -> int:
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"], "+821001230002": ["help"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv", [person_row("방문대상", "010-0123-0001"), person_row("도움분", "010-0123-0002")]
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")
    db = cli.db()
    with db.session() as session:
        task = session.exec(select(VisitTask).where(VisitTask.kind == "visit")).one().id
    db.dispose()
    return task


def test_visit_outcomes_and_list_kinds_are_accepted_in_korean(cli, tmp_path):
    task = visit_week(cli, tmp_path)
    cli.use_locale("ko_KR.UTF-8")
    listing = cli("visits", "list", "--date", "2026-11-24").output
    assert "1팀: 2026-11-24 방문 1건" in listing and "방문대상" in listing
    callbacks = cli("visits", "list", "--date", "2026-11-24", "--kind", "회신").output
    assert "도움분" in callbacks and "방문대상" not in callbacks
    assert (
        f"과제 {task}: 부재(재방문); 과제 유지 (부재)."
        in cli("visits", "record", str(task), "--outcome", "부재").output
    )
    assert f"과제 {task}: 안전 확인; 종료." in cli("visits", "record", str(task), "--outcome", "안전").output
    again = cli(
        "visits", "record", str(task), "--outcome", "안전", ok=False
    ).output  # the stored outcome in Korean words
    assert "이미 결과 안전 확인으로 종료되었습니다" in again and "safe" not in again, again
    db = cli.db()
    with db.session() as session:
        assert session.get(VisitTask, task).outcome == "safe"
    db.dispose()
    cli.use_locale("en_US.UTF-8")
    refused = cli("visits", "record", str(task), "--outcome", "fine", ok=False).output
    assert "--outcome: unknown outcome 'fine' (use safe, not_home, hospitalised" in refused


def test_keywords_have_korean_words_for_every_stored_value():
    from safecall.people import CLOSE_REASONS
    from safecall.visits import CALLBACK_OUTCOMES, OUTCOMES

    assert OUTCOME == OUTCOMES and CALLBACK_OUTCOME == CALLBACK_OUTCOMES and CLOSE_REASON == CLOSE_REASONS
    korean = Texts("ko")
    words = [korean.word("outcome", o) for o in OUTCOME] + [korean.word("reason", r) for r in CLOSE_REASON]
    assert all(word and word.isascii() is False for word in words)
    assert korean.keyword("긴급출동", "outcome", OUTCOME, "--outcome") == "emergency_services"
    assert Texts("en").keyword(" Moved ", "reason", CLOSE_REASON, "--reason") == "moved"


def help_pages(app) -> list[list[str]]:
    paths = []

    def walk(command, path):
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, path + [name])

    walk(get_command(app), [])
    return paths


def test_every_command_has_help_in_korean_and_english(cli):
    korean, english = Texts("ko"), Texts("en")
    command_of = {}

    def walk(command, path):
        command_of[tuple(path)] = command
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, path + [name])

    walk(get_command(cli.app), [])
    assert len(command_of) > 30
    for path, command in command_of.items():
        first_line = command.help.strip().splitlines()[0]
        for lang, texts in (("ko_KR.UTF-8", korean), ("en_US.UTF-8", english)):
            cli.use_locale(lang)
            page = cli.runner.invoke(cli.app, [*path, "--help"])
            assert page.exit_code == 0, (path, page.output)
            shown = " ".join(page.output.split())
            expected = " ".join(texts._(first_line).split())[:30]
            assert expected in shown, (lang, path, expected, page.output)
            assert texts._("Show this message and exit.") in shown, (lang, path)
        assert korean._(first_line) != first_line, path


def test_the_report_values_are_korean_whatever_the_locale(cli, tmp_path):
    visit_week(cli, tmp_path)
    for lang in ("C.UTF-8", "ko_KR.UTF-8"):
        cli.use_locale(lang)
        assert "결과 대기 1" in cli("report", "weekly").output


def test_the_chart_uses_a_korean_font_from_fonts_nanum(tmp_path):
    font = reports.korean_font()
    assert font is not None and font.name.startswith("Nanum"), "install Debian's fonts-nanum (.ci/run does)"
    rows = [
        reports.ReportRow(
            "weekly-safe-call", __import__("datetime").date(2026, 11, 23), "사직동", called=4, ack_first=3
        )
    ]
    assert reports.draw_chart(rows, tmp_path / "rates.png") is None
    assert (tmp_path / "rates.png").read_bytes()[:4] == b"\x89PNG"
    assert translations("ko").gettext("SafeCall weekly rates") == "안심콜 주간 응답률"


def test_without_a_korean_font_the_chart_says_so_and_is_still_drawn(cli, tmp_path, monkeypatch):
    visit_week(cli, tmp_path)
    monkeypatch.setattr(reports, "korean_font", lambda: None)
    cli.use_locale("ko_KR.UTF-8")
    result = cli("report", "weekly", "--chart", str(tmp_path / "rates.png"))
    assert "한글 글꼴을 찾지 못했습니다" in result.output and (tmp_path / "rates.png").exists()


def test_a_chart_in_a_missing_folder_is_refused_before_anything_is_done(cli, tmp_path):
    for lang, words in (
        ("en_US.UTF-8", "error: --chart /missing/dir/x.png: the folder /missing/dir does not exist"),
        ("ko_KR.UTF-8", "오류: --chart /missing/dir/x.png: /missing/dir 폴더가 없습니다"),
    ):
        cli.use_locale(lang)
        result = cli("report", "weekly", "--chart", "/missing/dir/x.png", ok=False)
        assert result.exit_code == 1 and words in result.output and "Traceback" not in result.output
    refused = cli("report", "weekly", "--format", "csv", "--chart", "/missing/dir/x.png", ok=False)
    assert refused.exit_code == 1 and not list(cli.root.rglob("report-weekly.csv"))  # refused before writing anything
    assert "저장함" in cli("report", "weekly", "--format", "csv").output and list(cli.root.rglob("report-weekly.csv"))


def test_an_unexpected_failure_is_one_message_and_a_log_without_phone_numbers(cli, tmp_path, monkeypatch):
    from safecall import people

    cli("recipients", "import", str(roster(cli, tmp_path)))

    def broken(*args, **kwargs):
        raise RuntimeError("disk said no while reading +821001234567")

    monkeypatch.setattr(people, "list_people", broken)
    cli.environ["XDG_STATE_HOME"] = str(tmp_path / "state")
    cli.use_locale("ko_KR.UTF-8")
    result = cli("recipients", "list", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "오류: 예상하지 못한 문제로 SafeCall이 멈췄습니다 (RuntimeError" in result.output
    assert "safecall doctor" in result.output and str(tmp_path / "state" / "safecall" / "errors.log") in result.output
    logged = (tmp_path / "state" / "safecall" / "errors.log").read_text(encoding="utf-8")
    assert "Traceback" in logged and "list_people" in logged and "broken" in logged
    assert "+821001234567" not in logged and "4567" in logged
    cli.use_locale("en_US.UTF-8")
    assert "SafeCall stopped on an unexpected problem (RuntimeError" in cli("recipients", "list", ok=False).output


def test_planned_weekdays_follow_the_language(cli):
    plan = ["campaign", "plan", "weekly-safe-call", "--now", "2026-11-23T08:00+09:00", "--weeks", "1"]
    assert "2026-11-23 Mon 10:00" in cli(*plan).output
    cli.use_locale("ko_KR.UTF-8")
    output = cli(*plan).output
    assert "2026-11-23 월 10:00" in output and "앞으로 1주" in output
    refused = cli("campaign", "plan", "weekly-safe-call", "--now", "tomorrow", ok=False).output
    assert "--now: 'tomorrow'는 ISO 시각이 아닙니다" in refused


def test_an_instance_set_to_english_speaks_english_under_c_utf8_and_refuses_an_unknown_language(cli):
    settings = cli.root / "config" / "safecall.toml"
    assert 'language = "ko"' in settings.read_text(encoding="utf-8")  # what `safecall init` ships
    cli.use_locale("C.UTF-8")
    assert "문제가 없습니다" in cli("campaign", "validate", "weekly-safe-call").output
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('language = "ko"', 'language = "en"'), encoding="utf-8"
    )
    assert "is valid" in cli("campaign", "validate", "weekly-safe-call").output
    assert "Show this message and exit." in cli("--help").output  # help is read before --config: cwd or SAFECALL_CONFIG
    cli.use_locale("ko_KR.UTF-8")
    assert "문제가 없습니다" in cli("campaign", "validate", "weekly-safe-call").output
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('language = "en"', 'language = "fr"'), encoding="utf-8"
    )
    refused = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert refused.exit_code == 1 and "safecall.toml" in refused.output and "language" in refused.output
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('language = "fr"', 'langage = "en"'), encoding="utf-8"
    )
    refused = cli("campaign", "validate", "weekly-safe-call", ok=False)
    assert refused.exit_code == 1 and "langage" in refused.output


def test_import_and_campaign_errors_are_korean_under_c_utf8(cli, tmp_path):
    cli.use_locale("C.UTF-8")
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            person_row("김영희", "010-0123-4567", born="1800-01-01", risk="최고"),
            person_row("", "010-0123-4567", dong="없는동"),
        ],
    )
    refused = cli("recipients", "import", str(bad), ok=False)
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "bad.csv: 문제 5건. 아무것도 가져오지 않았습니다" in refused.output, refused.output
    assert "2행, 열 '생년월일': 생년월일 1800-01-01이 1900년보다 앞섭니다" in refused.output
    assert "2행, 열 '위험도': 알 수 없는 위험도 '최고' (상/중/하 또는 high/medium/low로 쓰세요)" in refused.output
    assert "3행, 열 '성명': 비어 있습니다" in refused.output
    assert "3행, 열 '전화번호': 번호 010-0123-4567은 이미 2행에 있습니다" in refused.output
    missing = write_csv(
        tmp_path / "missing.csv",
        [["김영희", "010-0123-4567", "주소", "사직동"]],
        header=["성명", "전화번호", "주소", "행정동"],
    )
    refused = cli("recipients", "import", str(missing), ok=False).output
    assert (
        "missing.csv: 머리글 행을 쓸 수 없습니다" in refused
        and "꼭 있어야 하는 열 생년월일이 없습니다 (birth_date)" in refused
    )
    nothing = write_csv(tmp_path / "nothing.csv", [["가"]], header=["2026년 안심콜 명단"])
    assert "nothing.csv: 처음 20행에 머리글 행이 없습니다" in cli("recipients", "import", str(nothing), ok=False).output
    assert "오류: /etc: 파일이 아니라 폴더입니다" in cli("recipients", "import", "/etc", ok=False).output
    phone = write_csv(tmp_path / "phone.csv", [person_row("김영희", "전화 없음")])
    assert (
        "2행, 열 '전화번호': 전화번호가 아닙니다: '전화 없음'"
        in cli("recipients", "import", str(phone), ok=False).output
    )
    assert "English" not in refused and "row" not in refused

    cli.edit_campaign('weekday = "mon"', 'weekday = "sun"')
    cli.edit_campaign("[schedule]", "[schedule]\ncolour = 1")
    refused = cli("campaign", "validate", "weekly-safe-call", ok=False).output
    assert "캠페인 'weekly-safe-call'에 문제가 1건 있습니다" in refused
    assert "키 'schedule.colour': 알 수 없는 키입니다" in refused
    cli.edit_campaign("[schedule]\ncolour = 1", "[schedule]")
    refused = cli("campaign", "validate", "weekly-safe-call", ok=False).output
    assert "키 'schedule.weekday': sun은 전화하는 요일이 아닙니다" in refused
    launch = cli("campaign", "launch", "weekly-safe-call", ok=False).output
    assert "캠페인 'weekly-safe-call'이 올바르지 않습니다" in launch and "전화하는 요일이 아닙니다" in launch
    cli.use_locale("en_US.UTF-8")
    assert "is not a calling weekday" in cli("campaign", "validate", "weekly-safe-call", ok=False).output


def test_doctor_lines_are_korean_under_c_utf8(cli, tmp_path):
    cli.use_locale("C.UTF-8")
    cli("recipients", "import", str(roster(cli, tmp_path)))
    output = cli("doctor").output
    for line in (
        "정상 데이터베이스 무결성: integrity_check: ok",
        "정상 데이터베이스 쓰기: ",
        "시험 쓰기를 하고 되돌렸습니다",
        "정상 스키마 버전: 데이터베이스 ",
        "정상 권한 safecall.db",
        "정상 캠페인 weekly-safe-call: 문제 없음",
    ):
        assert line in output, (line, output)
    (cli.root / "data" / "safecall.db").chmod(0o644)
    cli.edit_campaign("max_retries = 3", "max_retries = 1")
    bad = cli("doctor", ok=False).output
    assert "실패 권한 safecall.db" in bad and "600이어야 합니다 (chmod 600" in bad
    assert "실패 캠페인 weekly-safe-call" in bad and "재시도 1회는 무응답자마다 보장해야 하는 3회보다 적습니다" in bad


def test_settings_errors_are_korean_under_c_utf8(cli, tmp_path):
    cli.use_locale("C.UTF-8")
    settings = cli.root / "config" / "safecall.toml"
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('timezone = "Asia/Seoul"', 'timezone = "Mars/Base"'),
        encoding="utf-8",
    )
    refused = cli("recipients", "list", ok=False).output
    assert "safecall.toml: 키 'timezone': 알 수 없는 시간대 'Mars/Base'" in refused, refused
    settings.write_text(
        settings.read_text(encoding="utf-8").replace('timezone = "Mars/Base"', 'timezone = "Asia/Seoul"\ncolour = 1'),
        encoding="utf-8",
    )
    assert "키 'colour': 알 수 없는 키입니다" in cli("recipients", "list", ok=False).output
    settings.unlink()
    assert (
        "safecall.toml: 파일이 없습니다. 'safecall init DIR'로 인스턴스를 만들고"
        in cli("recipients", "list", ok=False).output
    )
