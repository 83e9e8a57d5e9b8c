"""Roster import and the recipients commands (issue 2, point 3), through the CLI."""

from __future__ import annotations

from datetime import datetime

import pytest
from conftest import person_row, write_csv
from openpyxl import Workbook
from sqlmodel import select

from safecall.store import AuditEvent, Person

pytestmark = pytest.mark.both_databases


def people_in(cli) -> list[Person]:
    with cli.db().session() as session:
        return list(session.exec(select(Person).order_by(Person.id)))


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp949", "euc-kr"])
def test_csv_in_each_korean_excel_encoding_imports(cli, tmp_path, encoding):
    path = write_csv(
        tmp_path / "roster.csv",
        [person_row("김영희", "010-0123-4567", guardian="박철수", guardian_phone="010-0999-0001")],
        encoding=encoding,
    )
    result = cli("recipients", "import", str(path))
    assert "1 added" in result.output
    [person] = people_in(cli)
    assert (person.name, person.phone, person.dong, person.team) == ("김영희", "+821001234567", "사직동", "1팀")
    assert person.guardian_name == "박철수" and person.guardian_phone == "+821009990001"


def test_english_headers_and_xlsx_with_numeric_phone_cells(cli, tmp_path):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(
        [
            "name",
            "phone",
            "second phone",
            "address",
            "dong",
            "birth_date",
            "team",
            "guardian name",
            "guardian phone",
            "consent_date",
            "risk",
        ]
    )
    # Excel stores 010-0123-4567 typed without dashes as the number 1001234567.
    sheet.append(
        [
            "Lee Mina",
            1001234567,
            "070-0123-0000",
            "1 Buam-ro",
            "부암동",
            datetime(1950, 5, 6),
            "2팀",
            None,
            None,
            datetime(2025, 2, 1),
            "high",
        ]
    )
    path = tmp_path / "roster.xlsx"
    workbook.save(path)
    cli("recipients", "import", str(path))
    [person] = people_in(cli)
    assert person.phone == "+821001234567" and person.phone2 == "+827001230000"
    assert person.team == "2팀" and person.risk == 3 and str(person.birth_date) == "1950-05-06"


def test_every_bad_row_is_reported_by_row_and_column_and_nothing_is_imported(cli, tmp_path):
    cli("recipients", "import", str(write_csv(tmp_path / "good.csv", [person_row("기존인", "010-0123-1111")])))
    before = [(p.name, p.phone, p.updated_at) for p in people_in(cli)]
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            person_row("박순자", "010-12"),  # row 2: invalid number
            person_row("최영수", "010-0123-2222", born="1950-13-40"),  # row 3: bad date
            person_row("정말순", "010-0123-3333"),  # row 4: fine
            person_row("정말순", "010-0123-4444"),  # row 5: same person again
            person_row("오정자", "010-0123-3333", born="1951-01-01"),  # row 6: number already on row 4
            person_row("기존인", "010-0123-1111", dong="없는동"),  # row 7: dong with no team
        ],
    )
    result = cli("recipients", "import", str(bad), ok=False)
    assert result.exit_code == 1
    output = result.output
    assert "nothing was imported" in output
    assert "row 2, column '전화번호': invalid phone number: '010-12'" in output
    assert "row 3, column '생년월일': not a date: '1950-13-40'" in output
    assert "row 5: the same person (정말순, 1945-03-01) is already on row 4" in output
    assert "row 6, column '전화번호': number 010-0123-3333 is already given on row 4" in output
    assert "row 7, column '행정동': dong '없는동' belongs to no team" in output
    assert [(p.name, p.phone, p.updated_at) for p in people_in(cli)] == before


def test_missing_required_and_unknown_columns_are_reported(cli, tmp_path):
    header = ["성명", "연락처", "생년월일", "전화번후"]
    path = write_csv(tmp_path / "cols.csv", [["김", "010-0123-4567", "1940-01-01", "x"]], header=header)
    output = cli("recipients", "import", str(path), ok=False).output
    assert "column '전화번후': unknown column" in output
    assert "missing required column 주소 (address)" in output
    assert "missing required column 행정동 (dong)" in output
    assert people_in(cli) == []


def test_files_that_cannot_be_read_give_a_clear_error(cli, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert "empty.csv: the file is empty" in cli("recipients", "import", str(empty), ok=False).output
    binary = tmp_path / "latin.csv"
    binary.write_bytes(b"\xff\xff\xfe\x00garbage\x81\x00")
    assert "neither UTF-8 nor CP949" in cli("recipients", "import", str(binary), ok=False).output
    fake_xlsx = tmp_path / "fake.xlsx"
    fake_xlsx.write_text("not a workbook")
    assert "fake.xlsx: not a readable XLSX workbook" in cli("recipients", "import", str(fake_xlsx), ok=False).output
    only_header = write_csv(tmp_path / "header.csv", [])
    assert "no people follow it" in cli("recipients", "import", str(only_header), ok=False).output
    assert people_in(cli) == []


def test_reimport_updates_by_name_and_birth_date_and_never_duplicates(cli, tmp_path):
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "a.csv", [person_row("김영희", "010-0123-4567"), person_row("이철수", "010-0123-4568")]
            )
        ),
    )
    result = cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "b.csv",
                [
                    person_row("김영희", "010-0123-9999", dong="부암동"),
                    person_row("이철수", "010-0123-4568"),
                    person_row("새사람", "010-0123-0001"),
                ],
            )
        ),
    )
    assert "1 added, 1 updated, 1 unchanged" in result.output
    people = {p.name: p for p in people_in(cli)}
    assert len(people) == 3
    assert people["김영희"].phone == "+821001239999" and people["김영희"].team == "2팀"


def test_people_without_consent_are_stored_reported_and_never_dialled(cli, tmp_path):
    path = write_csv(
        tmp_path / "r.csv", [person_row("동의함", "010-0123-0001"), person_row("동의안함", "010-0123-0002", consent="")]
    )
    result = cli("recipients", "import", str(path))
    assert "1 without consent" in result.output and "row 3: 동의안함" in result.output
    assert {p.name for p in people_in(cli)} == {"동의함", "동의안함"}
    cli("campaign", "launch", "weekly-safe-call")
    output = cli("recipients", "show", "동의안함").output
    assert "consent: none" in output and "acknowledged" not in output
    assert "acknowledged" in cli("recipients", "show", "동의함").output


def test_dry_run_reports_and_changes_nothing(cli, tmp_path):
    path = write_csv(tmp_path / "r.csv", [person_row("김영희", "010-0123-4567")])
    assert "Would import 1 rows" in cli("recipients", "import", str(path), "--dry-run").output
    assert people_in(cli) == []


def test_pause_resume_close_show_and_list(cli, tmp_path):
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "r.csv", [person_row("김영희", "010-0123-4567"), person_row("이철수", "010-0123-4568")]
            )
        ),
    )
    assert "Paused 김영희" in cli("recipients", "pause", "김영희", "--until", "2026-12-31").output
    assert "paused until 2026-12-31" in cli("recipients", "list").output
    assert (
        "--until 2020-01-01 is in the past"
        in cli("recipients", "pause", "김영희", "--until", "2020-01-01", ok=False).output
    )
    assert "is not a date" in cli("recipients", "pause", "김영희", "--until", "tomorrow", ok=False).output
    cli("recipients", "resume", "김영희")
    assert "status: active" in cli("recipients", "show", "김영희").output
    cli("recipients", "close", "2", "--reason", "moved")
    assert "status: closed (moved)" in cli("recipients", "show", "2").output
    assert "unknown reason" in cli("recipients", "close", "1", "--reason", "bored", ok=False).output
    assert "no person named '없음'" in cli("recipients", "show", "없음", ok=False).output
    listing = cli("recipients", "list", "--status", "active").output
    assert "김영희" in listing and "이철수" not in listing
    with cli.db().session() as session:
        actions = [e.action for e in session.exec(select(AuditEvent).order_by(AuditEvent.id))]
    assert [a for a in actions if not a.endswith(".view")] == [
        "roster.import",
        "person.pause",
        "person.resume",
        "person.close",
    ]
    assert "recipients.view" in actions and "person.view" in actions  # viewing personal data is logged too (issue 18)


def test_a_big_roster_checked_in_parallel_reports_exactly_what_one_process_would(cli, tmp_path, monkeypatch):
    from safecall import roster
    from safecall.errors import InputError
    from safecall.settings import load_instance

    rows = [
        person_row(f"사람{i}", f"010-0126-{i:04d}", born=f"1950-02-{1 + i % 28:02d}", dong=["사직동", "삼청동"][i % 2])
        for i in range(60)
    ]
    rows[7][1] = "010-5970-0000"  # not a valid number
    rows[31][1] = "010-0126-0003"  # the number of row 5, in another chunk
    rows[52][0], rows[52][5] = "사람3", "1950-02-04"  # the same person as row 5, in another chunk
    rows[44][5] = "1950-13-01"
    path = write_csv(tmp_path / "big.csv", rows)
    table = roster.read_table(path).rows
    mapping, _ = roster.map_header(path, roster.read_table(path).header)
    settings, today = load_instance(cli.root, {}).settings, datetime(2026, 11, 23).date()

    def problems(parallel_from: int) -> list[str]:
        monkeypatch.setattr(roster, "PARALLEL_FROM_ROWS", parallel_from)
        with pytest.raises(InputError) as raised:
            roster.validate_rows(path, table, mapping, settings, today)
        return raised.value.problems

    in_one = problems(10**9)
    assert problems(10) == in_one  # eight chunks in worker processes
    assert [p.split(",")[0].split(":")[0] for p in in_one] == ["row 9", "row 33", "row 46", "row 54"]
    assert "already on row 5" in in_one[3] and "already given on row 5" in in_one[1]

    rows[7][1], rows[31][1], rows[52][0], rows[44][5] = "010-0126-0007", "010-0126-0031", "사람52", "1950-02-01"
    good = write_csv(tmp_path / "good.csv", rows)
    table = roster.read_table(good).rows
    monkeypatch.setattr(roster, "PARALLEL_FROM_ROWS", 10)
    assert (
        roster.validate_rows(good, table, mapping, settings, today)
        == roster._check_rows(table, mapping, settings, today)[0]
    )


def office_workbook(path, data_rows, header=None):
    """As district offices keep rosters: a cover sheet first, then a sheet with title rows above the header."""
    workbook = Workbook()
    cover = workbook.active
    cover.title = "표지"
    cover.append(["종로구 독거노인 안심콜 대상자 명단"])
    cover.append(["작성: 복지정책과", None, "2026. 11."])
    sheet = workbook.create_sheet("명단")
    sheet.append(["2026년 안심콜 대상자 명단"])
    sheet.append(["기준일: 2026-11-01", None, None, "(단위: 명)"])
    sheet.append([])
    sheet.append(
        header
        or ["연번", "성명", "전화번호", "보조연락처", "주소", "행정동", "생년월일", "담당팀", "동의일자", "위험도"]
    )
    for row in data_rows:
        sheet.append(row)
    workbook.save(path)
    return path


def test_the_roster_sheet_is_found_by_its_headers_below_title_rows_and_after_a_cover_sheet(cli, tmp_path):
    path = office_workbook(
        tmp_path / "명단.xlsx",
        [
            [
                1,
                "김순자",
                "010-0123-7001",
                None,
                "서울특별시 종로구\n사직로 1",
                "사직동",
                datetime(1941, 4, 2),
                "1팀",
                datetime(2025, 3, 4),
                "상",
            ],
            [
                2,
                "박영철",
                1001237002,
                "070-0123-7002",
                "서울특별시 종로구 평창문화로 2",
                "평창동",
                datetime(1948, 9, 17),
                None,
                datetime(2025, 3, 5),
                "중",
            ],
        ],
    )
    result = cli("recipients", "import", str(path))
    assert "2 added" in result.output and "Ignored columns: 연번" in result.output
    kim, park = people_in(cli)
    assert (kim.name, kim.address, kim.team, kim.risk) == (
        "김순자",
        "서울특별시 종로구 사직로 1",
        "1팀",
        3,
    )  # Alt+Enter is a space
    assert (park.phone, park.phone2, park.team) == ("+821001237002", "+827001237002", "2팀")


def test_a_problem_in_an_office_workbook_names_the_sheet_and_the_row_excel_shows(cli, tmp_path):
    path = office_workbook(
        tmp_path / "명단.xlsx",
        [
            [
                1,
                "김순자",
                "010-0123-7001",
                None,
                "사직로 1",
                "사직동",
                datetime(1941, 4, 2),
                None,
                datetime(2025, 3, 4),
                "상",
            ],
            [
                2,
                "박영철",
                "010-0123-7002",
                None,
                "평창문화로 2",
                "평창동",
                "1800-01-01",
                None,
                datetime(2025, 3, 5),
                "중",
            ],
        ],
    )
    output = cli("recipients", "import", str(path), ok=False).output
    assert f"error: {path}, sheet '명단': 1 problem(s); nothing was imported" in output
    assert "row 6, column '생년월일': birth date 1800-01-01 is before 1900" in output  # header on row 4
    assert people_in(cli) == []


def test_a_file_without_a_roster_header_says_what_a_header_is(cli, tmp_path):
    path = office_workbook(tmp_path / "명단.xlsx", [["김순자", "010-0123-7001"]], header=["이름칸", "번호칸"])
    output = cli("recipients", "import", str(path), ok=False).output
    assert (
        f"{path}: no header row in the first 20 rows in any sheet ('표지', '명단'); "
        "the header names the columns, e.g. 성명, 전화번호, 주소, 행정동, 생년월일"
    ) in output
    title_only = tmp_path / "title.csv"
    title_only.write_text("2026년 안심콜 대상자 명단\n\n김순자\n", encoding="utf-8")
    assert (
        f"{title_only}: no header row in the first 20 rows; the header names"
        in cli("recipients", "import", str(title_only), ok=False).output
    )
    assert people_in(cli) == []


def test_an_old_excel_97_workbook_is_read(cli):
    from pathlib import Path

    result = cli("recipients", "import", str(Path(__file__).parent / "fixtures" / "roster-97.xls"))
    assert "2 added" in result.output
    assert [(p.name, p.phone, p.team) for p in people_in(cli)] == [
        ("김순자", "+821001237001", "1팀"),
        ("박영철", "+821001237002", "2팀"),
    ]


def test_numbers_are_checked_against_the_roster_the_same_way_as_within_a_file(cli, tmp_path):
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "a.csv", [person_row("가", "010-0123-0001"), person_row("나", "010-0123-0002")])),
    )
    # Within one file, two people may swap numbers: each gives up the old one in the same import.
    cli(
        "recipients",
        "import",
        str(write_csv(tmp_path / "swap.csv", [person_row("가", "010-0123-0002"), person_row("나", "010-0123-0001")])),
    )
    assert [(p.name, p.phone) for p in people_in(cli)] == [("가", "+821001230002"), ("나", "+821001230001")]
    # A later file may not give a stored open person's number to someone else.
    output = cli(
        "recipients", "import", str(write_csv(tmp_path / "b.csv", [person_row("다", "010-0123-0001")])), ok=False
    ).output
    assert "row 2, column '전화번호': number 010-0123-0001 is already that of '나'" in output
    # Once that person is closed (moved away), the number may go to the next person who gets it.
    cli("recipients", "close", "나", "--reason", "moved")
    cli("recipients", "import", str(tmp_path / "b.csv"))
    assert {p.name: p.phone for p in people_in(cli)}["다"] == "+821001230001"


def test_both_names_of_the_second_phone_column_are_accepted_and_errors_use_the_readme_name(cli, tmp_path):
    header = ["성명", "전화번호", "전화번호2", "주소", "행정동", "생년월일"]
    cli(
        "recipients",
        "import",
        str(
            write_csv(
                tmp_path / "a.csv",
                [["가", "010-0123-0001", "070-0123-0009", "사직로 1", "사직동", "1945-03-01"]],
                header=header,
            )
        ),
    )
    assert people_in(cli)[0].phone2 == "+827001230009"
    output = cli(
        "recipients", "import", str(write_csv(tmp_path / "b.csv", [["가"]], header=["성명", "전화"])), ok=False
    ).output
    assert "known: 성명, 전화번호, 보조연락처, 주소" in output
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    assert "보조연락처" in readme and "전화번호2" in readme


def test_column_titles_from_the_file_are_quoted_with_their_control_characters_shown(cli, tmp_path):
    header = ["성명", "전화번호", "주소", "행정동", "생년월일", "비\x1b[31m고2"]
    path = write_csv(
        tmp_path / "a.csv", [["김순자", "010-0123-7001", "사직로 1", "사직동", "1941-04-02", "x"]], header=header
    )
    output = cli("recipients", "import", str(path), ok=False).output
    assert "\x1b" not in output and "column '비\\x1b[31m고2': unknown column" in output
