"""Visit and callback lists, their files, closing visits (issue 2, point 8) and the demo (point 9)."""

from __future__ import annotations

import csv
import io

import pytest
from conftest import NEXT_MONDAY_MORNING, person_row, scripted_trunks, write_csv
from openpyxl import load_workbook
from sqlmodel import select

from safecall.store import AuditEvent, Person, RunMember, VisitTask

pytestmark = pytest.mark.both_databases


def week_with_non_responders(cli, tmp_path):
    cli.set_trunks(
        scripted_trunks(
            {
                "+821001230001": ["no_answer"],
                "+821001230002": ["no_answer"],
                "+821001230003": ["no_answer"],
                "+821001230004": ["help"],
            }
        )
    )
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("=1+2", "010-0123-0001", guardian="@보호자", guardian_phone="010-0999-0001"),
                    person_row("부암분", "010-0123-0002", dong="부암동"),
                    person_row("입원예정", "010-0123-0003", dong="부암동"),
                    person_row("도움분", "010-0123-0004"),
                ],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")


def test_csv_lists_open_in_korean_excel_and_neutralise_formulas(cli, tmp_path):
    week_with_non_responders(cli, tmp_path)
    out = tmp_path / "lists"
    written = cli("visits", "list", "--date", "2026-11-24", "--format", "csv", "--output", str(out)).output
    assert (
        "2026-11-24-visit-1팀.csv" in written
        and "2026-11-24-visit-2팀.csv" in written
        and "2026-11-24-visit-3팀.csv" in written
    )
    raw = (out / "2026-11-24-visit-1팀.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0][:5] == ["순위", "과제번호", "담당팀", "기한 초과", "성명"]
    [row] = rows[1:]
    record = dict(zip(rows[0], row, strict=True))
    assert record["성명"] == "'=1+2" and record["보호자"] == "'@보호자"
    assert record["전화번호"] == "010-0123-0001" and record["보호자 연락처"] == "010-0999-0001"
    assert record["통화 시도 내역"].count("받지 않음") == 4 and record["통화 시도 내역"].startswith("1차 11/23 10:00")
    assert record["마지막 응답일"] == "없음" and record["연속 미응답 주수"] == "1"
    # Every team gets its file, even on a day with nobody to visit.
    assert len(list(csv.reader(io.StringIO((out / "2026-11-24-visit-3팀.csv").read_text(encoding="utf-8-sig"))))) == 1
    assert (out / "2026-11-24-visit-1팀.csv").stat().st_mode & 0o077 == 0


def test_xlsx_list_has_a_sheet_per_team_with_text_not_formulas(cli, tmp_path):
    week_with_non_responders(cli, tmp_path)
    path = tmp_path / "all.xlsx"
    cli("visits", "list", "--date", "2026-11-24", "--format", "xlsx", "--output", str(path))
    workbook = load_workbook(path)
    assert workbook.sheetnames == ["1팀", "2팀", "3팀"]
    cell = workbook["1팀"]["E2"]
    assert cell.value == "'=1+2" and cell.data_type == "s"
    assert [c.value for c in workbook["2팀"]["E"]][1:] == ["부암분", "입원예정"]
    assert "does not match --format" in cli("visits", "list", "--format", "csv", "--output", str(path), ok=False).output


def test_callback_list_is_separate_and_same_day(cli, tmp_path):
    week_with_non_responders(cli, tmp_path)
    callbacks = cli("visits", "list", "--kind", "callback", "--date", "2026-11-23").output
    assert "도움분" in callbacks and "부암분" not in callbacks
    visits = cli("visits", "list", "--date", "2026-11-24", "--team", "2팀").output
    assert "부암분" in visits and "=1+2" not in visits and "도움분" not in visits


def test_recording_visits_closes_them_and_updates_the_person(cli, tmp_path):
    week_with_non_responders(cli, tmp_path)
    cli(
        "visits",
        "list",
        "--date",
        "2026-11-24",
        "--team",
        "2팀",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "t.csv"),
    )
    rows = list(csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text(encoding="utf-8-sig"))))
    tasks = {r["성명"]: r["과제번호"] for r in rows}
    assert "still open" in cli("visits", "record", tasks["부암분"], "--outcome", "not_home").output
    assert "closed" in cli("visits", "record", tasks["부암분"], "--outcome", "safe", "--note", "이웃집에 계셨음").output
    assert "already closed" in cli("visits", "record", tasks["부암분"], "--outcome", "safe", ok=False).output
    cli("visits", "record", tasks["입원예정"], "--outcome", "hospitalised", "--until", "2026-12-31")
    assert "status: paused until 2026-12-31" in cli("recipients", "show", "입원예정").output
    assert (
        "2팀: no open visit tasks for 2026-11-24."
        in cli("visits", "list", "--date", "2026-11-24", "--team", "2팀").output
    )
    assert "unknown outcome" in cli("visits", "record", "1", "--outcome", "fine", ok=False).output
    assert "no visit task 999" in cli("visits", "record", "999", "--outcome", "safe", ok=False).output
    with cli.db().session() as session:
        assert [e.action for e in session.exec(select(AuditEvent).where(AuditEvent.action == "visit.record"))] == [
            "visit.record"
        ] * 3
        note = session.get(VisitTask, int(tasks["부암분"])).note
    assert "부재(재방문)" in note and "안전 확인: 이웃집에 계셨음" in note


def test_deceased_closes_the_person_and_they_are_not_called_again(cli, tmp_path):
    week_with_non_responders(cli, tmp_path)
    cli(
        "visits",
        "list",
        "--date",
        "2026-11-24",
        "--team",
        "1팀",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "t.csv"),
    )
    [row] = csv.DictReader(io.StringIO((tmp_path / "t.csv").read_text(encoding="utf-8-sig")))
    cli("visits", "record", row["과제번호"], "--outcome", "deceased")
    assert "status: closed (deceased)" in cli("recipients", "show", "=1+2").output
    cli.clock.set(cli.clock.now().replace(day=30))
    cli("campaign", "launch", "weekly-safe-call")
    with cli.db().session() as session:
        person = session.exec(select(Person).where(Person.name == "=1+2")).one()
        assert (
            session.exec(select(RunMember).where(RunMember.run_id == 2, RunMember.person_id == person.id)).first()
            is None
        )


def test_demo_runs_a_whole_week_and_writes_the_lists(cli, tmp_path):
    target = tmp_path / "demo"
    result = cli.runner.invoke(cli.app, ["demo", "--dir", str(target)])
    assert result.exit_code == 0, result.output
    output = result.output
    assert "Roster: 200 people imported" in output
    assert "acknowledged on the first try" in output and "final non-responders (home visit)" in output
    assert "(closed)" in output
    files = sorted(p.name for p in (target / "outbox").rglob("*.*"))
    assert len(files) == 12  # visit and callback lists, CSV and XLSX, for 3 teams
    assert (target / "data" / "safecall.db").stat().st_mode & 0o777 == 0o600


def test_a_visit_row_shows_this_weeks_attempts_and_the_last_acknowledgement_from_earlier_weeks(cli, tmp_path):

    cli.set_trunks(scripted_trunks({"+821001230001": ["ack"]}))
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("지난주응답", "010-0123-0001")])))
    cli("campaign", "launch", "weekly-safe-call")
    cli.clock.set(NEXT_MONDAY_MORNING)  # the week above was played on this clock; the next one starts afresh
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli("campaign", "launch", "weekly-safe-call")
    out = tmp_path / "lists"
    cli("visits", "list", "--date", "2026-12-01", "--format", "csv", "--output", str(out))
    rows = list(csv.reader(io.StringIO((out / "2026-12-01-visit-1팀.csv").read_text(encoding="utf-8-sig"))))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["마지막 응답일"] == "2026-11-23"
    attempts = record["통화 시도 내역"]
    assert (
        attempts.count("받지 않음") == 4
        and attempts.startswith("1차 11/30")
        and "응답" not in attempts.replace("받지 않음", "")
    )
    history = cli("recipients", "show", "지난주응답").output
    assert history.count("no_answer") == 4 and history.count("acknowledged") == 1
