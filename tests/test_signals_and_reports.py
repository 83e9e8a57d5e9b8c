"""Signal-triggered checks and weekly reports (issue 5, points 5 and 6)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from conftest import NEXT_MONDAY_MORNING, person_row, scripted_trunks, write_csv
from openpyxl import load_workbook
from sqlmodel import select

from safecall.store import CampaignRun, RunMember, Signal


def roster(cli, tmp_path):
    cli.set_trunks(
        scripted_trunks({"+821001230001": ["ack"], "+821001230002": ["no_answer"], "+821001230003": ["help"]})
    )
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv",
                [
                    person_row("가", "010-0123-0001"),
                    person_row("나", "010-0123-0002", dong="부암동"),
                    person_row("다", "010-0123-0003"),
                ],
            )
        ),
    )


def test_signals_flag_people_for_an_ad_hoc_check_with_the_same_ivr_and_retries(cli, tmp_path):
    roster(cli, tmp_path)
    signals = write_csv(
        tmp_path / "s.csv",
        [["010-0123-0002", "2026-11-25", "power", "0.93"], ["010-0123-0001", "2026-11-25", "telecom", "0.2"]],
        header=["전화번호", "일자", "종류", "점수"],
    )
    assert "2 signals" in cli("signals", "import", str(signals)).output
    cli.clock.set(cli.clock.now() + timedelta(days=2, hours=2))  # Wednesday 10:00
    output = cli("signals", "launch", "weekly-safe-call", "--date", "2026-11-25").output
    assert "a check call to 1 flagged people" in output
    with cli.db().session() as session:
        run = session.exec(select(CampaignRun)).one()
        members = list(session.exec(select(RunMember)))
    assert run.label == "signals-2026-11-25" and len(members) == 1
    assert members[0].attempts_made == 4 and members[0].state == "unreachable"  # same retry rules: 3 retries
    # The weekly run of the same week is separate and still possible.
    assert "Launched run 2" in cli("campaign", "launch", "weekly-safe-call", "--no-dial").output


def test_bad_signal_files_change_nothing(cli, tmp_path):
    roster(cli, tmp_path)
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            ["010-0123-9999", "2026-11-25", "power", "0.9"],
            ["010-0123-0001", "2026-13-01", "power", "0.9"],
            ["010-0123-0001", "2026-11-25", "gas", "0.9"],
            ["010-0123-0001", "2026-11-25", "power", "9"],
        ],
        header=["전화번호", "일자", "종류", "점수"],
    )
    output = cli("signals", "import", str(bad), ok=False).output
    assert "row 2, column '전화번호': no person on the roster has 010-0123-9999" in output
    assert "row 3, column '일자': not a date" in output
    assert "row 4, column '종류': unknown kind 'gas'" in output
    assert "row 5, column '점수': '9' is not a score between 0 and 1" in output
    with cli.db().session() as session:
        assert session.exec(select(Signal)).all() == []


def test_weekly_report_per_week_and_dong_with_chart(cli, tmp_path):
    roster(cli, tmp_path)
    cli("campaign", "launch", "weekly-safe-call")
    cli.clock.set(NEXT_MONDAY_MORNING)  # the week above was played on this clock; the next one starts afresh
    cli("campaign", "launch", "weekly-safe-call")
    table = cli("report", "weekly").output
    assert "2026-11-23" in table and "2026-11-30" in table and "부암동" in table
    cli(
        "report",
        "weekly",
        "--format",
        "csv",
        "--output",
        str(tmp_path / "r.csv"),
        "--chart",
        str(tmp_path / "rates.png"),
    )
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8-sig"))))
    first_week_sajik = next(r for r in rows if r["주"] == "2026-11-23" and r["행정동"] == "사직동")
    assert (first_week_sajik["대상"], first_week_sajik["1차 응답"], first_week_sajik["도움 요청"]) == ("2", "1", "1")
    buam = next(r for r in rows if r["주"] == "2026-11-23" and r["행정동"] == "부암동")
    assert (buam["최종 무응답"], buam["방문 과제"], buam["방문 결과"]) == (
        "1",
        "1",
        "결과 대기 1",
    )  # the report is in Korean
    assert (tmp_path / "rates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    only_second = cli(
        "report", "weekly", "--from", "2026-12-01", "--format", "xlsx", "--output", str(tmp_path / "r.xlsx")
    ).output
    assert "wrote" in only_second
    weeks = {row[1].value for row in load_workbook(tmp_path / "r.xlsx").active.iter_rows(min_row=2)}
    assert weeks == {"2026-11-30"}
