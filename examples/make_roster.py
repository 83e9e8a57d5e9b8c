"""Writes examples/roster.xlsx: a small roster as a district office keeps it (a title above the header).

    python examples/make_roster.py

The names, numbers and addresses are made up; the 행정동 are those of the shipped config/safecall.toml.
tests/test_examples.py checks that the committed file is what this script writes.
"""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

HEADER = [
    "연번",
    "성명",
    "전화번호",
    "보조연락처",
    "주소",
    "행정동",
    "생년월일",
    "담당팀",
    "보호자 성명",
    "보호자 연락처",
    "동의일자",
    "위험도",
    "비고",
]
PEOPLE = [
    [
        "김순자",
        "010-0123-4001",
        "",
        "서울특별시 종로구 사직로 9길 12",
        "사직동",
        date(1941, 4, 2),
        "1팀",
        "김민수",
        "010-0123-5001",
        date(2025, 3, 4),
        "상",
        "청력 약함: 천천히",
    ],
    [
        "박영철",
        "010-0123-4002",
        "070-0123-6002",
        "서울특별시 종로구 삼청로 5-1",
        "삼청동",
        date(1948, 9, 17),
        "1팀",
        "",
        "",
        date(2025, 3, 5),
        "중",
        "",
    ],
    [
        "이말순",
        "010-0123-4003",
        "",
        "서울특별시 종로구 자하문로 2가길 7",
        "청운효자동",
        date(1939, 12, 24),
        "",
        "이정희",
        "010-0123-5003",
        date(2025, 4, 1),
        "상",
        "",
    ],
    [
        "최동길",
        "010-0123-4004",
        "",
        "서울특별시 종로구 평창문화로 31",
        "평창동",
        date(1952, 1, 30),
        "2팀",
        "",
        "",
        date(2025, 4, 2),
        "하",
        "",
    ],
    [
        "정옥분",
        "010-0123-4005",
        "",
        "서울특별시 종로구 창의문로 14",
        "부암동",
        date(1945, 6, 6),
        "2팀",
        "정수진",
        "010-0123-5005",
        date(2025, 5, 12),
        "중",
        "",
    ],
    [
        "강성호",
        "010-0123-4006",
        "",
        "서울특별시 종로구 통일로 246",
        "무악동",
        date(1958, 3, 3),
        "2팀",
        "",
        "",
        date(2025, 5, 13),
        "중",
        "중장년 1인 가구",
    ],
    [
        "윤복희",
        "010-0123-4007",
        "070-0123-6007",
        "서울특별시 종로구 송월길 99",
        "교남동",
        date(1943, 10, 9),
        "3팀",
        "윤재원",
        "010-0123-5007",
        date(2025, 6, 2),
        "상",
        "",
    ],
    [
        "한금자",
        "010-0123-4008",
        "",
        "서울특별시 종로구 북촌로 11",
        "가회동",
        date(1947, 2, 14),
        "3팀",
        "",
        "",
        None,
        "중",
        "동의서 회수 전",
    ],
    [
        "오만석",
        "010-0123-4009",
        "",
        "서울특별시 종로구 이화장길 86",
        "이화동",
        date(1950, 8, 15),
        "3팀",
        "",
        "",
        date(2025, 6, 20),
        "하",
        "",
    ],
]


def build(path: Path) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "명단"
    sheet.append(["2026년 종로구 안심콜 대상자 명단"])
    sheet["A1"].font = Font(bold=True, size=14)
    sheet.append(["기준일: 2026-11-01", None, None, None, "작성: 복지정책과"])
    sheet.append(HEADER)
    for number, person in enumerate(PEOPLE, start=1):
        sheet.append([number, *person])
    for row in sheet.iter_rows(min_row=4):
        for cell in row:
            if isinstance(cell.value, date):
                cell.number_format = "yyyy-mm-dd"
    workbook.properties.creator = "SafeCall example"
    workbook.properties.created = workbook.properties.modified = datetime(2026, 11, 1)
    workbook.save(path)
    return path


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).with_name("roster.xlsx"))
