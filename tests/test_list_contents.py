"""Lists carry everything the team knows (issue 27): why each person is on the list and the earlier visit notes, in
every format (CLI table, JSON, CSV, XLSX, the outbox, the e-mailed counts); a number that does not exist is
"번호 확인 필요" and an officer's task, not a week without an answer."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import NEXT_MONDAY_MORNING, person_row, scripted_trunks, write_csv
from openpyxl import load_workbook
from test_scheduler import SmtpServer, configure, free_port

NOTE = "옆집 할머니가 딸 집에 가셨다고 함"
OFFICER_NOTE = "담당자만 볼 회신 메모"


@pytest.fixture
def smtp():
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


def week_with_a_note(cli, tmp_path) -> dict[str, str]:
    """메모분 did not answer and was not home on the 24th (a note); 없는번호분's only number does not exist."""
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"], "+821001230002": ["invalid"]}))
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("메모분", "010-0123-0001"),
                    person_row("없는번호분", "010-0123-0002"),
                ],
            )
        ),
    )
    cli("campaign", "launch", "weekly-safe-call")
    tasks = {
        r["name"]: r["task"]
        for r in json.loads(cli("visits", "list", "--date", "2026-11-24", "--format", "json").output)["1팀"]
    }
    cli("visits", "record", str(tasks["메모분"]), "--outcome", "not_home", "--note", NOTE)
    return tasks


def csv_records(path) -> list[dict]:
    return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def test_a_number_that_does_not_exist_is_said_so_and_is_an_officers_task(cli, tmp_path):
    week_with_a_note(cli, tmp_path)
    rows = {
        r["name"]: r
        for r in json.loads(cli("visits", "list", "--date", "2026-11-25", "--format", "json").output)["1팀"]
    }
    assert rows["없는번호분"]["reason"] == "번호 확인 필요"  # never "1주 연속 미응답": nobody was rung
    assert rows["메모분"]["reason"] == "1주 연속 미응답"
    numbers = json.loads(cli("visits", "list", "--kind", "number", "--date", "2026-11-23", "--format", "json").output)[
        "1팀"
    ]
    assert [(r["name"], r["reason"]) for r in numbers] == [("없는번호분", "번호 확인 필요")]
    # The officer closes it once the number is fixed, in either language.
    cli.use_locale("ko_KR.UTF-8")
    done = cli("visits", "record", str(numbers[0]["task"]), "--outcome", "번호 수정함").output
    assert "번호 수정함" in done
    assert "없는번호분" not in cli("visits", "list", "--kind", "number", "--date", "2026-11-24").output


def test_table_json_and_csv_carry_the_reason_and_the_earlier_visit_note(cli, tmp_path):
    week_with_a_note(cli, tmp_path)
    table = cli("visits", "list", "--date", "2026-11-25").output
    folded = "".join(ch for ch in table if ch not in " \n│┃|")  # the table folds long cells over lines
    assert NOTE.replace(" ", "") in folded
    assert "번호 확인 필요" in table and "1주 연속 미응답" in table
    rows = {
        r["name"]: r
        for r in json.loads(cli("visits", "list", "--date", "2026-11-25", "--format", "json").output)["1팀"]
    }
    assert NOTE in rows["메모분"]["notes"] and "부재(재방문)" in rows["메모분"]["notes"]
    assert rows["메모분"]["reason"] == "1주 연속 미응답"
    out = tmp_path / "lists"
    cli("visits", "list", "--date", "2026-11-25", "--format", "csv", "--output", str(out))
    records = {r["성명"]: r for r in csv_records(out / "2026-11-25-visit-1팀.csv")}
    assert NOTE in records["메모분"]["이전 방문 메모"] and records["메모분"]["명단 사유"] == "1주 연속 미응답"
    assert records["없는번호분"]["명단 사유"] == "번호 확인 필요" and records["없는번호분"]["이전 방문 메모"] == ""


def test_xlsx_and_the_outbox_carry_them_too(cli, tmp_path):
    week_with_a_note(cli, tmp_path)
    path = tmp_path / "all.xlsx"
    cli("visits", "list", "--date", "2026-11-25", "--format", "xlsx", "--output", str(path))
    sheet = load_workbook(path)["1팀"]
    header = [c.value for c in sheet[1]]
    records = {
        r[header.index("성명")]: dict(zip(header, r, strict=True)) for r in sheet.iter_rows(min_row=2, values_only=True)
    }
    assert NOTE in records["메모분"]["이전 방문 메모"] and records["없는번호분"]["명단 사유"] == "번호 확인 필요"
    cli("visits", "deliver", "--date", "2026-11-25")  # no SMTP configured: the lists are still written to the outbox
    outbox = cli.root / "outbox" / "2026-11-25"
    assert NOTE in {r["성명"]: r for r in csv_records(outbox / "2026-11-25-visit-1팀.csv")}["메모분"]["이전 방문 메모"]
    sheet = load_workbook(outbox / "2026-11-25-visit-1팀.xlsx")["1팀"]
    assert any(
        NOTE in (cell or "") for row in sheet.iter_rows(values_only=True) for cell in row if isinstance(cell, str)
    )


def test_the_email_counts_say_why_people_are_on_the_list_and_how_many_have_notes(cli, tmp_path, smtp):
    configure(cli, smtp.port)
    week_with_a_note(cli, tmp_path)
    cli("visits", "deliver", "--date", "2026-11-25")
    [mail] = smtp.to("team1@example.org", "2026-11-25 방문")
    body = mail.get_content()
    assert "2명" in body and "번호 확인 필요 1명" in body and "1주 연속 미응답 1명" in body
    assert "이전 방문 메모가 있는 분: 1명" in body
    assert NOTE not in body and "메모분" not in body  # counts only: no names, no notes in an e-mail
    [number_mail] = smtp.to("officer1@example.org", "번호 확인 필요")
    assert "1명" in number_mail.get_content()


def test_an_officers_callback_note_never_reaches_a_visit_list(cli, tmp_path):
    cli.set_trunks(scripted_trunks({"+821001230001": ["help"]}))
    cli("recipients", "import", str(write_csv(tmp_path / "r.csv", [person_row("회신분", "010-0123-0001")])))
    cli("campaign", "launch", "weekly-safe-call")
    [callback] = json.loads(
        cli("visits", "list", "--kind", "callback", "--date", "2026-11-23", "--format", "json").output
    )["1팀"]
    cli("visits", "record", str(callback["task"]), "--outcome", "called_safe", "--note", OFFICER_NOTE)
    cli.clock.set(NEXT_MONDAY_MORNING)
    cli.set_trunks(scripted_trunks({"+821001230001": ["no_answer"]}))
    cli("campaign", "launch", "weekly-safe-call")
    [row] = json.loads(cli("visits", "list", "--date", "2026-12-01", "--format", "json").output)["1팀"]
    assert row["name"] == "회신분" and OFFICER_NOTE not in row["notes"] and row["reason"] == "1주 연속 미응답"
