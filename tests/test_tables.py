"""Bounded reading of untrusted tables: each limit refuses before calamine or the csv module parses the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook

from safecall import tables
from safecall.errors import InputError
from safecall.tables import Limits, read_table


def any_header(cells: list[str]) -> bool:
    return cells[:2] == ["a", "b"]


def workbook(path, rows, sheets=("Sheet",)):
    book = Workbook()
    book.active.title = sheets[0]
    for name in sheets[1:]:
        book.create_sheet(name)
    for row in rows:
        book[sheets[-1]].append(row)
    book.save(path)
    return path


def refusal(path, limits: Limits) -> str:
    with pytest.raises(InputError) as refused:
        read_table(path, any_header, limits)
    return str(refused.value)


def test_a_sheet_within_the_limits_is_read(tmp_path):
    table = read_table(workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "x"], [2, "y"]]), any_header, Limits(rows=3, columns=2))
    assert table.header == ["a", "b"] and [r.values for r in table.rows] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


@pytest.mark.parametrize("limits, message", [
    (Limits(rows=2), "a cell at A3: the sheet reaches beyond what SafeCall reads (CV2"),
    (Limits(columns=1), "a cell at B1: the sheet reaches beyond what SafeCall reads (A200000"),
    (Limits(cells=5), "the cells span A1:B3, 6 cells; SafeCall reads at most 5"),
    (Limits(cell_chars=3), "a cell in its shared strings is longer than 3 characters"),
    (Limits(zip_members=3), "parts; at most 3"),
    (Limits(zip_member_bytes=500), "unpacks to 0 MiB (at most 0 MiB)"),
    (Limits(file_bytes=1000), "SafeCall reads at most 0 MiB"),
])
def test_each_workbook_limit_refuses_before_parsing(tmp_path, limits, message):
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "a long text"], [2, "y"]])
    assert message in refusal(path, limits)


def test_a_text_running_past_a_streamed_piece_is_measured_across_pieces(tmp_path, monkeypatch):
    monkeypatch.setattr(tables, "CHUNK_BYTES", 16)
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "가" * 40]])
    assert "longer than 10 characters" in refusal(path, Limits(cell_chars=10))
    assert read_table(path, any_header, Limits(cell_chars=40)).rows[0].values["b"] == "가" * 40


def test_cells_without_references_are_placed_by_counting(tmp_path):
    path = tmp_path / "t.xlsx"
    workbook(path, [["a", "b"]])
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = next(name for name in parts if name.startswith("xl/worksheets/"))
    cells = "".join('<c t="inlineStr"><is><t>x</t></is></c>' for _ in range(5))
    parts[sheet] = parts[sheet].replace(b"</sheetData>", f"<row>{cells}</row></sheetData>".encode())
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    assert "a cell at E2" in refusal(path, Limits(columns=4))


def test_csv_limits(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a,b\n1,xyzzy\n2,y\n", encoding="utf-8")
    assert "line 2 is 8 characters long" in refusal(path, Limits(csv_line_chars=7))
    assert "more than 2 lines" in refusal(path, Limits(rows=2))
    assert "row 2, column B: a cell of 5 characters; at most 4" in refusal(path, Limits(cell_chars=4))
    assert "row 1 has 2 columns; SafeCall reads at most 1" in refusal(path, Limits(columns=1))


def rewritten(path, compression) -> None:
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    with zipfile.ZipFile(path, "w", compression) as target:
        for name, data in parts.items():
            target.writestr(name, data)


def test_stored_and_deflated_parts_are_read_and_a_cut_file_is_refused(tmp_path):
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "x"]])
    rewritten(path, zipfile.ZIP_STORED)
    assert read_table(path, any_header).rows[0].values == {"a": 1, "b": "x"}
    rewritten(path, zipfile.ZIP_DEFLATED)
    assert read_table(path, any_header).rows[0].values == {"a": 1, "b": "x"}
    cut = tmp_path / "cut.xlsx"
    cut.write_bytes(path.read_bytes()[:-200])
    assert "not a readable XLSX workbook" in refusal(cut, Limits())


def test_only_regular_files_are_read(tmp_path):
    assert "/dev/zero: not a regular file" in refusal(Path("/dev/zero"), Limits())
    assert f"{tmp_path}: is a folder, not a file" in refusal(tmp_path, Limits())


def test_two_far_apart_cells_are_refused_for_the_range_between_them(tmp_path):
    path = workbook(tmp_path / "t.xlsx", [["a", "b"]])
    book = load_workbook(path)
    book.active["CV150000"] = "stray"
    book.save(path)
    assert "the cells span A1:CV150000, 15000000 cells; SafeCall reads at most 4000000" in refusal(path, Limits())
