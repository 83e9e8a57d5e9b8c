"""Bounded reading of untrusted tables: each limit refuses before calamine or the csv module parses the file."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import PatternFill

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
    table = read_table(
        workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "x"], [2, "y"]]), any_header, Limits(rows=3, columns=2)
    )
    assert table.header == ["a", "b"] and [r.values for r in table.rows] == [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]


@pytest.mark.parametrize(
    "limits, message",
    [
        (Limits(rows=2), "a cell at A3: the sheet reaches beyond what SafeCall reads (CV2"),
        (Limits(columns=1), "a cell at B1: the sheet reaches beyond what SafeCall reads (A200000"),
        (Limits(cells=5), "the cells span A1:B3, 6 cells; SafeCall reads at most 5"),
        (Limits(cell_chars=3), "a cell in its shared strings is longer than 3 characters"),
        (Limits(zip_members=3), "parts; at most 3"),
        (Limits(zip_member_bytes=500), "unpacks to 0 MiB (at most 0 MiB)"),
        (Limits(file_bytes=1000), "SafeCall reads at most 0 MiB"),
    ],
)
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


@pytest.mark.parametrize(
    "cell", ['<c\tr="CW5"><v>1</v></c>', '<c  r="CW5"/>', '<c t="n" r="CW5"><v>1</v></c>', '<x:c r="CW5"/>']
)
def test_a_cell_written_otherwise_is_still_placed(tmp_path, cell):
    # The bulk scan reads only `<c r="..."`; any other spelling of a cell sends the block to the exact scan.
    path = tmp_path / "t.xlsx"
    workbook(path, [["a", "b"]])
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = next(name for name in parts if name.startswith("xl/worksheets/"))
    parts[sheet] = parts[sheet].replace(b"</sheetData>", f'<row r="5">{cell}</row></sheetData>'.encode())
    with zipfile.ZipFile(path, "w") as target:
        for name, data in parts.items():
            target.writestr(name, data)
    assert "a cell at CW5: the sheet reaches beyond what SafeCall reads" in refusal(path, Limits(columns=100))


def test_only_regular_files_are_read(tmp_path):
    assert "/dev/zero: not a regular file" in refusal(Path("/dev/zero"), Limits())
    assert f"{tmp_path}: is a folder, not a file" in refusal(tmp_path, Limits())


def test_two_far_apart_cells_are_refused_for_the_range_between_them(tmp_path):
    path = workbook(tmp_path / "t.xlsx", [["a", "b"]])
    book = load_workbook(path)
    book.active["CV150000"] = "stray"
    book.save(path)
    assert "the cells span A1:CV150000, 15000000 cells; SafeCall reads at most 4000000" in refusal(path, Limits())


def test_the_fast_cell_scan_finds_the_range_the_exact_scan_finds(tmp_path, monkeypatch):
    # Cells written `<c r="..."` are checked against a bound by one regex search, or measured by the regex engine in
    # bulk; any other spelling, or a block reaching past a limit, is placed cell by cell. All three must see the same
    # range, in small pieces and in large ones.
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], *([i, "x" * (i % 7)] for i in range(300))])
    book = load_workbook(path)
    book.active["AB40"], book.active["C299"] = "far right", "low"
    book.save(path)
    spans = set()
    for scan in ("quickest", "bulk", "exact"):
        if scan != "quickest":
            monkeypatch.setattr(tables, "_cells_within", lambda block, used: None)
        if scan == "exact":
            monkeypatch.setattr(tables, "_farthest_cell_fast", lambda block, used: None)
        for chunk in (64, 1 << 20):
            monkeypatch.setattr(tables, "CHUNK_BYTES", chunk)
            spans.add(refusal(path, Limits(cells=301 * 28 - 1)))
            assert "row 40 has more cells (28) than the header" in refusal(
                path, Limits(cells=301 * 28)
            )  # past the scan
    assert spans == {
        f"{path}: the cells span A1:AB301, 8428 cells; "
        "SafeCall reads at most 8427 (delete stray cells far from the table, or split the file)"
    }


def test_a_long_text_is_found_wherever_a_piece_begins(tmp_path, monkeypatch):
    # The scan allows 10 bytes of XML a character (&#x10FFFF;): 300 bytes of text is past 29 characters' worth.
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], *([i, "y"] for i in range(50)), [1, "z" * 300]])
    for chunk in (7, 64, 1 << 20):
        monkeypatch.setattr(tables, "CHUNK_BYTES", chunk)
        assert "a cell near cell B52 is longer than 29 characters" in refusal(path, Limits(cell_chars=29))
        assert read_table(path, any_header, Limits(cell_chars=300)).rows[-1].values["b"] == "z" * 300


def with_sheet(path, edit) -> Path:
    """The workbook at `path` with its first sheet's XML passed through `edit`."""
    with zipfile.ZipFile(path) as source:
        parts = {name: source.read(name) for name in source.namelist()}
    sheet = next(name for name in parts if name.startswith("xl/worksheets/"))
    parts[sheet] = edit(parts[sheet])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in parts.items():
            target.writestr(name, data)
    return path


def test_a_cell_below_its_blocks_last_row_is_found(tmp_path, monkeypatch):
    # The quickest scan bounds a block by its last cell's row; a cell written out of order, far below the rows
    # around it (its row tag says 3), must still be measured and named.
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], *([i, "x"] for i in range(200))])
    with_sheet(
        path, lambda xml: xml.replace(b'<c r="B3"', b'<c r="B5000" t="inlineStr"><is><t>stray</t></is></c><c r="B3"', 1)
    )
    for chunk in (64, 1 << 20):
        monkeypatch.setattr(tables, "CHUNK_BYTES", chunk)
        assert f"{path}: a cell at B5000: the sheet reaches beyond what SafeCall reads (CV4000" in refusal(
            path, Limits(rows=4000)
        )
        assert f"{path}: the cells span A1:B5000, 10000 cells; SafeCall reads at most 9999" in refusal(
            path, Limits(cells=9999)
        )


def test_the_sheets_dimension_bounds_nothing(tmp_path):
    # calamine allocates the range its cells reach, not the <dimension> the sheet claims: a claim of the whole grid
    # over two rows is read, and a claim of A1:B2 over a cell at CV150000 is refused for the cell.
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "x"]])
    with_sheet(path, lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:XFD1048576"', xml))
    assert b"A1:XFD1048576" in zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    assert [row.values for row in read_table(path, any_header).rows] == [{"a": 1, "b": "x"}]
    book = load_workbook(workbook(tmp_path / "lies.xlsx", [["a", "b"], [1, "x"]]))
    book.active["CV150000"] = "stray"
    book.save(tmp_path / "lies.xlsx")
    lies = with_sheet(
        tmp_path / "lies.xlsx", lambda xml: re.sub(rb'<dimension ref="[^"]*"', b'<dimension ref="A1:B2"', xml)
    )
    assert f"{lies}: the cells span A1:CV150000, 15000000 cells; SafeCall reads at most 4000000" in refusal(
        lies, Limits()
    )


def test_a_huge_shared_string_is_refused_naming_the_file(tmp_path, monkeypatch):
    path = workbook(tmp_path / "t.xlsx", [["a", "b"], [1, "x"]])
    with zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as archive:  # 1 MiB of one string packs to a few KiB
        archive.writestr(
            "xl/sharedStrings.xml",
            b'<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            b"<si><t>short</t></si><si><t>" + b"A" * (1 << 20) + b"</t></si></sst>",
        )
    for chunk in (4096, 1 << 20):
        monkeypatch.setattr(tables, "CHUNK_BYTES", chunk)
        assert f"{path}: a cell in its shared strings is longer than 2000 characters" in refusal(path, Limits())


def test_other_tags_starting_like_a_cell_leave_the_cells_measured(tmp_path):
    # <cols> (column widths) before the cells, <conditionalFormatting> after them: tags the quickest scan does not
    # read, so their blocks go to the next scan; the cells are still found and the table read.
    book = Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, "x"])
    book.active.column_dimensions["B"].width = 30
    book.active.conditional_formatting.add(
        "A1:A2", CellIsRule(operator="equal", formula=["1"], fill=PatternFill(bgColor="FFC7CE"))
    )
    path = tmp_path / "t.xlsx"
    book.save(path)
    xml = zipfile.ZipFile(path).read("xl/worksheets/sheet1.xml")
    assert b"<col " in xml and b"<conditionalFormatting" in xml
    assert [row.values for row in read_table(path, any_header).rows] == [{"a": 1, "b": "x"}]
    assert "a cell at B1: the sheet reaches beyond what SafeCall reads" in refusal(path, Limits(columns=1))
